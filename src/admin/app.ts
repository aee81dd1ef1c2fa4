// The admin node (cluster.md §2.4, §14): a passive copy of the primary master's node list,
// partition table and cluster state, served to neoctl, which it also relays to the master; and
// the health summary of the cluster (`neoctl print summary`).

import assert from 'node:assert/strict';
import { formatAddress } from '../core/address.js';
import type { Address, Env, Listener, Logger, TimerHandle } from '../core/env.js';
import { followMasters, union } from '../core/master-list.js';
import type { DynamicMasterList } from '../core/master-list.js';
import { NodeTable, sameAddress } from '../core/node-table.js';
import type { WireNodeInfo } from '../core/node-table.js';
import type { PartitionTable } from '../core/partition-table.js';
import { Connection, heartbeatFor } from '../net/connection.js';
import { ClusterStates, NodeStates, NodeTypes } from '../protocol/enums.js';
import type { CellState, ClusterState } from '../protocol/enums.js';
import { nidToString } from '../protocol/ids.js';
import { notReady } from '../protocol/errors.js';
import { CtlHandler } from './handlers/ctl.js';
import { IdentificationHandler, MasterHandler } from './handlers/master.js';
import { formatSummary, isOperational, sameCounts, severityOf, tableHealth } from './monitor.js';
import type { ClusterHealth } from './monitor.js';

export const NOT_CONNECTED_MESSAGE = 'Not connected to a primary master.';
/** Delay between two connection attempts to the same master. */
const RECONNECT_DELAY_MS = 1000;
/** How long the master may take to answer the last TID asked for the summary. */
const MONITOR_TIMEOUT_MS = 60_000;

/** The options of neoadmin that this node uses (AdminConfig has them all). */
export interface AdminOptions {
  readonly cluster: string;
  readonly bind: Address;
  readonly masters: readonly Address[];
  /** The NID to ask for at the first identification (tests). */
  readonly nid?: number | undefined;
  /** Backup clusters to monitor: not implemented, their admins are refused. */
  readonly monitorBackup?: readonly string[];
  /** Notification recipients: not implemented (e-mails are not sent). */
  readonly monitorEmail?: readonly string[];
}

interface MonitorRequest {
  readonly conn: Connection;
  readonly msgId: number;
}

export class AdminApp {
  readonly env: Env;
  readonly config: AdminOptions;
  readonly logger: Logger;
  readonly nodes = new NodeTable();
  pt: PartitionTable | null = null;
  clusterState: ClusterState | null = null;
  /** The identified connection to the primary master, if any. */
  masterConn: Connection | null = null;
  primaryNid: number | null = null;
  nid: number | null;
  /** Resolves when the node stopped by itself: the cluster was stopped (STOPPING). */
  readonly stopped: Promise<void>;

  #listener: Listener | null = null;
  #stopping = false;
  #resolveStopped!: () => void;
  readonly #ctlConnections = new Set<Connection>();
  readonly #ctlHandler = new CtlHandler(this);
  readonly #masterHandler = new MasterHandler(this);
  // Finding the primary master (cluster.md §6.5).
  readonly #masterAddresses: Address[];
  /** The --dynamic-master-list file (cluster.md §6.6), kept in step with #masterAddresses. */
  readonly #masterList: DynamicMasterList | null;
  #nextMaster = 0;
  #designatedPrimary: Address | null = null;
  readonly #lastAttemptMs = new Map<string, number>();
  #connectTimer: TimerHandle | null = null;
  #connecting: Connection | null = null;
  /** Failures to join a master are logged once until the next success, not every second. */
  #failureLogged = false;
  // Monitoring (cluster.md §14.2).
  #cellCounts: ReadonlyMap<CellState, number> | null = null;
  #down = 0;
  #lastTid: Buffer | null = null;
  #backupTid: Buffer | null = null;
  #monitorChanged = false;
  #notifying = false;
  #monitorTimer: TimerHandle | null = null;
  #monitorRequests: MonitorRequest[] = [];

  constructor(env: Env, config: AdminOptions, masterList?: DynamicMasterList) {
    assert(config.cluster !== '', 'the cluster name must not be empty');
    this.env = env;
    this.config = config;
    this.logger = env.logger;
    this.nid = config.nid ?? null;
    this.#masterAddresses = union(config.masters, masterList?.loaded ?? []);
    this.#masterList = masterList ?? null;
    this.stopped = new Promise((resolve) => (this.#resolveStopped = resolve));
    if ((config.monitorEmail ?? []).length > 0) {
      this.logger.warn('e-mail notifications are not implemented: --monitor-email is ignored');
    }
  }

  get address(): Address {
    assert(this.#listener !== null, 'the admin is not started');
    return this.#listener.address;
  }

  get operational(): boolean {
    return isOperational(this.clusterState);
  }

  async start(): Promise<void> {
    assert(this.#listener === null, 'already started');
    this.#listener = await this.env.transport.listen(this.config.bind, (stream) => {
      const conn = new Connection({
        stream,
        handler: this.#ctlHandler,
        logger: this.logger,
        label: `neoctl ${stream.remoteAddress === null ? '?' : formatAddress(stream.remoteAddress)}`,
      });
      this.#ctlConnections.add(conn);
    });
    this.logger.info(`listening on ${formatAddress(this.#listener.address)}`);
    this.#saveMasters();
    this.#connectToPrimary();
  }

  stop(): void {
    if (this.#stopping) return;
    this.#stopping = true;
    this.#connectTimer?.cancel();
    this.#monitorTimer?.cancel();
    this.#listener?.close();
    this.#connecting?.close();
    this.masterConn?.close();
    for (const conn of this.#ctlConnections) conn.close();
    this.#resolveStopped();
  }

  /** The primary master connection, or NOT_READY for the neoctl request being served. */
  requireMaster(): Connection {
    if (this.masterConn === null) throw notReady(NOT_CONNECTED_MESSAGE);
    return this.masterConn;
  }

  ctlConnectionClosed(conn: Connection): void {
    this.#ctlConnections.delete(conn);
    this.#monitorRequests = this.#monitorRequests.filter((request) => request.conn !== conn);
  }

  // --- finding the primary master --------------------------------------------------------------

  #connectToPrimary(): void {
    if (this.#stopping) return;
    assert(this.masterConn === null && this.#connecting === null);
    let address = this.#designatedPrimary;
    this.#designatedPrimary = null;
    if (address === null) {
      address = this.#masterAddresses[this.#nextMaster % this.#masterAddresses.length] ?? null;
      this.#nextMaster++;
    }
    if (address === null) {
      this.logger.error('no master address to connect to (--masters)');
      return;
    }
    const target = address;
    const key = formatAddress(target);
    const sinceLastMs = this.env.clock.monotonicMs() - (this.#lastAttemptMs.get(key) ?? -Infinity);
    const delayMs = Math.max(0, RECONNECT_DELAY_MS - sinceLastMs);
    this.#connectTimer = this.env.timers.after(delayMs, () => {
      this.#connectTimer = null;
      this.#lastAttemptMs.set(key, this.env.clock.monotonicMs());
      this.#identify(target);
    });
  }

  #identify(address: Address): void {
    if (this.#stopping) return;
    this.logger.debug(`connecting to master ${formatAddress(address)}`);
    const conn = new Connection({
      stream: this.env.transport.connect(address),
      handler: new IdentificationHandler(this),
      logger: this.logger,
      label: `master ${formatAddress(address)}`,
      heartbeat: heartbeatFor(this.env),
    });
    this.#connecting = conn;
    const backup = (this.config.monitorBackup ?? []).map((name) => Buffer.from(name, 'utf8'));
    conn.ask(
      'RequestIdentification',
      [NodeTypes.ADMIN, this.nid, this.address, this.config.cluster, null, new Map([['backup', backup]])],
      (answer) => {
        if (answer === null) return; // connectionClosed of the handler tries again
        if (answer.info.name === 'AcceptIdentification') {
          const [type, nid, yourNid] = answer.args as [typeof NodeTypes.MASTER, number | null, number | null];
          if (type === NodeTypes.MASTER && yourNid !== null) return this.#identified(conn, nid, yourNid);
          this.logger.warn(`${conn.label}: refused identification answer (${type.name}, your nid ${yourNid})`);
        } else {
          this.logger.warn(`${conn.label}: identification refused: ${String(answer.args[1])}`);
        }
        conn.close();
      },
    );
  }

  /** A master told us it is not the primary: remember the masters it knows, and the primary. */
  notPrimaryMaster(primary: number | null, knownMasters: readonly Address[]): void {
    for (const address of knownMasters) {
      if (!this.#masterAddresses.some((known) => sameAddress(known, address))) this.#masterAddresses.push(address);
    }
    this.#saveMasters();
    this.#designatedPrimary = primary === null ? null : (knownMasters[primary] ?? null);
  }

  /** Masters announced by the primary join the ones we try, or leave them (call before the table changes). */
  mastersNotified(nodes: readonly WireNodeInfo[]): void {
    if (followMasters(this.#masterAddresses, this.nodes, nodes)) this.#saveMasters();
  }

  #saveMasters(): void {
    this.#masterList?.update(this.#masterAddresses, this.logger);
  }

  /** The connection being identified closed: try the next master. */
  identificationFailed(conn: Connection, error?: Error): void {
    if (conn !== this.#connecting) return;
    this.#connecting = null;
    if (!this.#failureLogged && !this.#stopping) {
      this.#failureLogged = true;
      const reason = error === undefined ? 'connection closed' : error.message;
      this.logger.warn(`cannot join the primary master through ${conn.label} (${reason}): retrying`);
    }
    this.#connectToPrimary();
  }

  #identified(conn: Connection, primaryNid: number | null, yourNid: number): void {
    this.#connecting = null;
    this.#failureLogged = false;
    this.masterConn = conn;
    this.primaryNid = primaryNid;
    this.nid = yourNid;
    conn.handler = this.#masterHandler;
    this.logger.info(`connected to the primary master ${nidToString(primaryNid)} as ${nidToString(yourNid)}`);
    conn.ask('AskClusterState', [], (answer) => {
      if (answer?.info.name === 'AnswerClusterState') {
        this.updateMonitor({ clusterState: answer.args[0] as ClusterState | null });
      }
    });
  }

  /** The connection to the primary master is lost: forget it and look for the primary again. */
  masterLost(conn: Connection): void {
    if (conn !== this.masterConn) return;
    this.logger.error('primary master is down');
    const wasStopping = this.clusterState === ClusterStates.STOPPING;
    this.masterConn = null;
    this.primaryNid = null;
    this.nid = null;
    this.#notifying = false;
    this.#monitorTimer?.cancel();
    this.#monitorTimer = null;
    if (wasStopping) {
      this.logger.info('the cluster is stopped: stopping');
      this.stop();
      return;
    }
    this.updateMonitor({ clusterState: null });
    // Pending `print summary` requests get the not-connected summary even if nothing changed.
    this.#notify(false);
    this.#connectToPrimary();
  }

  // --- the copies of the master's tables -----------------------------------------------------

  setPartitionTable(pt: PartitionTable | null): void {
    this.pt = pt;
    this.partitionTableUpdated();
  }

  /** Recomputes the health figures after a change of the table or of node states. */
  partitionTableUpdated(): void {
    const pt = this.pt;
    if (pt === null) return;
    const isRunning = (nid: number) => this.nodes.byNid(nid)?.state === NodeStates.RUNNING;
    const { cellCounts, down } = tableHealth(pt, isRunning);
    this.updateMonitor({ cellCounts, down });
  }

  // --- monitoring ----------------------------------------------------------------------------

  get health(): ClusterHealth {
    return {
      clusterState: this.clusterState,
      cellCounts: this.#cellCounts,
      down: this.#down,
      lastTid: this.#lastTid,
      backupTid: this.#backupTid,
    };
  }

  updateMonitor(change: {
    clusterState?: ClusterState | null;
    cellCounts?: ReadonlyMap<CellState, number>;
    down?: number;
  }): void {
    let changed = false;
    if (change.clusterState !== undefined && change.clusterState !== this.clusterState) {
      this.clusterState = change.clusterState;
      changed = true;
    }
    if (change.cellCounts !== undefined && !sameCounts(change.cellCounts, this.#cellCounts)) {
      this.#cellCounts = change.cellCounts;
      changed = true;
    }
    if (change.down !== undefined && change.down !== this.#down) {
      this.#down = change.down;
      changed = true;
    }
    if (!changed) return;
    this.#monitorChanged = true;
    if (!this.#notifying) this.#notify(this.operational);
  }

  /** `print summary`: answered once the last TIDs are refreshed (when the cluster is operational). */
  askMonitorInformation(conn: Connection, msgId: number): void {
    const busy = this.#monitorRequests.length > 0 || this.#notifying;
    this.#monitorRequests.push({ conn, msgId });
    if (!busy) this.#notify(this.operational);
  }

  #notify(askIds: boolean): void {
    const master = this.masterConn;
    if (askIds && master !== null) {
      this.#askLastIds(master);
      return;
    }
    if (this.#notifying || (this.clusterState === null && master !== null)) return;
    const health = this.health;
    const body = master === null ? NOT_CONNECTED_MESSAGE : formatSummary(health);
    if (this.#monitorChanged) {
      this.#monitorChanged = false;
      this.logger.info(`cluster summary: ${body}`);
    }
    const requests = this.#monitorRequests;
    if (requests.length === 0) return;
    this.#monitorRequests = [];
    const severity = master === null ? 2 : severityOf(health);
    const warnings = severity === 1 ? [null] : [];
    const problems = severity === 2 ? [null] : [];
    for (const { conn, msgId } of requests) {
      conn.answerTo(msgId, 'AnswerMonitorInformation', [warnings, problems, body]);
    }
  }

  #askLastIds(master: Connection): void {
    this.#notifying = true;
    this.#monitorTimer = this.env.timers.after(MONITOR_TIMEOUT_MS, () => {
      this.logger.error('no answer from the primary master to a monitoring request: closing');
      master.close();
    });
    if (this.clusterState === ClusterStates.BACKINGUP) {
      master.ask('AskRecovery', [], (answer) => {
        if (answer?.info.name === 'AnswerRecovery') this.#backupTid = (answer.args[1] as Buffer | null);
      });
    }
    master.ask('AskLastTransaction', [], (answer) => {
      if (answer === null || master !== this.masterConn) return;
      if (answer.info.name === 'AnswerLastTransaction') this.#lastTid = answer.args[0] as Buffer;
      this.#notifying = false;
      this.#monitorTimer?.cancel();
      this.#monitorTimer = null;
      this.#notify(false);
    });
  }
}
