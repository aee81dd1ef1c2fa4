// The storage node (storage.md §1): opens its database, listens, finds the primary master and
// obeys it (recovery, verification), then serves clients once told to start operation.

import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { hostname } from 'node:os';
import { formatAddress } from '../core/address.js';
import type { StorageConfig } from '../core/config.js';
import type { Address, Env, Listener, Logger, Stream, TimerHandle } from '../core/env.js';
import { followMasters, union } from '../core/master-list.js';
import type { DynamicMasterList } from '../core/master-list.js';
import { NodeTable } from '../core/node-table.js';
import type { WireNodeInfo } from '../core/node-table.js';
import { Connection, heartbeatFor } from '../net/connection.js';
import type { Handler } from '../net/connection.js';
import type { Packet } from '../protocol/codec.js';
import { CellStates, NodeTypes } from '../protocol/enums.js';
import type { ClusterState } from '../protocol/enums.js';
import { errorFromCode } from '../protocol/errors.js';
import { ZERO_TID, compareIds, nidToString } from '../protocol/ids.js';
import type { ArgsOf } from '../protocol/packets.js';
import type { Backend, CellChange } from './backends/backend.js';
import { cellStateOf } from './backends/backend.js';
import { openBackend } from './backends/index.js';
import { Checker } from './checker.js';
import { Packer } from './packer.js';
import { Replicator } from './replicator.js';
import { TransactionManager } from './transactions.js';
import { IdentificationHandler } from './handlers/identification.js';
import { MasterHandler } from './handlers/master.js';

/** What the storage node uses of its configuration (StorageConfig satisfies it). */
export type StorageAppConfig = Pick<StorageConfig, 'cluster' | 'masters' | 'bind' | 'adapter' | 'database'>
  & Partial<Pick<StorageConfig, 'reset' | 'dedup' | 'nid' | 'disableDropPartitions' | 'disablePack'>>;

export interface StorageAppOptions {
  /** An already opened backend (tests); otherwise `adapter`/`database` are opened. */
  readonly backend?: Backend;
  /** The --dynamic-master-list file (cluster.md §6.6): more masters to try, kept up to date. */
  readonly masterList?: DynamicMasterList;
}

/** Delay between rounds of attempts to reach a master (cluster.md §6.5). */
const MASTER_RETRY_MS = 1000;
/** The unlock is committed at most this long after it happened (storage.md §2.7.4). */
const DEFERRED_COMMIT_MS = 1000;
/** Object records deleted per step when dropping a discarded partition. */
const DROP_CHUNK_ROWS = 1000;
/** Bound on identifications waiting for the master to tell us about the peer. */
const MAX_DELAYED_IDENTIFICATIONS = 10_000;

type WireRow = ArgsOf<'SendPartitionTable'>[2][number];

export class StorageApp {
  readonly env: Env;
  readonly config: StorageAppConfig;
  readonly logger: Logger;
  readonly clusterName: string;
  readonly nodes = new NodeTable<Connection>();
  /** Resolves with the exit status once the node stopped by itself or was stopped. */
  readonly done: Promise<number>;
  #backend: Backend | null;
  #tm: TransactionManager | null = null;
  /** Replication of own OUT_OF_DATE cells, while operational. */
  replicator: Replicator | null = null;
  /** Background pack of own UP_TO_DATE cells, while operational (null with --disable-pack). */
  packer: Packer | null = null;
  /** Replica checks asked by the master, while operational. */
  checker: Checker | null = null;
  nid: number | null = null;
  /** Our own id timestamp, as the master announced it. */
  idTimestamp: number | null = null;
  /** Timestamp of the last NotifyNodeInformation (protocol.md §5.4). */
  nodeTimestamp = 0;
  clusterState: ClusterState | null = null;
  operational = false;
  /** The greatest approved pack id this node was told about. */
  lastPackId: Buffer = ZERO_TID;
  /** The last pack id reported with NotifyPackCompleted. */
  #reportedPackId: Buffer | null = null;
  #listener: Listener | null = null;
  #masters: Address[];
  readonly #masterList: DynamicMasterList | null;
  #nextMaster = 0;
  #redirect: Address | null = null;
  #masterConn: Connection | null = null;
  #masterTimer: TimerHandle | null = null;
  #commitTimer: TimerHandle | null = null;
  #dropTimer: TimerHandle | null = null;
  #dropQueue: number[] = [];
  #connections = new Set<Connection>();
  #delayedIdentifications: (() => boolean)[] = [];
  /** Answers waiting for the next group commit (whenDurable). */
  #durableWaiters: (() => void)[] = [];
  #stopped = false;
  #resolveDone!: (code: number) => void;

  constructor(env: Env, config: StorageAppConfig, options: StorageAppOptions = {}) {
    this.env = env;
    this.config = config;
    this.logger = env.logger;
    this.clusterName = config.cluster;
    this.#masters = union(config.masters, options.masterList?.loaded ?? []);
    this.#masterList = options.masterList ?? null;
    this.#backend = options.backend ?? null;
    this.done = new Promise((resolve) => {
      this.#resolveDone = resolve;
    });
  }

  get backend(): Backend {
    assert(this.#backend !== null, 'storage not started');
    return this.#backend;
  }

  get tm(): TransactionManager {
    assert(this.#tm !== null, 'storage not started');
    return this.#tm;
  }

  /** The listening address (the real port when bound to port 0). */
  get address(): Address {
    assert(this.#listener !== null, 'storage not listening');
    return this.#listener.address;
  }

  get masterConnection(): Connection | null {
    return this.#masterConn;
  }

  async start(): Promise<void> {
    const config = this.config;
    const backend = this.#backend ?? openBackend(config.adapter, config.database);
    this.#backend = backend;
    try {
      backend.setup({ clusterName: config.cluster, reset: config.reset === true, dedup: config.dedup === true });
    } catch (error) {
      backend.close();
      throw error;
    }
    if (config.reset === true) {
      backend.close();
      this.logger.info('database erased');
      this.#stopped = true;
      this.#resolveDone(0);
      return;
    }
    this.nid = backend.getNid() ?? config.nid ?? null;
    this.#tm = new TransactionManager(backend, {
      notifyDeadlock: (clientNid, ttid, oid) => {
        const conn = clientNid === null ? null : this.nodes.byNid(clientNid)?.connection;
        conn?.notify('NotifyDeadlock', [ttid, oid]);
      },
      notifyReplicationDone: (partition, tid) => this.#masterConn?.notify('NotifyReplicationDone', [partition, tid]),
    });
    this.#listener = await this.env.transport.listen(config.bind, (stream) => this.#accept(stream));
    this.logger.info(`listening on ${formatAddress(this.#listener.address)}`);
    this.#saveMasters();
    this.#connectToMaster();
  }

  /**
   * Group commit: the writes of all the requests handled in one turn of the event loop share one
   * commit (one fsync of the WAL), and each answer promising durability (vote, lock) is sent only
   * after it. While a commit blocks the process, new requests queue up in the sockets: under load
   * the next turn carries several votes and locks, so the commit rate adapts to the disk.
   */
  whenDurable(send: () => void): void {
    this.#durableWaiters.push(send);
    if (this.#durableWaiters.length === 1) this.env.timers.soon(() => this.#groupCommit());
  }

  #groupCommit(): void {
    if (this.#stopped) return;
    const waiters = this.#durableWaiters;
    this.#durableWaiters = [];
    this.backend.commit();
    for (const send of waiters) send();
  }

  /** Closes everything and the database (what is not committed is lost, as in a crash). */
  stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    this.operational = false;
    this.#stopBackgroundWork();
    for (const timer of [this.#masterTimer, this.#commitTimer, this.#dropTimer]) timer?.cancel();
    this.#listener?.close();
    this.#masterConn?.close();
    this.#masterConn = null;
    for (const conn of this.#connections) conn.close();
    this.#connections.clear();
    this.#backend?.close();
    this.#resolveDone(0);
  }

  /** Told by the master that we are DOWN (exit) or UNKNOWN (erase the database, then exit). */
  shutdown(erase: boolean): void {
    if (erase) {
      this.logger.info('erasing the database');
      this.backend.erase();
    }
    this.stop();
  }

  #accept(stream: Stream): void {
    for (const conn of this.#connections) if (conn.isClosed) this.#connections.delete(conn);
    const label = stream.remoteAddress === null ? 'incoming' : formatAddress(stream.remoteAddress);
    const conn = new Connection({
      stream, handler: new IdentificationHandler(this), logger: this.logger, label, heartbeat: heartbeatFor(this.env),
    });
    this.#connections.add(conn);
  }

  // --- The primary master ---------------------------------------------------------------------

  #connectToMaster(): void {
    this.#masterTimer = null;
    if (this.#stopped) return;
    let address = this.#redirect;
    this.#redirect = null;
    if (address === null) {
      address = this.#masters[this.#nextMaster % this.#masters.length]!;
      this.#nextMaster = (this.#nextMaster + 1) % this.#masters.length;
    }
    const label = `master ${formatAddress(address)}`;
    const bootstrap = new MasterBootstrapHandler(this);
    const conn = new Connection({
      stream: this.env.transport.connect(address), handler: bootstrap, logger: this.logger, label, heartbeat: heartbeatFor(this.env),
    });
    const extra = new Map<string, unknown>([['devpath', this.#devpath()], ['new_nid', []]]);
    conn.ask('RequestIdentification', [NodeTypes.STORAGE, this.nid, this.address, this.clusterName, null, extra],
      (answer) => this.#identified(conn, answer));
  }

  /** The topology path the master uses to spread replicas: host name and database device. */
  #devpath(): Buffer[] {
    const path = this.backend.getDevPath();
    let device = '0';
    if (path !== null) {
      try {
        device = String(statSync(path).dev);
      } catch {
        // A database not created yet on disk has no device to report.
      }
    }
    return [Buffer.from(hostname()), Buffer.from(device)];
  }

  #identified(conn: Connection, answer: Packet | null): void {
    if (answer === null || this.#stopped) return; // the bootstrap handler retries on close
    if (answer.info.name === 'Error') {
      const [code, message] = answer.args as ArgsOf<'Error'>;
      this.logger.warn(`${conn.label} refused identification: ${errorFromCode(code, message).toString()}`);
      conn.close();
      return;
    }
    const [nodeType, masterNid, yourNid] = answer.args as ArgsOf<'AcceptIdentification'>;
    if (nodeType !== NodeTypes.MASTER || yourNid === null) {
      this.logger.warn(`${conn.label}: not a master, or no NID given`);
      conn.close();
      return;
    }
    if (this.backend.getNid() !== yourNid) {
      this.backend.setNid(yourNid);
      this.backend.commit();
    }
    this.nid = yourNid;
    this.#nextMaster = 0;
    this.#masterConn = conn;
    this.#reportedPackId = null;
    conn.handler = new MasterHandler(this);
    this.logger.info(`identified as ${nidToString(yourNid)} by the primary master ${nidToString(masterNid)}`);
  }

  /** A master attempt failed: next master at once, or a new round after a pause. */
  masterAttemptFailed(redirect: Address | null): void {
    if (this.#stopped) return;
    if (redirect !== null) {
      this.#redirect = redirect;
      this.#masterTimer = this.env.timers.after(0, () => this.#connectToMaster());
      return;
    }
    const delay = this.#nextMaster === 0 ? MASTER_RETRY_MS : 0;
    this.#masterTimer = this.env.timers.after(delay, () => this.#connectToMaster());
  }

  /** Adds masters learned from NotPrimaryMaster; returns the address of the primary if named. */
  learnMasters(primary: number | null, known: Address[]): Address | null {
    for (const address of known) {
      if (!this.#masters.some((m) => m.host === address.host && m.port === address.port)) this.#masters.push(address);
    }
    this.#saveMasters();
    return primary === null ? null : known[primary] ?? null;
  }

  /** Masters announced by the primary join the ones we try, or leave them (call before the table changes). */
  mastersNotified(nodes: readonly WireNodeInfo[]): void {
    if (followMasters(this.#masters, this.nodes, nodes)) this.#saveMasters();
  }

  #saveMasters(): void {
    this.#masterList?.update(this.#masters, this.logger);
  }

  masterLost(conn: Connection): void {
    if (conn !== this.#masterConn) return;
    this.#masterConn = null;
    if (this.#stopped) return;
    this.logger.warn('lost the connection to the primary master');
    this.stopOperation();
    this.masterAttemptFailed(null);
  }

  // --- Operation ----------------------------------------------------------------------------------

  startOperation(): void {
    const backend = this.backend;
    backend.setBackupTid(null);
    // Verification replayed what had to be: what remains unfinished is dropped (storage.md §2.4).
    backend.dropUnfinishedData();
    backend.commit();
    this.operational = true;
    this.logger.info('operational');
  }

  /**
   * Once NotifyReady is sent: replicate own OUT_OF_DATE cells (storage.md §5), pack what approved
   * orders ask for (transactions.md §17.3), check replicas when the master asks (§6).
   */
  startBackgroundWork(): void {
    assert(this.operational && this.replicator === null, 'background work started twice');
    this.replicator = new Replicator(this);
    this.checker = new Checker(this);
    if (this.config.disablePack !== true) this.packer = new Packer(this);
    this.replicator.start();
    this.packer?.maybePack();
  }

  #stopBackgroundWork(): void {
    this.replicator?.stop();
    this.replicator = null;
    this.packer?.stop();
    this.packer = null;
    this.checker?.stop();
    this.checker = null;
  }

  /** An outgoing connection to a peer (a replication source), closed when operation stops. */
  adoptConnection(conn: Connection): void {
    this.#connections.add(conn);
  }

  /** Back to the initialisation phase: peers are disconnected, pending transactions forgotten. */
  stopOperation(): void {
    if (this.operational) this.logger.info('operation stopped');
    this.operational = false;
    this.#stopBackgroundWork();
    for (const conn of this.#connections) conn.close();
    this.#connections.clear();
    for (const node of this.nodes.all()) node.connection = null;
    this.#delayedIdentifications = [];
    this.#tm?.clear();
  }

  /** Delays an identification until the next NotifyNodeInformation; `accept` returns true once done. */
  delayIdentification(accept: () => boolean): void {
    assert(this.#delayedIdentifications.length < MAX_DELAYED_IDENTIFICATIONS, 'too many delayed identifications');
    this.#delayedIdentifications.push(accept);
  }

  nodeInformationReceived(timestamp: number): void {
    this.nodeTimestamp = timestamp;
    const waiting = this.#delayedIdentifications;
    this.#delayedIdentifications = [];
    for (const accept of waiting) if (!accept()) this.#delayedIdentifications.push(accept);
  }

  /** Arms (or re-arms) the commit of unlocked transactions 1 s after the latest unlock. */
  armDeferredCommit(): void {
    this.#commitTimer?.cancel();
    this.#commitTimer = this.env.timers.after(DEFERRED_COMMIT_MS, () => {
      this.#commitTimer = null;
      this.backend.commitDeferred();
    });
  }

  // --- Partition table ----------------------------------------------------------------------------

  partitionTableWire(): { ptid: number | null; numReplicas: number; rows: WireRow[] } {
    const backend = this.backend;
    const rows: WireRow[] = Array.from({ length: backend.getNumPartitions() }, () => []);
    for (const cell of backend.getPartitionTable()) {
      rows[cell.partition]!.push([cell.nid, cellStateOf(cell.tid)]);
    }
    return { ptid: backend.getPtid(), numReplicas: backend.getNumReplicas() ?? 0, rows };
  }

  /** SendPartitionTable (reset) or NotifyPartitionChanges; committed at the end (§2.7.4). */
  changePartitionTable(ptid: number, numReplicas: number, cells: CellChange[], reset: boolean): void {
    const backend = this.backend;
    const wereOutdated = reset || !this.operational ? [] : this.#outdatedPartitions();
    const dropped = backend.changePartitionTable({ ptid, numReplicas, cells, reset, lastPackId: this.lastPackId });
    if (this.operational) this.tm.discarded(dropped);
    else backend.dropPartitionsTemporary(dropped);
    backend.commit();
    if (!reset) this.replicator?.partitionsChanged(cells);
    const outdated = new Set(this.#outdatedPartitions());
    if (wereOutdated.some((p) => !outdated.has(p))) {
      // A cell left OUT_OF_DATE: the lowest completed pack id may be higher, or a pack may be due.
      this.notifyPackCompleted();
      this.packer?.maybePack();
    }
    if (dropped.length > 0 && this.config.disableDropPartitions !== true) {
      for (const p of dropped) if (!this.#dropQueue.includes(p)) this.#dropQueue.push(p);
      this.#scheduleDrop();
    }
  }

  #scheduleDrop(): void {
    if (this.#dropTimer !== null || this.#stopped) return;
    this.#dropTimer = this.env.timers.after(0, () => {
      this.#dropTimer = null;
      this.#dropStep();
    });
  }

  /** Deletes one chunk of a discarded partition, unless the partition came back to this node. */
  #dropStep(): void {
    const partition = this.#dropQueue[0];
    if (partition === undefined || this.#stopped) return;
    const backend = this.backend;
    const assigned = backend.getPartitionTable().some((cell) => cell.partition === partition && cell.nid === this.nid);
    if (assigned || backend.dropPartition(partition, DROP_CHUNK_ROWS)) this.#dropQueue.shift();
    backend.commit();
    if (this.#dropQueue.length > 0) this.#scheduleDrop();
  }

  #outdatedPartitions(): number[] {
    return this.backend.getPartitionTable()
      .filter((cell) => cell.nid === this.nid && cellStateOf(cell.tid) === CellStates.OUT_OF_DATE)
      .map((cell) => cell.partition);
  }

  /** The pack id to report as completed: the lowest over own cells, or with --disable-pack the newest approved. */
  completedPackId(): Buffer | null {
    if (this.config.disablePack === true) return this.lastPackId;
    let lowest: Buffer | null = null;
    for (const id of this.backend.getPackedIDs(false).values()) {
      if (lowest === null || compareIds(id, lowest) < 0) lowest = id;
    }
    return lowest;
  }

  /** NotifyPackCompleted to the master when the completed pack id changed, or `always` (transactions.md §17.2). */
  notifyPackCompleted(always = false): void {
    const id = this.completedPackId();
    if (id === null || this.#masterConn === null || (!always && this.#reportedPackId?.equals(id) === true)) return;
    this.#reportedPackId = id;
    this.#masterConn.notify('NotifyPackCompleted', [id]);
  }

  /** NotifyPackSigned: remembers the newest approved id, and packs (or reports it with --disable-pack). */
  packOrdersApproved(approved: readonly Buffer[]): void {
    let newest = this.lastPackId;
    for (const id of approved) if (compareIds(id, newest) > 0) newest = id;
    if (newest === this.lastPackId) return;
    this.lastPackId = Buffer.from(newest);
    if (!this.operational) return;
    if (this.config.disablePack === true) this.notifyPackCompleted();
    else this.packer?.maybePack();
  }
}

/** The master connection until AcceptIdentification: handles refusals and redirections. */
class MasterBootstrapHandler implements Handler {
  readonly #app: StorageApp;
  #redirect: Address | null = null;

  constructor(app: StorageApp) {
    this.#app = app;
  }

  NotPrimaryMaster(conn: Connection, primary: number | null, known: Address[]): void {
    this.#redirect = this.#app.learnMasters(primary, known);
    conn.close();
  }

  connectionClosed(conn: Connection, error?: Error): void {
    this.#app.logger.info(`${conn.label}: ${error?.message ?? 'closed'} before identification`);
    this.#app.masterAttemptFailed(this.#redirect);
  }
}
