// What every backend shares: the Backend interface implemented once, on top of a few primitives
// (one query each) that SQLiteBackend and MemoryBackend implement on their own tables. Ids are
// unsigned 64-bit bigints below this layer, as stored in the INTEGER columns.

import assert from 'node:assert/strict';
import { CellStates } from '../../protocol/enums.js';
import { MAX_TID, ZERO_HASH, ZERO_OID, ZERO_TID, checksumOfIds, p64, u64 } from '../../protocol/ids.js';
import {
  ClusterNameMismatchError, DatabaseFailure, NonReadableCellError, UndoPackError, cellStateOf, isReadableState,
} from './backend.js';
import type {
  Backend, CellNextTIDs, DataId, FetchedObject, HistoryEntry, LastIDs, ObjectMiss, ObjectRecord, ObjectValue,
  PackOrder, PackOrderInfo, PartitionTableChange, PartitionTableRow, ReplicationObjectKey, SerialRangeCheck,
  SetupOptions, SignResult, StoredObject, TIDRangeCheck, TransactionMetadata, TransactionRecord, UndoInfo,
  UnfinishedTransaction,
} from './backend.js';

export const SCHEMA_VERSION = 4;
/** Bits of a data id below the partition number (storage.md §3.3). */
const DATA_ID_PARTITION_SHIFT = 48n;
/** Ids are stored in signed 64-bit columns (storage.md §2). */
const MAX_STORED_ID = (1n << 63n) - 1n;
const OID_BYTES = 8;
const UP_TO_DATE_TID = -BigInt(CellStates.UP_TO_DATE.value);

// --- Rows as the primitives exchange them ------------------------------------------------------

export interface PtRow {
  readonly partition: number;
  readonly nid: number;
  readonly tid: bigint;
  readonly pack: bigint | null;
}

/** A `pt` write: tid null deletes the cell; an existing cell only gets its tid updated. */
export interface CellWrite {
  readonly partition: number;
  readonly nid: number;
  readonly tid: bigint | null;
  readonly pack: bigint | null;
}

export interface TransRow {
  readonly partition: number;
  /** null in `ttrans` until locked. */
  readonly tid: bigint | null;
  readonly packed: boolean;
  readonly oids: Buffer;
  readonly user: Buffer;
  readonly description: Buffer;
  readonly ext: Buffer;
  readonly ttid: bigint;
}

export interface ObjRow {
  readonly partition: number;
  readonly oid: bigint;
  /** The TTID in `tobj`. */
  readonly tid: bigint;
  readonly dataId: bigint | null;
  readonly valueTid: bigint | null;
}

export interface DataRow {
  readonly hash: Buffer;
  readonly compression: number;
  readonly value: Buffer;
}

export interface PackRow {
  readonly tid: bigint;
  readonly approved: boolean | null;
  readonly partial: boolean;
  readonly oids: Buffer | null;
  readonly packTid: bigint;
}

/** An object revision joined with its data (null for "no data"). */
export interface ObjectRead {
  readonly serial: bigint;
  readonly data: DataRow | null;
  readonly valueTid: bigint | null;
}

export interface TransRead {
  readonly row: TransRow;
  readonly pack: PackRow | null;
}

export interface PackCandidate {
  readonly oid: bigint;
  /** Number of records with tid ≤ pack TID, and the greatest of those tids. */
  readonly count: number;
  readonly maxTid: bigint;
}

export interface ObjectKey {
  readonly tid: bigint;
  readonly oid: bigint;
}

// --- Conversions -------------------------------------------------------------------------------

export function dbId(id: Buffer): bigint {
  const n = u64(id);
  assert(n <= MAX_STORED_ID, 'id does not fit in a signed 64-bit column');
  return n;
}

function idOrNull(id: Buffer | null): bigint | null {
  return id === null ? null : dbId(id);
}

function bufOrNull(n: bigint | null): Buffer | null {
  return n === null ? null : p64(n);
}

function joinOids(oids: readonly Buffer[]): Buffer {
  for (const oid of oids) assert.equal(oid.length, OID_BYTES, 'OIDs are 8 bytes');
  return Buffer.concat(oids);
}

function splitOids(tid: bigint, oids: Buffer): Buffer[] {
  if (oids.length % OID_BYTES !== 0) {
    throw new DatabaseFailure(`invalid oids length for tid ${tid}: ${oids.length}`);
  }
  const result: Buffer[] = [];
  for (let i = 0; i < oids.length; i += OID_BYTES) result.push(Buffer.from(oids.subarray(i, i + OID_BYTES)));
  return result;
}

function maxOf(values: readonly bigint[]): bigint {
  return values.reduce((a, b) => (a > b ? a : b));
}

function sortIds(ids: Iterable<bigint>): bigint[] {
  return [...ids].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

function transactionRecordOf(tid: bigint, { row, pack }: TransRead): TransactionRecord {
  return {
    oids: splitOids(tid, row.oids),
    user: row.user,
    description: row.description,
    ext: row.ext,
    packed: row.packed,
    ttid: p64(row.ttid),
    pack: pack === null ? null : packInfoOf(pack),
  };
}

function objectRecordOf(read: ObjectRead): FetchedObject {
  const data = read.data;
  return {
    serial: p64(read.serial),
    compression: data === null ? null : data.compression,
    checksum: data === null ? Buffer.from(ZERO_HASH) : data.hash,
    data: data === null ? Buffer.alloc(0) : data.value,
    dataSerial: bufOrNull(read.valueTid),
  };
}

function packInfoOf(row: PackRow): PackOrderInfo {
  return {
    approved: row.approved,
    partial: row.partial,
    oids: row.oids === null ? null : splitOids(row.tid, row.oids),
    packTid: p64(row.packTid),
  };
}

export abstract class DatabaseManager implements Backend {
  #numPartitions = 0;
  #readable = new Set<number>();
  /** Next data id per partition, kept in memory (storage.md §3.3). */
  #nextDataIds: bigint[] = [];
  /** Volatile references: data used by unfinished transactions (storage.md §3.4). */
  #volatileRefs = new Map<bigint, number>();
  #config = new Map<string, string | null>();
  #deferredCommit = false;

  // --- Primitives ------------------------------------------------------------------------------

  protected abstract hasSchema(): boolean;
  protected abstract createTables(dedup: boolean): void;
  protected abstract dropTables(): void;
  protected abstract readConfig(key: string): string | null;
  protected abstract writeConfig(key: string, value: string | null): void;
  protected abstract commitWrites(): void;
  protected abstract closeDatabase(): void;
  abstract getDevPath(): string | null;

  /** Every `pt` row ordered by (partition, nid). */
  protected abstract readPartitionTable(): PtRow[];
  protected abstract insertCell(row: PtRow): void;
  protected abstract updateCellTid(partition: number, nid: number, tid: bigint): void;
  protected abstract deleteCell(partition: number, nid: number): void;
  protected abstract writePartitionPacked(partition: number, nid: number, packId: bigint): void;

  protected abstract firstTransTid(partition: number): bigint | null;
  protected abstract lastTransTid(partition: number): bigint | null;
  /** max(tid) and max(oid) of `obj` in a partition. */
  protected abstract lastObjectIds(partition: number): { tid: bigint | null; oid: bigint | null };

  /** Greatest data id in [low, high), null if none. */
  protected abstract maxDataId(low: bigint, high: bigint): bigint | null;
  /** Inserts a data row as `id`; with dedup, returns the id of an identical existing row instead. */
  protected abstract insertData(id: bigint, row: DataRow): bigint;
  protected abstract readData(id: bigint): DataRow | null;
  protected abstract isDataReferenced(id: bigint): boolean;
  protected abstract deleteData(id: bigint): void;
  /** Data ids that no `obj` row uses. */
  protected abstract orphanDataIds(): bigint[];

  /** The record (oid, tid) of `obj`, or null if absent. */
  protected abstract objectDataId(partition: number, oid: bigint, tid: bigint): { dataId: bigint | null } | null;
  protected abstract insertTemporaryObject(row: ObjRow): void;
  /** Inserts into `obj`; an identical existing row is accepted, a different one is an error. */
  protected abstract insertObject(row: ObjRow): void;
  protected abstract insertTransaction(row: TransRow, temporary: boolean): void;
  protected abstract insertPackOrder(row: PackRow): void;
  /** Sets approved = 1 / 0; returns the ids of existing orders among them. */
  protected abstract signPackRows(approved: readonly bigint[], rejected: readonly bigint[]): bigint[];
  protected abstract setTemporaryTid(ttid: bigint, tid: bigint): void;
  protected abstract approvePackOrder(id: bigint): void;
  /** Moves the locked `ttrans` row of `tid` to `trans`, re-keying its pack order from ttid to tid. */
  protected abstract moveTransaction(ttid: bigint, tid: bigint): void;
  /** Moves the `tobj` rows of ttid to `obj` with `tid`; returns their data ids. */
  protected abstract moveObjects(ttid: bigint, tid: bigint): bigint[];
  /** Deletes the `tobj`, `ttrans` and pack rows of an unlocked transaction. */
  protected abstract deleteTemporary(ttid: bigint): void;
  protected abstract unfinishedTransactions(): { ttid: bigint; tid: bigint | null }[];
  protected abstract temporaryObjectTtids(): bigint[];
  /** Data ids of `tobj` rows, once per row. */
  protected abstract unfinishedDataIds(): bigint[];
  /** Deletes temporary rows (and their pack orders) of some partitions, or all (null). */
  protected abstract dropTemporary(partitions: readonly number[] | null): void;
  protected abstract finalTid(partition: number, ttid: bigint): bigint | null;
  protected abstract packOrdersFrom(minId: bigint): PackRow[];

  /** Exact tid (at), greatest tid < before, or latest. */
  protected abstract readObject(partition: number, oid: bigint, at: bigint | null, before: bigint | null): ObjectRead | null;
  protected abstract nextSerial(partition: number, oid: bigint, tid: bigint): bigint | null;
  protected abstract lastSerial(partition: number, oid: bigint): bigint | null;
  protected abstract objectHistory(partition: number, oid: bigint, offset: number, length: number): { tid: bigint; size: number }[];
  protected abstract readTransaction(partition: number, tid: bigint): TransRead | null;
  protected abstract tidList(offset: number, length: number, partitions: readonly number[]): bigint[];
  /** `trans` tids of a partition in [minTid, maxTid], ascending, at most length (null: all). */
  protected abstract transTidsFrom(partition: number, minTid: bigint, maxTid: bigint, length: number | null): bigint[];
  /** `obj` keys with tid ≤ maxTid and (tid, oid) ≥ (minTid, minOid), by (tid, oid). */
  protected abstract objectKeysFrom(
    partition: number, minTid: bigint, minOid: bigint, maxTid: bigint, length: number | null): ObjectKey[];

  /** transTidsFrom with each transaction; a backend may read them in one query. */
  protected transRecordsFrom(partition: number, minTid: bigint, maxTid: bigint, length: number): { tid: bigint; read: TransRead }[] {
    return this.transTidsFrom(partition, minTid, maxTid, length).map((tid) => {
      const read = this.readTransaction(partition, tid);
      assert(read !== null, 'a listed transaction is readable');
      return { tid, read };
    });
  }

  /** objectKeysFrom with each revision; a backend may read them in one query. */
  protected objectRecordsFrom(
    partition: number, minTid: bigint, minOid: bigint, maxTid: bigint, length: number,
  ): { oid: bigint; read: ObjectRead }[] {
    return this.objectKeysFrom(partition, minTid, minOid, maxTid, length).map(({ tid, oid }) => {
      const read = this.readObject(partition, oid, tid, null);
      assert(read !== null, 'a listed revision is readable');
      return { oid, read };
    });
  }
  /** Latest record at `tid` of each OID ≥ minOid, by OID, at most length OIDs. */
  protected abstract latestRecordsFrom(
    partition: number, minOid: bigint, tid: bigint, length: number): { oid: bigint; deleted: boolean }[];
  /** Serials ≤ tid, newest first, at most limit. */
  protected abstract serialsUpTo(partition: number, oid: bigint, tid: bigint, limit: number): bigint[];
  /** (tid, value_tid) of the records after tid, ascending. */
  protected abstract recordsAfter(partition: number, oid: bigint, tid: bigint): { tid: bigint; valueTid: bigint | null }[];

  /** Deletes a `trans` row and the pack order with the same id. */
  protected abstract deleteTransactionRow(partition: number, tid: bigint): void;
  /** Deletes `obj` rows (one serial, or all); returns their data ids. */
  protected abstract deleteObjectRows(partition: number, oid: bigint, serial: bigint | null): bigint[];
  /** Deletes transactions (with their pack orders) and records of a partition with tid > minTid. */
  protected abstract deleteAfter(partition: number, minTid: bigint): bigint[];
  /** Deletes the first `limit` records of a partition by (tid, oid); returns how many and their data ids. */
  protected abstract deleteFirstObjects(partition: number, limit: number): { count: number; dataIds: bigint[] };
  /** Deletes the transactions and pack orders of a partition. */
  protected abstract deletePartitionTransactions(partition: number): void;
  protected abstract packCandidates(partition: number, packTid: bigint, minOid: bigint, limit: number): PackCandidate[];
  protected abstract packCandidate(partition: number, oid: bigint, packTid: bigint): PackCandidate | null;
  /** Deletes the records of an OID with tid < beforeTid; returns their data ids. */
  protected abstract deleteObjectsBefore(partition: number, oid: bigint, beforeTid: bigint): bigint[];

  // --- Lifecycle -------------------------------------------------------------------------------

  setup({ clusterName, reset = false, dedup = false }: SetupOptions): void {
    if (reset) this.erase();
    this.#config.clear();
    const fresh = !this.hasSchema();
    if (!fresh) this.#checkVersion();
    this.createTables(dedup);
    if (fresh) this.#setConfig('version', String(SCHEMA_VERSION));
    this.#volatileRefs.clear();
    for (const id of this.unfinishedDataIds()) this.#hold(id);
    this.#checkName(clusterName);
    this.#refreshPartitions();
    this.commit();
  }

  erase(): void {
    this.dropTables();
    this.commit();
    this.#config.clear();
    this.#numPartitions = 0;
    this.#nextDataIds = [];
    this.#readable.clear();
    this.#volatileRefs.clear();
  }

  close(): void {
    this.commitDeferred();
    this.closeDatabase();
  }

  commit(): void {
    this.commitWrites();
    this.#deferredCommit = false;
  }

  deferCommit(): void {
    this.#deferredCommit = true;
  }

  commitDeferred(): void {
    if (this.#deferredCommit) this.commit();
  }

  #checkVersion(): void {
    const version = this.#getConfig('version');
    if (version === String(SCHEMA_VERSION)) return;
    if (version !== null && Number(version) > SCHEMA_VERSION) {
      throw new DatabaseFailure('The database can not be downgraded.');
    }
    throw new DatabaseFailure(`unsupported schema version ${String(version)}: upgrade the database with NEO `
      + `to version ${SCHEMA_VERSION} first`);
  }

  #checkName(clusterName: string): void {
    const stored = this.#getConfig('name');
    if (stored === null) this.#setConfig('name', clusterName);
    else if (stored !== clusterName) throw new ClusterNameMismatchError(clusterName, stored);
  }

  // --- Configuration ---------------------------------------------------------------------------

  #getConfig(key: string): string | null {
    let value = this.#config.get(key);
    if (value === undefined) {
      value = this.readConfig(key);
      this.#config.set(key, value);
    }
    return value;
  }

  #setConfig(key: string, value: string | null): void {
    this.#config.set(key, value);
    this.writeConfig(key, value);
  }

  #getInt(key: string): number | null {
    const value = this.#getConfig(key);
    if (value === null) return null;
    const n = Number(value);
    if (!Number.isSafeInteger(n)) throw new DatabaseFailure(`invalid config ${key}: ${JSON.stringify(value)}`);
    return n;
  }

  #getTid(key: string): Buffer | null {
    const value = this.#getConfig(key);
    if (value === null) return null;
    if (!/^[0-9a-f]{16}$/.test(value)) throw new DatabaseFailure(`invalid config ${key}: ${JSON.stringify(value)}`);
    return Buffer.from(value, 'hex');
  }

  getName(): string | null {
    return this.#getConfig('name');
  }

  getNid(): number | null {
    return this.#getInt('nid');
  }

  setNid(nid: number): void {
    const old = this.getNid();
    if (nid === old) return;
    if (old !== null) {
      const renamed = this.#ownCells().flatMap((cell): CellWrite[] => [
        { partition: cell.partition, nid: old, tid: null, pack: null },
        { partition: cell.partition, nid, tid: cell.tid, pack: cell.pack },
      ]);
      this.#writeCells(renamed, false);
    }
    this.#setConfig('nid', String(nid));
    this.#refreshPartitions();
  }

  getPtid(): number | null {
    return this.#getInt('ptid');
  }

  getNumReplicas(): number | null {
    return this.#getInt('replicas');
  }

  getBackupTid(): Buffer | null {
    return this.#getTid('backup_tid');
  }

  setBackupTid(tid: Buffer | null): void {
    this.#setConfig('backup_tid', tid === null ? null : tid.toString('hex'));
  }

  getTruncateTid(): Buffer | null {
    return this.#getTid('truncate_tid');
  }

  setTruncateTid(tid: Buffer | null): void {
    this.#setConfig('truncate_tid', tid === null ? null : tid.toString('hex'));
  }

  // --- Partitions ------------------------------------------------------------------------------

  #partitionOf(id: bigint): number {
    assert(this.#numPartitions > 0, 'no partition table');
    return Number(id % BigInt(this.#numPartitions));
  }

  #readablePartitionOf(id: bigint): number {
    const partition = this.#partitionOf(id);
    if (!this.#readable.has(partition)) throw new NonReadableCellError(partition);
    return partition;
  }

  #ownCells(): PtRow[] {
    const nid = this.getNid();
    return this.readPartitionTable().filter((row) => row.nid === nid);
  }

  #ownCell(partition: number): PtRow {
    const cells = this.#ownCells().filter((row) => row.partition === partition);
    assert.equal(cells.length, 1, `no own cell for partition ${partition}`);
    return cells[0]!;
  }

  /** Recomputes np, the readable partitions and (when np changes) the next data ids. */
  #refreshPartitions(): void {
    const rows = this.readPartitionTable();
    this.#numPartitions = rows.reduce((n, row) => Math.max(n, row.partition + 1), 0);
    if (this.#nextDataIds.length !== this.#numPartitions) {
      this.#nextDataIds = [];
      for (let p = 0n; p < BigInt(this.#numPartitions); p++) {
        const max = this.maxDataId(p << DATA_ID_PARTITION_SHIFT, (p + 1n) << DATA_ID_PARTITION_SHIFT);
        this.#nextDataIds.push(max === null ? p << DATA_ID_PARTITION_SHIFT : max + 1n);
      }
    }
    const nid = this.getNid();
    this.#readable = new Set(rows
      .filter((row) => row.nid === nid && row.tid < 0n && isReadableState(cellStateOf(row.tid)))
      .map((row) => row.partition));
  }

  /** Applies cell writes; with reset, the cells not written are deleted. */
  #writeCells(cells: readonly CellWrite[], reset: boolean): void {
    const key = (partition: number, nid: number) => `${partition}:${nid}`;
    const existing = new Map(this.readPartitionTable().map((row) => [key(row.partition, row.nid), row]));
    const remove = new Map(reset ? existing : []);
    for (const { partition, nid, tid, pack } of cells) {
      const k = key(partition, nid);
      if (tid === null) {
        const row = existing.get(k);
        if (row !== undefined) remove.set(k, row);
        continue;
      }
      remove.delete(k);
      if (existing.has(k)) this.updateCellTid(partition, nid, tid);
      else this.insertCell({ partition, nid, tid, pack });
      existing.set(k, { partition, nid, tid, pack });
    }
    for (const { partition, nid } of remove.values()) this.deleteCell(partition, nid);
  }

  getPartitionTable(): PartitionTableRow[] {
    return this.readPartitionTable().map((row) => ({ ...row, pack: bufOrNull(row.pack) }));
  }

  getNumPartitions(): number {
    return this.#numPartitions;
  }

  changePartitionTable({ ptid, numReplicas, cells, reset, lastPackId }: PartitionTableChange): number[] {
    const myNid = this.getNid();
    const previous = new Map(this.#ownCells().map((row) => [row.partition, row.tid]));
    const lastPack = u64(lastPackId);
    const drop = new Set<number>();
    const assigned = new Set<number>();
    let maxPartition = -1;
    const writes: CellWrite[] = [];
    for (const { partition, nid, state } of cells) {
      maxPartition = Math.max(maxPartition, partition);
      const mine = nid === myNid;
      if (state === CellStates.DISCARDED) {
        if (mine) drop.add(partition);
        writes.push({ partition, nid, tid: null, pack: null });
        continue;
      }
      let pack: bigint | null = null;
      if (mine) {
        assigned.add(partition);
        assert(!(isReadableState(state) && reset && lastPack !== 0n), 'readable cell in a new table after a pack');
        pack = isReadableState(state) ? 0n : lastPack;
      }
      const tid = mine && state === CellStates.OUT_OF_DATE
        ? this.#outOfDateTid(partition, previous.get(partition))
        : -BigInt(state.value);
      writes.push({ partition, nid, tid, pack });
    }
    if (reset) for (let p = 0; p <= maxPartition; p++) drop.add(p);
    for (const p of assigned) drop.delete(p);
    this.#writeCells(writes, reset);
    this.#setConfig('ptid', String(ptid));
    this.#setConfig('replicas', String(numReplicas));
    this.#refreshPartitions();
    return [...drop].sort((a, b) => a - b);
  }

  /** `pt.tid` of an own cell becoming (or staying) OUT_OF_DATE: how far its data is complete. */
  #outOfDateTid(partition: number, previous: bigint | undefined): bigint {
    if (previous === undefined) return 0n;
    if (previous >= 0n) return previous;
    if (!isReadableState(cellStateOf(previous))) return 0n;
    const backupTid = this.getBackupTid();
    if (backupTid !== null && u64(backupTid) !== 0n) return u64(backupTid);
    return maxOf([0n, this.lastObjectIds(partition).tid ?? -1n, this.lastTransTid(partition) ?? -1n]);
  }

  getReadablePartitions(): number[] {
    return [...this.#readable].sort((a, b) => a - b);
  }

  isReadable(partition: number): boolean {
    return this.#readable.has(partition);
  }

  withReplicated<T>(partition: number, fn: () => T): T {
    assert(!this.#readable.has(partition), `partition ${partition} is already readable`);
    this.#readable.add(partition);
    try {
      return fn();
    } finally {
      this.#readable.delete(partition);
    }
  }

  updateCellTID(partition: number, tid: Buffer): void {
    const cell = this.#ownCell(partition);
    const t = dbId(tid);
    if (cell.tid < 0n || cell.tid === t) return;
    // In backup mode an OUT_OF_DATE cell may be ahead of what upstream now reports.
    assert(cell.tid < t || this.getBackupTid() !== null, 'replication resume point going back');
    this.#writeCells([{ partition, nid: cell.nid, tid: t, pack: null }], false);
  }

  getCellNextTIDs(): CellNextTIDs[] {
    const backupTid = this.getBackupTid();
    const backupNext = backupTid === null || u64(backupTid) === 0n ? 0n : u64(backupTid) + 1n;
    const result: CellNextTIDs[] = [];
    for (const { partition, tid } of this.#ownCells()) {
      if (tid >= 0n) {
        const next = p64(tid === 0n ? 0n : tid + 1n);
        result.push({ partition, next: { trans: next, obj: next } });
      } else if (isReadableState(cellStateOf(tid))) {
        result.push({ partition, next: backupTid === null ? null : this.#backupNext(partition, backupNext) });
      }
    }
    return result;
  }

  /** A readable cell in backup mode resumes after its last transaction, and at its last record. */
  #backupNext(partition: number, backupNext: bigint): { trans: Buffer; obj: Buffer } {
    const lastTrans = this.lastTransTid(partition) ?? -1n;
    const lastObj = this.lastObjectIds(partition).tid ?? -1n;
    return { trans: p64(maxOf([backupNext, lastTrans + 1n])), obj: p64(maxOf([backupNext, lastObj])) };
  }

  getPackedIDs(upToDateOnly: boolean): Map<number, Buffer> {
    const result = new Map<number, Buffer>();
    for (const row of this.readPartitionTable()) {
      if (row.pack !== null && (!upToDateOnly || row.tid === UP_TO_DATE_TID)) result.set(row.partition, p64(row.pack));
    }
    return result;
  }

  updateCompletedPackByReplication(partition: number, packId: Buffer): void {
    const cell = this.#ownCell(partition);
    assert(cell.pack !== null, 'own cell without pack id');
    const id = dbId(packId);
    if (id < cell.pack) this.writePartitionPacked(partition, cell.nid, id);
  }

  setPartitionPacked(partition: number, packId: Buffer): void {
    const cell = this.#ownCell(partition);
    const id = dbId(packId);
    assert(cell.pack !== null && cell.pack < id, 'pack ids of a cell only grow');
    this.writePartitionPacked(partition, cell.nid, id);
  }

  getLastIDs(): LastIDs {
    let lastTid = -1n;
    let lastOid = -1n;
    let firstTid = dbId(MAX_TID);
    for (const partition of this.#readable) {
      const last = this.lastObjectIds(partition);
      lastTid = maxOf([lastTid, last.tid ?? -1n, this.lastTransTid(partition) ?? -1n]);
      lastOid = maxOf([lastOid, last.oid ?? -1n]);
      const first = this.firstTransTid(partition);
      if (first !== null && first < firstTid) firstTid = first;
    }
    return {
      lastTid: lastTid < 0n ? null : p64(lastTid),
      lastOid: lastOid < 0n ? null : p64(lastOid),
      firstTid: p64(firstTid),
    };
  }

  // --- Data ------------------------------------------------------------------------------------

  storeData(oid: Buffer, value: ObjectValue | null, dataSerial: Buffer | null): DataId | null {
    const o = dbId(oid);
    const partition = this.#partitionOf(o);
    if (dataSerial !== null) {
      const record = this.objectDataId(partition, o, dbId(dataSerial));
      if (record !== null) return record.dataId;
      // Out-of-date cells may simply not have it yet: they use the data sent along.
      if (this.#readable.has(partition)) throw new UndoPackError(oid.toString('hex'));
    }
    if (value === null) return null;
    assert.equal(value.checksum.length, ZERO_HASH.length, 'checksums are SHA-1 digests');
    const id = this.#nextDataIds[partition];
    assert(id !== undefined && id < (BigInt(partition) + 1n) << DATA_ID_PARTITION_SHIFT, 'data ids exhausted');
    const stored = this.insertData(id, { hash: value.checksum, compression: value.compression, value: value.data });
    if (stored === id) this.#nextDataIds[partition] = id + 1n;
    return stored;
  }

  holdData(oid: Buffer, value: ObjectValue | null, dataSerial: Buffer | null): DataId | null {
    const id = this.storeData(oid, value, dataSerial);
    if (id !== null) this.#hold(id);
    return id;
  }

  #hold(id: bigint): void {
    this.#volatileRefs.set(id, (this.#volatileRefs.get(id) ?? 0) + 1);
  }

  releaseData(dataIds: readonly (DataId | null)[], prune: boolean): void {
    for (const id of dataIds) {
      if (id === null) continue;
      const count = this.#volatileRefs.get(id);
      assert(count !== undefined, `data ${id} released more often than held`);
      if (count === 1) this.#volatileRefs.delete(id);
      else this.#volatileRefs.set(id, count - 1);
    }
    if (prune) this.#prune(dataIds);
  }

  /** Deletes the given data rows unless an unfinished transaction or an object record uses them. */
  #prune(dataIds: Iterable<bigint | null>): number {
    let deleted = 0;
    for (const id of new Set(dataIds)) {
      if (id === null || this.#volatileRefs.has(id) || this.isDataReferenced(id)) continue;
      this.deleteData(id);
      deleted++;
    }
    return deleted;
  }

  loadData(dataId: DataId): ObjectValue {
    const row = this.readData(dataId);
    assert(row !== null, `no data row ${dataId}`);
    return { compression: row.compression, checksum: row.hash, data: row.value };
  }

  pruneOrphans(dryRun: boolean): { found: number; deleted: number } {
    const orphans = this.orphanDataIds();
    return { found: orphans.length, deleted: dryRun ? 0 : this.#prune(orphans) };
  }

  // --- Transactions ----------------------------------------------------------------------------

  #transRow(tid: bigint | null, partitionTid: bigint, metadata: TransactionMetadata): TransRow {
    return {
      partition: this.#partitionOf(partitionTid),
      tid,
      packed: metadata.packed,
      oids: joinOids(metadata.oids),
      user: metadata.user,
      description: metadata.description,
      ext: metadata.ext,
      ttid: dbId(metadata.ttid),
    };
  }

  #objRow(oid: Buffer, tid: bigint, dataId: bigint | null, dataSerial: Buffer | null): ObjRow {
    const o = dbId(oid);
    return { partition: this.#partitionOf(o), oid: o, tid, dataId, valueTid: idOrNull(dataSerial) };
  }

  storeTransaction(ttid: Buffer, objects: readonly StoredObject[], metadata: TransactionMetadata | null): void {
    const t = dbId(ttid);
    for (const { oid, dataId, dataSerial } of objects) {
      this.insertTemporaryObject(this.#objRow(oid, t, dataId, dataSerial));
    }
    if (metadata !== null) {
      assert(metadata.ttid.equals(ttid), 'metadata of another transaction');
      // The final TID will be in the partition of the TTID.
      this.insertTransaction(this.#transRow(null, t, metadata), true);
    }
  }

  storePackOrder(id: Buffer, order: PackOrderInfo): void {
    this.insertPackOrder({
      tid: dbId(id),
      approved: order.approved,
      partial: order.partial,
      oids: order.oids === null ? null : joinOids(order.oids),
      packTid: dbId(order.packTid),
    });
  }

  lockTransaction(ttid: Buffer, tid: Buffer, approvePack: boolean): void {
    const tt = dbId(ttid);
    const t = dbId(tid);
    assert(tt <= t, 'a final TID is never below its TTID');
    this.setTemporaryTid(tt, t);
    if (approvePack) this.approvePackOrder(tt);
  }

  unlockTransaction(ttid: Buffer, tid: Buffer): void {
    const tt = dbId(ttid);
    const t = dbId(tid);
    this.moveTransaction(tt, t);
    this.releaseData(this.moveObjects(tt, t), false);
  }

  abortTransaction(ttid: Buffer, heldDataIds: readonly (DataId | null)[]): void {
    this.deleteTemporary(dbId(ttid));
    this.releaseData(heldDataIds, true);
  }

  getUnfinishedTIDs(): UnfinishedTransaction[] {
    const unfinished = new Map<bigint, bigint | null>();
    for (const ttid of this.temporaryObjectTtids()) unfinished.set(ttid, null);
    for (const { ttid, tid } of this.unfinishedTransactions()) unfinished.set(ttid, tid);
    return sortIds(unfinished.keys()).map((ttid) => ({ ttid: p64(ttid), tid: bufOrNull(unfinished.get(ttid) ?? null) }));
  }

  getFinalTID(ttid: Buffer): Buffer | null {
    const tt = dbId(ttid);
    return bufOrNull(this.finalTid(this.#readablePartitionOf(tt), tt));
  }

  dropUnfinishedData(): void {
    const dataIds = this.unfinishedDataIds();
    this.dropTemporary(null);
    this.releaseData(dataIds, true);
  }

  dropPartitionsTemporary(partitions: readonly number[]): void {
    this.dropTemporary(partitions);
  }

  signPackOrders(approved: readonly Buffer[], rejected: readonly Buffer[]): SignResult {
    const changed = new Set(this.signPackRows(approved.map(dbId), rejected.map(dbId)));
    const pending = (ids: readonly Buffer[]) => sortIds(ids.map(dbId).filter((id) => !changed.has(id))).map(p64);
    return { changed: changed.size > 0, pendingApproved: pending(approved), pendingRejected: pending(rejected) };
  }

  getPackOrders(minId: Buffer): PackOrder[] {
    if (this.#numPartitions === 0) return [];
    return this.packOrdersFrom(dbId(minId))
      .filter((row) => this.#readable.has(this.#partitionOf(row.tid)))
      .map((row) => ({ id: p64(row.tid), ...packInfoOf(row) }));
  }

  // --- Reads -----------------------------------------------------------------------------------

  getObject(oid: Buffer, at: Buffer | null, before: Buffer | null): ObjectRecord | ObjectMiss {
    const o = dbId(oid);
    const partition = this.#readablePartitionOf(o);
    const read = this.readObject(partition, o, idOrNull(at), idOrNull(before));
    if (read === null) {
      const exists = (at !== null || before !== null) && this.lastSerial(partition, o) !== null;
      return exists ? 'oidNotFound' : 'oidDoesNotExist';
    }
    return { ...objectRecordOf(read), nextSerial: bufOrNull(this.nextSerial(partition, o, read.serial)) };
  }

  getLastObjectTID(oid: Buffer): Buffer | null {
    const o = dbId(oid);
    return bufOrNull(this.lastSerial(this.#readablePartitionOf(o), o));
  }

  fetchObject(oid: Buffer, serial: Buffer): FetchedObject | null {
    const o = dbId(oid);
    const read = this.readObject(this.#readablePartitionOf(o), o, dbId(serial), null);
    return read === null ? null : objectRecordOf(read);
  }

  getObjectHistory(oid: Buffer, offset: number, length: number): HistoryEntry[] | null {
    const o = dbId(oid);
    const history = this.objectHistory(this.#readablePartitionOf(o), o, offset, length);
    return history.length === 0 ? null : history.map(({ tid, size }) => ({ serial: p64(tid), size }));
  }

  getTransaction(tid: Buffer): TransactionRecord | null {
    const t = dbId(tid);
    const read = this.readTransaction(this.#readablePartitionOf(t), t);
    return read === null ? null : transactionRecordOf(t, read);
  }

  getReplicationTransactions(
    minTid: Buffer, maxTid: Buffer, length: number, partition: number,
  ): { tid: Buffer; record: TransactionRecord }[] {
    if (!this.#readable.has(partition)) throw new NonReadableCellError(partition);
    return this.transRecordsFrom(partition, dbId(minTid), dbId(maxTid), length)
      .map(({ tid, read }) => ({ tid: p64(tid), record: transactionRecordOf(tid, read) }));
  }

  getReplicationObjects(
    minTid: Buffer, maxTid: Buffer, length: number, partition: number, minOid: Buffer,
  ): (ReplicationObjectKey & { record: FetchedObject })[] {
    if (!this.#readable.has(partition)) throw new NonReadableCellError(partition);
    const min = dbId(minTid);
    const max = dbId(maxTid);
    if (max < min || length === 0) return [];
    return this.objectRecordsFrom(partition, min, dbId(minOid), max, length)
      .map(({ oid, read }) => ({ serial: p64(read.serial), oid: p64(oid), record: objectRecordOf(read) }));
  }

  getTIDList(offset: number, length: number, partitions: readonly number[]): Buffer[] {
    if (partitions.length === 0) return [];
    for (const p of partitions) if (!this.#readable.has(p)) throw new NonReadableCellError(p);
    return this.tidList(offset, length, partitions).map(p64);
  }

  getReplicationTIDList(minTid: Buffer, maxTid: Buffer, length: number | null, partition: number): Buffer[] {
    return this.transTidsFrom(partition, dbId(minTid), dbId(maxTid), length).map(p64);
  }

  getReplicationObjectList(
    minTid: Buffer, maxTid: Buffer, length: number, partition: number, minOid: Buffer,
  ): ReplicationObjectKey[] {
    const min = dbId(minTid);
    const max = dbId(maxTid);
    if (max < min || length === 0) return [];
    return this.objectKeysFrom(partition, min, dbId(minOid), max, length)
      .map(({ tid, oid }) => ({ serial: p64(tid), oid: p64(oid) }));
  }

  getOIDsFrom(partition: number, length: number, minOid: Buffer, tid: Buffer): { nextOid: Buffer | null; oids: Buffer[] } {
    if (!this.#readable.has(partition)) throw new NonReadableCellError(partition);
    const records = this.latestRecordsFrom(partition, dbId(minOid), dbId(tid), length);
    const last = records[records.length - 1];
    // OIDs of a partition are congruent modulo np: the next candidate is np further.
    const nextOid = last === undefined || records.length < length ? null : p64(last.oid + BigInt(this.#numPartitions));
    return { nextOid, oids: records.filter((r) => !r.deleted).map((r) => p64(r.oid)) };
  }

  findUndoTID(
    oid: Buffer, ltid: Buffer | null, undoneTid: Buffer, currentSerial: Buffer | null,
  ): UndoInfo | 'oidNotFound' | null {
    const o = dbId(oid);
    const partition = this.#readablePartitionOf(o);
    let undone = dbId(undoneTid);
    const [atUndone, before] = this.serialsUpTo(partition, o, undone, 2);
    if (atUndone !== undone) return null;
    const history = this.recordsAfter(partition, o, undone);
    let current: bigint;
    if (currentSerial !== null) {
      current = dbId(currentSerial);
    } else {
      const visible = history.filter((r) => ltid === null || r.tid < dbId(ltid));
      const latest = visible[visible.length - 1];
      if (latest !== undefined) current = latest.tid;
      else if (ltid !== null && dbId(ltid) <= undone) return 'oidNotFound';
      else current = undone;
    }
    let target = before ?? null;
    let isCurrent = current === undone;
    // Later records copying the same data: the newest one is used, which keeps undo working after
    // a pack removed older links of the chain (transactions.md §14).
    for (const { tid, valueTid } of history) {
      if (valueTid === null) continue;
      if (valueTid === target) target = tid;
      else if (valueTid === undone) {
        if (current === tid) isCurrent = true;
        else undone = tid;
      }
    }
    return { currentSerial: p64(current), undoSerial: bufOrNull(target), isCurrent };
  }

  checkTIDRange(partition: number, length: number | null, minTid: Buffer, maxTid: Buffer): TIDRangeCheck {
    const tids = this.transTidsFrom(partition, dbId(minTid), dbId(maxTid), length);
    const last = tids[tids.length - 1];
    if (last === undefined) return { count: 0, tidChecksum: Buffer.from(ZERO_HASH), maxTid: Buffer.from(ZERO_TID) };
    return { count: tids.length, tidChecksum: checksumOfIds(tids.map(p64)), maxTid: p64(last) };
  }

  checkSerialRange(
    partition: number, length: number | null, minTid: Buffer, maxTid: Buffer, minOid: Buffer,
  ): SerialRangeCheck {
    const keys = this.objectKeysFrom(partition, dbId(minTid), dbId(minOid), dbId(maxTid), length);
    const last = keys[keys.length - 1];
    if (last === undefined) {
      return {
        count: 0, tidChecksum: Buffer.from(ZERO_HASH), maxTid: Buffer.from(ZERO_TID),
        oidChecksum: Buffer.from(ZERO_HASH), maxOid: Buffer.from(ZERO_OID),
      };
    }
    return {
      count: keys.length,
      tidChecksum: checksumOfIds(keys.map((k) => p64(k.tid))),
      maxTid: p64(last.tid),
      oidChecksum: checksumOfIds(keys.map((k) => p64(k.oid))),
      maxOid: p64(last.oid),
    };
  }

  // --- Replication writes ----------------------------------------------------------------------

  addTransaction(tid: Buffer, metadata: TransactionMetadata): void {
    const t = dbId(tid);
    this.insertTransaction(this.#transRow(t, t, metadata), false);
  }

  addObject(oid: Buffer, serial: Buffer, dataId: DataId | null, dataSerial: Buffer | null): void {
    this.insertObject(this.#objRow(oid, dbId(serial), dataId, dataSerial));
  }

  deleteTransaction(tid: Buffer): void {
    const t = dbId(tid);
    this.deleteTransactionRow(this.#partitionOf(t), t);
  }

  deleteObject(oid: Buffer, serial: Buffer | null): void {
    const o = dbId(oid);
    this.#prune(this.deleteObjectRows(this.#partitionOf(o), o, idOrNull(serial)));
  }

  // --- Maintenance -----------------------------------------------------------------------------

  truncate(): void {
    const truncateTid = this.getTruncateTid();
    if (truncateTid === null) return;
    const t = dbId(truncateTid);
    assert(t > 0n, 'truncation at ZERO_TID');
    const lowered: CellWrite[] = [];
    for (const cell of this.#ownCells()) {
      if (cell.tid > t) lowered.push({ partition: cell.partition, nid: cell.nid, tid: t, pack: null });
      this.#prune(this.deleteAfter(cell.partition, t));
    }
    if (lowered.length > 0) this.#writeCells(lowered, false);
    this.setTruncateTid(null);
  }

  dropPartition(partition: number, maxObjectRows: number): boolean {
    assert(maxObjectRows > 0);
    const { count, dataIds } = this.deleteFirstObjects(partition, maxObjectRows);
    if (count > 0) {
      this.#prune(dataIds);
      return false;
    }
    this.deletePartitionTransactions(partition);
    return true;
  }

  packPartition(partition: number, packTid: Buffer, minOid: Buffer, maxOids: number): Buffer | null {
    assert(maxOids > 0);
    const candidates = this.packCandidates(partition, dbId(packTid), dbId(minOid), maxOids);
    for (const candidate of candidates) this.#packOid(partition, candidate);
    const last = candidates[candidates.length - 1];
    return last === undefined ? null : p64(last.oid);
  }

  packOids(partition: number, packTid: Buffer, oids: readonly Buffer[]): void {
    const t = dbId(packTid);
    for (const oid of oids) {
      const o = dbId(oid);
      assert.equal(this.#partitionOf(o), partition, 'OID of another partition');
      const candidate = this.packCandidate(partition, o, t);
      if (candidate !== null) this.#packOid(partition, candidate);
    }
  }

  /**
   * Among the records up to the pack TID, keeps only the newest, or none if it is a deletion
   * (transactions.md §17.3).
   */
  #packOid(partition: number, { oid, count, maxTid }: PackCandidate): void {
    const newest = this.objectDataId(partition, oid, maxTid);
    assert(newest !== null);
    const deletion = newest.dataId === null;
    if (!deletion && count === 1) return;
    this.#prune(this.deleteObjectsBefore(partition, oid, deletion ? maxTid + 1n : maxTid));
  }
}
