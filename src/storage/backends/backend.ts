// The storage node's persistence (storage.md §2-§8), behind one synchronous interface.
//
// Durability: a backend keeps at most one write transaction open. Every write method below adds to
// it and returns without making anything durable; only `commit()` does (and the lifecycle methods
// `setup`, `erase` and `close`, which say so). All reads see the uncommitted writes. The storage
// node calls `commit()` at the points of storage.md §2.7.4: after writing the vote, after the lock,
// on abort, at the end of a partition table change, per replication chunk, and so on; the unlock is
// committed by the node's 1-s timer through `deferCommit()` / `commitDeferred()`. A crash loses
// exactly what was written since the last commit.
//
// Ids (OIDs, TIDs, TTIDs, pack ids) are 8-byte Buffers; partitions and node ids are numbers.
// Reads of objects and transactions are restricted to the partitions this node can read (its own
// UP_TO_DATE or FEEDING cells) and throw NonReadableCellError otherwise, as NEO does; replication
// and check listings take the partition as given (their handlers check the cell state).

import { CellStates, ErrorCodes } from '../../protocol/enums.js';
import type { CellState } from '../../protocol/enums.js';
import { NeoError } from '../../protocol/errors.js';

/** Id of a row of the `data` table: partition p uses [p·2⁴⁸, (p+1)·2⁴⁸) (storage.md §3.3). */
export type DataId = bigint;

/** Object data as a client sent it: possibly compressed bytes and the SHA-1 of those bytes. */
export interface ObjectValue {
  readonly compression: number;
  readonly checksum: Buffer;
  readonly data: Buffer;
}

/**
 * One object revision as answered to AskObject. A deletion or undone creation ("no data") has
 * `compression` null, `checksum` ZERO_HASH and empty `data`, as NEO sends it.
 */
export interface ObjectRecord {
  readonly serial: Buffer;
  /** TID of the next revision of the same object, null for the latest. */
  readonly nextSerial: Buffer | null;
  readonly compression: number | null;
  readonly checksum: Buffer;
  readonly data: Buffer;
  /** Undo back-pointer: the revision whose data this one reuses, null if none. */
  readonly dataSerial: Buffer | null;
}

/** An object revision read for replication (AddObject): no next serial. */
export type FetchedObject = Omit<ObjectRecord, 'nextSerial'>;

/** getObject's answers when there is no matching revision (the NEO error codes). */
export type ObjectMiss = 'oidNotFound' | 'oidDoesNotExist';

/** A revision stored by a transaction, written to `tobj` at vote. */
export interface StoredObject {
  readonly oid: Buffer;
  /** null for a deletion or an undone creation. */
  readonly dataId: DataId | null;
  /** Undo back-pointer (the `value_tid` column), null for an ordinary store. */
  readonly dataSerial: Buffer | null;
}

/** Transaction metadata (the `trans`/`ttrans` columns). */
export interface TransactionMetadata {
  /** Every OID of the transaction as the client listed it (stored, deleted and checked). */
  readonly oids: readonly Buffer[];
  readonly user: Buffer;
  readonly description: Buffer;
  /** The pickled extension dict, or empty. */
  readonly ext: Buffer;
  readonly packed: boolean;
  readonly ttid: Buffer;
}

/** A pack order as attached to a transaction (transactions.md §17). */
export interface PackOrderInfo {
  /** null = not signed yet. */
  readonly approved: boolean | null;
  readonly partial: boolean;
  /** The OIDs of a partial pack, null for a full one. */
  readonly oids: readonly Buffer[] | null;
  readonly packTid: Buffer;
}

/** A pack order with its id (the TID of the transaction that carried it). */
export interface PackOrder extends PackOrderInfo {
  readonly id: Buffer;
}

export interface TransactionRecord extends TransactionMetadata {
  /** The pack order this transaction carried, if any. */
  readonly pack: PackOrderInfo | null;
}

export interface HistoryEntry {
  readonly serial: Buffer;
  /** Length of the stored (possibly compressed) value, 0 for a deletion. */
  readonly size: number;
}

/** One row of `pt`, as stored (storage.md §2.2). */
export interface PartitionTableRow {
  readonly partition: number;
  readonly nid: number;
  /** Negative: −state of a readable or corrupted cell; ≥ 0: OUT_OF_DATE, complete up to this TID. */
  readonly tid: bigint;
  /** Id of the last pack completed on this node's own cell; null for other nodes' cells. */
  readonly pack: Buffer | null;
}

/** A cell as sent by the master (SendPartitionTable, NotifyPartitionChanges). */
export interface CellChange {
  readonly partition: number;
  readonly nid: number;
  readonly state: CellState;
}

export interface PartitionTableChange {
  readonly ptid: number;
  readonly numReplicas: number;
  readonly cells: readonly CellChange[];
  /** A full table (SendPartitionTable): cells not listed are removed. */
  readonly reset: boolean;
  /** The greatest approved pack id this node knows (ZERO_TID for none). */
  readonly lastPackId: Buffer;
}

/** Where replication of one of this node's own cells resumes (storage.md §5.1). */
export interface CellNextTIDs {
  readonly partition: number;
  /** null for a readable cell outside backup mode (nothing to replicate). */
  readonly next: { readonly trans: Buffer; readonly obj: Buffer } | null;
}

export interface LastIDs {
  /** Greatest TID of readable transactions or object records, null if none. */
  readonly lastTid: Buffer | null;
  readonly lastOid: Buffer | null;
  /** Smallest TID of readable transactions, MAX_TID if none. */
  readonly firstTid: Buffer;
}

export interface UnfinishedTransaction {
  readonly ttid: Buffer;
  /** The final TID once locked, null before. */
  readonly tid: Buffer | null;
}

/** Answer of findUndoTID for one OID (transactions.md §14). */
export interface UndoInfo {
  /** Latest serial visible to the undoing transaction. */
  readonly currentSerial: Buffer;
  /** The revision whose data the undo restores; null when the undone transaction created the object. */
  readonly undoSerial: Buffer | null;
  readonly isCurrent: boolean;
}

export interface TIDRangeCheck {
  readonly count: number;
  readonly tidChecksum: Buffer;
  readonly maxTid: Buffer;
}

export interface SerialRangeCheck extends TIDRangeCheck {
  readonly oidChecksum: Buffer;
  readonly maxOid: Buffer;
}

export interface ReplicationObjectKey {
  readonly serial: Buffer;
  readonly oid: Buffer;
}

export interface SignResult {
  /** Whether some pack order changed (the caller then commits). */
  readonly changed: boolean;
  /** Signed ids with no pack order here yet (not replicated yet), ascending. */
  readonly pendingApproved: Buffer[];
  readonly pendingRejected: Buffer[];
}

export interface SetupOptions {
  /** The configured cluster name: stored on first start, compared afterwards. */
  readonly clusterName: string;
  /** Drop every table first (`--reset`). */
  readonly reset?: boolean;
  /** Create the unique index on (hash, compression) that deduplicates data (`--dedup`). */
  readonly dedup?: boolean;
}

export interface Backend {
  // --- Lifecycle ---------------------------------------------------------------------------

  /**
   * Creates the schema (version 4) if missing, refuses a newer or older one, reloads the volatile
   * references of data used by `tobj`, then stores or checks the cluster name
   * (ClusterNameMismatchError). Commits.
   */
  setup(options: SetupOptions): void;
  /** Drops every table (the node was told it is UNKNOWN, or `--reset`). Commits. */
  erase(): void;
  /**
   * Commits if a deferred commit is due, then closes and releases the exclusive lock. Anything
   * else written since the last commit is lost, as in a crash.
   */
  close(): void;
  /** THE durability point: makes everything written so far durable. */
  commit(): void;
  /** Marks the writes of an unlock as due for the node's deferred (1 s) commit. Does not commit. */
  deferCommit(): void;
  /** The deferred-commit timer fired: commits if deferCommit() was called and nothing committed since. */
  commitDeferred(): void;
  /** Path of the database file (for the topology path), null for a database without a file. */
  getDevPath(): string | null;

  // --- Configuration (`config` table); setters do not commit ---------------------------------

  getName(): string | null;
  getNid(): number | null;
  /** Stores the NID given by the master, renaming this node's cells in `pt`. Does not commit. */
  setNid(nid: number): void;
  getPtid(): number | null;
  getNumReplicas(): number | null;
  getBackupTid(): Buffer | null;
  /** Sets or (null) removes `backup_tid`. Does not commit. */
  setBackupTid(tid: Buffer | null): void;
  getTruncateTid(): Buffer | null;
  /** Sets or (null) removes `truncate_tid`. Does not commit. */
  setTruncateTid(tid: Buffer | null): void;

  // --- Partition table ---------------------------------------------------------------------

  /** Every stored cell, ordered by (partition, nid). */
  getPartitionTable(): PartitionTableRow[];
  /** 1 + the greatest partition of the stored table, 0 without a table. */
  getNumPartitions(): number;
  /**
   * Applies a full table or a change (storage.md §2.2), stores `ptid` and `replicas`, and returns
   * the partitions whose data this node no longer needs (to drop in the background). Does not
   * commit: the handler commits at its end.
   */
  changePartitionTable(change: PartitionTableChange): number[];
  /** Partitions where this node has a readable cell, ascending. */
  getReadablePartitions(): number[];
  isReadable(partition: number): boolean;
  /** Runs fn with `partition` readable (a cell that has just been replicated, transactions.md §5.3). */
  withReplicated<T>(partition: number, fn: () => T): T;
  /** Persists the replication resume point of an own OUT_OF_DATE cell. Does not commit. */
  updateCellTID(partition: number, tid: Buffer): void;
  /** Replication start points of this node's cells (storage.md §5.1). */
  getCellNextTIDs(): CellNextTIDs[];
  /** Last completed pack id per own cell (only UP_TO_DATE cells if upToDateOnly). */
  getPackedIDs(upToDateOnly: boolean): Map<number, Buffer>;
  /** Lowers the completed pack id of an own cell to the replication source's. Does not commit. */
  updateCompletedPackByReplication(partition: number, packId: Buffer): void;
  /** Records that a pack completed on an own cell. Does not commit. */
  setPartitionPacked(partition: number, packId: Buffer): void;

  // --- Ids -----------------------------------------------------------------------------------

  /** AnswerLastIDs: last TID and OID, and first TID, over readable partitions. */
  getLastIDs(): LastIDs;

  // --- Data ----------------------------------------------------------------------------------

  /**
   * Stores the data of a client store and holds a volatile reference to it until releaseData.
   * With `dataSerial` (undo), reuses the data of revision (oid, dataSerial): UndoPackError if that
   * revision is gone from a readable cell. Returns null for "no data". Does not commit.
   */
  holdData(oid: Buffer, value: ObjectValue | null, dataSerial: Buffer | null): DataId | null;
  /** Same as holdData without the volatile reference (replicated objects). Does not commit. */
  storeData(oid: Buffer, value: ObjectValue | null, dataSerial: Buffer | null): DataId | null;
  /** Drops one volatile reference per id (nulls skipped); with prune, deletes what became unused. */
  releaseData(dataIds: readonly (DataId | null)[], prune: boolean): void;
  loadData(dataId: DataId): ObjectValue;
  /**
   * prune_orphan: counts `data` rows no object record uses (ignoring those held by unfinished
   * transactions) and deletes them unless dryRun. Does not commit.
   */
  pruneOrphans(dryRun: boolean): { found: number; deleted: number };

  // --- Transactions (transactions.md §9-§12) -------------------------------------------------

  /** Vote: `tobj` rows, plus the `ttrans` row when this node holds the metadata. Does not commit. */
  storeTransaction(ttid: Buffer, objects: readonly StoredObject[], metadata: TransactionMetadata | null): void;
  /** Stores a pack order (at vote keyed by the TTID; by replication keyed by the TID). Does not commit. */
  storePackOrder(id: Buffer, order: PackOrderInfo): void;
  /** Lock: sets the final TID in `ttrans`, approves the attached pack order if asked. Does not commit. */
  lockTransaction(ttid: Buffer, tid: Buffer, approvePack: boolean): void;
  /**
   * Unlock: moves the rows to `trans`/`obj` with the final TID, re-keys the pack order and
   * releases the volatile references of the data. Does not commit (see deferCommit).
   */
  unlockTransaction(ttid: Buffer, tid: Buffer): void;
  /**
   * Abort of an unlocked transaction: deletes its temporary rows and pack order, releases the data
   * it held (heldDataIds, nulls skipped) and prunes what became unused. Does not commit.
   */
  abortTransaction(ttid: Buffer, heldDataIds: readonly (DataId | null)[]): void;
  /** AnswerLockedTransactions: every ttrans TTID (with its TID if locked) and every tobj TTID. */
  getUnfinishedTIDs(): UnfinishedTransaction[];
  /** Final TID of a committed transaction from its TTID, null if unknown. */
  getFinalTID(ttid: Buffer): Buffer | null;
  /** Start of operation: deletes every temporary row and its data. Does not commit. */
  dropUnfinishedData(): void;
  /** Deletes temporary rows of discarded partitions. Does not commit. */
  dropPartitionsTemporary(partitions: readonly number[]): void;
  /** NotifyPackSigned: approves/rejects the listed pack orders that exist here. Does not commit. */
  signPackOrders(approved: readonly Buffer[], rejected: readonly Buffer[]): SignResult;
  /** Pack orders with id ≥ minId of readable partitions, ascending. */
  getPackOrders(minId: Buffer): PackOrder[];

  // --- Reads ---------------------------------------------------------------------------------

  /** AskObject: exact serial (at), latest before `before`, or latest. */
  getObject(oid: Buffer, at: Buffer | null, before: Buffer | null): ObjectRecord | ObjectMiss;
  /** Latest serial of an object, null if it has no record. */
  getLastObjectTID(oid: Buffer): Buffer | null;
  /** The exact revision, for a replication source; null if absent. */
  fetchObject(oid: Buffer, serial: Buffer): FetchedObject | null;
  /** AskObjectHistory: newest first; null if there is no entry in that window. */
  getObjectHistory(oid: Buffer, offset: number, length: number): HistoryEntry[] | null;
  /** AskTransactionInformation; null if absent. */
  getTransaction(tid: Buffer): TransactionRecord | null;
  /** AskTIDs: TIDs of the given (readable) partitions, newest first, after skipping `offset`. */
  getTIDList(offset: number, length: number, partitions: readonly number[]): Buffer[];
  /** AskTIDsFrom / AskFetchTransactions: TIDs of a partition in [minTid, maxTid], ascending. */
  getReplicationTIDList(minTid: Buffer, maxTid: Buffer, length: number | null, partition: number): Buffer[];
  /** AskFetchObjects: (serial, oid) of a partition from (minTid, minOid) to maxTid, by (tid, oid). */
  getReplicationObjectList(
    minTid: Buffer, maxTid: Buffer, length: number, partition: number, minOid: Buffer,
  ): ReplicationObjectKey[];
  /**
   * A replication source's read (AskFetchTransactions): the transactions of getReplicationTIDList
   * with their records, in one pass. The partition must be readable.
   */
  getReplicationTransactions(
    minTid: Buffer, maxTid: Buffer, length: number, partition: number,
  ): { tid: Buffer; record: TransactionRecord }[];
  /** The same for AskFetchObjects: the revisions of getReplicationObjectList with their records. */
  getReplicationObjects(
    minTid: Buffer, maxTid: Buffer, length: number, partition: number, minOid: Buffer,
  ): (ReplicationObjectKey & { record: FetchedObject })[];
  /** AskOIDsFrom: non-deleted OIDs at `tid` from minOid; nextOid null when finished. */
  getOIDsFrom(partition: number, length: number, minOid: Buffer, tid: Buffer): { nextOid: Buffer | null; oids: Buffer[] };
  /**
   * AskObjectUndoSerial for one OID. `ltid`: the snapshot bound; `currentSerial`: what the undoing
   * transaction itself stored for this OID (its data serial, or its TTID), null if nothing.
   * null = the OID has no record at undoneTid (skip it); 'oidNotFound' = not visible in the snapshot.
   */
  findUndoTID(oid: Buffer, ltid: Buffer | null, undoneTid: Buffer, currentSerial: Buffer | null): UndoInfo | 'oidNotFound' | null;
  /** AskCheckTIDRange digest (protocol.md §3.6). */
  checkTIDRange(partition: number, length: number | null, minTid: Buffer, maxTid: Buffer): TIDRangeCheck;
  /** AskCheckSerialRange digest. */
  checkSerialRange(partition: number, length: number | null, minTid: Buffer, maxTid: Buffer, minOid: Buffer): SerialRangeCheck;

  // --- Replication writes (storage.md §5.4); none commits ------------------------------------

  /** AddTransaction: a `trans` row written directly. */
  addTransaction(tid: Buffer, metadata: TransactionMetadata): void;
  /** AddObject: an `obj` row written directly (an identical existing row is accepted). */
  addObject(oid: Buffer, serial: Buffer, dataId: DataId | null, dataSerial: Buffer | null): void;
  /** Deletes a transaction the source does not have (and its pack order). */
  deleteTransaction(tid: Buffer): void;
  /** Deletes a revision (or every revision) the source does not have, pruning its data. */
  deleteObject(oid: Buffer, serial: Buffer | null): void;

  // --- Maintenance (storage.md §7, §8, transactions.md §17); none commits ---------------------

  /** Deletes everything after `truncate_tid` in own partitions, lowers resume points, clears truncate_tid. */
  truncate(): void;
  /** Deletes up to maxObjectRows object records of a dropped partition; true once it is empty. */
  dropPartition(partition: number, maxObjectRows: number): boolean;
  /**
   * Full pack of a partition, one chunk: processes up to maxOids OIDs ≥ minOid. Returns the last
   * OID processed (continue after it), null when there was none left.
   */
  packPartition(partition: number, packTid: Buffer, minOid: Buffer, maxOids: number): Buffer | null;
  /** Partial pack: the given OIDs (all of `partition`). */
  packOids(partition: number, packTid: Buffer, oids: readonly Buffer[]): void;
}

// --- Errors ----------------------------------------------------------------------------------

/** The database cannot be used as it is (bad schema version, bad option, corrupted row...). */
export class DatabaseFailure extends Error {
  override readonly name: string = 'DatabaseFailure';
  readonly code: string = 'EDATABASE';
}

/** Another process (or backend) already uses this database (storage.md §1). */
export class DatabaseLockedError extends DatabaseFailure {
  override readonly name: string = 'DatabaseLockedError';
  override readonly code: string = 'EDBLOCKED';
  constructor(options?: ErrorOptions) {
    super('error: database is locked', options);
  }
}

/** The database belongs to another cluster. */
export class ClusterNameMismatchError extends DatabaseFailure {
  override readonly name: string = 'ClusterNameMismatchError';
  override readonly code: string = 'ECLUSTERNAME';
  constructor(configured: string, stored: string) {
    super(`name ${JSON.stringify(configured)} does not match with the database: ${JSON.stringify(stored)}`);
  }
}

/** A read or write of a partition this node cannot read (answered NON_READABLE_CELL). */
export class NonReadableCellError extends NeoError {
  constructor(partition: number) {
    super(ErrorCodes.NON_READABLE_CELL, `partition ${partition} is not readable`);
  }
}

/** An undo refers to a revision that a pack removed (answered UNDO_PACK_ERROR). */
export class UndoPackError extends NeoError {
  constructor(oidHex: string) {
    super(ErrorCodes.UNDO_PACK_ERROR, `Could not undo for oid ${oidHex}`);
  }
}

// --- Cell state encoding of pt.tid (storage.md §2.2) ----------------------------------------

/** The cell state a `pt.tid` value encodes. */
export function cellStateOf(ptTid: bigint): CellState {
  if (ptTid >= 0n) return CellStates.OUT_OF_DATE;
  const state = CellStates.info.items[Number(-ptTid)];
  if (state === undefined) throw new DatabaseFailure(`invalid cell state in pt: ${ptTid}`);
  return state;
}

export function isReadableState(state: CellState): boolean {
  return state === CellStates.UP_TO_DATE || state === CellStates.FEEDING;
}
