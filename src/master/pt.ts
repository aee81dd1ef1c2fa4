// The primary master's partition table algorithms (cluster.md §7.3, §9.2, §10.3, §16.3):
// building a new table, tweaking it over a set of storages, outdating the cells of a lost
// node, and the cell transitions that follow a finished replication. Each returns the list of
// cell changes it applied, which the caller broadcasts with one new ptid.

import assert from 'node:assert/strict';
import { CellStates } from '../protocol/enums.js';
import type { CellState } from '../protocol/enums.js';
import { PartitionTable, isReadable } from '../core/partition-table.js';
import type { WireCellChange } from '../core/partition-table.js';

export type CellChange = WireCellChange;

/** Bound on the rebalancing moves of one tweak: each move lowers an overload by one cell. */
const MAX_REBALANCE_MOVES_PER_CELL = 2;

function setAndRecord(pt: PartitionTable, changes: CellChange[], partition: number, nid: number, state: CellState): void {
  pt.setCell(partition, nid, state);
  changes.push([partition, nid, state]);
}

/**
 * Lays out the table over `nids` (sorted): every partition gets min(nr + 1, |nids|) cells on
 * distinct nodes, node loads differ by at most one cell, cells already in place stay where they
 * are as long as that keeps the table balanced, and a node's cells moved away stay FEEDING
 * until the row has enough readable cells elsewhere. Cells of nodes not in `nids` are left
 * untouched and do not count. New cells are UP_TO_DATE in a new table (no ptid), OUT_OF_DATE
 * otherwise.
 */
export function tweak(pt: PartitionTable, nids: readonly number[]): CellChange[] {
  assert(nids.length > 0, "Can't remove all nodes.");
  const np = pt.numPartitions;
  const replicas = Math.min(pt.numReplicas + 1, nids.length);
  const members = new Set(nids);
  // Wanted layout: for each partition, the nodes that will hold a cell.
  const layout: Set<number>[] = [];
  const load = new Map<number, number>(nids.map((nid) => [nid, 0]));
  for (let partition = 0; partition < np; partition++) {
    // Keep non-FEEDING cells first, then FEEDING ones, up to the wanted number.
    const cells = pt.cells(partition).filter((cell) => members.has(cell.nid));
    cells.sort((a, b) => Number(a.state === CellStates.FEEDING) - Number(b.state === CellStates.FEEDING));
    const kept = new Set(cells.slice(0, replicas).map((cell) => cell.nid));
    for (const nid of kept) load.set(nid, load.get(nid)! + 1);
    layout.push(kept);
  }
  // Quotas: the nodes that already hold the most cells get the extra ones (least movement).
  const total = np * replicas;
  const byLoad = [...nids].sort((a, b) => load.get(b)! - load.get(a)! || a - b);
  const quota = new Map<number, number>();
  byLoad.forEach((nid, index) => {
    quota.set(nid, Math.floor(total / nids.length) + (index < total % nids.length ? 1 : 0));
  });
  const leastLoaded = (excluded: Set<number>): number | undefined => {
    let best: number | undefined;
    for (const nid of nids) {
      if (excluded.has(nid)) continue;
      const room = quota.get(nid)! - load.get(nid)!;
      if (best === undefined || room > quota.get(best)! - load.get(best)!) best = nid;
    }
    return best;
  };
  // Move cells from overloaded nodes to underloaded ones, from the last partitions backwards.
  const maxMoves = total * MAX_REBALANCE_MOVES_PER_CELL;
  for (let moves = 0; moves < maxMoves; moves++) {
    const over = nids.find((nid) => load.get(nid)! > quota.get(nid)!);
    if (over === undefined) break;
    let moved = false;
    for (let partition = np - 1; partition >= 0 && !moved; partition--) {
      const row = layout[partition]!;
      if (!row.has(over)) continue;
      const under = nids.find((nid) => load.get(nid)! < quota.get(nid)! && !row.has(nid));
      if (under === undefined) continue;
      row.delete(over);
      row.add(under);
      load.set(over, load.get(over)! - 1);
      load.set(under, load.get(under)! + 1);
      moved = true;
    }
    if (!moved) break;
  }
  // Fill the rows that lack cells with the nodes that have the most room left.
  for (const row of layout) {
    while (row.size < replicas) {
      const nid = leastLoaded(row);
      assert(nid !== undefined);
      row.add(nid);
      load.set(nid, load.get(nid)! + 1);
    }
  }
  return applyLayout(pt, layout, members, replicas);
}

function applyLayout(pt: PartitionTable, layout: Set<number>[], members: Set<number>, replicas: number): CellChange[] {
  const fresh = pt.ptid === null;
  const changes: CellChange[] = [];
  layout.forEach((wanted, partition) => {
    const dropped: number[] = [];
    for (const cell of [...pt.cells(partition)]) {
      if (!members.has(cell.nid)) continue;
      if (!wanted.has(cell.nid)) dropped.push(cell.nid);
      else if (cell.state === CellStates.FEEDING) setAndRecord(pt, changes, partition, cell.nid, CellStates.UP_TO_DATE);
    }
    for (const nid of wanted) {
      if (pt.cell(partition, nid) === undefined) {
        setAndRecord(pt, changes, partition, nid, fresh ? CellStates.UP_TO_DATE : CellStates.OUT_OF_DATE);
      }
    }
    // A readable cell moved away keeps feeding until the row has enough readable cells.
    let readable = pt.cells(partition).filter((cell) => wanted.has(cell.nid) && isReadable(cell.state)).length;
    for (const nid of dropped) {
      const cell = pt.cell(partition, nid)!;
      if (readable < replicas && isReadable(cell.state)) {
        readable++;
        if (cell.state !== CellStates.FEEDING) setAndRecord(pt, changes, partition, nid, CellStates.FEEDING);
      } else {
        setAndRecord(pt, changes, partition, nid, CellStates.DISCARDED);
      }
    }
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
