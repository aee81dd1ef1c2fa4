// What neoctl prints, from the answers of the admin (spec/neoctl.md §2.5, §3). Pure functions:
// the outputs are compared with the texts the reference neoctl printed.

import { formatAddress } from '../core/address.js';
import type { WireNodeInfo } from '../core/node-table.js';
import type { WireRow } from '../core/partition-table.js';
import { CellStates, NodeStates } from '../protocol/enums.js';
import type { CellState, NodeState } from '../protocol/enums.js';
import { nidToString, tidToDate, u64 } from '../protocol/ids.js';

const SECONDS_PER_DAY = 86_400;
const MICROSECONDS_PER_SECOND = 1_000_000;

function pad(n: number, width: number): string {
  return String(n).padStart(width, '0');
}

/** Year, month, day of a number of days since 1970-01-01 (proleptic Gregorian calendar). */
function civilFromDays(days: number): { year: number; month: number; day: number } {
  const z = days + 719_468;
  const era = Math.floor(z / 146_097);
  const dayOfEra = z - era * 146_097;
  const yearOfEra = Math.floor((dayOfEra - Math.floor(dayOfEra / 1460) + Math.floor(dayOfEra / 36_524)
    - Math.floor(dayOfEra / 146_096)) / 365);
  const dayOfYear = dayOfEra - (365 * yearOfEra + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100));
  const mp = Math.floor((5 * dayOfYear + 2) / 153);
  const day = dayOfYear - Math.floor((153 * mp + 2) / 5) + 1;
  const month = mp < 10 ? mp + 3 : mp - 9;
  return { year: yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day };
}

/** Python's round() of a float: to the nearest integer, ties to even. */
function roundHalfEven(x: number): number {
  const rounded = Math.round(x);
  return rounded - x === 0.5 && rounded % 2 !== 0 ? rounded - 1 : rounded;
}

/**
 * A UNIX time as Python prints `datetime.utcfromtimestamp(t)`: `YYYY-MM-DD HH:MM:SS.ffffff`,
 * without the fraction when the microseconds are 0.
 */
export function formatUtcTime(seconds: number): string {
  let whole = Math.floor(seconds);
  let microseconds = roundHalfEven((seconds - whole) * MICROSECONDS_PER_SECOND);
  if (microseconds >= MICROSECONDS_PER_SECOND) {
    whole += 1;
    microseconds -= MICROSECONDS_PER_SECOND;
  }
  const days = Math.floor(whole / SECONDS_PER_DAY);
  const secondOfDay = whole - days * SECONDS_PER_DAY;
  const { year, month, day } = civilFromDays(days);
  const text = `${pad(year, 4)}-${pad(month, 2)}-${pad(day, 2)} ${pad(Math.floor(secondOfDay / 3600), 2)}:`
    + `${pad(Math.floor(secondOfDay / 60) % 60, 2)}:${pad(secondOfDay % 60, 2)}`;
  return microseconds === 0 ? text : `${text}.${pad(microseconds, 6)}`;
}

// ---------------------------------------------------------------------------------------------
// print node

/** Nodes with an id first, by id; then those without, by type (as NEO sorts them). */
function compareNodes(a: WireNodeInfo, b: WireNodeInfo): number {
  const [typeA, , nidA] = a;
  const [typeB, , nidB] = b;
  if (nidA === null || nidB === null) {
    if (nidA !== null) return -1;
    if (nidB !== null) return 1;
    return typeA.value - typeB.value;
  }
  return nidA - nidB;
}

/** `NID | TYPE | ADDRESS | STATE | ID_TIME` lines, every column but the last padded. */
export function formatNodeList(nodes: readonly WireNodeInfo[]): string[] {
  const rows = [...nodes].sort(compareNodes).map(([type, address, nid, state, idTimestamp]) => [
    nidToString(nid),
    type.name,
    address === null ? '' : formatAddress(address),
    state.name,
    idTimestamp === null ? 'None' : idTimestamp === 0 ? '0' : formatUtcTime(idTimestamp),
  ]);
  const widths = [0, 1, 2, 3].map((column) => Math.max(...rows.map((row) => row[column]!.length)));
  return rows.map((row) => row.map((value, column) => value.padEnd(widths[column] ?? 0)).join(' | '));
}

/** The output of `print node`. */
export function formatNodeListText(nodes: readonly WireNodeInfo[]): string {
  return nodes.length === 0 ? 'Empty list!' : formatNodeList(nodes).join('\n');
}

// ---------------------------------------------------------------------------------------------
// print pt, tweak

const NODE_STATE_LETTER: ReadonlyMap<NodeState, string> = new Map([
  [NodeStates.RUNNING, 'R'],
  [NodeStates.DOWN, 'D'],
  [NodeStates.UNKNOWN, 'U'],
  [NodeStates.PENDING, 'P'],
]);

const CELL_STATE_LETTER: ReadonlyMap<CellState, string> = new Map([
  [CellStates.UP_TO_DATE, 'U'],
  [CellStates.OUT_OF_DATE, 'O'],
  [CellStates.FEEDING, 'F'],
  [CellStates.DISCARDED, 'D'],
  [CellStates.CORRUPTED, 'C'],
]);

const RULER_STEP = 10;

/**
 * The partition table as a grid: one line per storage node that has a cell or is RUNNING, sorted
 * by id (`S1 R UU.O`), under a ruler marking every tenth partition when there are more than 10.
 * `storages` is the admin's answer to AskNodeList(STORAGE), for node states.
 */
export function formatPartitionGrid(rows: readonly WireRow[], storages: readonly WireNodeInfo[]): string[] {
  const stateOf = new Map<number, NodeState>();
  for (const [, , nid, state] of storages) if (nid !== null) stateOf.set(nid, state);
  const cellsOf = new Map<number, string[]>();
  const lineOf = (nid: number): string[] => {
    let line = cellsOf.get(nid);
    if (line === undefined) cellsOf.set(nid, (line = rows.map(() => '.')));
    return line;
  };
  rows.forEach((row, partition) => {
    for (const [nid, state] of row) lineOf(nid)[partition] = CELL_STATE_LETTER.get(state) ?? '?';
  });
  for (const [nid, state] of stateOf) if (state === NodeStates.RUNNING) lineOf(nid);
  const nids = [...cellsOf.keys()].sort((a, b) => a - b);
  const last = nids[nids.length - 1];
  if (last === undefined) return [];
  // Like NEO, pad to the length of the last id, which is the longest among storage ids.
  const width = nidToString(last).length;
  const lines: string[] = [];
  if (rows.length > RULER_STEP) {
    let ruler = ' '.repeat(width + 4);
    for (let k = RULER_STEP; k < rows.length; k += RULER_STEP) ruler += `${k}v`.padStart(RULER_STEP);
    lines.push(ruler);
  }
  for (const nid of nids) {
    const state = NODE_STATE_LETTER.get(stateOf.get(nid) ?? NodeStates.UNKNOWN);
    lines.push(`${nidToString(nid).padEnd(width)} ${state} ${cellsOf.get(nid)!.join('')}`);
  }
  return lines;
}

/** Rows as `001 | S1 - UP_TO_DATE | S2 - OUT_OF_DATE |`, numbered from `firstOffset`. */
export function formatRowList(rows: readonly WireRow[], firstOffset: number): string[] {
  return rows.map((row, index) =>
    pad(firstOffset + index, 3) + ' |' + row.map(([nid, state]) => ` ${nidToString(nid)} - ${state.name} |`).join(''),
  );
}

/** The header line of `print pt`. */
export function formatPartitionHeader(ptid: number | null, numReplicas: number): string {
  return `# ptid: ${ptid === null ? 'None' : ptid}, replicas: ${numReplicas}`;
}

// ---------------------------------------------------------------------------------------------
// print ids, print summary

function hexOf(id: Buffer): string {
  return `0x${u64(id).toString(16)}`;
}

/** `print ids` of a normal cluster, from AnswerRecovery and AnswerLastIDs. */
export function formatLastIds(ptid: number | null, lastTid: Buffer, lastOid: Buffer): string {
  return [
    `last_oid = ${hexOf(lastOid)}`,
    `last_tid = ${hexOf(lastTid)} (${tidToDate(lastTid)})`,
    `last_ptid = ${ptid === null ? 'None' : ptid}`,
  ].join('\n');
}

/** `print ids` of a backup cluster, from AnswerRecovery and AnswerLastTransaction. */
export function formatBackupIds(ptid: number | null, backupTid: Buffer, lastTid: Buffer): string {
  return [
    `backup_tid = ${hexOf(backupTid)} (${tidToDate(backupTid)})`,
    `last_tid = ${hexOf(lastTid)} (${tidToDate(lastTid)})`,
    `last_ptid = ${ptid === null ? 'None' : ptid}`,
  ].join('\n');
}

/** A string as Python's json.dumps writes it (non-ASCII characters escaped). */
function pythonJsonString(text: string): string {
  return JSON.stringify(text).replace(/[\u0080-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** The first line of `print summary`: `# {"warning": [null], "problem": ["backup"]}`. */
export function formatMonitorHeader(warnings: readonly (string | null)[], problems: readonly (string | null)[]): string {
  const entries: string[] = [];
  const list = (names: readonly (string | null)[]) =>
    `[${names.map((name) => (name === null ? 'null' : pythonJsonString(name))).join(', ')}]`;
  if (warnings.length > 0) entries.push(`"warning": ${list(warnings)}`);
  if (problems.length > 0) entries.push(`"problem": ${list(problems)}`);
  return `# {${entries.join(', ')}}`;
}
