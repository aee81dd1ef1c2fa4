// The primary master's transaction manager (transactions.md §1-§3, §10, §12): TTID and final
// TID allocation, OID allocation, the commit queue in TID order and the lock answers each
// prepared transaction waits for. Pure bookkeeping: sending packets is the caller's business.

import assert from 'node:assert/strict';
import { ZERO_OID, ZERO_TID, MAX_TID, compareIds, finalTid, nextTid, p64, partitionOf, u64 } from '../protocol/ids.js';

export interface Transaction {
  readonly ttid: Buffer;
  /** The client that began it (its nid). */
  readonly clientNid: number;
  /** Readiness counter at begin: only storages ready by then are asked to lock. */
  readonly readiness: number;
  /** The TID imposed by the client at begin, if any. */
  readonly imposedTid: Buffer | null;
  /** Storages whose writes failed, accepted by FailedVote. */
  readonly failed: Set<number>;
  /** Storages to notify at the end (replicating storages that asked for unfinished ones). */
  readonly notify: Set<number>;
  prepared: boolean;
  tid: Buffer | null;
  oids: Buffer[];
  /** Storages that must lock before completion, and those that did. */
  involved: Set<number>;
  locked: Set<number>;
  /** Message id of AskFinishTransaction on the client connection. */
  finishMsgId: number;
  packApproved: boolean;
  /** AskFinalTID requests waiting for the outcome: (client nid, message id). */
  readonly finalTidWaiters: { nid: number; msgId: number }[];
}

const key = (id: Buffer): string => id.toString('hex');

export class TransactionManager {
  /** Last committed TID; null until the first commit after verification of an empty database. */
  lastTid: Buffer | null = null;
  /** First committed TID (MAX_TID for an empty database). */
  firstTid: Buffer = MAX_TID;
  lastOid: Buffer = ZERO_OID;
  /** The greatest TTID or TID handed out: new ones are strictly above it. */
  private lastIssued: Buffer = ZERO_TID;
  private readonly pending = new Map<string, Transaction>();
  /** Prepared transactions in TID order. */
  private readonly queue: Transaction[] = [];

  /** Forgets every transaction (a recovery starts again from the storages' view). */
  reset(): void {
    this.pending.clear();
    this.queue.length = 0;
  }

  /** Sets the ids learnt from the storages at verification. */
  setLastIds(lastTid: Buffer | null, lastOid: Buffer | null, firstTid: Buffer): void {
    this.lastTid = lastTid;
    this.lastOid = lastOid ?? ZERO_OID;
    this.firstTid = firstTid;
    if (lastTid !== null && compareIds(lastTid, this.lastIssued) > 0) this.lastIssued = lastTid;
  }

  get(ttid: Buffer): Transaction | undefined {
    return this.pending.get(key(ttid));
  }

  all(): Transaction[] {
    return [...this.pending.values()];
  }

  get hasPending(): boolean {
    return this.pending.size > 0;
  }

  /** Whether a transaction with an imposed TID is pending: nothing may run beside it. */
  get hasImposed(): boolean {
    return this.all().some((txn) => txn.imposedTid !== null);
  }

  begin(clientNid: number, nowTid: Buffer, readiness: number, imposedTid: Buffer | null): Transaction {
    let ttid: Buffer;
    if (imposedTid !== null) {
      ttid = Buffer.from(imposedTid);
    } else {
      ttid = nextTid(nowTid, this.lastIssued);
    }
    if (compareIds(ttid, this.lastIssued) > 0) this.lastIssued = ttid;
    const txn: Transaction = {
      ttid, clientNid, readiness, imposedTid, failed: new Set(), notify: new Set(),
      prepared: false, tid: null, oids: [], involved: new Set(), locked: new Set(),
      finishMsgId: 0, packApproved: false, finalTidWaiters: [],
    };
    this.pending.set(key(ttid), txn);
    return txn;
  }

  /** `count` consecutive new OIDs after the greatest known one. */
  newOids(count: number): Buffer[] {
    const first = u64(this.lastOid) + 1n;
    const oids = Array.from({ length: count }, (_, i) => p64(first + BigInt(i)));
    if (count > 0) this.lastOid = oids[oids.length - 1]!;
    return oids;
  }

  /** Chooses the final TID and queues the transaction; the caller asks the locks. */
  prepare(txn: Transaction, oids: Buffer[], involved: Set<number>, msgId: number, nowTid: Buffer, numPartitions: number): Buffer {
    assert(!txn.prepared);
    const tid = txn.imposedTid ?? finalTid(nowTid, txn.ttid, this.lastIssued, numPartitions);
    assert(partitionOf(tid, numPartitions) === partitionOf(txn.ttid, numPartitions));
    if (compareIds(tid, this.lastIssued) > 0) this.lastIssued = tid;
    txn.prepared = true;
    txn.tid = tid;
    txn.oids = oids;
    txn.involved = involved;
    txn.finishMsgId = msgId;
    for (const oid of oids) if (compareIds(oid, this.lastOid) > 0) this.lastOid = Buffer.from(oid);
    this.queue.push(txn);
    return tid;
  }

  /** A storage answered AnswerInformationLocked. */
  lock(ttid: Buffer, nid: number): void {
    this.get(ttid)?.locked.add(nid);
  }

  /** A storage is lost: no prepared transaction waits for it any more. */
  forgetStorage(nid: number): void {
    for (const txn of this.queue) txn.involved.delete(nid);
  }

  /**
   * Removes and returns the prepared transactions that can complete now: those at the head of
   * the queue whose every involved storage locked, in TID order.
   */
  takeCompleted(): Transaction[] {
    const done: Transaction[] = [];
    while (this.queue.length > 0) {
      const head = this.queue[0]!;
      if ([...head.involved].some((nid) => !head.locked.has(nid))) break;
      this.queue.shift();
      this.pending.delete(key(head.ttid));
      assert(head.tid !== null);
      this.lastTid = head.tid;
      if (compareIds(head.tid, this.firstTid) < 0) this.firstTid = head.tid;
      done.push(head);
    }
    return done;
  }

  /** Forgets an unprepared transaction (abort). */
  remove(txn: Transaction): void {
    assert(!txn.prepared || !this.queue.includes(txn));
    this.pending.delete(key(txn.ttid));
  }
}
