// Replication of this node's OUT_OF_DATE cells from readable cells of other storage nodes
// (storage.md §5): ask the master which transactions are unfinished, replicate each partition up to
// the last committed TID (transactions, then objects, in chunks of FETCH_COUNT, committing the
// resume point per chunk), wait for the unfinished transactions, then let the transaction manager
// convert lockless writes and notify the master. One partition at a time; resumable.

import assert from 'node:assert/strict';
import type { TimerHandle } from '../core/env.js';
import type { NodeEntry } from '../core/node-table.js';
import type { Connection } from '../net/connection.js';
import { CellStates, NodeStates, NodeTypes } from '../protocol/enums.js';
import { errorFromCode } from '../protocol/errors.js';
import { INVALID_TID, ZERO_OID, compareIds, nidToString, p64, partitionOf, tidToHex, u64 } from '../protocol/ids.js';
import type { ArgsOf, PacketName } from '../protocol/packets.js';
import type { CellChange } from './backends/backend.js';
import { cellStateOf, isReadableState } from './backends/backend.js';
import type { StorageApp } from './app.js';
import { connectStorage } from './peers.js';

/** Transactions or object records per round trip (storage.md §5.7). */
export const FETCH_COUNT = 1000;
/** Delay before trying again after a failed replication, or while no source is available. */
const RETRY_MS = 1000;

interface PartitionState {
  /** Smallest TID whose transaction metadata is not known to be replicated. */
  nextTrans: Buffer;
  /** Same for object records (pt.tid + 1 once committed). */
  nextObj: Buffer;
  /** Greatest unfinished TTID to wait for (INVALID_TID: the master's list is awaited). */
  maxTtid: Buffer | null;
}

interface CurrentReplication {
  readonly partition: number;
  readonly node: NodeEntry<Connection>;
  /** Replicate up to this TID (included). */
  readonly maxTid: Buffer;
  conn: Connection | null;
  /** Id of the request in progress: packets streamed with another id are stale. */
  msgId: number | null;
}

type Row = ArgsOf<'AnswerFetchObjects'>[2];

const hex = (id: Buffer) => id.toString('hex');
const plusOne = (tid: Buffer) => p64(u64(tid) + 1n);

export class Replicator {
  readonly #app: StorageApp;
  /** Own OUT_OF_DATE cells. */
  readonly #partitions = new Map<number, PartitionState>();
  /** Partitions queued for replication, with the TID to replicate up to. */
  readonly #queue = new Map<number, Buffer>();
  /** Unfinished TTIDs (hex) the master will tell us about when they end. */
  readonly #ttids = new Set<string>();
  #current: CurrentReplication | null = null;
  /** After a failure: the partition to try last, to give another source a chance. */
  #failed: number | null = null;
  #retryTimer: TimerHandle | null = null;
  #stopped = false;

  constructor(app: StorageApp) {
    this.#app = app;
  }

  /** The partition being replicated, if any (tests and logs). */
  get currentPartition(): number | null {
    return this.#current?.partition ?? null;
  }

  /** Start of operation: every own OUT_OF_DATE cell resumes where its pt.tid says. */
  start(): void {
    const outdated: number[] = [];
    for (const { partition, next } of this.#app.backend.getCellNextTIDs()) {
      if (next === null || this.#app.backend.isReadable(partition)) continue;
      this.#partitions.set(partition, { nextTrans: next.trans, nextObj: next.obj, maxTtid: INVALID_TID });
      outdated.push(partition);
    }
    if (outdated.length > 0) this.#replicating(outdated);
  }

  /** End of operation: what is in progress is forgotten (the app closes the connections). */
  stop(): void {
    this.#stopped = true;
    this.#retryTimer?.cancel();
    this.#retryTimer = null;
    this.#current = null;
  }

  /** Lockless writes start now; the master's list of unfinished transactions is awaited. */
  #replicating(partitions: number[]): void {
    const app = this.#app;
    app.tm.replicating(partitions);
    const master = app.masterConnection;
    assert(master !== null, 'replication without a master');
    master.ask('AskUnfinishedTransactions', [partitions], (answer) => {
      if (this.#stopped || answer === null) return;
      if (answer.info.name === 'Error') {
        const [code, message] = answer.args as ArgsOf<'Error'>;
        app.logger.error(`master refused AskUnfinishedTransactions: ${errorFromCode(code, message).toString()}`);
        return;
      }
      const [lastTid, ttids] = answer.args as ArgsOf<'AnswerUnfinishedTransactions'>;
      this.#unfinished(lastTid, ttids, partitions);
    });
  }

  #unfinished(lastTid: Buffer, ttids: Buffer[], partitions: number[]): void {
    let maxTtid: Buffer | null = null;
    for (const ttid of ttids) {
      this.#ttids.add(hex(ttid));
      if (maxTtid === null || compareIds(ttid, maxTtid) > 0) maxTtid = ttid;
    }
    for (const p of partitions) {
      const state = this.#partitions.get(p);
      if (state === undefined) continue; // discarded meanwhile
      state.maxTtid = maxTtid;
      this.#queue.set(p, lastTid);
    }
    this.#next();
  }

  /** NotifyTransactionFinished (with its TID) or AbortTransaction (null) from the master. */
  transactionFinished(ttid: Buffer, tid: Buffer | null): void {
    if (!this.#ttids.delete(hex(ttid))) return;
    let minTtid = INVALID_TID;
    for (const key of this.#ttids) {
      const pending = Buffer.from(key, 'hex');
      if (compareIds(pending, minTtid) < 0) minTtid = pending;
    }
    for (const [p, state] of this.#partitions) {
      if (state.maxTtid === null) continue;
      // Re-queued even if older transactions remain: simple, and right if they are aborted.
      if (tid !== null) this.#queue.set(p, tid);
      if (compareIds(state.maxTtid, minTtid) < 0) {
        if (this.#current?.partition !== p && !this.#queue.has(p)) {
          // Aborted transactions only: the data replicated so far is complete.
          this.#app.tm.replicated(p, state.maxTtid);
        }
        state.maxTtid = null;
      }
    }
    this.#next();
  }

  /** NotifyPartitionChanges applied to the backend while operational. */
  partitionsChanged(cells: readonly CellChange[]): void {
    const app = this.#app;
    const added: number[] = [];
    const readable: number[] = [];
    let abort = false;
    for (const { partition, nid, state } of cells) {
      if (nid !== app.nid) continue;
      if (state === CellStates.OUT_OF_DATE) {
        if (this.#partitions.has(partition)) continue;
        const next = app.backend.getCellNextTIDs().find((c) => c.partition === partition)?.next;
        assert(next != null, `new OUT_OF_DATE cell ${partition} without a resume point`);
        this.#partitions.set(partition, { nextTrans: next.trans, nextObj: next.obj, maxTtid: INVALID_TID });
        added.push(partition);
        continue;
      }
      // Discarded, corrupted or readable: nothing more to replicate here.
      if (isReadableState(state)) readable.push(partition);
      if (this.#partitions.delete(partition)) {
        this.#queue.delete(partition);
        abort ||= this.#current?.partition === partition;
      }
    }
    if (readable.length > 0) app.tm.readable(readable);
    if (added.length > 0) this.#replicating(added);
    if (abort) this.#abort('partition no longer out of date here', false);
  }

  // --- Choosing the partition and its source (§5.3) -------------------------------------------

  #next(): void {
    if (this.#stopped || this.#current !== null || this.#retryTimer !== null || this.#queue.size === 0) return;
    const app = this.#app;
    const order = [...this.#queue.keys()].sort((a, b) => this.#compareForNext(a, b));
    for (const partition of order) {
      const sources = this.#sources(partition);
      if (sources.length === 0) continue;
      const node = sources[app.env.random.int(sources.length)]!;
      const maxTid = this.#queue.get(partition)!;
      this.#queue.delete(partition);
      this.#failed = null;
      this.#begin({ partition, node, maxTid, conn: null, msgId: null });
      return;
    }
    app.logger.warn(`no running source for partitions ${order.join(', ')}: waiting`);
    this.#retryLater();
  }

  /** Furthest behind first, then partitions without unfinished transactions; the last failure last. */
  #compareForNext(a: number, b: number): number {
    if ((a === this.#failed) !== (b === this.#failed)) return a === this.#failed ? 1 : -1;
    const pa = this.#partitions.get(a)!;
    const pb = this.#partitions.get(b)!;
    return compareIds(pa.nextObj, pb.nextObj)
      || Number(pa.maxTtid !== null) - Number(pb.maxTtid !== null)
      || a - b;
  }

  /** RUNNING storage nodes (other than us) with a readable cell of the partition. */
  #sources(partition: number): NodeEntry<Connection>[] {
    const app = this.#app;
    const sources: NodeEntry<Connection>[] = [];
    for (const cell of app.backend.getPartitionTable()) {
      if (cell.partition !== partition || cell.nid === app.nid || !isReadableState(cellStateOf(cell.tid))) continue;
      const node = app.nodes.byNid(cell.nid);
      if (node?.type === NodeTypes.STORAGE && node.state === NodeStates.RUNNING && node.address !== null) sources.push(node);
    }
    return sources;
  }

  #retryLater(): void {
    this.#retryTimer = this.#app.env.timers.after(RETRY_MS, () => {
      this.#retryTimer = null;
      this.#next();
    });
  }

  /** Uses the connection to the source if there is one, else opens and identifies one (§5.3). */
  #begin(current: CurrentReplication): void {
    const app = this.#app;
    this.#current = current;
    const { node } = current;
    app.logger.info(`replicating partition ${current.partition} up to ${tidToHex(current.maxTid)}`
      + ` from ${nidToString(node.nid!)}`);
    if (node.connection !== null && !node.connection.isClosed) {
      current.conn = node.connection;
      this.#fetchTransactions(null);
      return;
    }
    current.conn = connectStorage(app, node, (error) => {
      if (this.#current !== current) return; // a closed connection aborts by itself
      if (error !== null) this.#abort(error, true);
      else this.#fetchTransactions(null);
    });
  }

  // --- Fetching (§5.4) -------------------------------------------------------------------------

  /** Whether a packet streamed on `conn` belongs to the request in progress. */
  isReplicatingConnection(conn: Connection): boolean {
    const current = this.#current;
    return current !== null && current.conn === conn && current.msgId === conn.peerMsgId;
  }

  #ask<N extends PacketName>(name: N, args: ArgsOf<N>, answered: (args: unknown[]) => void): void {
    const current = this.#current;
    assert(current !== null && current.conn !== null, 'no replication in progress');
    current.msgId = null;
    const msgId = current.conn.ask(name, args, (answer) => {
      if (this.#current !== current) return; // aborted meanwhile: stale answer
      if (answer === null) {
        this.#abort('connection closed', true);
        return;
      }
      if (answer.msgId !== current.msgId) return;
      if (answer.info.name === 'Error') {
        const [code, message] = answer.args as ArgsOf<'Error'>;
        this.#abort(`source answered ${errorFromCode(code, message).toString()}`, true);
        return;
      }
      answered(answer.args);
    });
    if (this.#current === current && msgId >= 0) current.msgId = msgId;
  }

  #state(): { current: CurrentReplication; state: PartitionState } {
    const current = this.#current;
    assert(current !== null, 'no replication in progress');
    const state = this.#partitions.get(current.partition);
    assert(state !== undefined, 'replicating a partition that is not out of date');
    return { current, state };
  }

  #fetchTransactions(minTid: Buffer | null): void {
    const { current, state } = this.#state();
    const backend = this.#app.backend;
    const first = minTid === null;
    if (minTid === null) {
      minTid = state.nextTrans;
    } else {
      // More than one chunk: maybe a full replication, do not start again from the beginning.
      backend.commit();
      state.nextTrans = minTid;
    }
    const { partition, maxTid } = current;
    const mine = backend.getReplicationTIDList(minTid, maxTid, FETCH_COUNT, partition);
    this.#ask('AskFetchTransactions', [partition, FETCH_COUNT, minTid, maxTid, mine, first], (args) => {
      const [nextTid, toDelete, completedPack] = args as ArgsOf<'AnswerFetchTransactions'>;
      if (!this.#inPartition(toDelete, 'transactions')) return;
      for (const tid of toDelete) backend.deleteTransaction(tid);
      if (completedPack !== null) backend.updateCompletedPackByReplication(partition, completedPack);
      if (nextTid !== null) this.#fetchTransactions(nextTid);
      else this.#fetchObjects(null, ZERO_OID);
    });
  }

  /** AddTransaction streamed by the source. */
  addTransaction(...[tid, user, description, ext, packed, ttid, oids, pack]: ArgsOf<'AddTransaction'>): void {
    if (!this.#inPartition([tid], 'AddTransaction')) return;
    const backend = this.#app.backend;
    backend.addTransaction(tid, { oids, user, description, ext, packed, ttid });
    if (pack !== null) {
      const [approved, partial, packOids, packTid] = pack;
      backend.storePackOrder(tid, { approved, partial, oids: packOids, packTid });
    }
  }

  #fetchObjects(minTid: Buffer | null, minOid: Buffer): void {
    const { current, state } = this.#state();
    const backend = this.#app.backend;
    const { partition, maxTid } = current;
    if (minTid === null) {
      // The transactions just fetched are committed with the first objects, not alone: one
      // fsync fewer per partition; a crash in between only costs fetching them again.
      minTid = state.nextObj;
      state.nextTrans = plusOne(maxTid);
    } else {
      state.nextObj = minTid;
      // Everything strictly below minTid is here: that is where a restart resumes.
      if (u64(minTid) > 0n) this.#raiseCellTid(partition, p64(u64(minTid) - 1n));
      backend.commit();
    }
    const mine = new Map<string, [Buffer, Buffer[]]>();
    for (const { serial, oid } of backend.getReplicationObjectList(minTid, maxTid, FETCH_COUNT, partition, minOid)) {
      const entry = mine.get(hex(serial));
      if (entry === undefined) mine.set(hex(serial), [serial, [oid]]);
      else entry[1].push(oid);
    }
    const known: Row = new Map([...mine.values()]);
    this.#ask('AskFetchObjects', [partition, FETCH_COUNT, minTid, maxTid, minOid, known], (args) => {
      const [nextTid, nextOid, toDelete] = args as ArgsOf<'AnswerFetchObjects'>;
      const oids = [...toDelete.values()].flat();
      if (!this.#inPartition(oids, 'objects')) return;
      for (const [serial, list] of toDelete) for (const oid of list) backend.deleteObject(oid, serial);
      if (nextTid !== null) this.#fetchObjects(nextTid, nextOid ?? ZERO_OID);
      else this.#finish();
    });
  }

  /** AddObject streamed by the source: an undo record reuses local data when it is here. */
  addObject(...[oid, serial, compression, checksum, data, dataSerial]: ArgsOf<'AddObject'>): void {
    if (!this.#inPartition([oid], 'AddObject')) return;
    const backend = this.#app.backend;
    const noData = data.length === 0 && checksum.every((byte) => byte === 0);
    const dataId = backend.storeData(oid, noData ? null : { compression, checksum, data }, dataSerial);
    backend.addObject(oid, serial, dataId, dataSerial);
  }

  /** Ids sent by the source must be of the partition replicated; otherwise it is aborted. */
  #inPartition(ids: readonly Buffer[], what: string): boolean {
    const { partition } = this.#state().current;
    const np = this.#app.backend.getNumPartitions();
    if (ids.every((id) => partitionOf(id, np) === partition)) return true;
    this.#current?.conn?.close();
    this.#abort(`source sent ${what} of another partition`, true);
    return false;
  }

  #raiseCellTid(partition: number, tid: Buffer): void {
    const backend = this.#app.backend;
    const cell = backend.getPartitionTable().find((c) => c.partition === partition && c.nid === this.#app.nid);
    assert(cell !== undefined && cell.tid >= 0n, `own cell of partition ${partition} is not out of date`);
    if (u64(tid) > cell.tid) backend.updateCellTID(partition, tid);
  }

  /** The partition has every record up to maxTid (§5.5). */
  #finish(): void {
    const { current, state } = this.#state();
    const app = this.#app;
    const { partition, maxTid } = current;
    this.#current = null;
    state.nextObj = plusOne(maxTid);
    this.#raiseCellTid(partition, maxTid);
    app.backend.commit();
    app.logger.info(`partition ${partition} replicated up to ${tidToHex(maxTid)} from ${nidToString(current.node.nid!)}`);
    if (state.maxTtid === null && !this.#queue.has(partition)) app.tm.replicated(partition, maxTid);
    this.#next();
  }

  // --- Abort and retry (§5.6) ------------------------------------------------------------------

  /** The source connection closed (an incoming or outgoing storage connection). */
  connectionLost(conn: Connection): void {
    if (this.#current?.conn === conn) this.#abort('connection to the source lost', true);
  }

  /**
   * Abandons the partition in progress, re-queued with the same target unless it is no longer
   * out of date here; after a failure of the source, the next attempt waits a little.
   */
  #abort(reason: string, failure: boolean): void {
    const current = this.#current;
    if (current === null) return;
    this.#current = null;
    const { partition } = current;
    this.#app.logger.warn(`replication of partition ${partition} aborted: ${reason}`);
    if (this.#partitions.has(partition)) {
      if (!this.#queue.has(partition)) this.#queue.set(partition, current.maxTid);
      if (failure) this.#failed = partition;
    }
    if (failure && this.#queue.size > 0 && !this.#stopped && this.#retryTimer === null) this.#retryLater();
    else this.#next();
  }
}
