// The partition table as every node sees it (cluster.md §16): np rows, each a list of cells
// (nid, state), the number of replicas, and the ptid. The master's algorithms for building and
// tweaking it live with the master; this is the shared model and its wire conversions.

import { CellStates } from '../protocol/enums.js';
import type { CellState } from '../protocol/enums.js';
import type { ArgsOf } from '../protocol/packets.js';

export interface Cell {
  readonly nid: number;
  state: CellState;
}

/** A row on the wire: [(nid, state)...]. */
export type WireRow = ArgsOf<'SendPartitionTable'>[2][number];
export type WireCellChange = ArgsOf<'NotifyPartitionChanges'>[2][number];

export function isReadable(state: CellState): boolean {
  return state === CellStates.UP_TO_DATE || state === CellStates.FEEDING;
}

export class PartitionTable {
  ptid: number | null;
  numReplicas: number;
  readonly rows: Cell[][];

  constructor(numPartitions: number, numReplicas: number, ptid: number | null = null) {
    if (!Number.isInteger(numPartitions) || numPartitions <= 0) {
      throw new RangeError(`invalid number of partitions: ${numPartitions}`);
    }
    this.ptid = ptid;
    this.numReplicas = numReplicas;
    this.rows = Array.from({ length: numPartitions }, () => []);
  }

  get numPartitions(): number {
    return this.rows.length;
  }

  /** Builds a table from SendPartitionTable / AnswerPartitionTable arguments. */
  static fromWire(ptid: number | null, numReplicas: number, rows: readonly WireRow[]): PartitionTable {
    const table = new PartitionTable(rows.length, numReplicas, ptid);
    rows.forEach((row, partition) => {
      for (const [nid, state] of row) table.setCell(partition, nid, state);
    });
    return table;
  }

  toWire(): WireRow[] {
    return this.rows.map((row) => row.map((cell): [number, CellState] => [cell.nid, cell.state]));
  }

  cells(partition: number): readonly Cell[] {
    const row = this.rows[partition];
    if (row === undefined) throw new RangeError(`no partition ${partition}`);
    return row;
  }

  cell(partition: number, nid: number): Cell | undefined {
    return this.cells(partition).find((cell) => cell.nid === nid);
  }

  /** Sets (or with DISCARDED removes) a cell. */
  setCell(partition: number, nid: number, state: CellState): void {
    const row = this.rows[partition];
    if (row === undefined) throw new RangeError(`no partition ${partition}`);
    const index = row.findIndex((cell) => cell.nid === nid);
    if (state === CellStates.DISCARDED) {
      if (index >= 0) row.splice(index, 1);
    } else if (index >= 0) {
      row[index]!.state = state;
    } else {
      row.push({ nid, state });
    }
  }

  /**
   * Applies NotifyPartitionChanges. `strict` (storages) requires ptid to be the next one; other
   * nodes only require it to increase. Returns false if the ptid does not fit.
   */
  applyChanges(ptid: number, numReplicas: number, changes: readonly WireCellChange[], strict: boolean): boolean {
    if (this.ptid !== null && (strict ? ptid !== this.ptid + 1 : ptid <= this.ptid)) return false;
    for (const [partition, nid, state] of changes) this.setCell(partition, nid, state);
    this.ptid = ptid;
    this.numReplicas = numReplicas;
    return true;
  }

  readableCells(partition: number): Cell[] {
    return this.cells(partition).filter((cell) => isReadable(cell.state));
  }

  /** Writes go to every cell present, whatever its state (cluster.md §16.1). */
  writableCells(partition: number): readonly Cell[] {
    return this.cells(partition).filter((cell) => cell.state !== CellStates.CORRUPTED);
  }

  /** Partitions where `nid` has a cell, with the cell. */
  cellsOfNode(nid: number): { partition: number; cell: Cell }[] {
    const found: { partition: number; cell: Cell }[] = [];
    this.rows.forEach((row, partition) => {
      const cell = row.find((c) => c.nid === nid);
      if (cell !== undefined) found.push({ partition, cell });
    });
    return found;
  }

  /** Every nid that has at least one cell. */
  nodeIds(): number[] {
    return [...new Set(this.rows.flatMap((row) => row.map((cell) => cell.nid)))].sort((a, b) => a - b);
  }

  /** Every row has at least one cell. */
  filled(): boolean {
    return this.rows.every((row) => row.length > 0);
  }

  /** Every row has a readable cell on a running node (`isRunning` tells). */
  operational(isRunning: (nid: number) => boolean): boolean {
    return this.rows.every((row) => row.some((cell) => isReadable(cell.state) && isRunning(cell.nid)));
  }

  /** Cell counts per state, for neoctl's summary. */
  summary(): Map<CellState, number> {
    const counts = new Map<CellState, number>();
    for (const row of this.rows) {
      for (const cell of row) counts.set(cell.state, (counts.get(cell.state) ?? 0) + 1);
    }
    return counts;
  }
}
