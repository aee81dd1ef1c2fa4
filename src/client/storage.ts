// The client library: a ZODB-style storage on a NEO cluster (zodb-api.md, transactions.md §3-§17).
// It keeps one connection to the primary master (identification, node list, partition table,
// TTIDs, OIDs, finish, invalidations) and opens connections to storage nodes on demand (reads,
// stores, votes). Everything that changes shared state happens in packet callbacks, run to
// completion; the async API methods only wait for answers.

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { deflateSync, inflateSync } from 'node:zlib';
import type { Address, Env, Logger, TimerHandle } from '../core/env.js';
import { formatAddress } from '../core/address.js';
import { NodeTable, sameAddress } from '../core/node-table.js';
import type { NodeEntry } from '../core/node-table.js';
import { PartitionTable } from '../core/partition-table.js';
import { Connection, ConnectionClosedError, heartbeatFor } from '../net/connection.js';
import type { Packet } from '../protocol/codec.js';
import { ErrorCodes, NodeStates, NodeTypes } from '../protocol/enums.js';
import { NeoError, errorFromCode } from '../protocol/errors.js';
import {
  INVALID_PARTITION,
  MAX_TID,
  ZERO_HASH,
  ZERO_TID,
  compareIds,
  nidToString,
  p64,
  partitionOf,
  tidFromTime,
  tidToHex,
  timeFromTid,
  u64,
} from '../protocol/ids.js';
import type { ArgsOf, PacketName } from '../protocol/packets.js';
import { ClientCache } from './cache.js';
import {
  ConflictError,
  NEOPrimaryMasterLost,
  POSKeyError,
  ReadConflictError,
  ReadOnlyError,
  StorageClosedError,
  StorageError,
  StorageTransactionError,
  UndoError,
} from './errors.js';
import { masterBootstrapHandler, primaryMasterHandler, storageHandler } from './handlers.js';
import type { ClientApp } from './handlers.js';
import { dumpsExtension, loadsExtension } from './pickle.js';
import type { PickleDict } from './pickle.js';

/** NEO's default client cache size (transactions.md §19). */
export const DEFAULT_CACHE_SIZE_BYTES = 20 * 1024 * 1024;
/** OIDs asked from the master at once. */
const NEW_OIDS_BATCH = 100;
/** Delay between two rounds of connection attempts to the masters. */
const MASTER_RETRY_DELAY_MS = 1000;
/** A storage whose connection failed within this time is tried last for reads (§13.3). */
const FAILURE_MEMORY_MS = 600_000;
/** Rounds over the readable cells (with a sync in between) before a read gives up. */
const MAX_READ_ROUNDS = 5;
/** TIDs asked per partition and per step of `iterator`. */
const ITERATOR_CHUNK = 100;
/** undoLog: attempts (and delay between them) to see the last committed transaction listed. */
const UNDO_LOG_RETRIES = 20;
const UNDO_LOG_RETRY_MS = 5;

/** The metadata object of a commit; compared by identity, as ZODB does. */
export interface TransactionMeta {
  user?: string | Buffer;
  description?: string | Buffer;
  extension?: PickleDict;
}

/**
 * Merges a conflict: the state the transaction started from, the state committed meanwhile, and
 * the state this transaction wants to store. Returns the merged data, or throws to give up.
 */
export type ConflictResolver = (oid: Buffer, oldState: Buffer, committedState: Buffer, newState: Buffer) => Buffer | Promise<Buffer>;

export interface NeoStorageOptions {
  env: Env;
  clusterName: string;
  masterNodes: Address[];
  /** zlib-compress stored data when that makes it smaller (default true). */
  compress?: boolean;
  compressLevel?: number;
  readOnly?: boolean;
  /** Bytes of object data cached; 0 disables the cache. Default 20 MiB. */
  cacheSizeBytes?: number;
  /** Return data even when its checksum is wrong on every storage. */
  ignoreWrongChecksum?: boolean;
  resolveConflict?: ConflictResolver;
  /**
   * How long open() may wait for a usable primary master (a cluster not RUNNING yet is refused
   * until it is) before rejecting with the last reason. Default: wait for ever, as NEO does.
   */
  openTimeoutMs?: number;
}

export interface LoadResult {
  data: Buffer;
  serial: Buffer;
}

export interface LoadBeforeResult extends LoadResult {
  nextSerial: Buffer | null;
}

export interface TransactionInfo {
  tid: Buffer;
  time: number;
  user: Buffer;
  description: Buffer;
  extension: PickleDict;
  extensionBytes: Buffer;
  packed: boolean;
  oids: Buffer[];
}

export interface HistoryEntry {
  tid: Buffer;
  serial: Buffer;
  time: number;
  user: Buffer;
  description: Buffer;
  extension: PickleDict;
  /** Length of the stored (possibly compressed) record; 0 for a deletion. */
  size: number;
}

export interface UndoLogEntry {
  /** The tid to pass to `undo`. */
  id: Buffer;
  time: number;
  user: Buffer;
  description: Buffer;
  extension: PickleDict;
}

export interface DataRecord {
  oid: Buffer;
  tid: Buffer;
  /** null for a deletion (or an undone creation). */
  data: Buffer | null;
  /** The transaction whose data this record reuses (undo back-pointer), if any. */
  dataTxn: Buffer | null;
}

export interface TransactionRecord extends TransactionInfo {
  /** ' ' or 'p' (packed). */
  status: string;
  records: DataRecord[];
}

export type InvalidationListener = (tid: Buffer, oids: Buffer[]) => void;

/** The data of a store in flight for the checks of readCurrent. */
const CHECKED = Symbol('checked');

interface StoreEntry {
  readonly oid: Buffer;
  /** Raw data; null for a deletion; CHECKED for readCurrent. */
  readonly data: Buffer | null | typeof CHECKED;
  readonly serial: Buffer;
  readonly pending: Set<number>;
  /**
   * Still being sent: the cells answered so far may not be all, e.g. while connecting to the next
   * one. Completing the store then would drop a conflict that cell reports later.
   */
  sending: boolean;
  /** Some node accepted it (locked, or lockless). */
  acked: boolean;
}

interface TxnContext {
  readonly txn: TransactionMeta;
  ttid: Buffer;
  /** Storage nid → connection, or null once a write to it failed. */
  readonly involved: Map<number, Connection | null>;
  /** Stores and checks waiting for answers, by oid hex. */
  readonly dataDict: Map<string, StoreEntry>;
  /** Stores acknowledged by every node: data kept for the cache (null: not kept). */
  readonly cacheDict: CompletedStores;
  readonly conflicts: Map<string, Buffer>;
  readonly resolved: Map<string, Buffer>;
  readonly deleted: Set<string>;
  /** Every oid stored, deleted or checked, in first-store order. */
  readonly oidOrder: Buffer[];
  readonly lockless: Map<number, Set<number>>;
  inflight: number;
  idleWaiters: (() => void)[];
  failure: Error | null;
  stored: boolean;
  voted: boolean;
  finishing: boolean;
  masterLost: boolean;
  pack: ArgsOf<'AskFinishTransaction'>[4];
  resolvedOids: Buffer[];
}

interface ObjectAnswer {
  oid: Buffer;
  serial: Buffer;
  nextSerial: Buffer | null;
  /** null for a deletion (empty data and zero checksum). */
  data: Buffer | null;
  dataSerial: Buffer | null;
}

function hex(id: Buffer): string {
  return id.toString('hex');
}

function sha1(data: Buffer): Buffer {
  return createHash('sha1').update(data).digest();
}

function toBytes(value: string | Buffer | undefined): Buffer {
  if (value === undefined) return Buffer.alloc(0);
  return typeof value === 'string' ? Buffer.from(value, 'utf8') : value;
}

function tidPlusOne(tid: Buffer): Buffer {
  return p64(u64(tid) + 1n);
}

/** Ids go on the wire as 8 bytes: anything else is the caller's mistake, refused before any I/O. */
function checkId(what: string, id: Buffer): void {
  if (!Buffer.isBuffer(id) || id.length !== 8) {
    const got = Buffer.isBuffer(id) ? `${id.length} bytes` : typeof id;
    throw new TypeError(`${what} must be a Buffer of 8 bytes, got ${got}`);
  }
}

function maxId(a: Buffer, b: Buffer): Buffer {
  return compareIds(a, b) >= 0 ? a : b;
}

/**
 * The stores of a transaction acknowledged by every node, with the total size of the data kept
 * for the cache: summing it at each answer made a transaction of n stores cost n² steps.
 */
class CompletedStores extends Map<string, { oid: Buffer; data: Buffer | null | typeof CHECKED }> {
  keptBytes = 0;

  override set(key: string, value: { oid: Buffer; data: Buffer | null | typeof CHECKED }): this {
    this.delete(key);
    if (Buffer.isBuffer(value.data)) this.keptBytes += value.data.length;
    return super.set(key, value);
  }

  override delete(key: string): boolean {
    const old = super.get(key);
    if (old !== undefined && Buffer.isBuffer(old.data)) this.keptBytes -= old.data.length;
    return super.delete(key);
  }

  override clear(): void {
    this.keptBytes = 0;
    super.clear();
  }
}

export class NeoStorage implements ClientApp {
  readonly clusterName: string;
  readonly readOnly: boolean;
  readonly cache: ClientCache;
  private readonly env: Env;
  private readonly logger: Logger;
  private readonly masterAddresses: Address[];
  private readonly compress: boolean;
  private readonly compressLevel: number | undefined;
  private readonly ignoreWrongChecksum: boolean;
  private readonly resolveConflict: ConflictResolver | undefined;

  private nid: number | null = null;
  private idTimestamp: number | null = null;
  private master: Connection | null = null;
  /** Identified, with a partition table and the last TID: operations may proceed. */
  private masterReady = false;
  private connecting: Promise<Connection> | null = null;
  private readyWaiter: { resolve: (c: Connection) => void; reject: (e: Error) => void } | null = null;
  private pendingRedirect: Address | null = null;
  private readonly nodes = new NodeTable<Connection>();
  private pt: PartitionTable | null = null;
  private lastTid: Buffer | null = null;
  /** Bumped at every (re)connection to the master: loads started before may not fill the cache. */
  private generation = 0;
  private oidPool: Buffer[] = [];
  private oidRequest: Promise<void> | null = null;
  private readonly txns = new Map<TransactionMeta, TxnContext>();
  private readonly storageConnecting = new Map<number, Promise<Connection>>();
  private readonly failureTimes = new Map<number, number>();
  /** Invalidation TIDs seen while a load of the oid is in flight (§13.2). */
  private readonly loading = new Map<string, Buffer[][]>();
  private readonly invalidationListeners = new Set<InvalidationListener>();
  private readonly cacheInvalidationListeners = new Set<() => void>();
  private retryTimer: TimerHandle | null = null;
  private readonly openTimeoutMs: number | undefined;
  /** Why the last attempt to use a master failed, for the warnings and open()'s error. */
  private lastMasterFailure = 'no master answered';
  private closed = false;

  constructor(options: NeoStorageOptions) {
    assert(options.masterNodes.length > 0, 'at least one master address is needed');
    this.env = options.env;
    this.logger = options.env.logger.child('client');
    this.clusterName = options.clusterName;
    this.masterAddresses = [...options.masterNodes];
    this.compress = options.compress ?? true;
    this.compressLevel = options.compressLevel;
    this.readOnly = options.readOnly ?? false;
    this.ignoreWrongChecksum = options.ignoreWrongChecksum ?? false;
    this.resolveConflict = options.resolveConflict;
    this.openTimeoutMs = options.openTimeoutMs;
    this.cache = new ClientCache(options.cacheSizeBytes ?? DEFAULT_CACHE_SIZE_BYTES);
  }

  /** Connects to the primary master and waits until the storage is usable. */
  async open(): Promise<this> {
    const ready = this.ensureMaster();
    if (this.openTimeoutMs === undefined) {
      await ready;
      return this;
    }
    const timeoutMs = this.openTimeoutMs;
    const timer = this.env.timers.after(timeoutMs, () => {
      this.connectFailed(new StorageError(
        `no usable primary master for cluster ${JSON.stringify(this.clusterName)} after ${timeoutMs} ms: ${this.lastMasterFailure}`));
    });
    try {
      await ready;
    } finally {
      timer.cancel();
    }
    return this;
  }

  // === master connection ======================================================================

  private ensureMaster(): Promise<Connection> {
    if (this.closed) return Promise.reject(new StorageClosedError());
    if (this.master !== null && this.masterReady) return Promise.resolve(this.master);
    if (this.connecting === null) {
      this.connecting = new Promise<Connection>((resolve, reject) => {
        this.readyWaiter = { resolve, reject };
      });
      this.connecting.catch(() => undefined);
      this.tryMasters(0, 0);
    }
    return this.connecting;
  }

  /** Tries master `index` of the list; after a full round, waits and starts again (forever). */
  private tryMasters(index: number, round: number): void {
    if (this.closed) return;
    let address: Address;
    if (this.pendingRedirect !== null) {
      address = this.pendingRedirect;
      this.pendingRedirect = null;
    } else if (index < this.masterAddresses.length) {
      address = this.masterAddresses[index]!;
      index += 1;
    } else {
      if (round === 0 || round % 10 === 0) this.logger.warn(`no usable primary master (${this.lastMasterFailure}), retrying`);
      this.retryTimer = this.env.timers.after(MASTER_RETRY_DELAY_MS, () => {
        this.retryTimer = null;
        this.tryMasters(0, round + 1);
      });
      return;
    }
    this.connectMaster(address, () => this.tryMasters(index, round));
  }

  private connectMaster(address: Address, failed: () => void): void {
    const label = `master ${formatAddress(address)}`;
    const conn = new Connection({
      stream: this.env.transport.connect(address),
      handler: masterBootstrapHandler(this),
      logger: this.logger,
      label,
      heartbeat: heartbeatFor(this.env),
    });
    let done = false;
    const fail = (why: string): void => {
      if (done) return;
      done = true;
      this.lastMasterFailure = `${label}: ${why}`;
      this.logger.info(this.lastMasterFailure);
      conn.close();
      failed();
    };
    conn.handler.connectionClosed = () => fail('connection closed');
    const extra = new Map<string, unknown>(this.readOnly ? [['read_only', true]] : []);
    conn.ask('RequestIdentification', [NodeTypes.CLIENT, this.nid, null, this.clusterName, null, extra], (answer) => {
      if (answer === null) return fail('connection closed during identification');
      if (answer.info.name === 'Error') {
        const [code, message] = answer.args as ArgsOf<'Error'>;
        const error = errorFromCode(code, message);
        if (error.code === ErrorCodes.READ_ONLY_ACCESS || error.code === ErrorCodes.PROTOCOL_ERROR) {
          // A refusal that retrying will not change (wrong cluster name, read-write on a backup).
          done = true;
          conn.close();
          return this.connectFailed(new StorageError(
            `${label} refused the identification of a client of cluster ${JSON.stringify(this.clusterName)}: ${error.toString()}`
            + (/cluster name/i.test(message) ? ' (the master belongs to another cluster: check the name in the URI)' : '')));
        }
        if (error.code === ErrorCodes.NOT_READY) return fail(`the cluster is not ready (not RUNNING yet): ${error.toString()}`);
        return fail(`identification refused: ${error.toString()}`);
      }
      const [nodeType, , yourNid] = answer.args as ArgsOf<'AcceptIdentification'>;
      if (nodeType !== NodeTypes.MASTER || yourNid === null) return fail('the peer is not a master');
      done = true;
      this.nid = yourNid;
      this.master = conn;
      this.masterReady = false;
      this.pt = null;
      conn.handler = primaryMasterHandler(this);
      this.logger.info(`connected to primary master ${formatAddress(address)} as ${nidToString(yourNid)}`);
    });
  }

  private connectFailed(error: Error): void {
    const waiter = this.readyWaiter;
    this.readyWaiter = null;
    this.connecting = null;
    waiter?.reject(error);
  }

  notPrimaryMaster(conn: Connection, primary: number | null, knownMasters: Address[]): void {
    for (const address of knownMasters) {
      if (!this.masterAddresses.some((a) => sameAddress(a, address))) this.masterAddresses.push(address);
    }
    if (primary !== null && knownMasters[primary] !== undefined) this.pendingRedirect = knownMasters[primary]!;
    conn.close();
  }

  masterLost(conn: Connection): void {
    if (conn !== this.master) return;
    this.logger.warn('connection to the primary master lost');
    this.master = null;
    this.masterReady = false;
    this.pt = null;
    this.oidPool = [];
    for (const ctx of this.txns.values()) ctx.masterLost = true;
    if (this.connecting !== null) {
      // Lost before being ready: try the other masters.
      this.tryMasters(0, 0);
    }
  }

  nodeInformation(nodes: ArgsOf<'NotifyNodeInformation'>[1]): void {
    for (const info of nodes) {
      const [type, address, nid, state, idTimestamp] = info;
      if (nid !== null && nid === this.nid) {
        this.idTimestamp = idTimestamp;
        continue;
      }
      if (type === NodeTypes.MASTER) {
        if (address !== null && !this.masterAddresses.some((a) => sameAddress(a, address))) {
          this.masterAddresses.push(address);
        }
        continue;
      }
      if (type !== NodeTypes.STORAGE) continue;
      const node = this.nodes.update(info);
      if (state !== NodeStates.RUNNING && node.connection !== null) {
        const conn = node.connection;
        node.connection = null;
        conn.close();
      }
    }
  }

  partitionTable(ptid: number | null, numReplicas: number, rows: ArgsOf<'SendPartitionTable'>[2]): void {
    this.pt = PartitionTable.fromWire(ptid, numReplicas, rows);
    if (this.masterReady || this.master === null) return;
    const master = this.master;
    // The first table after identification: learn the last TID, then we are ready (§7.3).
    master.ask('AskLastTransaction', [], (answer) => {
      if (answer === null || master !== this.master) return;
      if (answer.info.name !== 'AnswerLastTransaction') {
        this.logger.warn(`AskLastTransaction refused: ${String(answer.args[1])}`);
        master.close();
        return;
      }
      const [tid] = answer.args as ArgsOf<'AnswerLastTransaction'>;
      this.lastTransactionKnown(tid);
      this.masterReady = true;
      const waiter = this.readyWaiter;
      this.readyWaiter = null;
      this.connecting = null;
      waiter?.resolve(master);
    });
  }

  /** What changed while we were not connected is unknown: forget what may be stale (§11). */
  private lastTransactionKnown(tid: Buffer): void {
    this.generation += 1;
    this.loading.clear();
    if (this.lastTid !== null) {
      const order = compareIds(tid, this.lastTid);
      if (order > 0) {
        this.cache.clearCurrent();
        for (const listener of this.cacheInvalidationListeners) listener();
      } else if (order < 0) {
        // The database was truncated.
        this.cache.clear();
        for (const listener of this.cacheInvalidationListeners) listener();
      }
    }
    this.lastTid = tid;
  }

  partitionChanges(ptid: number, numReplicas: number, changes: ArgsOf<'NotifyPartitionChanges'>[2]): void {
    if (this.pt === null) return;
    if (!this.pt.applyChanges(ptid, numReplicas, changes, false)) {
      this.logger.warn(`ignoring partition changes with old ptid ${ptid}`);
    }
  }

  invalidateObjects(tid: Buffer, oids: Buffer[]): void {
    // Before the last TID is known, the cache is reset anyway when it comes.
    if (!this.masterReady || this.lastTid === null) return;
    for (const oid of oids) {
      this.cache.invalidate(oid, tid);
      for (const record of this.loading.get(hex(oid)) ?? []) record.push(tid);
    }
    for (const listener of this.invalidationListeners) {
      try {
        listener(tid, oids);
      } catch (error) {
        this.logger.error(`invalidation listener failed: ${String(error)}`);
      }
    }
    this.lastTid = maxId(tid, this.lastTid);
  }

  // === storage connections ====================================================================

  private storageConnection(nid: number): Promise<Connection> {
    const node = this.nodes.byNid(nid);
    if (node === undefined || node.state !== NodeStates.RUNNING || node.address === null) {
      return Promise.reject(new StorageError(`storage ${nidToString(nid)} is not running`));
    }
    if (node.connection !== null && !node.connection.isAborting) return Promise.resolve(node.connection);
    let pending = this.storageConnecting.get(nid);
    if (pending === undefined) {
      pending = this.connectStorage(node);
      this.storageConnecting.set(nid, pending);
      const forget = (): void => void this.storageConnecting.delete(nid);
      pending.then(forget, forget);
    }
    return pending;
  }

  private connectStorage(node: NodeEntry<Connection>): Promise<Connection> {
    const address = node.address!;
    const nid = node.nid!;
    return new Promise((resolve, reject) => {
      const conn = new Connection({
        stream: this.env.transport.connect(address),
        handler: storageHandler(this),
        logger: this.logger,
        label: `storage ${nidToString(nid)} ${formatAddress(address)}`,
        heartbeat: heartbeatFor(this.env),
      });
      const args: ArgsOf<'RequestIdentification'> = [NodeTypes.CLIENT, this.nid, null, this.clusterName, this.idTimestamp, new Map()];
      conn.ask('RequestIdentification', args, (answer) => {
        const fail = (why: string): void => {
          this.failureTimes.set(nid, this.env.clock.monotonicMs());
          conn.close();
          reject(new StorageError(`cannot connect to storage ${nidToString(nid)}: ${why}`));
        };
        if (answer === null) return fail('connection closed');
        if (answer.info.name === 'Error') return fail(String((answer.args as ArgsOf<'Error'>)[1]));
        const [nodeType, peerNid] = answer.args as ArgsOf<'AcceptIdentification'>;
        if (nodeType !== NodeTypes.STORAGE || peerNid !== nid) return fail('unexpected peer');
        if (this.closed) return fail('storage closed');
        conn.peer = nid;
        const current = this.nodes.byNid(nid);
        if (current !== undefined) current.connection = conn;
        this.failureTimes.delete(nid);
        resolve(conn);
      });
    });
  }

  storageLost(conn: Connection): void {
    const nid = conn.peer;
    if (typeof nid !== 'number') return;
    const node = this.nodes.byNid(nid);
    if (node?.connection === conn) node.connection = null;
    this.failureTimes.set(nid, this.env.clock.monotonicMs());
  }

  /** Readable cells of a partition on running nodes, recently failed nodes last (§13.3). */
  private readableNodes(partition: number): number[] {
    const pt = this.pt;
    if (pt === null) return [];
    const now = this.env.clock.monotonicMs();
    const candidates = pt.readableCells(partition)
      .map((cell) => cell.nid)
      .filter((nid) => this.nodes.isRunning(nid))
      .map((nid) => {
        const failed = this.failureTimes.get(nid);
        return { nid, failed: failed !== undefined && now - failed < FAILURE_MEMORY_MS ? failed : null, key: this.env.random.next() };
      });
    candidates.sort((a, b) => {
      if (a.failed === null && b.failed === null) return a.key - b.key;
      if (a.failed === null) return -1;
      if (b.failed === null) return 1;
      return a.failed - b.failed;
    });
    return candidates.map((c) => c.nid);
  }

  /**
   * Sends a read request to a readable cell of `partition`, trying the others on failure
   * (§13.3). `accept` may refuse an answer (wrong checksum) to try the next node; it returns the
   * value to resolve with, or undefined to go on. Errors other than NON_READABLE_CELL reject.
   */
  private async askReadable<N extends PacketName, T>(
    partition: number,
    name: N,
    args: ArgsOf<N>,
    accept: (answer: unknown[]) => T | undefined,
    exclude: ReadonlySet<number> = new Set(),
  ): Promise<T> {
    for (let round = 0; round < MAX_READ_ROUNDS; round++) {
      await this.ensureMaster();
      const nids = this.readableNodes(partition).filter((nid) => !exclude.has(nid));
      for (const nid of nids) {
        let answer: unknown[];
        try {
          const conn = await this.storageConnection(nid);
          answer = await conn.request(name, args);
        } catch (error) {
          if (error instanceof NeoError && error.code === ErrorCodes.NON_READABLE_CELL) continue;
          if (error instanceof ConnectionClosedError || error instanceof StorageError) continue;
          throw error;
        }
        const value = accept(answer);
        if (value !== undefined) return value;
      }
      if (this.closed) throw new StorageClosedError();
      if (this.master === null) throw new NEOPrimaryMasterLost({ message: 'connection to the primary master lost' });
      await this.sync();
    }
    throw new StorageError(`no storage available for read of partition ${partition}`);
  }

  private numPartitions(): number {
    assert(this.pt !== null, 'no partition table');
    return this.pt.numPartitions;
  }

  // === reads ==================================================================================

  /** AskObject with checksum check and decompression; NeoErrors (OID_*) are passed through. */
  private async askObject(oid: Buffer, at: Buffer | null, before: Buffer | null): Promise<ObjectAnswer> {
    await this.ensureMaster();
    let wrongChecksum: ObjectAnswer | undefined;
    try {
      return await this.askReadable(partitionOf(oid, this.numPartitions()), 'AskObject', [oid, at, before], (args) => {
        const [, serial, nextSerial, compression, checksum, data, dataSerial] = args as ArgsOf<'AnswerObject'>;
        if (data.length === 0 && checksum.equals(ZERO_HASH)) {
          return { oid, serial, nextSerial, data: null, dataSerial };
        }
        let raw: Buffer;
        try {
          raw = compression === 1 ? inflateSync(data) : data;
        } catch {
          raw = Buffer.alloc(0);
        }
        if (!sha1(data).equals(checksum)) {
          this.logger.warn(`wrong checksum for oid ${hex(oid)} serial ${hex(serial)}`);
          wrongChecksum = { oid, serial, nextSerial, data: raw, dataSerial };
          return undefined;
        }
        return { oid, serial, nextSerial, data: raw, dataSerial };
      });
    } catch (error) {
      if (wrongChecksum !== undefined) {
        if (this.ignoreWrongChecksum) return wrongChecksum;
        throw new StorageError(`wrong checksum for oid ${hex(oid)} on every storage`);
      }
      throw error;
    }
  }

  /** A load through the cache, recording invalidations received meanwhile (§13.2). */
  private async loadThroughCache(oid: Buffer, before: Buffer): Promise<ObjectAnswer> {
    const cached = this.cache.load(oid, before);
    if (cached !== undefined) {
      return { oid, serial: cached.tid, nextSerial: cached.nextTid, data: cached.data, dataSerial: null };
    }
    const key = hex(oid);
    const record: Buffer[] = [];
    let records = this.loading.get(key);
    if (records === undefined) this.loading.set(key, (records = []));
    records.push(record);
    const generation = this.generation;
    try {
      const answer = await this.askObject(oid, null, before);
      if (answer.nextSerial === null) {
        const end = record.find((tid) => compareIds(tid, answer.serial) > 0);
        if (end !== undefined) answer.nextSerial = end;
      }
      if (generation === this.generation && answer.data !== null) {
        this.cache.store(oid, answer.data, answer.serial, answer.nextSerial);
      }
      return answer;
    } finally {
      const list = this.loading.get(key);
      if (list !== undefined) {
        const i = list.indexOf(record);
        if (i >= 0) list.splice(i, 1);
        if (list.length === 0) this.loading.delete(key);
      }
    }
  }

  /** The current revision as of the last transaction whose invalidations were delivered. */
  async load(oid: Buffer): Promise<LoadResult> {
    checkId('oid', oid);
    await this.ensureMaster();
    let answer: ObjectAnswer;
    try {
      answer = await this.loadThroughCache(oid, tidPlusOne(this.lastTid!));
    } catch (error) {
      throw this.readError(error, oid);
    }
    if (answer.data === null) throw new POSKeyError(oid);
    return { data: answer.data, serial: answer.serial };
  }

  /** The revision before `tid`, or null if the object did not exist yet. */
  async loadBefore(oid: Buffer, tid: Buffer): Promise<LoadBeforeResult | null> {
    checkId('oid', oid);
    checkId('tid', tid);
    await this.ensureMaster();
    let answer: ObjectAnswer;
    try {
      answer = await this.loadThroughCache(oid, tid);
    } catch (error) {
      if (error instanceof NeoError && error.code === ErrorCodes.OID_NOT_FOUND) return null;
      throw this.readError(error, oid);
    }
    if (answer.data === null) throw new POSKeyError(oid);
    return { data: answer.data, serial: answer.serial, nextSerial: answer.nextSerial };
  }

  /** The exact revision `serial`. */
  async loadSerial(oid: Buffer, serial: Buffer): Promise<Buffer> {
    checkId('oid', oid);
    checkId('serial', serial);
    const cached = this.cache.loadSerial(oid, serial);
    if (cached !== undefined) return cached.data;
    await this.ensureMaster();
    const generation = this.generation;
    let answer: ObjectAnswer;
    try {
      answer = await this.askObject(oid, serial, null);
    } catch (error) {
      throw this.readError(error, oid);
    }
    if (answer.data === null) throw new POSKeyError(oid);
    if (generation === this.generation && answer.nextSerial !== null) {
      this.cache.store(oid, answer.data, answer.serial, answer.nextSerial);
    }
    return answer.data;
  }

  /** The current serial of `oid` (ZODB's getTid). */
  async getTid(oid: Buffer): Promise<Buffer> {
    return (await this.load(oid)).serial;
  }

  private readError(error: unknown, oid: Buffer): Error {
    if (error instanceof NeoError) {
      if (error.code === ErrorCodes.OID_NOT_FOUND || error.code === ErrorCodes.OID_DOES_NOT_EXIST) {
        return new POSKeyError(oid);
      }
      return new StorageError(error.toString());
    }
    return error as Error;
  }

  /** Waits until every invalidation sent by the master before this call has been processed. */
  async sync(): Promise<void> {
    const master = await this.ensureMaster();
    try {
      await master.request('Ping', []);
    } catch (error) {
      if (error instanceof ConnectionClosedError) throw new NEOPrimaryMasterLost({ message: 'connection to the primary master lost' });
      throw error;
    }
  }

  /** The last committed TID whose invalidations were delivered (no network round trip). */
  async lastTransaction(): Promise<Buffer> {
    await this.ensureMaster();
    return this.lastTid!;
  }

  async newOid(): Promise<Buffer> {
    if (this.readOnly) throw new ReadOnlyError();
    for (;;) {
      const oid = this.oidPool.shift();
      if (oid !== undefined) return oid;
      if (this.oidRequest === null) {
        this.oidRequest = (async () => {
          const master = await this.ensureMaster();
          const [oids] = (await this.masterRequest(master, 'AskNewOIDs', [NEW_OIDS_BATCH])) as ArgsOf<'AnswerNewOIDs'>;
          this.oidPool.push(...oids);
        })().finally(() => {
          this.oidRequest = null;
        });
      }
      await this.oidRequest;
    }
  }

  private async masterRequest<N extends PacketName>(master: Connection, name: N, args: ArgsOf<N>): Promise<unknown[]> {
    try {
      return await master.request(name, args);
    } catch (error) {
      if (error instanceof NeoError) {
        if (error.code === ErrorCodes.READ_ONLY_ACCESS) throw new ReadOnlyError(error.message);
        throw new StorageError(`${name}: ${error.toString()}`);
      }
      if (error instanceof ConnectionClosedError) {
        throw new StorageError('connection to the primary master lost');
      }
      throw error;
    }
  }

  // === invalidations ==========================================================================

  /**
   * Calls `listener(tid, oids)` for every transaction committed by another client, in commit
   * order, before `lastTransaction()` reports it. Returns a function that unregisters it.
   */
  onInvalidate(listener: InvalidationListener): () => void {
    this.invalidationListeners.add(listener);
    return () => void this.invalidationListeners.delete(listener);
  }

  /** Calls `listener()` when the client lost track of changes (after a reconnection). */
  onInvalidateCache(listener: () => void): () => void {
    this.cacheInvalidationListeners.add(listener);
    return () => void this.cacheInvalidationListeners.delete(listener);
  }

  /** The invalidations as an async iterator, from now on (ends when the storage is closed). */
  invalidations(): AsyncIterableIterator<{ tid: Buffer; oids: Buffer[] }> {
    const queue: { tid: Buffer; oids: Buffer[] }[] = [];
    let wake: (() => void) | null = null;
    let done = false;
    const unsubscribe = this.onInvalidate((tid, oids) => {
      queue.push({ tid, oids });
      wake?.();
    });
    const finish = (): void => {
      done = true;
      unsubscribe();
      wake?.();
    };
    this.closeCallbacks.push(finish);
    const iterator: AsyncIterableIterator<{ tid: Buffer; oids: Buffer[] }> = {
      next: async () => {
        while (queue.length === 0 && !done) await new Promise<void>((r) => (wake = r));
        wake = null;
        const value = queue.shift();
        return value === undefined ? { done: true, value: undefined } : { done: false, value };
      },
      return: async () => {
        finish();
        return { done: true, value: undefined };
      },
      [Symbol.asyncIterator]: () => iterator,
    };
    return iterator;
  }

  private readonly closeCallbacks: (() => void)[] = [];

  // === commit =================================================================================

  private context(txn: TransactionMeta): TxnContext {
    const ctx = this.txns.get(txn);
    if (ctx === undefined || ctx.ttid.length === 0) throw new StorageTransactionError('not in a transaction begun by tpcBegin');
    return ctx;
  }

  async tpcBegin(txn: TransactionMeta, tid: Buffer | null = null): Promise<void> {
    if (this.readOnly) throw new ReadOnlyError();
    if (this.txns.has(txn)) throw new StorageTransactionError('transaction already begun');
    const ctx: TxnContext = {
      txn,
      ttid: Buffer.alloc(0),
      involved: new Map(),
      dataDict: new Map(),
      cacheDict: new CompletedStores(),
      conflicts: new Map(),
      resolved: new Map(),
      deleted: new Set(),
      oidOrder: [],
      lockless: new Map(),
      inflight: 0,
      idleWaiters: [],
      failure: null,
      stored: false,
      voted: false,
      finishing: false,
      masterLost: false,
      pack: null,
      resolvedOids: [],
    };
    this.txns.set(txn, ctx);
    try {
      const master = await this.ensureMaster();
      const [ttid] = (await this.masterRequest(master, 'AskBeginTransaction', [tid])) as ArgsOf<'AnswerBeginTransaction'>;
      ctx.ttid = ttid;
    } catch (error) {
      this.txns.delete(txn);
      throw error;
    }
  }

  private compressData(data: Buffer): { compression: number; payload: Buffer } {
    if (this.compress && data.length > 0) {
      const compressed = deflateSync(data, this.compressLevel === undefined ? {} : { level: this.compressLevel });
      if (compressed.length < data.length) return { compression: 1, payload: compressed };
    }
    return { compression: 0, payload: data };
  }

  /** First phase: stores a revision of `oid` based on `serial` (ZERO_TID for a new object). */
  async store(oid: Buffer, serial: Buffer | null, data: Buffer, txn: TransactionMeta): Promise<void> {
    if (this.readOnly) throw new ReadOnlyError();
    checkId('oid', oid);
    if (serial !== null) checkId('serial', serial);
    const ctx = this.context(txn);
    if (ctx.stored) throw new StorageTransactionError('store after tpcVote');
    await this.sendStore(ctx, oid, serial ?? ZERO_TID, data, null);
  }

  /** Writes a deletion of `oid`, whose current serial must be `serial`. */
  async deleteObject(oid: Buffer, serial: Buffer, txn: TransactionMeta): Promise<void> {
    if (this.readOnly) throw new ReadOnlyError();
    checkId('oid', oid);
    checkId('serial', serial);
    const ctx = this.context(txn);
    if (ctx.stored) throw new StorageTransactionError('deleteObject after tpcVote');
    // Only deleteObject counts as a deletion for the master; an undone creation (also no data)
    // is a modification that other clients must be told about.
    ctx.deleted.add(hex(oid));
    await this.sendStore(ctx, oid, serial, null, null);
  }

  /** Fails the commit (ReadConflictError) unless `serial` is still the current serial of `oid`. */
  async checkCurrentSerialInTransaction(oid: Buffer, serial: Buffer, txn: TransactionMeta): Promise<void> {
    checkId('oid', oid);
    checkId('serial', serial);
    const ctx = this.context(txn);
    if (ctx.stored) throw new StorageTransactionError('checkCurrentSerialInTransaction after tpcVote');
    await this.sendToCells(ctx, oid, serial, CHECKED, (conn) => ['AskCheckCurrentSerial', [ctx.ttid, oid, serial]]);
  }

  /**
   * Sends a store to every writable cell of the oid's partition (§5.1). `data` null is a
   * deletion unless `dataSerial` is given (undo back-pointer).
   */
  private async sendStore(ctx: TxnContext, oid: Buffer, serial: Buffer, data: Buffer | null, dataSerial: Buffer | null): Promise<void> {
    let compression = 0;
    let payload: Buffer = Buffer.alloc(0);
    let checksum = ZERO_HASH;
    if (data !== null) {
      ({ compression, payload } = this.compressData(data));
      checksum = sha1(payload);
    }
    await this.sendToCells(ctx, oid, serial, data, () =>
      ['AskStoreObject', [oid, serial, compression, checksum, payload, dataSerial, ctx.ttid]]);
  }

  private async sendToCells(
    ctx: TxnContext,
    oid: Buffer,
    serial: Buffer,
    data: Buffer | null | typeof CHECKED,
    request: (conn: Connection) => ['AskStoreObject', ArgsOf<'AskStoreObject'>] | ['AskCheckCurrentSerial', ArgsOf<'AskCheckCurrentSerial'>],
  ): Promise<void> {
    await this.ensureMaster();
    this.checkMasterKept(ctx);
    const key = hex(oid);
    if (!ctx.dataDict.has(key) && !ctx.cacheDict.has(key)) ctx.oidOrder.push(oid);
    ctx.cacheDict.delete(key);
    const entry: StoreEntry = { oid, data, serial, pending: new Set(), sending: true, acked: false };
    ctx.dataDict.set(key, entry);
    const partition = partitionOf(oid, this.numPartitions());
    ctx.inflight += 1; // the connection phase below
    try {
      for (const cell of this.pt!.writableCells(partition)) {
        const nid = cell.nid;
        if (ctx.involved.get(nid) === null) continue;
        let conn: Connection;
        try {
          conn = await this.storageConnection(nid);
        } catch {
          ctx.involved.set(nid, null);
          continue;
        }
        ctx.involved.set(nid, conn);
        entry.pending.add(nid);
        ctx.inflight += 1;
        const [name, args] = request(conn);
        conn.ask(name, args as never, (answer) => this.storeAnswered(ctx, entry, partition, nid, answer));
      }
      if (entry.pending.size === 0 && !entry.acked) {
        throw new StorageError(`no storage available for write to partition ${partition}`);
      }
    } finally {
      entry.sending = false;
      this.completeStore(ctx, entry);
      this.settle(ctx);
    }
  }

  private settle(ctx: TxnContext): void {
    ctx.inflight -= 1;
    if (ctx.inflight === 0) {
      const waiters = ctx.idleWaiters.splice(0);
      for (const wake of waiters) wake();
    }
  }

  /** An answer to AskStoreObject or AskCheckCurrentSerial (§5.1). */
  private storeAnswered(ctx: TxnContext, entry: StoreEntry, partition: number, nid: number, answer: Packet | null): void {
    const key = hex(entry.oid);
    entry.pending.delete(nid);
    if (answer === null) {
      ctx.involved.set(nid, null);
    } else if (answer.info.name === 'Error') {
      const [code, message] = answer.args as ArgsOf<'Error'>;
      const error = errorFromCode(code, message);
      if (error.code === ErrorCodes.UNDO_PACK_ERROR) ctx.failure ??= new UndoError('non-undoable transaction', entry.oid);
      else ctx.failure ??= new StorageError(`store of oid ${key} refused: ${error.toString()}`);
    } else {
      const [conflict] = answer.args as ArgsOf<'AnswerStoreObject'>;
      if (conflict === null) {
        entry.acked = true;
      } else if (conflict.equals(ZERO_TID)) {
        // Accepted without a lock; ignored if this store was superseded by a resolution.
        if (ctx.dataDict.get(key) === entry || ctx.cacheDict.has(key)) {
          entry.acked = true;
          let nids = ctx.lockless.get(partition);
          if (nids === undefined) ctx.lockless.set(partition, (nids = new Set()));
          nids.add(nid);
        }
      } else {
        const resolved = ctx.resolved.get(key);
        if (resolved === undefined || compareIds(resolved, conflict) < 0) {
          const known = ctx.conflicts.get(key);
          ctx.conflicts.set(key, known === undefined ? conflict : maxId(known, conflict));
        }
      }
    }
    this.completeStore(ctx, entry);
    this.settle(ctx);
  }

  /** A store sent to every cell, answered by all, accepted and without conflict, is done. */
  private completeStore(ctx: TxnContext, entry: StoreEntry): void {
    const key = hex(entry.oid);
    if (entry.sending || entry.pending.size > 0 || !entry.acked || ctx.dataDict.get(key) !== entry || ctx.conflicts.has(key)) return;
    ctx.dataDict.delete(key);
    ctx.cacheDict.set(key, { oid: entry.oid, data: this.keepForCache(ctx, entry.data) });
  }

  /** Keeps committed data for the cache only while the transaction's total stays under its size. */
  private keepForCache(ctx: TxnContext, data: Buffer | null | typeof CHECKED): Buffer | null | typeof CHECKED {
    if (data === null || data === CHECKED) return data;
    return ctx.cacheDict.keptBytes + data.length <= this.cache.maxSizeBytes ? data : null;
  }

  private idle(ctx: TxnContext): Promise<void> {
    if (ctx.inflight === 0) return Promise.resolve();
    return new Promise((resolve) => ctx.idleWaiters.push(resolve));
  }

  /** A storage asks us to give back a lock wanted by an older transaction (§7). */
  deadlock(conn: Connection, ttid: Buffer, oid: Buffer): void {
    const ctx = [...this.txns.values()].find((c) => c.ttid.equals(ttid));
    if (ctx === undefined || ctx.stored) return;
    const key = hex(oid);
    ctx.inflight += 1;
    conn.ask('AskRelockObject', [ttid, oid], (answer) => {
      if (answer === null) {
        // The connection died with the lock given back: this storage no longer holds our store.
        for (const [nid, involved] of ctx.involved) if (involved === conn) ctx.involved.set(nid, null);
      } else if (answer.info.name === 'AnswerRelockObject') {
        const [conflict] = answer.args as ArgsOf<'AnswerRelockObject'>;
        if (conflict !== null) this.relockConflict(ctx, key, oid, conflict);
      } else {
        ctx.failure ??= new StorageError(`AskRelockObject refused: ${String(answer.args[1])}`);
      }
      this.settle(ctx);
    });
  }

  private relockConflict(ctx: TxnContext, key: string, oid: Buffer, [serial, conflictSerial, stored]: NonNullable<ArgsOf<'AnswerRelockObject'>[0]>): void {
    const resolved = ctx.resolved.get(key);
    if (resolved !== undefined && compareIds(resolved, conflictSerial) >= 0) return;
    if (ctx.conflicts.has(key)) return;
    const completed = ctx.cacheDict.get(key);
    if (completed !== undefined) {
      let data: Buffer | null | typeof CHECKED = completed.data;
      if (stored !== null) {
        const [compression, checksum, payload] = stored;
        if (!sha1(payload).equals(checksum)) {
          ctx.failure ??= new StorageError(`wrong checksum in AnswerRelockObject for oid ${key}`);
          return;
        }
        data = compression === 1 ? inflateSync(payload) : payload;
      } else if (data !== CHECKED) {
        data = null;
      }
      ctx.cacheDict.delete(key);
      ctx.dataDict.set(key, { oid, data, serial, pending: new Set(), sending: false, acked: false });
    }
    ctx.conflicts.set(key, conflictSerial);
  }

  /** Waits for every store answer, resolving conflicts as they come (§6). */
  private async waitStores(ctx: TxnContext): Promise<void> {
    for (;;) {
      await this.idle(ctx);
      if (ctx.failure !== null) throw ctx.failure;
      if (ctx.conflicts.size === 0) return;
      for (const [key, conflictSerial] of [...ctx.conflicts]) {
        ctx.conflicts.delete(key);
        const entry = ctx.dataDict.get(key);
        if (entry === undefined) continue;
        ctx.dataDict.delete(key);
        await this.resolve(ctx, entry, conflictSerial);
      }
    }
  }

  private async resolve(ctx: TxnContext, entry: StoreEntry, conflictSerial: Buffer): Promise<void> {
    const { oid, data, serial } = entry;
    const serials: [Buffer, Buffer] = [conflictSerial, serial];
    if (data === CHECKED) throw new ReadConflictError({ oid, serials });
    if (this.resolveConflict === undefined || data === null || serial.equals(ZERO_TID)) {
      throw new ConflictError({ oid, serials, data: data ?? undefined });
    }
    // Make sure the invalidation of the conflicting serial arrived before loading it.
    if (this.lastTid === null || compareIds(conflictSerial, this.lastTid) > 0) await this.sync();
    let merged: Buffer;
    try {
      const oldState = await this.loadSerial(oid, serial);
      const committedState = await this.loadSerial(oid, conflictSerial);
      merged = await this.resolveConflict(oid, oldState, committedState, data);
    } catch (error) {
      if (error instanceof ConflictError) throw error;
      this.logger.info(`conflict on oid ${hex(oid)} not resolved: ${String(error)}`);
      throw new ConflictError({ oid, serials, data });
    }
    ctx.resolved.set(hex(oid), conflictSerial);
    ctx.resolvedOids.push(oid);
    await this.sendStore(ctx, oid, conflictSerial, merged, null);
  }

  /** Second phase: makes the transaction durable on storages; returns the oids resolved. */
  async tpcVote(txn: TransactionMeta): Promise<Buffer[]> {
    const ctx = this.context(txn);
    if (ctx.voted) return ctx.resolvedOids;
    await this.waitStores(ctx);
    this.checkMasterKept(ctx);
    if (ctx.dataDict.size > 0) throw new StorageError('could not store/check all oids');
    ctx.stored = true;
    const extension = dumpsExtension(txn.extension ?? {});
    const meta: ArgsOf<'AskStoreTransaction'> = [ctx.ttid, toBytes(txn.user), toBytes(txn.description), extension, ctx.oidOrder, ctx.pack];
    const metadataNodes = this.pt!.writableCells(partitionOf(ctx.ttid, this.numPartitions())).map((cell) => cell.nid);
    const metadataVotes: Promise<boolean>[] = [];
    const otherVotes: Promise<boolean>[] = [];
    const vote = async (nid: number, holdsMetadata: boolean): Promise<boolean> => {
      try {
        const conn = await this.storageConnection(nid);
        ctx.involved.set(nid, conn);
        if (holdsMetadata) await conn.request('AskStoreTransaction', meta);
        else await conn.request('AskVoteTransaction', [ctx.ttid]);
        return true;
      } catch (error) {
        if (error instanceof NeoError) throw new StorageError(`vote refused by ${nidToString(nid)}: ${error.toString()}`);
        ctx.involved.set(nid, null);
        return false;
      }
    };
    for (const nid of metadataNodes) if (ctx.involved.get(nid) !== null) metadataVotes.push(vote(nid, true));
    for (const [nid, conn] of ctx.involved) {
      if (conn !== null && !metadataNodes.includes(nid)) otherVotes.push(vote(nid, false));
    }
    const [metadataStored] = await Promise.all([Promise.all(metadataVotes), Promise.all(otherVotes)]);
    if (!metadataStored.some((ok) => ok)) throw new StorageError('no storage available to store the transaction metadata');
    await this.reportFailedNodes(ctx);
    ctx.voted = true;
    if (ctx.masterLost) throw new StorageError('connection to the primary master lost during the transaction');
    return ctx.resolvedOids;
  }

  /** The TTID and partition table of a transaction die with its master connection. */
  private checkMasterKept(ctx: TxnContext): void {
    if (ctx.masterLost || this.pt === null) {
      throw new StorageError('connection to the primary master lost during the transaction');
    }
  }

  /** §9 step 4: lockless rule and FailedVote for nodes that failed but still run. */
  private async reportFailedNodes(ctx: TxnContext): Promise<void> {
    const failed = [...ctx.involved].filter(([, conn]) => conn === null).map(([nid]) => nid);
    if (failed.length === 0) return;
    this.checkMasterKept(ctx);
    for (const [partition, nids] of ctx.lockless) {
      const locked = this.pt!.cells(partition).some((cell) => !nids.has(cell.nid) && ctx.involved.get(cell.nid) != null);
      if (!locked) throw new StorageError(`partition ${partition} not fully write-locked`);
    }
    const running = failed.filter((nid) => this.nodes.isRunning(nid));
    if (running.length === 0 || this.master === null) return;
    try {
      await this.master.request('FailedVote', [ctx.ttid, running]);
    } catch (error) {
      if (error instanceof NeoError) throw new StorageError(`transaction cannot be committed: ${error.toString()}`);
      // Master lost: tpcVote reports it.
    }
  }

  /** Commits: returns the TID, after calling `callback(tid)` before lastTransaction moves. */
  async tpcFinish(txn: TransactionMeta, callback?: (tid: Buffer) => void): Promise<Buffer> {
    const ctx = this.context(txn);
    if (!ctx.voted) await this.tpcVote(txn);
    if (ctx.masterLost || this.master === null) throw new StorageError('connection to the primary master lost during the transaction');
    const np = this.numPartitions();
    const oids: Buffer[] = [];
    const deleted: number[] = [];
    const checked: number[] = [];
    for (const oid of ctx.oidOrder) {
      const key = hex(oid);
      if (ctx.deleted.has(key)) deleted.push(partitionOf(oid, np));
      else if (ctx.cacheDict.get(key)?.data === CHECKED) checked.push(partitionOf(oid, np));
      else oids.push(oid);
    }
    ctx.finishing = true;
    const master = this.master;
    const answer = await new Promise<Packet | null>((resolve) => {
      master.ask('AskFinishTransaction', [ctx.ttid, oids, deleted, checked, ctx.pack], (packet) => {
        // In the packet's own event, so that our commit is ordered with invalidations (§10.6).
        if (packet !== null && packet.info.name === 'AnswerTransactionFinished') {
          const [, tid] = packet.args as ArgsOf<'AnswerTransactionFinished'>;
          this.committed(ctx, tid, callback);
        }
        resolve(packet);
      });
    });
    this.txns.delete(txn);
    if (answer === null) return this.finalTid(ctx, callback);
    if (answer.info.name === 'Error') {
      const [code, message] = answer.args as ArgsOf<'Error'>;
      throw new StorageError(`tpcFinish failed: ${errorFromCode(code, message).toString()}`);
    }
    return (answer.args as ArgsOf<'AnswerTransactionFinished'>)[1];
  }

  private committed(ctx: TxnContext, tid: Buffer, callback?: (tid: Buffer) => void): void {
    // Every oid written, deletions included (only checked ones are unchanged).
    for (const { oid, data } of ctx.cacheDict.values()) {
      if (data === CHECKED) continue;
      const key = hex(oid);
      this.cache.invalidate(oid, tid);
      for (const record of this.loading.get(key) ?? []) record.push(tid);
      if (Buffer.isBuffer(data)) this.cache.store(oid, data, tid, null);
    }
    try {
      callback?.(tid);
    } finally {
      if (this.lastTid === null || compareIds(tid, this.lastTid) > 0) this.lastTid = tid;
    }
  }

  /** The master was lost during tpcFinish: learn the outcome (§12.3). */
  private async finalTid(ctx: TxnContext, callback?: (tid: Buffer) => void): Promise<Buffer> {
    this.logger.warn(`master lost during tpcFinish of ${tidToHex(ctx.ttid)}: asking the final TID`);
    for (;;) {
      if (this.closed) throw new StorageClosedError();
      let tid: Buffer | null;
      try {
        const master = await this.ensureMaster();
        [tid] = (await master.request('AskFinalTID', [ctx.ttid])) as ArgsOf<'AnswerFinalTID'>;
        if (tid !== null && tid.equals(MAX_TID)) {
          [tid] = await this.askReadable(partitionOf(ctx.ttid, this.numPartitions()), 'AskFinalTID', [ctx.ttid],
            (args) => args as ArgsOf<'AnswerFinalTID'>);
        }
      } catch (error) {
        if (error instanceof ConnectionClosedError || error instanceof NEOPrimaryMasterLost) continue;
        throw error;
      }
      if (tid === null) throw new StorageError('connection to the primary master lost: transaction not committed');
      this.committed(ctx, tid, callback);
      return tid;
    }
  }

  /** Discards the transaction; ignored if `txn` is not being committed. */
  async tpcAbort(txn: TransactionMeta): Promise<void> {
    const ctx = this.txns.get(txn);
    if (ctx === undefined) return;
    this.txns.delete(txn);
    if (ctx.ttid.length === 0) return;
    for (const conn of ctx.involved.values()) conn?.notify('AbortTransaction', [ctx.ttid, []]);
    // Once the finish is asked, the master refuses an abort (it is a protocol error there).
    if (!ctx.finishing) this.master?.notify('AbortTransaction', [ctx.ttid, [...ctx.involved.keys()]]);
    // Answers still expected would otherwise keep waiters of this context.
    for (const wake of ctx.idleWaiters.splice(0)) wake();
  }

  // === undo, history, iteration, pack =========================================================

  private async transactionInformation(tid: Buffer): Promise<TransactionInfo> {
    await this.ensureMaster();
    return this.askReadable(partitionOf(tid, this.numPartitions()), 'AskTransactionInformation', [tid], (args) => {
      const [, user, description, extensionBytes, packed, oids] = args as ArgsOf<'AnswerTransactionInformation'>;
      let extension: PickleDict = {};
      try {
        extension = loadsExtension(extensionBytes);
      } catch (error) {
        this.logger.warn(`transaction ${tidToHex(tid)}: unreadable extension: ${String(error)}`);
      }
      return { tid, time: timeFromTid(tid), user, description, extension, extensionBytes, packed, oids };
    });
  }

  /** Revisions of `oid`, newest first. */
  async history(oid: Buffer, size = 1): Promise<HistoryEntry[]> {
    checkId('oid', oid);
    await this.ensureMaster();
    let history: ArgsOf<'AnswerObjectHistory'>[1];
    try {
      history = await this.askReadable(partitionOf(oid, this.numPartitions()), 'AskObjectHistory', [oid, 0, size],
        (args) => (args as ArgsOf<'AnswerObjectHistory'>)[1]);
    } catch (error) {
      throw this.readError(error, oid);
    }
    const entries: HistoryEntry[] = [];
    for (const [serial, length] of history) {
      const info = await this.transactionInformation(serial);
      entries.push({ tid: serial, serial, time: info.time, user: info.user, description: info.description, extension: info.extension, size: length });
    }
    return entries;
  }

  /**
   * Undoable transactions, newest first: entries [first, last) of those passing `filter`
   * (`last` < 0 means at most -last entries). As NEO, offsets are applied per storage.
   */
  async undoLog(first = 0, last = -20, filter?: (entry: UndoLogEntry) => boolean): Promise<UndoLogEntry[]> {
    await this.ensureMaster();
    if (last < 0) last = first - last;
    const pt = this.pt!;
    const holders = new Set<number>();
    for (let p = 0; p < pt.numPartitions; p++) for (const cell of pt.readableCells(p)) holders.add(cell.nid);
    const tids = new Map<string, Buffer>();
    const newest = this.lastTid!;
    // A storage unlocks a transaction when the master tells it, which may reach it after our
    // AskTIDs although the commit was already reported to us: ask again (briefly) until the
    // newest transaction we know of is listed.
    for (let round = 0; ; round++) {
      await Promise.all([...holders].filter((nid) => this.nodes.isRunning(nid)).map(async (nid) => {
        try {
          const conn = await this.storageConnection(nid);
          const [list] = (await conn.request('AskTIDs', [first, last, INVALID_PARTITION])) as ArgsOf<'AnswerTIDs'>;
          for (const tid of list) tids.set(hex(tid), tid);
        } catch (error) {
          this.logger.info(`undoLog: ${nidToString(nid)}: ${String(error)}`);
        }
      }));
      if (first !== 0 || newest.equals(ZERO_TID) || tids.has(hex(newest)) || round >= UNDO_LOG_RETRIES) break;
      tids.clear();
      await new Promise<void>((resolve) => this.env.timers.after(UNDO_LOG_RETRY_MS, resolve));
    }
    const sorted = [...tids.values()].sort((a, b) => compareIds(b, a));
    const entries: UndoLogEntry[] = [];
    for (const tid of sorted) {
      if (entries.length >= last - first) break;
      const info = await this.transactionInformation(tid);
      if (info.packed) continue;
      const entry: UndoLogEntry = { id: tid, time: info.time, user: info.user, description: info.description, extension: info.extension };
      if (filter === undefined || filter(entry)) entries.push(entry);
    }
    return entries;
  }

  /** undoLog filtered on extension values equal to those of `specification`. */
  async undoInfo(first = 0, last = -20, specification?: PickleDict): Promise<UndoLogEntry[]> {
    const spec = specification === undefined ? undefined : Object.entries(specification);
    return this.undoLog(first, last, spec === undefined ? undefined
      : (entry) => spec.every(([k, v]) => entry.extension[k] === v));
  }

  /** Writes, in `txn`, revisions undoing transaction `undoneTid`; returns the oids affected. */
  async undo(undoneTid: Buffer, txn: TransactionMeta): Promise<{ tid: null; oids: Buffer[] }> {
    if (this.readOnly) throw new ReadOnlyError();
    const ctx = this.context(txn);
    if (ctx.stored) throw new StorageTransactionError('undo after tpcVote');
    let info: TransactionInfo;
    try {
      info = await this.transactionInformation(undoneTid);
    } catch (error) {
      if (error instanceof NeoError) throw new UndoError('non-undoable transaction');
      throw error;
    }
    const np = this.numPartitions();
    const byPartition = new Map<number, Buffer[]>();
    for (const oid of info.oids) {
      const p = partitionOf(oid, np);
      let list = byPartition.get(p);
      if (list === undefined) byPartition.set(p, (list = []));
      list.push(oid);
    }
    const snapshot = tidPlusOne(this.lastTid!);
    const failed = new Set([...ctx.involved].filter(([, c]) => c === null).map(([nid]) => nid));
    const undoSerials = new Map<string, [Buffer, Buffer, Buffer | null, boolean]>();
    for (const [partition, oids] of byPartition) {
      let result: ArgsOf<'AnswerObjectUndoSerial'>[0];
      try {
        result = await this.askReadable(partition, 'AskObjectUndoSerial', [ctx.ttid, snapshot, undoneTid, oids],
          (args) => (args as ArgsOf<'AnswerObjectUndoSerial'>)[0], failed);
      } catch (error) {
        if (error instanceof NeoError && error.code === ErrorCodes.OID_NOT_FOUND) throw new UndoError('non-undoable transaction');
        throw error;
      }
      for (const [oid, [current, target, isCurrent]] of result) undoSerials.set(hex(oid), [oid, current, target, isCurrent]);
    }
    const undone: Buffer[] = [];
    for (const [oid, current, target, isCurrent] of undoSerials.values()) {
      if (isCurrent) {
        const data = target === null ? null : await this.loadSerial(oid, target);
        await this.sendStore(ctx, oid, current, data, target);
      } else {
        await this.undoByResolution(ctx, oid, current, target, undoneTid);
      }
      undone.push(oid);
    }
    await this.waitStores(ctx);
    return { tid: null, oids: undone };
  }

  /** A later transaction changed the object: merge "before the undone one" into the current state. */
  private async undoByResolution(ctx: TxnContext, oid: Buffer, current: Buffer, target: Buffer | null, undoneTid: Buffer): Promise<void> {
    const failure = new UndoError('Some data were modified by a later transaction', oid);
    if (this.resolveConflict === undefined || target === null) throw failure;
    const own = ctx.cacheDict.get(hex(oid))?.data ?? ctx.dataDict.get(hex(oid))?.data;
    let merged: Buffer;
    try {
      const currentData = Buffer.isBuffer(own) ? own : await this.loadSerial(oid, current);
      const undoneData = await this.loadSerial(oid, undoneTid);
      const targetData = await this.loadSerial(oid, target);
      merged = await this.resolveConflict(oid, undoneData, currentData, targetData);
    } catch {
      throw failure;
    }
    await this.sendStore(ctx, oid, current, merged, null);
  }

  /**
   * Transactions with start <= tid <= stop, oldest first, each with its object records. The
   * range is capped at the last TID known when the iteration starts.
   */
  async *iterator(start: Buffer | null = null, stop: Buffer | null = null): AsyncGenerator<TransactionRecord> {
    await this.ensureMaster();
    const last = this.lastTid!;
    let max = stop === null || compareIds(stop, last) > 0 ? last : stop;
    let min = start ?? ZERO_TID;
    while (compareIds(min, max) <= 0) {
      const np = this.numPartitions();
      const found = new Map<string, Buffer>();
      for (let partition = 0; partition < np; partition++) {
        const [tids] = await this.askReadable(partition, 'AskTIDsFrom', [min, max, ITERATOR_CHUNK, partition],
          (args) => args as ArgsOf<'AnswerTIDsFrom'>);
        for (const tid of tids) found.set(hex(tid), tid);
      }
      const tids = [...found.values()].sort(compareIds).slice(0, ITERATOR_CHUNK);
      if (tids.length === 0) return;
      // Only the kept TIDs are complete: others beyond the last kept one come in the next step.
      if (tids.length === ITERATOR_CHUNK) max = tids[tids.length - 1]!;
      const infos = [];
      for (const tid of tids) infos.push(await this.transactionInformation(tid));
      for (const info of infos) yield await this.transactionRecord(info);
      min = tidPlusOne(tids[tids.length - 1]!);
      max = stop === null || compareIds(stop, last) > 0 ? last : stop;
    }
  }

  private async transactionRecord(info: TransactionInfo): Promise<TransactionRecord> {
    const records: DataRecord[] = [];
    for (const oid of info.oids) {
      try {
        const answer = await this.askObject(oid, info.tid, null);
        records.push({ oid, tid: info.tid, data: answer.data, dataTxn: answer.dataSerial });
      } catch (error) {
        // Packed away, or only checked (readCurrent) in that transaction.
        if (error instanceof NeoError && (error.code === ErrorCodes.OID_NOT_FOUND || error.code === ErrorCodes.OID_DOES_NOT_EXIST)) continue;
        throw error;
      }
    }
    return { ...info, status: info.packed ? 'p' : ' ', records };
  }

  /**
   * Packs (without garbage collection) up to time `t` (seconds since the epoch): commits a
   * transaction carrying a pack order, as NEO does (§17.1).
   */
  async pack(t: number): Promise<void> {
    await this.ensureMaster();
    const candidate = tidFromTime(t);
    const packTid = compareIds(candidate, this.lastTid!) < 0 ? candidate : this.lastTid!;
    if (packTid.equals(ZERO_TID)) return;
    const txn: TransactionMeta = { description: 'IStorage.pack' };
    await this.tpcBegin(txn);
    try {
      this.context(txn).pack = [null, packTid];
      await this.tpcVote(txn);
    } catch (error) {
      await this.tpcAbort(txn);
      throw error;
    }
    const packId = await this.tpcFinish(txn);
    // As NEO's client: wait until the storages have packed, then forget cached revisions that
    // the pack may have removed.
    await this.masterRequest(await this.ensureMaster(), 'WaitForPack', [packId]);
    this.cache.clear();
  }

  // === misc ===================================================================================

  isReadOnly(): boolean {
    return this.readOnly;
  }

  getName(): string {
    return this.clusterName;
  }

  sortKey(): string {
    return `neo:${this.clusterName}`;
  }

  supportsUndo(): boolean {
    return true;
  }

  /** Our node id once identified (for logs and tests). */
  get nodeId(): number | null {
    return this.nid;
  }

  /** Closes every connection; the storage cannot be used afterwards. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.retryTimer?.cancel();
    this.retryTimer = null;
    this.connectFailed(new StorageClosedError());
    for (const callback of this.closeCallbacks.splice(0)) callback();
    for (const ctx of this.txns.values()) for (const wake of ctx.idleWaiters.splice(0)) wake();
    this.txns.clear();
    const master = this.master;
    this.master = null;
    this.masterReady = false;
    master?.close();
    for (const node of this.nodes.all()) {
      const conn = node.connection;
      node.connection = null;
      conn?.close();
    }
  }
}
