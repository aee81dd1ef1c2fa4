// Pending transactions on a storage node (transactions.md §5-§12, storage.md §4): write locks by
// OID, read locks between lock and unlock, deadlock avoidance, and the two queues of delayed
// requests (stores/checks/relocks sorted by TTID, and reads). Pure bookkeeping over the backend:
// answering and sending packets is left to the handlers, through the callbacks given here.

import assert from 'node:assert/strict';
import type { Backend, DataId, ObjectValue, PackOrderInfo, TransactionMetadata } from './backends/backend.js';
import { NonReadableCellError } from './backends/backend.js';
import { protocolError } from '../protocol/errors.js';
import { ZERO_TID, compareIds, partitionOf, tidToHex } from '../protocol/ids.js';

/** What a store or a check got: null = locked, ZERO_TID = accepted without lock, else a conflict. */
export type LockAnswer = Buffer | null;

/** A store, check or relock that could not run yet (its lock is held by another transaction). */
export const DELAYED = Symbol('delayed');
export type Delayed = typeof DELAYED;

/** Data given back to a client whose store was withdrawn after deadlock avoidance (§7). */
export type StoredData = [compression: number, checksum: Buffer, data: Buffer];

/** The MySQL MEDIUMBLOB limit NEO enforces on every backend for OID lists. */
const MAX_OIDS_PER_TRANSACTION = 0x200000;
/** Bound of each queue of delayed requests (a misbehaving client cannot grow it forever). */
const MAX_DELAYED_REQUESTS = 1_000_000;

interface StoreEntry {
  readonly oid: Buffer;
  readonly dataId: DataId | null;
  /** Undo back-pointer, null for an ordinary store. */
  readonly dataSerial: Buffer | null;
}

export class Transaction {
  readonly ttid: Buffer;
  /** NID of the client that owns it (null if registered by a peer without NID). */
  readonly clientNid: number | null;
  /** 0: not voted, 1: voted with objects only, 2: voted with the metadata. */
  voted: 0 | 1 | 2 = 0;
  tid: Buffer | null = null;
  /** Locked serials by OID (hex): every store and check. */
  readonly serials = new Map<string, { oid: Buffer; serial: Buffer }>();
  readonly stores = new Map<string, StoreEntry>();
  /** OIDs accepted without a write lock (replicating partitions, transactions.md §5.3). */
  readonly lockless = new Set<string>();
  /** OIDs for which NotifyDeadlock was sent about this transaction. */
  readonly deadlock = new Set<string>();

  constructor(ttid: Buffer, clientNid: number | null) {
    this.ttid = ttid;
    this.clientNid = clientNid;
  }
}

interface DelayedRequest {
  readonly ttid: Buffer | null;
  /** Retries the request: true when it was answered (and leaves the queue). */
  readonly retry: () => boolean;
}

export interface TransactionManagerHooks {
  /** Sends NotifyDeadlock(ttid, oid) to the client owning the younger transaction. */
  notifyDeadlock(clientNid: number | null, ttid: Buffer, oid: Buffer): void;
  /**
   * A replicated partition has no lockless store left: tell the master (NotifyReplicationDone),
   * which makes the cell UP_TO_DATE (transactions.md §5.3).
   */
  notifyReplicationDone(partition: number, tid: Buffer): void;
}

const hex = (id: Buffer) => id.toString('hex');

export class TransactionManager {
  readonly #backend: Backend;
  readonly #hooks: TransactionManagerHooks;
  readonly #transactions = new Map<string, Transaction>();
  /** Write locks: OID (hex) → TTID (hex). */
  readonly #writeLocks = new Map<string, string>();
  /** Read locks, between lock and unlock: OID (hex) → TTID (hex). */
  readonly #readLocks = new Map<string, string>();
  #storeQueue: DelayedRequest[] = [];
  #readQueue: DelayedRequest[] = [];
  #retrying = false;
  #retryAgain = false;
  /** Partitions being replicated here: writes to them are accepted without lock (§5.3). */
  readonly #replicating = new Set<number>();
  /**
   * Partitions replicated but not UP_TO_DATE yet: the TID to report (null once reported). Their
   * data is complete, so locks are taken again, reading the cell as if it were readable.
   */
  readonly #replicated = new Map<number, Buffer | null>();

  constructor(backend: Backend, hooks: TransactionManagerHooks) {
    this.#backend = backend;
    this.#hooks = hooks;
  }

  get size(): number {
    return this.#transactions.size;
  }

  get(ttid: Buffer): Transaction | undefined {
    return this.#transactions.get(hex(ttid));
  }

  /** The first store, check or metadata of a TTID registers it (protocol.md §4.3 #28). */
  register(ttid: Buffer, clientNid: number | null): Transaction {
    let txn = this.#transactions.get(hex(ttid));
    if (txn === undefined) {
      txn = new Transaction(Buffer.from(ttid), clientNid);
      this.#transactions.set(hex(ttid), txn);
    }
    return txn;
  }

  #partition(oid: Buffer): number {
    return partitionOf(oid, this.#backend.getNumPartitions());
  }

  // --- Write locks -----------------------------------------------------------------------------

  /**
   * Takes the write lock of `oid` for `txn`, checking that `serial` is current (transactions.md
   * §5.2). Returns 'locked' or 'lockless', DELAYED, or the conflicting serial.
   */
  #lockObject(txn: Transaction, serial: Buffer, oid: Buffer): 'locked' | 'lockless' | Delayed | Buffer {
    const key = hex(oid);
    if (this.#replicating.has(this.#partition(oid))) {
      txn.lockless.add(key);
      return 'lockless';
    }
    let previous: Buffer | null;
    const holderKey = this.#writeLocks.get(key);
    if (holderKey !== undefined) {
      const holder = this.#transactions.get(holderKey);
      assert(holder !== undefined, 'write lock held by an unknown transaction');
      // Younger than the holder, or the holder already voted: wait (no deadlock possible).
      if (compareIds(holder.ttid, txn.ttid) < 0 || holder.voted !== 0) return DELAYED;
      if (txn.lockless.has(key)) return 'lockless';
      if (holder !== txn) {
        if (holder.lockless.has(key)) {
          txn.lockless.add(key);
          return 'lockless';
        }
        // Older than the holder: ask the holder's client to give the lock back (§7), once.
        if (!holder.deadlock.has(key)) {
          holder.deadlock.add(key);
          this.#hooks.notifyDeadlock(holder.clientNid, holder.ttid, oid);
        }
        return DELAYED;
      }
      // Storing the same OID again: only an undo store is checked again, against its target.
      previous = txn.stores.get(key)?.dataSerial ?? null;
      if (previous === null) return 'locked';
    } else {
      previous = this.#lastObjectTID(oid);
    }
    if (previous !== null && !previous.equals(serial)) return previous;
    this.#writeLocks.set(key, hex(txn.ttid));
    return 'locked';
  }

  /** The latest serial of `oid`, also in a partition that is replicated but not readable yet. */
  #lastObjectTID(oid: Buffer): Buffer | null {
    const partition = this.#partition(oid);
    if (this.#backend.isReadable(partition) || !this.#replicated.has(partition)) {
      return this.#backend.getLastObjectTID(oid); // NonReadableCellError if neither
    }
    return this.#backend.withReplicated(partition, () => this.#backend.getLastObjectTID(oid));
  }

  /**
   * Takes the lock of `oid` for a store or a check; `record` runs once it is taken (locked or
   * lockless). A transaction aborted while the request waited, and NonReadableCell (partition not
   * ours, or not yet), are acknowledged with ZERO_TID: some readable cell does the real work.
   */
  #lockAndRecord(ttid: Buffer, serial: Buffer, oid: Buffer, record: (txn: Transaction, key: string) => void): LockAnswer | Delayed {
    const txn = this.get(ttid);
    if (txn === undefined) return ZERO_TID;
    let locked;
    try {
      locked = this.#lockObject(txn, serial, oid);
    } catch (error) {
      if (error instanceof NonReadableCellError) return ZERO_TID;
      throw error;
    }
    if (locked === DELAYED) return DELAYED;
    if (Buffer.isBuffer(locked)) return locked;
    record(txn, hex(oid));
    return locked === 'locked' ? null : ZERO_TID;
  }

  /** AskStoreObject. UndoPackError propagates. */
  storeObject(
    ttid: Buffer, serial: Buffer, oid: Buffer, value: ObjectValue | null, dataSerial: Buffer | null,
  ): LockAnswer | Delayed {
    return this.#lockAndRecord(ttid, serial, oid, (txn, key) => {
      if (txn.serials.has(key)) this.#unstore(txn, key);
      const dataId = this.#backend.holdData(oid, value, dataSerial);
      txn.serials.set(key, { oid, serial });
      txn.stores.set(key, { oid, dataId, dataSerial });
    });
  }

  /** AskCheckCurrentSerial: a store without data (transactions.md §8). */
  checkCurrentSerial(ttid: Buffer, oid: Buffer, serial: Buffer): LockAnswer | Delayed {
    return this.#lockAndRecord(ttid, serial, oid, (txn, key) => void txn.serials.set(key, { oid, serial }));
  }

  /**
   * AskRelockObject (deadlock avoidance, §7). With `release`, first gives the lock back and lets
   * older transactions take it. Returns null (relocked, or nothing to relock) or the conflict.
   * A partition that started replicating meanwhile makes the store lockless: null too, as for a
   * first store there, since the store stands and a readable cell does the conflict check.
   */
  relockObject(ttid: Buffer, oid: Buffer, release: boolean): [Buffer, Buffer, StoredData | null] | null | Delayed {
    const txn = this.get(ttid);
    const key = hex(oid);
    const locked = txn?.serials.get(key);
    if (txn === undefined || locked === undefined) return null;
    if (release) {
      txn.deadlock.delete(key);
      if (this.#writeLocks.get(key) === hex(ttid)) this.#writeLocks.delete(key);
      this.retryDelayed();
    }
    const result = this.#lockObject(txn, locked.serial, oid);
    if (result === DELAYED) return DELAYED;
    if (!Buffer.isBuffer(result)) return null;
    return [locked.serial, result, this.#unstore(txn, key)];
  }

  /** Withdraws a store or check; returns the data it had stored, if any. */
  #unstore(txn: Transaction, key: string): StoredData | null {
    const entry = txn.stores.get(key);
    txn.stores.delete(key);
    txn.serials.delete(key);
    if (entry === undefined || entry.dataId === null) return null;
    const value = this.#backend.loadData(entry.dataId);
    this.#backend.releaseData([entry.dataId], true);
    return [value.compression, value.checksum, value.data];
  }

  // --- Two-phase commit ------------------------------------------------------------------------

  /**
   * AskStoreTransaction (with metadata) / AskVoteTransaction. Writes without committing: the
   * caller answers once a commit made the writes durable (StorageApp.whenDurable).
   */
  vote(ttid: Buffer, metadata: Omit<TransactionMetadata, 'ttid' | 'packed'> | null, pack: PackOrderInfo | null): void {
    const txn = this.get(ttid);
    if (txn === undefined) throw protocolError(`unknown ttid ${tidToHex(ttid)}`);
    if (metadata !== null && metadata.oids.length >= MAX_OIDS_PER_TRANSACTION) {
      throw protocolError('Too many modified OIDs (the storage backend is limited to 2^21-1)');
    }
    if (pack?.oids != null && pack.oids.length >= MAX_OIDS_PER_TRANSACTION) {
      throw protocolError('Too many OIDs in the pack order');
    }
    // Every stored or checked oid must still be write-locked by this transaction (or written
    // lockless): a client voting while a relock is pending would commit over a stale serial.
    for (const key of txn.serials.keys()) {
      if (this.#writeLocks.get(key) !== hex(ttid) && !txn.lockless.has(key)) {
        throw protocolError(`vote of ${tidToHex(ttid)} without the write lock of oid ${key}`);
      }
    }
    const objects = [...txn.stores.values()];
    this.#backend.storeTransaction(ttid, objects, metadata === null ? null : { ...metadata, ttid, packed: false });
    if (metadata !== null && pack !== null) this.#backend.storePackOrder(ttid, pack);
    txn.voted = metadata !== null ? 2 : 1;
  }

  /**
   * AskLockInformation: read-locks the stored OIDs; the metadata holder writes the final TID,
   * which the caller makes durable before answering (as for vote).
   */
  lock(ttid: Buffer, tid: Buffer, approvePack: boolean): void {
    const txn = this.get(ttid);
    if (txn === undefined) throw protocolError(`unknown ttid ${tidToHex(ttid)}`);
    if (txn.tid !== null) throw protocolError(`transaction ${tidToHex(ttid)} already locked`);
    if (txn.voted === 0) throw protocolError(`transaction ${tidToHex(ttid)} not voted`);
    assert(compareIds(ttid, tid) <= 0, 'a final TID is never below its TTID');
    txn.tid = Buffer.from(tid);
    for (const key of txn.stores.keys()) this.#readLocks.set(key, hex(ttid));
    if (txn.voted === 2) {
      this.#backend.lockTransaction(ttid, tid, approvePack);
    }
  }

  /** NotifyUnlockInformation: the caller arms the deferred commit (storage.md §2.7.4). */
  unlock(ttid: Buffer): void {
    const txn = this.get(ttid);
    if (txn === undefined || txn.tid === null) throw protocolError(`unknown or unlocked ttid ${tidToHex(ttid)}`);
    this.#backend.unlockTransaction(ttid, txn.tid);
    this.#backend.deferCommit();
    this.#forget(txn);
  }

  /** Aborts an unlocked transaction (a locked one is only ended by its unlock). */
  abort(ttid: Buffer): void {
    const txn = this.get(ttid);
    if (txn === undefined || txn.tid !== null) return;
    this.#backend.abortTransaction(ttid, [...txn.stores.values()].map((entry) => entry.dataId));
    this.#backend.commit();
    this.#forget(txn);
  }

  /** A client left: its non-voted (or, if asked, all unlocked) transactions are aborted. */
  abortFor(clientNid: number, evenIfVoted: boolean): void {
    for (const txn of [...this.#transactions.values()]) {
      if (txn.clientNid === clientNid && (evenIfVoted || txn.voted === 0)) this.abort(txn.ttid);
    }
  }

  #forget(txn: Transaction): void {
    const ttidKey = hex(txn.ttid);
    for (const key of txn.serials.keys()) {
      if (this.#readLocks.get(key) === ttidKey) this.#readLocks.delete(key);
      if (this.#writeLocks.get(key) === ttidKey) this.#writeLocks.delete(key);
    }
    this.#transactions.delete(ttidKey);
    if (this.#replicated.size > 0) this.#notifyReplicated();
    this.retryDelayed();
  }

  /**
   * Stop of operation: every pending transaction and delayed request is forgotten. The data of
   * non-voted stores is released; voted ones stay in the temporary tables for verification.
   */
  clear(): void {
    const released: (DataId | null)[] = [];
    for (const txn of this.#transactions.values()) {
      if (txn.voted === 0) for (const entry of txn.stores.values()) released.push(entry.dataId);
    }
    this.#backend.releaseData(released, true);
    this.#transactions.clear();
    this.#writeLocks.clear();
    this.#readLocks.clear();
    this.#storeQueue = [];
    this.#readQueue = [];
    this.#replicating.clear();
    this.#replicated.clear();
  }

  /** Partitions discarded from this node: their locks and pending stores go (storage.md §4). */
  discarded(partitions: readonly number[]): void {
    if (partitions.length === 0) return;
    for (const p of partitions) {
      this.#replicating.delete(p);
      this.#replicated.delete(p);
    }
    const gone = new Set(partitions);
    const np = this.#backend.getNumPartitions();
    const inGone = (key: string) => gone.has(partitionOf(Buffer.from(key, 'hex'), np));
    for (const locks of [this.#writeLocks, this.#readLocks]) {
      for (const key of [...locks.keys()]) if (inGone(key)) locks.delete(key);
    }
    const released: (DataId | null)[] = [];
    for (const txn of this.#transactions.values()) {
      for (const key of [...txn.serials.keys()]) {
        if (!inGone(key)) continue;
        txn.serials.delete(key);
        txn.lockless.delete(key);
        const entry = txn.stores.get(key);
        if (entry !== undefined) released.push(entry.dataId);
        txn.stores.delete(key);
      }
    }
    this.#backend.dropPartitionsTemporary(partitions);
    this.#backend.releaseData(released, true);
    this.retryDelayed();
  }

  // --- Replication (transactions.md §5.3, storage.md §5.5) ------------------------------------

  /** OUT_OF_DATE cells about to be replicated: from now on, writes there are lockless. */
  replicating(partitions: readonly number[]): void {
    for (const p of partitions) {
      assert(!this.#replicated.has(p), `partition ${p} replicating while already replicated`);
      this.#replicating.add(p);
    }
  }

  /** Partitions that became readable (UP_TO_DATE or FEEDING) by the master's decision. */
  readable(partitions: readonly number[]): void {
    for (const p of partitions) this.#replicated.delete(p);
  }

  /**
   * The partition has all data up to `tid` and waits for no unfinished transaction: its lockless
   * stores become real locks, and the master is told once no OID is locked by several of them.
   */
  replicated(partition: number, tid: Buffer): void {
    this.#replicating.delete(partition);
    this.#replicated.set(partition, Buffer.from(tid));
    this.#notifyReplicated();
  }

  #notifyReplicated(): void {
    const notify = new Set<number>();
    for (const [p, tid] of this.#replicated) if (tid !== null) notify.add(p);
    if (notify.size === 0) return;
    // By increasing TTID, so that the youngest of several lockless stores of an OID holds the lock
    // (it delays new transactions); such a "multi-lock" postpones the notification.
    const byTtid = [...this.#transactions.values()].sort((a, b) => compareIds(a.ttid, b.ttid));
    for (const txn of byTtid) {
      const ttidKey = hex(txn.ttid);
      for (const key of txn.lockless) {
        assert(txn.serials.has(key), 'lockless OID without a store or check');
        const partition = this.#partition(Buffer.from(key, 'hex'));
        if (this.#replicated.get(partition) == null) continue;
        const holder = this.#writeLocks.get(key);
        if (holder !== undefined && holder !== ttidKey) notify.delete(partition);
        this.#writeLocks.set(key, ttidKey);
      }
    }
    if (notify.size === 0) return;
    for (const partition of notify) {
      this.#hooks.notifyReplicationDone(partition, this.#replicated.get(partition)!);
      this.#replicated.set(partition, null);
    }
    // Every OID of those partitions is now locked the normal way, conflicts checked on our data.
    for (const [key, ttidKey] of [...this.#writeLocks]) {
      const oid = Buffer.from(key, 'hex');
      if (!notify.has(this.#partition(oid))) continue;
      this.#writeLocks.delete(key);
      const txn = this.#transactions.get(ttidKey);
      assert(txn !== undefined, 'write lock held by an unknown transaction');
      txn.lockless.delete(key);
      const stored = txn.serials.get(key);
      assert(stored !== undefined, 'write lock without a store or check');
      const result = this.#lockObject(txn, stored.serial, oid);
      assert(result !== DELAYED && result !== 'lockless', 'relock after replication must not wait');
      // A conflict here drops the store on this node only: the client got its answer elsewhere.
      if (Buffer.isBuffer(result)) this.#unstore(txn, key);
    }
  }

  // --- Reads -----------------------------------------------------------------------------------

  /** The OID's new revision is being committed (between lock and unlock). */
  isReadLocked(oid: Buffer): boolean {
    return this.#readLocks.has(hex(oid));
  }

  /** Some transaction is locked with a TID ≤ tid (its records are not all visible yet). */
  isLockedTid(tid: Buffer): boolean {
    for (const txn of this.#transactions.values()) {
      if (txn.tid !== null && compareIds(txn.tid, tid) <= 0) return true;
    }
    return false;
  }

  /** AskFinalTID: the TID of a locked transaction, or the one recorded with its TTID. */
  getFinalTID(ttid: Buffer): Buffer | null {
    const txn = this.get(ttid);
    if (txn !== undefined) return txn.tid;
    return this.#backend.getFinalTID(ttid);
  }

  /** What the undoing transaction already stored for an OID: its data serial or its TTID. */
  storedSerial(ttid: Buffer, oid: Buffer): Buffer | null {
    const entry = this.get(ttid)?.stores.get(hex(oid));
    return entry === undefined ? null : entry.dataSerial ?? ttid;
  }

  // --- Delayed requests ------------------------------------------------------------------------

  /** Queues a store/check/relock; queued ones are retried oldest TTID first. */
  delayStore(ttid: Buffer, retry: () => boolean): void {
    assert(this.#storeQueue.length < MAX_DELAYED_REQUESTS, 'too many delayed stores');
    const index = this.#storeQueue.findIndex((r) => r.ttid !== null && compareIds(ttid, r.ttid) < 0);
    const request = { ttid, retry };
    if (index < 0) this.#storeQueue.push(request);
    else this.#storeQueue.splice(index, 0, request);
  }

  delayRead(retry: () => boolean): void {
    assert(this.#readQueue.length < MAX_DELAYED_REQUESTS, 'too many delayed reads');
    this.#readQueue.push({ ttid: null, retry });
  }

  /** Retries every delayed request, in order, after locks were released. */
  retryDelayed(): void {
    if (this.#retrying) {
      this.#retryAgain = true;
      return;
    }
    this.#retrying = true;
    try {
      do {
        this.#retryAgain = false;
        this.#readQueue = this.#retryQueue(this.#readQueue);
        this.#storeQueue = this.#retryQueue(this.#storeQueue);
      } while (this.#retryAgain);
    } finally {
      this.#retrying = false;
    }
  }

  #retryQueue(queue: DelayedRequest[]): DelayedRequest[] {
    const waiting: DelayedRequest[] = [];
    for (const request of queue) if (!request.retry()) waiting.push(request);
    return waiting;
  }
}
