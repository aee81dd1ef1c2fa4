// The admin's view of the health of its cluster (cluster.md §14.2, neoctl.md §3.7): what
// `neoctl print summary` shows, and how serious it is. Pure functions of the admin's copies.

import type { PartitionTable } from '../core/partition-table.js';
import { CellStates, ClusterStates } from '../protocol/enums.js';
import type { CellState, ClusterState } from '../protocol/enums.js';
import { tidToDate } from '../protocol/ids.js';

export interface ClusterHealth {
  readonly clusterState: ClusterState | null;
  /** Cells per state; null while there is no partition table. */
  readonly cellCounts: ReadonlyMap<CellState, number> | null;
  /** Nodes holding cells that are not RUNNING. */
  readonly down: number;
  /** The last committed TID, once asked to the master. */
  readonly lastTid: Buffer | null;
  /** The TID up to which a backup cluster has replicated, once asked. */
  readonly backupTid: Buffer | null;
}

export const Severity = { OK: 0, WARNING: 1, PROBLEM: 2 } as const;
export type Severity = (typeof Severity)[keyof typeof Severity];

export function isOperational(state: ClusterState | null): boolean {
  return state === ClusterStates.RUNNING || state === ClusterStates.BACKINGUP;
}

/** Cell counts and down nodes of a partition table; `isRunning` tells the state of a node. */
export function tableHealth(
  pt: PartitionTable,
  isRunning: (nid: number) => boolean,
): { cellCounts: Map<CellState, number>; down: number } {
  const downNids = new Set<number>();
  for (let partition = 0; partition < pt.numPartitions; partition++) {
    for (const cell of pt.cells(partition)) if (!isRunning(cell.nid)) downNids.add(cell.nid);
  }
  return { cellCounts: pt.summary(), down: downNids.size };
}

/**
 * PROBLEM when a node holding cells is down or the cluster is not operational; WARNING when some
 * cell is not UP_TO_DATE; OK otherwise.
 */
export function severityOf(health: ClusterHealth): Severity {
  if (health.down > 0 || !isOperational(health.clusterState)) return Severity.PROBLEM;
  const states = [...(health.cellCounts?.keys() ?? [])];
  return states.length === 1 && states[0] === CellStates.UP_TO_DATE ? Severity.OK : Severity.WARNING;
}

/** e.g. `RUNNING; OUT_OF_DATE=3, UP_TO_DATE=5; DOWN=1; ltid=040d2d85d8b662cf (2026-11-22 02:45:50.791979)` */
export function formatSummary(health: ClusterHealth): string {
  const state = health.clusterState === null ? 'None' : health.clusterState.name;
  const counts = [...(health.cellCounts ?? new Map<CellState, number>())].sort(([a], [b]) => a.value - b.value);
  let summary = counts.length === 0 ? state : `${state}; ${counts.map(([cell, n]) => `${cell.name}=${n}`).join(', ')}`;
  if (health.down > 0) summary += `; DOWN=${health.down}`;
  if (isOperational(health.clusterState)) {
    const tid = health.clusterState === ClusterStates.BACKINGUP ? health.backupTid : health.lastTid;
    if (tid !== null) summary += `; ltid=${tid.toString('hex')} (${tidToDate(tid)})`;
  }
  return summary;
}

/** Whether two cell counts are the same. */
export function sameCounts(
  a: ReadonlyMap<CellState, number> | null,
  b: ReadonlyMap<CellState, number> | null,
): boolean {
  if (a === null || b === null) return a === b;
  return a.size === b.size && [...a].every(([state, n]) => b.get(state) === n);
}
