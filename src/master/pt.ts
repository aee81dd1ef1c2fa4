// The primary master's partition table algorithms (cluster.md §7.3, §9.2, §10.3, §16.3):
// building a new table, tweaking it over a set of storages, outdating the cells of a lost
// node, and the cell transitions that follow a finished replication. Each returns the list of
// cell changes it applied, which the caller broadcasts with one new ptid.

import assert from 'node:assert/strict';
import { CellStates } from '../protocol/enums.js';
import type { CellState } from '../protocol/enums.js';
import { PartitionTable, isReadable } from '../core/partition-table.js';
import type { Cell, WireCellChange } from '../core/partition-table.js';

export type CellChange = WireCellChange;

/** A storage's topology path (its `devpath`: host, then device), undefined when not known. */
export type Topology = (nid: number) => readonly string[] | undefined;

/**
 * Bound on the work of one search for a layout, in options tried plus cells checked against the
 * topology limits or placed. A topology that passes the depth test but cannot be met makes the search
 * exponential; past this bound it gives up, so that a big table cannot block the master.
 */
const MAX_SEARCH_CHECKS = 8_000_000;

function setAndRecord(pt: PartitionTable, changes: CellChange[], partition: number, nid: number, state: CellState): void {
  pt.setCell(partition, nid, state);
  changes.push([partition, nid, state]);
}

/**
 * Lays out the table over `nids` (cluster.md §10.3): every partition gets min(nr + 1, |nids|)
 * cells on distinct nodes, node loads differ by at most one cell, consecutive partitions go to
 * different nodes, and replicas of a partition are spread over the topology paths given by
 * `topology` as far as it allows. Among the layouts that do so, the one that moves the fewest
 * cells is preferred, and a table already laid out that way is left as it is. A node's readable
 * cells moved away stay FEEDING until the row has enough readable cells elsewhere. Cells of
 * nodes not in `nids` are left untouched and do not count. New cells are UP_TO_DATE in a new
 * table (no ptid), OUT_OF_DATE otherwise. `warn` hears why topology had to be ignored.
 */
export function tweak(
  pt: PartitionTable, nids: readonly number[], topology?: Topology, warn?: (message: string) => void,
): CellChange[] {
  assert(nids.length > 0, "Can't remove all nodes.");
  // Sorting by NID makes the first node take the first option: the layout reads like NEO's.
  const nodes = [...nids].sort((a, b) => a - b);
  const nodeIndex = new Map(nodes.map((nid, index) => [nid, index]));
  assert(nodeIndex.size === nodes.length, 'tweak: duplicate node');
  const replicas = Math.min(pt.numReplicas + 1, nodes.length);
  const cellsByNode = nodes.map(() => new Map<number, Cell>());
  pt.rows.forEach((row, partition) => {
    for (const cell of row) {
      const index = nodeIndex.get(cell.nid);
      if (index !== undefined) cellsByNode[index]!.set(partition, cell);
    }
  });
  const ideal = idealLayout(pt.numPartitions, replicas, nodes.length);
  const limits = replicas > 1 ? spreadLimits(nodes.map((nid) => topology?.(nid) ?? []), replicas) : null;
  if (replicas > 1 && limits === null) {
    warn?.(`Can't maximize resiliency: the topology paths (devpath) of the storage nodes do not allow `
      + `spreading ${replicas} replicas evenly, or some node announced none; topology ignored, so `
      + `${replicas - 1} failed device(s) may be enough to lose the whole database.`);
  }
  let found = findLayout(pt.numPartitions, cellsByNode, ideal, limits);
  if (found === null) {
    warn?.("Can't maximize resiliency: no layout meeting the topology of the storage nodes was found "
      + 'within the search bound; topology ignored.');
    const choices = leastMovementChoices(cellsByNode, ideal);
    // Without topology every node takes the first option left: no backtracking, so no bound.
    const picked = searchLayout(choices, ideal, null, Infinity);
    assert(picked !== null);
    found = { choices, picked };
  }
  return applyLayout(pt, nodes, cellsByNode, ideal, found, replicas);
}

/** The distinct partition lists of the ideal layout, and how many nodes get each. */
interface IdealLayout {
  readonly options: readonly (readonly number[])[];
  readonly counts: readonly number[];
}

/**
 * Deals every partition, repeated `replicas` times, round-robin to `nodeCount` slots: whichever
 * node gets whichever slot, loads differ by at most one cell and consecutive partitions (new
 * OIDs are roughly sequential) land on different nodes.
 */
function idealLayout(numPartitions: number, replicas: number, nodeCount: number): IdealLayout {
  const slots: number[][] = Array.from({ length: nodeCount }, () => []);
  let item = 0;
  for (let partition = 0; partition < numPartitions; partition++) {
    for (let copy = 0; copy < replicas; copy++) slots[item++ % nodeCount]!.push(partition);
  }
  const counts = new Map<string, { partitions: number[]; count: number }>();
  for (const partitions of slots) {
    const key = partitions.join(',');
    const entry = counts.get(key);
    if (entry === undefined) counts.set(key, { partitions, count: 1 });
    else entry.count++;
  }
  // Bigger options first, then by partitions: nodes of small NIDs get the first partitions.
  const entries = [...counts.values()].sort((a, b) => compareOptions(a.partitions, b.partitions));
  return { options: entries.map((entry) => entry.partitions), counts: entries.map((entry) => entry.count) };
}

function compareOptions(a: readonly number[], b: readonly number[]): number {
  if (a.length !== b.length) return b.length - a.length;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return 0;
}

/**
 * At one depth of the paths: a group holds at most `max` cells of a partition, and at most
 * `reach` groups of the same parent hold `max`.
 */
interface Limit {
  readonly max: number;
  readonly reach: number;
}

/** The topology constraints of a search: each node's path cut at the depth used, and each depth's limits. */
interface SpreadLimits {
  readonly paths: readonly (readonly string[])[];
  readonly limits: readonly Limit[];
}

/**
 * Finds the shallowest depth at which the paths spread `replicas` cells of a partition over
 * distinct groups, recording the limits of each depth on the way (cluster.md §10.3 step 3);
 * null when no depth can (groups too uneven, or a node without a path).
 */
function spreadLimits(paths: readonly (readonly string[])[], replicas: number): SpreadLimits | null {
  const maxDepth = Math.min(...paths.map((path) => path.length));
  const limits: Limit[] = [];
  for (let depth = 1; depth <= maxDepth; depth++) {
    const sizes = new Map<string, number>();
    for (const path of paths) {
      const key = JSON.stringify(path.slice(0, depth));
      sizes.set(key, (sizes.get(key) ?? 0) + 1);
    }
    const largest = Math.max(...sizes.values());
    const even = [...sizes.values()].every((size) => size === largest);
    if (!even && largest * replicas > paths.length) return null;
    const groups = sizes.size;
    const perGroup = Math.floor(replicas / groups);
    const extra = replicas % groups;
    limits.push(extra > 0 ? { max: perGroup + 1, reach: extra } : { max: perGroup, reach: groups });
    // Fewer groups than replicas: a group holds several cells of a partition, spread them below.
    if (groups >= replicas) return { paths: paths.map((path) => path.slice(0, depth)), limits };
  }
  return null;
}

interface Group {
  cells: number;
  readonly below: Map<string, Group>;
}

/** The cells of each partition placed so far, counted per group at every depth of the paths. */
class Spread {
  /** Cells checked or placed, for the search bound. */
  checks = 0;
  readonly #limits: SpreadLimits;
  readonly #partitions: Map<string, Group>[];

  constructor(numPartitions: number, limits: SpreadLimits) {
    this.#limits = limits;
    this.#partitions = Array.from({ length: numPartitions }, () => new Map());
  }

  /** Whether node `node` may take cells of `partitions` without a group exceeding its limit. */
  fits(node: number, partitions: readonly number[]): boolean {
    const path = this.#limits.paths[node]!;
    for (const partition of partitions) {
      let level = this.#partitions[partition]!;
      for (let depth = 0; depth < path.length; depth++) {
        this.checks++;
        const { max, reach } = this.#limits.limits[depth]!;
        const group = level.get(path[depth]!);
        const cells = group?.cells ?? 0;
        if (cells >= max) return false;
        if (cells + 1 === max && countAt(level, max) >= reach) return false;
        // An empty group has nothing below it either: deeper levels fit.
        if (group === undefined) break;
        level = group.below;
      }
    }
    return true;
  }

  place(node: number, partitions: readonly number[], delta: 1 | -1): void {
    const path = this.#limits.paths[node]!;
    for (const partition of partitions) {
      let level = this.#partitions[partition]!;
      for (const step of path) {
        this.checks++;
        let group = level.get(step);
        if (group === undefined) level.set(step, group = { cells: 0, below: new Map() });
        group.cells += delta;
        assert(group.cells >= 0);
        level = group.below;
      }
    }
  }
}

function countAt(level: Map<string, Group>, cells: number): number {
  let count = 0;
  for (const group of level.values()) if (group.cells === cells) count++;
  return count;
}

/** A node of the search (index in the sorted node list) and the options it tries, in order. */
interface Choice {
  readonly node: number;
  readonly options: readonly number[];
}

interface Found {
  readonly choices: readonly Choice[];
  /** The option taken by each choice. */
  readonly picked: readonly number[];
}

/**
 * Tries the strategies in turn (cluster.md §10.3 step 4): first a layout where no node loses a
 * cell, which is what makes a second tweak a no-op, then the heuristic one. Null when the
 * topology could not be met within the search bound.
 */
function findLayout(
  numPartitions: number, cellsByNode: readonly Map<number, Cell>[], ideal: IdealLayout, limits: SpreadLimits | null,
): Found | null {
  const strategies = [() => noMovementChoices(cellsByNode, ideal), () => leastMovementChoices(cellsByNode, ideal)];
  let tried: Choice[] | null = null;
  for (const strategy of strategies) {
    const choices = strategy();
    // Both strategies order an empty table the same way: one failed search is enough.
    if (choices === null || (tried !== null && sameChoices(tried, choices))) continue;
    tried = choices;
    const spread = limits === null ? null : new Spread(numPartitions, limits);
    const picked = searchLayout(choices, ideal, spread, MAX_SEARCH_CHECKS);
    if (picked !== null) return { choices, picked };
  }
  return null;
}

function sameChoices(a: readonly Choice[], b: readonly Choice[]): boolean {
  return a.length === b.length
    && a.every((choice, i) => choice.node === b[i]!.node && choice.options.join() === b[i]!.options.join());
}

/** Each node may only take options holding all its cells that are not FEEDING; null if one has none. */
function noMovementChoices(cellsByNode: readonly Map<number, Cell>[], ideal: IdealLayout): Choice[] | null {
  const optionSets = ideal.options.map((partitions) => new Set(partitions));
  const choices: Choice[] = [];
  for (const [node, cells] of cellsByNode.entries()) {
    const kept = [...cells].filter(([, cell]) => cell.state !== CellStates.FEEDING).map(([partition]) => partition);
    const options = [...optionSets.keys()]
      .filter((option) => kept.every((partition) => optionSets[option]!.has(partition)));
    if (options.length === 0) return null;
    choices.push({ node, options });
  }
  return choices;
}

/**
 * Each node tries options by increasing cost (readable cells dropped, then other cells
 * dropped), and nodes with the widest gap between their best and worst cost choose first, so
 * that those with the most to lose are not left with the worst options.
 */
function leastMovementChoices(cellsByNode: readonly Map<number, Cell>[], ideal: IdealLayout): Choice[] {
  const optionSets = ideal.options.map((partitions) => new Set(partitions));
  const ranked = cellsByNode.map((cells, node) => {
    const costs = optionSets.map((option, index) => {
      let readable = 0;
      let other = 0;
      for (const [partition, cell] of cells) {
        if (option.has(partition)) continue;
        if (isReadable(cell.state)) readable++;
        else other++;
      }
      return { index, readable, other };
    });
    costs.sort((a, b) => a.readable - b.readable || a.other - b.other || a.index - b.index);
    const best = costs[0]!;
    const worst = costs.at(-1)!;
    return {
      node, gapReadable: best.readable - worst.readable, gapOther: best.other - worst.other,
      options: costs.map((cost) => cost.index),
    };
  });
  ranked.sort((a, b) => a.gapReadable - b.gapReadable || a.gapOther - b.gapOther || a.node - b.node);
  return ranked.map(({ node, options }) => ({ node, options }));
}

/**
 * Depth-first search with backtracking: each choice in turn takes its first option still
 * available (options are used as many times as the ideal layout has them) that keeps the
 * topology within its limits. Returns the option of each choice, or null when there is none or
 * the search went past `maxChecks`.
 */
function searchLayout(
  choices: readonly Choice[], ideal: IdealLayout, spread: Spread | null, maxChecks: number,
): number[] | null {
  const left = [...ideal.counts];
  const picked: number[] = [];
  const cursors: number[] = [0];
  let attempts = 0;
  while (picked.length < choices.length) {
    const level = picked.length;
    const choice = choices[level]!;
    let cursor = cursors[level]!;
    let taken: number | undefined;
    while (taken === undefined && cursor < choice.options.length) {
      const option = choice.options[cursor++]!;
      if (left[option] === 0) continue;
      if (++attempts + (spread?.checks ?? 0) > maxChecks) return null;
      if (spread === null || spread.fits(choice.node, ideal.options[option]!)) taken = option;
    }
    cursors[level] = cursor;
    if (taken !== undefined) {
      picked.push(taken);
      left[taken]!--;
      spread?.place(choice.node, ideal.options[taken]!, 1);
      cursors.push(0);
    } else {
      if (level === 0) return null;
      cursors.pop();
      const undone = picked.pop()!;
      left[undone]!++;
      spread?.place(choices[level - 1]!.node, ideal.options[undone]!, -1);
    }
  }
  return picked;
}

/**
 * Applies the layout (cluster.md §10.3 step 5): new cells, FEEDING cells kept go back to
 * UP_TO_DATE, and cells moved away are discarded, except readable ones still needed as a data
 * source while the row has fewer than `replicas` readable cells kept, which stay FEEDING.
 */
function applyLayout(
  pt: PartitionTable, nodes: readonly number[], cellsByNode: readonly Map<number, Cell>[], ideal: IdealLayout,
  found: Found, replicas: number,
): CellChange[] {
  const newState = pt.ptid === null ? CellStates.UP_TO_DATE : CellStates.OUT_OF_DATE;
  const changes: CellChange[] = [];
  const readableMissing = new Array<number>(pt.numPartitions).fill(replicas);
  const movedAway: Cell[][] = Array.from({ length: pt.numPartitions }, () => []);
  found.choices.forEach((choice, k) => {
    const nid = nodes[choice.node]!;
    const cells = new Map(cellsByNode[choice.node]);
    for (const partition of ideal.options[found.picked[k]!]!) {
      const cell = cells.get(partition);
      cells.delete(partition);
      if (cell === undefined) {
        setAndRecord(pt, changes, partition, nid, newState);
      } else if (isReadable(cell.state)) {
        if (cell.state === CellStates.FEEDING) setAndRecord(pt, changes, partition, nid, CellStates.UP_TO_DATE);
        readableMissing[partition]!--;
      }
    }
    for (const [partition, cell] of cells) movedAway[partition]!.push(cell);
  });
  movedAway.forEach((cells, partition) => {
    for (const cell of cells) {
      if (readableMissing[partition]! > 0 && isReadable(cell.state)) {
        readableMissing[partition]!--;
        if (cell.state !== CellStates.FEEDING) setAndRecord(pt, changes, partition, cell.nid, CellStates.FEEDING);
      } else {
        setAndRecord(pt, changes, partition, cell.nid, CellStates.DISCARDED);
      }
    }
  });
  const members = new Set(nodes);
  pt.rows.forEach((row) => {
    const placed = row.filter((cell) => members.has(cell.nid) && cell.state !== CellStates.FEEDING).length;
    assert.equal(placed, replicas, 'tweak: a partition did not get its replicas');
  });
  return changes;
}

/**
 * A node is lost or no longer running: its UP_TO_DATE cells become OUT_OF_DATE and its FEEDING
 * ones are discarded, except a cell that is the last readable one on a running node of its row
 * (kept so that the cluster can restart with that node).
 */
export function outdateNode(pt: PartitionTable, nid: number, isRunning: (nid: number) => boolean): CellChange[] {
  const changes: CellChange[] = [];
  for (const { partition, cell } of pt.cellsOfNode(nid)) {
    if (!isReadable(cell.state)) continue;
    const other = pt.cells(partition).some((c) => c.nid !== nid && isReadable(c.state) && isRunning(c.nid));
    if (!other) continue;
    setAndRecord(pt, changes, partition, nid, cell.state === CellStates.FEEDING ? CellStates.DISCARDED : CellStates.OUT_OF_DATE);
  }
  return changes;
}

/** Readable cells of nodes that are not running become out of date (end of recovery). */
export function outdateNotRunning(pt: PartitionTable, isRunning: (nid: number) => boolean): CellChange[] {
  const changes: CellChange[] = [];
  pt.rows.forEach((row, partition) => {
    for (const cell of [...row]) {
      if (isRunning(cell.nid) || !isReadable(cell.state)) continue;
      setAndRecord(pt, changes, partition, cell.nid, cell.state === CellStates.FEEDING ? CellStates.DISCARDED : CellStates.OUT_OF_DATE);
    }
  });
  return changes;
}

/**
 * The cell (partition, nid) finished replicating: it becomes UP_TO_DATE and FEEDING cells of
 * the row that are no longer needed are discarded (cluster.md §16.3), those of nodes being
 * emptied first.
 */
export function replicationDone(pt: PartitionTable, partition: number, nid: number): CellChange[] {
  const changes: CellChange[] = [];
  setAndRecord(pt, changes, partition, nid, CellStates.UP_TO_DATE);
  const row = pt.cells(partition);
  const feeding = row.filter((cell) => cell.state === CellStates.FEEDING).map((cell) => cell.nid);
  if (feeding.length === 0) return changes;
  const allReadable = row.every((cell) => isReadable(cell.state));
  const readable = row.filter((cell) => isReadable(cell.state)).length;
  const discard = allReadable ? feeding.length : Math.max(0, readable - pt.numReplicas);
  const emptied = (n: number) => pt.cellsOfNode(n).every(({ cell }) => cell.state === CellStates.FEEDING);
  feeding.sort((a, b) => Number(emptied(b)) - Number(emptied(a)) || a - b);
  for (const n of feeding.slice(0, discard)) setAndRecord(pt, changes, partition, n, CellStates.DISCARDED);
  return changes;
}

/** Every partition keeps a readable cell on a running node without the nodes in `without`. */
export function operationalWithout(pt: PartitionTable, isRunning: (nid: number) => boolean, without: ReadonlySet<number>): boolean {
  return pt.operational((nid) => !without.has(nid) && isRunning(nid));
}
