// The primary master node (cluster.md §2.1): identification of every other node, the node list,
// the partition table, the cluster state machine (recovery, verification, service, stopping) and
// the second phase of the two-phase commit. It keeps nothing on disk: everything is rebuilt from
// the storage nodes at recovery. With several masters (--masters), each starts playing primary
// in RECOVERING and challenges the others; the losers become secondary masters, which only
// follow the primary and take over when it is lost (cluster.md §6).

import assert from 'node:assert/strict';
import { formatAddress } from '../core/address.js';
import type { MasterConfig } from '../core/config.js';
import type { Address, Env, Listener, Logger, Stream, TimerHandle } from '../core/env.js';
import { union } from '../core/master-list.js';
import type { DynamicMasterList } from '../core/master-list.js';
import { NodeTable, describeNode, sameAddress } from '../core/node-table.js';
import type { NodeEntry, WireNodeInfo } from '../core/node-table.js';
import { PartitionTable, isReadable } from '../core/partition-table.js';
import { Connection, heartbeatFor } from '../net/connection.js';
import type { Handler } from '../net/connection.js';
import type { Packet } from '../protocol/codec.js';
import { CellStates, ClusterStates, ErrorCodes, NodeStates, NodeTypes } from '../protocol/enums.js';
import type { ClusterState, NodeState, NodeType } from '../protocol/enums.js';
import { NeoError, errorFromCode, notReady, protocolError } from '../protocol/errors.js';
import {
  MAX_TID, ZERO_TID, compareIds, makeNid, nidToString, nidType, p64, partitionOf, tidFromTime, tidToHex, u64,
} from '../protocol/ids.js';
import type { ArgsOf, PacketName } from '../protocol/packets.js';
import { AdminHandler } from './handlers/admin.js';
import { ClientHandler } from './handlers/client.js';
import { IdentificationHandler, devpathOf } from './handlers/identification.js';
import { OtherMasterHandler, SecondaryHandler } from './handlers/master.js';
import { StorageHandler, StorageServiceHandler } from './handlers/storage.js';
import { operationalWithout, outdateNode, outdateNotRunning, replicationDone, tweak } from './pt.js';
import type { CellChange } from './pt.js';
import { TransactionManager } from './transactions.js';
import type { Transaction } from './transactions.js';

export type MasterOptions = Pick<MasterConfig, 'cluster' | 'bind' | 'masters' | 'partitions' | 'replicas' | 'autostart' | 'nid'>;

type Node = NodeEntry<Connection>;
type PackOrder = ArgsOf<'AnswerPackOrders'>[0][number];

/** The step between two timestamps handed out within the same clock reading (protocol.md §3.7). */
const TIMESTAMP_STEP_SECONDS = 0.001;
/** How long a stopping master waits for its peers to read their last packets. */
const STOP_FLUSH_TIMEOUT_MS = 5_000;
/**
 * Least delay between two connection attempts of a master to the same master, as NEO's
 * connector (one per second per address).
 */
const MASTER_RETRY_MS = 1_000;
/** Bound on client requests waiting for storages to be ready. */
const MAX_DELAYED_BEGINS = 10_000;
/** Bound on clients waiting for packs to complete. */
const MAX_PACK_WAITERS = 10_000;
/** The states `neoctl set cluster` may ask for, and the states each may be reached from. */
const STATE_WORKFLOW: ReadonlyMap<ClusterState, readonly ClusterState[]> = new Map([
  [ClusterStates.VERIFYING, [ClusterStates.RECOVERING]],
  [ClusterStates.STARTING_BACKUP, [ClusterStates.RUNNING, ClusterStates.STOPPING_BACKUP]],
  [ClusterStates.STOPPING_BACKUP, [ClusterStates.BACKINGUP, ClusterStates.STARTING_BACKUP]],
]);

interface RecoveryState {
  /** The newest ptid reported by a storage, whose table is wanted. */
  targetPtid: number | null;
  /** The node asked for that table, null when none is asked. */
  askedNid: number | null;
  /** Other nodes that reported the target ptid. */
  readonly alternates: number[];
  /** The truncate TID each storage reported in AnswerRecovery (null: none recorded). */
  readonly truncateTids: Map<number, Buffer | null>;
}

interface DelayedBegin {
  readonly conn: Connection;
  readonly msgId: number;
  readonly tid: Buffer | null;
}

/** Election keys compare by time, then address: host bytes, then port (protocol.md §3.3). */
export function compareElectionKeys(time1: number, address1: Address, time2: number, address2: Address): number {
  if (time1 !== time2) return time1 < time2 ? -1 : 1;
  const hosts = Buffer.compare(Buffer.from(address1.host), Buffer.from(address2.host));
  if (hosts !== 0) return hosts;
  return address1.port - address2.port;
}

function addressKey(address: Address): string {
  return formatAddress(address);
}

export class MasterApp {
  readonly env: Env;
  readonly config: MasterOptions;
  readonly logger: Logger;
  readonly nodes = new NodeTable<Connection>();
  readonly tm = new TransactionManager();
  pt: PartitionTable;
  clusterState: ClusterState = ClusterStates.RECOVERING;
  nid: number;
  /** Resolved once the master stopped and its connections are closed. */
  readonly stopped: Promise<void>;

  private listener: Listener | null = null;
  private self: Node | null = null;
  private readonly connections = new Set<Connection>();
  private lastTimestamp = 0;
  /** Incremented on each cluster state change: answers to older requests are ignored. */
  private phase = 0;
  /** Whether recovery may start a cluster that is not complete (neoctl start, cluster.md §7.2). */
  private startupAllowed = false;
  private recovery: RecoveryState = { targetPtid: null, askedNid: null, alternates: [], truncateTids: new Map() };
  /**
   * The TID the database is being truncated after (storage.md §7), from `neoctl truncate` or
   * adopted with the partition table at recovery; cleared once verification asked the last ids,
   * which is when storages truncate.
   */
  private truncateTid: Buffer | null = null;
  /** Storages that may get cells: those of the table and those added since (cluster.md §10.1). */
  private readonly ptMembers = new Set<number>();
  /** The topology path each storage announced at its last identification, while it is known. */
  private readonly devpaths = new WeakMap<Node, readonly string[]>();
  /** Readiness number of each ready storage (cluster.md §9.1). */
  private readonly ready = new Map<number, number>();
  private readonly starting = new Set<number>();
  private readiness = 0;
  private delayedBegins: DelayedBegin[] = [];
  /** Cells `partition:nid` allowed to become UP_TO_DATE (cluster.md §16.3, "updatable"). */
  private readonly updatable = new Set<string>();
  private knownPackOrders: PackOrder[] = [];
  /** NotifyPackCompleted values of this verification, per storage. */
  private readonly completedPacks = new Map<number, Buffer>();
  /** Clients waiting in WaitForPack (answered by releasePackWaiters). */
  private packWaiters: { conn: Connection; msgId: number; packId: Buffer }[] = [];
  private shuttingDown = false;
  private resolveStopped!: () => void;
  private stopTimer: TimerHandle | null = null;

  private readonly identificationHandler: IdentificationHandler;
  private readonly storageHandler: StorageHandler;
  private readonly storageServiceHandler: StorageServiceHandler;
  private readonly clientHandler: ClientHandler;
  private readonly adminHandler: AdminHandler;
  private readonly secondaryHandler: SecondaryHandler;
  private readonly otherMasterHandler: OtherMasterHandler;

  /** Whether this master plays the primary or the secondary role (cluster.md §6). */
  role: 'primary' | 'secondary' = 'primary';
  /** When this master started playing primary: its election key is (this, own address). */
  private primarySince = 0;
  /** Election challenges in progress: the connection this primary opened to each master. */
  private readonly electionConnections = new Map<Node, Connection>();
  private electionTimer: TimerHandle | null = null;
  /** Secondary role: the master believed primary, our connection to it, whether it accepted us. */
  private primaryMaster: Node | null = null;
  private primaryConnection: Connection | null = null;
  private primaryJoined = false;
  /** Secondary role: masters tried since the last failure of a joined primary (cluster.md §6.4). */
  private triedMasters = new Set<string>();
  private secondaryTimer: TimerHandle | null = null;
  /** The --dynamic-master-list file (cluster.md §6.6): every master of the node table, own included. */
  private readonly masterList: DynamicMasterList | null;

  constructor(env: Env, config: MasterOptions, masterList?: DynamicMasterList) {
    this.env = env;
    this.config = config;
    this.masterList = masterList ?? null;
    this.logger = env.logger;
    this.pt = new PartitionTable(config.partitions, config.replicas);
    this.nid = config.nid ?? makeNid(NodeTypes.MASTER.value, 1);
    assert.equal(nidType(this.nid), NodeTypes.MASTER.value, `--nid ${config.nid} is not a master id`);
    this.identificationHandler = new IdentificationHandler(this);
    this.storageHandler = new StorageHandler(this);
    this.storageServiceHandler = new StorageServiceHandler(this);
    this.clientHandler = new ClientHandler(this);
    this.adminHandler = new AdminHandler(this);
    this.secondaryHandler = new SecondaryHandler(this);
    this.otherMasterHandler = new OtherMasterHandler(this);
    this.stopped = new Promise((resolve) => (this.resolveStopped = resolve));
  }

  get address(): Address {
    assert(this.listener !== null, 'master not started');
    return this.listener.address;
  }

  async start(): Promise<void> {
    this.listener = await this.env.transport.listen(this.config.bind, (stream) => this.accept(stream));
    this.logger.info(`listening on ${formatAddress(this.listener.address)}`);
    this.self = this.nodes.add({
      nid: this.nid, type: NodeTypes.MASTER, address: this.listener.address,
      state: NodeStates.RUNNING, idTimestamp: null, connection: null,
    });
    // Our own address may be listed too (the same list for every master).
    this.learnMasters(union(this.config.masters, this.masterList?.loaded ?? []));
    this.playPrimary();
  }

  /** Stops at once: closes the listening socket and every connection. */
  stop(): void {
    this.shuttingDown = true;
    this.electionTimer?.cancel();
    this.secondaryTimer?.cancel();
    this.listener?.close();
    for (const conn of [...this.connections]) conn.close();
    this.finishStop();
  }

  // --- nodes --------------------------------------------------------------------------------

  /** One process-wide strictly increasing sequence for id and notification timestamps. */
  nextTimestamp(): number {
    const now = this.env.clock.now();
    this.lastTimestamp = now > this.lastTimestamp ? now : this.lastTimestamp + TIMESTAMP_STEP_SECONDS;
    return this.lastTimestamp;
  }

  private accept(stream: Stream): void {
    if (this.shuttingDown) {
      stream.destroy();
      return;
    }
    const remote = stream.remoteAddress;
    const conn = new Connection({
      stream, handler: this.identificationHandler, logger: this.logger,
      label: remote === null ? 'peer' : formatAddress(remote),
      heartbeat: heartbeatFor(this.env),
    });
    this.connections.add(conn);
  }

  private identified(): Node[] {
    return this.nodes.all().filter((node) => node.connection !== null);
  }

  private identifiedStorages(): Node[] {
    return this.identified().filter((node) => node.type === NodeTypes.STORAGE);
  }

  isRunning = (nid: number): boolean => {
    const node = this.nodes.byNid(nid);
    return node !== undefined && node.state === NodeStates.RUNNING && node.connection !== null;
  };

  /** Whether a node of type `receiver` is told about nodes of type `changed` (cluster.md §4.4). */
  private static tells(receiver: NodeType, changed: NodeType): boolean {
    if (changed === NodeTypes.MASTER) return true;
    if (changed === NodeTypes.STORAGE) return receiver !== NodeTypes.MASTER;
    if (changed === NodeTypes.CLIENT) return receiver === NodeTypes.ADMIN || receiver === NodeTypes.STORAGE;
    return false;
  }

  /** One NotifyNodeInformation per identified peer, with the changes it must know. */
  broadcastNodes(changed: readonly Node[]): void {
    if (changed.length === 0) return;
    const timestamp = this.nextTimestamp();
    for (const peer of this.identified()) {
      const relevant = changed.filter((node) => MasterApp.tells(peer.type, node.type));
      if (relevant.length > 0) {
        peer.connection!.notify('NotifyNodeInformation', [timestamp, relevant.map((node) => this.nodes.toWire(node))]);
      }
    }
  }

  /** The full node list a newly identified node gets, its own entry first. */
  private sendNodeList(node: Node): void {
    const others = this.nodes.all().filter((other) => other !== node && MasterApp.tells(node.type, other.type));
    const list = [node, ...others].map((entry) => this.nodes.toWire(entry));
    node.connection!.notify('NotifyNodeInformation', [this.nextTimestamp(), list]);
  }

  private sendPartitionTable(conn: Connection): void {
    conn.notify('SendPartitionTable', [this.pt.ptid, this.pt.numReplicas, this.pt.toWire()]);
  }

  /** Applies nothing itself: `changes` are already in the table; bumps the ptid and tells. */
  broadcastPartitionChanges(changes: readonly CellChange[], force = false): void {
    if (changes.length === 0 && !force) return;
    this.pt.ptid = (this.pt.ptid ?? 0) + 1;
    const args: ArgsOf<'NotifyPartitionChanges'> = [this.pt.ptid, this.pt.numReplicas, [...changes]];
    for (const peer of this.identified()) {
      if (peer.type === NodeTypes.MASTER) continue;
      // Storages in recovery get the whole table when verification starts.
      if (this.clusterState === ClusterStates.RECOVERING && peer.type !== NodeTypes.ADMIN) continue;
      peer.connection!.notify('NotifyPartitionChanges', args);
    }
  }

  private notifyAll<N extends PacketName>(name: N, args: ArgsOf<N>, types?: readonly NodeType[]): void {
    for (const peer of this.identified()) {
      if (types === undefined || types.includes(peer.type)) peer.connection!.notify(name, args);
    }
  }

  private setClusterStateAndNotify(state: ClusterState): void {
    this.phase++;
    this.clusterState = state;
    this.logger.info(`cluster state: ${state.name}`);
    this.notifyAll('NotifyClusterInformation', [state]);
    const handler = state === ClusterStates.RUNNING ? this.storageServiceHandler : this.storageHandler;
    for (const storage of this.identifiedStorages()) storage.connection!.handler = handler;
  }

  // --- identification (protocol.md §5.3) ------------------------------------------------------

  identify(conn: Connection, ...[nodeType, nid, address, clusterName, idTimestamp, extra]: ArgsOf<'RequestIdentification'>): void {
    if (clusterName !== this.config.cluster) throw protocolError('invalid cluster name');
    if (address !== null && sameAddress(address, this.address)) throw protocolError('address conflict');
    if (this.role === 'secondary') {
      this.redirect(conn, nodeType, address, idTimestamp);
      return;
    }
    let node = this.resolveNode(nid, address);
    let state: NodeState;
    let handler: Handler;
    switch (nodeType) {
      case NodeTypes.CLIENT:
        if (this.clusterState !== ClusterStates.RUNNING) throw notReady();
        if (extra.has('backup')) throw new NeoError(ErrorCodes.DENIED, 'not implemented yet: backup clusters');
        state = NodeStates.RUNNING;
        handler = this.clientHandler;
        break;
      case NodeTypes.STORAGE:
        if (address === null) {
          if (this.clusterState === ClusterStates.RECOVERING) throw notReady();
          throw protocolError('not implemented yet: --new-nid');
        }
        if (this.clusterState === ClusterStates.RECOVERING) {
          state = NodeStates.PENDING;
        } else {
          state = node !== undefined && this.ptMembers.has(node.nid!) ? NodeStates.RUNNING : NodeStates.PENDING;
        }
        handler = this.clusterState === ClusterStates.RUNNING ? this.storageServiceHandler : this.storageHandler;
        break;
      case NodeTypes.ADMIN:
        state = NodeStates.RUNNING;
        handler = this.adminHandler;
        break;
      case NodeTypes.MASTER: {
        if (address === null) throw protocolError('a master has an address');
        const election = this.election;
        if (election !== null && idTimestamp !== null && compareElectionKeys(idTimestamp, address, election, this.address) < 0) {
          // An older candidate: it wins, and gets no answer (protocol.md §5.5).
          this.logger.info(`election lost against ${formatAddress(address)}`);
          const primary = node ?? this.learnMasters([address])[0]!;
          conn.close();
          this.becomeSecondary(primary, this.electionConnections.get(primary) ?? null);
          return;
        }
        state = NodeStates.RUNNING;
        handler = this.secondaryHandler;
        break;
      }
      default:
        throw protocolError(`unsupported node type ${nodeType.name}`);
    }
    if (node === undefined) {
      node = this.nodes.add({
        nid: this.newNid(nodeType, nid, address), type: nodeType, address, state, idTimestamp: null, connection: null,
      });
    }
    if (node.nid === null) node.nid = this.newNid(nodeType, nid, address);
    node.type = nodeType;
    node.address = address;
    node.state = state;
    node.idTimestamp = this.nextTimestamp();
    if (nodeType === NodeTypes.STORAGE) this.recordDevpath(node, extra);
    this.broadcastNodes([node]);
    node.connection = conn;
    conn.peer = node;
    conn.handler = handler;
    conn.label = `${describeNode(node)}@${conn.label}`;
    this.logger.info(`${describeNode(node)} identified as ${nodeType.name} (${state.name})`);
    conn.answer('AcceptIdentification', [NodeTypes.MASTER, this.nid, node.nid]);
    this.sendNodeList(node);
    if (nodeType === NodeTypes.MASTER) {
      // Identified as our secondary: our own challenge to it is useless.
      const challenge = this.electionConnections.get(node);
      this.electionConnections.delete(node);
      challenge?.close();
      this.saveMasters();
      return;
    }
    if (nodeType === NodeTypes.STORAGE && this.clusterState === ClusterStates.RECOVERING) {
      this.askRecovery(node);
      return;
    }
    this.sendPartitionTable(conn);
    if (nodeType === NodeTypes.STORAGE && state === NodeStates.RUNNING && this.clusterState === ClusterStates.RUNNING) {
      this.startOperation(node);
    }
  }

  /** Like NEO, each identification replaces what the previous one announced. */
  private recordDevpath(node: Node, extra: ReadonlyMap<string, unknown>): void {
    const devpath = devpathOf(extra);
    if (devpath === null) this.logger.warn(`${describeNode(node)} announced a devpath that is not a list of strings: ignored`);
    if (devpath) this.devpaths.set(node, devpath);
    else this.devpaths.delete(node);
  }

  /** The topology tweak spreads replicas over (cluster.md §10.3). */
  private readonly topology = (nid: number): readonly string[] | undefined => {
    const node = this.nodes.byNid(nid);
    return node === undefined ? undefined : this.devpaths.get(node);
  };

  private readonly warn = (message: string): void => this.logger.warn(message);

  /** The known record of an identifying node, if any (cluster.md §3.3). */
  private resolveNode(nid: number | null, address: Address | null): Node | undefined {
    // A master proposing our own id (every master starts as M1) gets another one.
    const byNid = nid !== null && nid !== this.nid ? this.nodes.byNid(nid) : undefined;
    const byAddress = address !== null ? this.nodes.byAddress(address) : undefined;
    if (byAddress !== undefined) {
      if (byAddress.connection === null && (byNid === byAddress || byNid === undefined || (nid !== null && nid < 0))) {
        return byAddress;
      }
    } else if (byNid !== undefined) {
      if (byNid.connection !== null) {
        // A temporary id already in use: the peer gets another one.
        if (nid !== null && nid < 0) return undefined;
      } else {
        return byNid === this.self ? undefined : byNid;
      }
    } else {
      return undefined;
    }
    throw protocolError('already connected');
  }

  /** The proposed id if it is free, else the smallest free one of the type (cluster.md §3.2). */
  private newNid(type: NodeType, proposed: number | null, address: Address | null): number {
    const free = (nid: number): boolean => {
      if (nid === this.nid) return false;
      const other = this.nodes.byNid(nid);
      return other === undefined || (other.connection === null && sameAddress(other.address, address));
    };
    if (proposed !== null && nidType(proposed) === type.value && free(proposed)) return proposed;
    const maxK = 0xffffff;
    for (let k = 1; k <= maxK; k++) {
      const nid = makeNid(type.value, k);
      if (free(nid)) return nid;
    }
    throw protocolError(`no free id left for ${type.name}`);
  }

  // --- masters: election and secondary role (cluster.md §6, protocol.md §5.5) ------------------

  /** The election key's time while this master plays primary in RECOVERING, else null. */
  get election(): number | null {
    return this.role === 'primary' && this.clusterState === ClusterStates.RECOVERING ? this.primarySince : null;
  }

  /** Records the masters not known yet (DOWN until they identify); returns the entries. */
  private learnMasters(addresses: readonly Address[]): Node[] {
    const nodes = addresses.filter((address) => !sameAddress(address, this.address)).map((address) => {
      const known = this.nodes.byAddress(address);
      if (known !== undefined) return known;
      return this.nodes.add({
        nid: null, type: NodeTypes.MASTER, address, state: NodeStates.DOWN, idTimestamp: null, connection: null,
      });
    });
    this.saveMasters();
    return nodes;
  }

  /** Rewrites the dynamic master list if the masters of the node table changed. */
  private saveMasters(): void {
    const addresses = this.nodes.ofType(NodeTypes.MASTER).flatMap((node) => (node.address === null ? [] : [node.address]));
    this.masterList?.update(addresses, this.logger);
  }

  private otherMasters(): Node[] {
    return this.nodes.ofType(NodeTypes.MASTER).filter((node) => node !== this.self && node.address !== null);
  }

  /** Starts playing primary: RECOVERING with a fresh election key, challenging every master. */
  private playPrimary(): void {
    this.role = 'primary';
    this.primaryMaster = null;
    this.primaryConnection = null;
    this.primaryJoined = false;
    this.secondaryTimer?.cancel();
    this.secondaryTimer = null;
    for (const conn of [...this.connections]) conn.close();
    for (const node of this.otherMasters()) node.connection = null;
    this.self!.state = NodeStates.RUNNING;
    this.primarySince = this.env.clock.now();
    // A newly elected master must not start a degraded cluster on its own (cluster.md §7.2).
    this.startupAllowed = false;
    this.logger.info(`primary master ${nidToString(this.nid)}, cluster ${this.config.cluster}`);
    this.startRecovery();
  }

  /** Connects to every master not connected yet, with our election key (cluster.md §6.2). */
  private challengeMasters(): void {
    this.electionTimer?.cancel();
    this.electionTimer = null;
    const election = this.election;
    if (election === null || this.shuttingDown) return;
    const down: Node[] = [];
    for (const node of this.otherMasters()) {
      if (node.connection !== null || this.electionConnections.has(node)) continue;
      if (node.state !== NodeStates.DOWN) {
        node.state = NodeStates.DOWN;
        down.push(node);
      }
      const conn = this.connectMaster(node);
      this.electionConnections.set(node, conn);
      conn.ask('RequestIdentification', [NodeTypes.MASTER, this.nid, this.address, this.config.cluster, election, new Map()],
        (answer) => this.masterAnswered(conn, node, answer));
    }
    this.broadcastNodes(down);
  }

  /** Challenges again later: a master was lost, or new masters were revealed. */
  private challengeLater(): void {
    if (this.election === null || this.shuttingDown || this.electionTimer !== null) return;
    this.electionTimer = this.env.timers.after(MASTER_RETRY_MS, () => {
      this.electionTimer = null;
      this.challengeMasters();
    });
  }

  /** Recovery ends: the masters that did not identify are DOWN (cluster.md §6.2 step 6). */
  private endElection(): Node[] {
    this.electionTimer?.cancel();
    this.electionTimer = null;
    for (const conn of this.electionConnections.values()) conn.close();
    this.electionConnections.clear();
    const down = this.otherMasters().filter((node) => node.connection === null && node.state !== NodeStates.DOWN);
    for (const node of down) node.state = NodeStates.DOWN;
    return down;
  }

  private connectMaster(node: Node): Connection {
    const conn = new Connection({
      stream: this.env.transport.connect(node.address!), handler: this.otherMasterHandler, logger: this.logger,
      label: `master ${formatAddress(node.address!)}`, heartbeat: heartbeatFor(this.env),
    });
    conn.peer = node;
    this.connections.add(conn);
    return conn;
  }

  /** The answer to our identification to another master (a challenge or as a secondary). */
  private masterAnswered(conn: Connection, node: Node, answer: Packet | null): void {
    if (answer === null) return; // otherMasterLost handles it
    const accepted = answer.info.name === 'AcceptIdentification';
    if (!accepted) {
      const [code, message] = answer.args as ArgsOf<'Error'>;
      this.logger.warn(`${conn.label} refused our identification: ${errorFromCode(code, message).toString()}`);
      conn.close();
      return;
    }
    const [nodeType, primaryNid, yourNid] = answer.args as ArgsOf<'AcceptIdentification'>;
    if (nodeType !== NodeTypes.MASTER || yourNid === null) {
      conn.close();
      return;
    }
    if (this.role === 'primary' && this.electionConnections.get(node) === conn) {
      // It won, or it is already serving: it is the primary (cluster.md §6.2 step 4).
      this.electionConnections.delete(node);
      this.logger.info(`${formatAddress(node.address!)} is the primary master`);
      this.becomeSecondary(node, conn);
    }
    if (this.role !== 'secondary' || conn !== this.primaryConnection) {
      conn.close();
      return;
    }
    this.primaryJoined = true;
    this.triedMasters = new Set([addressKey(this.address)]);
    for (const other of this.nodes.all()) {
      if (other.nid === yourNid || other.nid === primaryNid) other.nid = null;
    }
    this.nid = yourNid;
    this.self!.nid = yourNid;
    node.nid = primaryNid;
    node.state = NodeStates.RUNNING;
    this.logger.info(`secondary master ${nidToString(yourNid)}, primary ${nidToString(primaryNid)} at ${formatAddress(node.address!)}`);
  }

  /**
   * Switches to the secondary role following `primary`: every other connection is closed (its
   * peers find the primary through us or the list of masters), and so is all cluster state.
   */
  private becomeSecondary(primary: Node, conn: Connection | null): void {
    this.role = 'secondary';
    this.phase++;
    this.electionTimer?.cancel();
    this.electionTimer = null;
    this.electionConnections.clear();
    this.primaryMaster = primary;
    this.primaryConnection = conn;
    this.primaryJoined = false;
    this.triedMasters = new Set([addressKey(this.address)]);
    for (const node of [...this.nodes.all()]) {
      if (node === this.self) continue;
      node.connection = null;
      if (node.type !== NodeTypes.MASTER) this.nodes.remove(node);
    }
    for (const other of [...this.connections]) if (other !== conn) other.close();
    this.clusterState = ClusterStates.RECOVERING;
    this.pt = new PartitionTable(this.config.partitions, this.config.replicas);
    this.tm.reset();
    this.recovery = { targetPtid: null, askedNid: null, alternates: [], truncateTids: new Map() };
    this.truncateTid = null;
    this.ptMembers.clear();
    this.ready.clear();
    this.starting.clear();
    this.delayedBegins = [];
    this.updatable.clear();
    this.knownPackOrders = [];
    this.completedPacks.clear();
    this.logger.info(`secondary master, following ${formatAddress(primary.address!)}`);
    if (conn === null) this.connectPrimary();
  }

  private connectPrimary(): void {
    const primary = this.primaryMaster!;
    this.triedMasters.add(addressKey(primary.address!));
    this.primaryJoined = false;
    const conn = this.connectMaster(primary);
    this.primaryConnection = conn;
    conn.ask('RequestIdentification', [NodeTypes.MASTER, this.nid, this.address, this.config.cluster, null, new Map()],
      (answer) => this.masterAnswered(conn, primary, answer));
  }

  /** Secondary role: follows another master (a NotPrimaryMaster or a candidate told us). */
  private followPrimary(primary: Node): void {
    const previous = this.primaryConnection;
    this.primaryConnection = null;
    previous?.close();
    this.primaryMaster = primary;
    this.logger.info(`secondary master, following ${formatAddress(primary.address!)}`);
    this.connectPrimary();
  }

  /** A connection this master opened to another master closed. */
  otherMasterLost(conn: Connection): void {
    this.connections.delete(conn);
    const node = conn.peer as Node;
    if (this.shuttingDown) {
      if (this.connections.size === 0) this.finishStop();
      return;
    }
    if (conn === this.primaryConnection) {
      this.primaryConnection = null;
      this.primaryFailed();
      return;
    }
    if (this.electionConnections.get(node) === conn) {
      this.electionConnections.delete(node);
      this.challengeLater();
    }
  }

  /**
   * Secondary role: the primary is lost or refused us (cluster.md §6.4). A joined primary is
   * tried again first; then each master not tried yet; then this master plays primary.
   */
  private primaryFailed(): void {
    const lost = this.primaryMaster!;
    if (this.primaryJoined) {
      this.logger.warn(`primary master ${formatAddress(lost.address!)} lost`);
      this.primaryJoined = false;
      lost.state = NodeStates.DOWN;
      this.triedMasters = new Set([addressKey(this.address)]);
    } else {
      const next = this.otherMasters().find((node) => !this.triedMasters.has(addressKey(node.address!)));
      if (next === undefined) {
        this.logger.info('no primary master found');
        this.playPrimary();
        return;
      }
      this.primaryMaster = next;
    }
    this.secondaryTimer = this.env.timers.after(lost === this.primaryMaster ? MASTER_RETRY_MS : 0, () => {
      this.secondaryTimer = null;
      if (this.role === 'secondary' && this.primaryConnection === null) this.connectPrimary();
    });
  }

  notPrimaryMaster(conn: Connection, primary: number | null, knownMasters: Address[]): void {
    this.learnMasters(knownMasters);
    const named = primary === null ? undefined : knownMasters[primary];
    const node = named === undefined || sameAddress(named, this.address) ? undefined : this.nodes.byAddress(named);
    if (conn === this.primaryConnection) {
      if (node !== undefined && node !== this.primaryMaster) this.followPrimary(node);
      return;
    }
    if (this.role !== 'primary' || this.electionConnections.get(conn.peer as Node) !== conn) return;
    // A secondary that does not know yet that we won names its old primary: keep playing.
    if (node !== undefined && node.connection === null) {
      this.logger.info(`${formatAddress(named!)} is the primary master`);
      this.becomeSecondary(node, null);
      return;
    }
    this.challengeLater();
  }

  /**
   * Secondary role: any identification gets NotPrimaryMaster and is closed, except a candidate
   * while our primary has not accepted us yet: we follow it instead (protocol.md §5.5).
   */
  private redirect(conn: Connection, nodeType: NodeType, address: Address | null, idTimestamp: number | null): void {
    const primary = this.primaryMaster!;
    let named = this.primaryJoined && !sameAddress(address, primary.address);
    if (!this.primaryJoined && nodeType === NodeTypes.MASTER && address !== null) {
      const candidate = this.learnMasters([address])[0]!;
      if (idTimestamp !== null && candidate !== primary) {
        conn.close();
        this.followPrimary(candidate);
        return;
      }
      named = false;
    }
    const known = this.nodes.ofType(NodeTypes.MASTER).map((node) => node.address!);
    conn.notify('NotPrimaryMaster', [named ? known.findIndex((a) => sameAddress(a, primary.address)) : null, known]);
    conn.abort();
  }

  /** Secondary role: the masters as the primary knows them; exits when told it is DOWN. */
  primaryNodeInformation(conn: Connection, nodes: readonly WireNodeInfo[]): void {
    if (conn !== this.primaryConnection || !this.primaryJoined) return;
    for (const info of nodes) {
      const [type, address, nid, state] = info;
      if (type !== NodeTypes.MASTER) continue;
      if (nid === this.nid || (address !== null && sameAddress(address, this.address))) {
        if (state === NodeStates.DOWN) {
          this.logger.info('told to stop by the primary master');
          this.stop();
          return;
        }
        continue;
      }
      if (address !== null && sameAddress(address, this.primaryMaster!.address)) {
        this.primaryMaster!.nid = nid;
        continue;
      }
      const node = this.nodes.update(info);
      node.connection = null;
    }
    this.saveMasters();
  }

  primaryClusterInformation(conn: Connection, state: ClusterState): void {
    if (conn !== this.primaryConnection || state !== ClusterStates.STOPPING) return;
    this.logger.info('the cluster stops');
    this.stop();
  }

  /** Primary role: an identified secondary master is gone. */
  private secondaryLost(node: Node): void {
    if (node.state !== NodeStates.DOWN) {
      node.state = NodeStates.DOWN;
      this.broadcastNodes([node]);
    }
    this.challengeLater();
  }

  /** `neoctl kill` of a secondary master: it exits when it learns it is DOWN. */
  private setMasterState(conn: Connection, node: Node, state: NodeState): void {
    if (state !== NodeStates.DOWN) throw new NeoError(ErrorCodes.DENIED, `can not switch node to ${state.name} state`);
    const changed = node.state !== NodeStates.DOWN;
    node.state = NodeStates.DOWN;
    conn.answerError(ErrorCodes.ACK, changed ? 'state changed' : 'node already in DOWN state');
    if (!changed) return;
    // Told explicitly before the broadcast: it may not be told otherwise once DOWN.
    node.connection?.notify('NotifyNodeInformation', [this.nextTimestamp(), [this.nodes.toWire(node)]]);
    this.broadcastNodes([node]);
  }

  // --- connection loss ------------------------------------------------------------------------

  connectionLost(conn: Connection): void {
    this.connections.delete(conn);
    const node = conn.peer as Node | undefined;
    if (node !== undefined && node.connection === conn) {
      node.connection = null;
      this.logger.info(`${describeNode(node)} lost`);
      if (!this.shuttingDown) {
        if (node.type === NodeTypes.STORAGE) {
          this.storageLost(node);
          this.releasePackWaiters();
        }
        else if (node.type === NodeTypes.CLIENT) this.clientLost(node);
        else if (node.type === NodeTypes.MASTER) this.secondaryLost(node);
        else this.nodes.remove(node);
      }
    }
    if (this.shuttingDown && this.connections.size === 0) this.finishStop();
  }

  private storageLost(node: Node): void {
    const nid = node.nid!;
    this.ready.delete(nid);
    this.starting.delete(nid);
    if (this.clusterState === ClusterStates.RECOVERING) {
      this.recovery.truncateTids.delete(nid);
      node.state = NodeStates.DOWN;
      this.broadcastNodes([node]);
      if (this.recovery.askedNid === nid) {
        this.recovery.askedNid = null;
        this.askNextPartitionTable();
      }
      this.checkRecovery();
      return;
    }
    if (node.state === NodeStates.PENDING) {
      node.state = NodeStates.UNKNOWN;
      this.broadcastNodes([node]);
      this.nodes.remove(node);
      this.retryDelayedBegins();
      return;
    }
    if (node.state !== NodeStates.RUNNING) return;
    node.state = NodeStates.DOWN;
    this.broadcastNodes([node]);
    // Every node of the table must truncate: start again and wait for this one to come back.
    if (this.truncateTid !== null) {
      this.leaveOperation();
      return;
    }
    this.broadcastPartitionChanges(outdateNode(this.pt, nid, this.isRunning));
    this.tm.forgetStorage(nid);
    if (!this.pt.operational(this.isRunning)) {
      this.leaveOperation();
      return;
    }
    this.completeTransactions();
    this.retryDelayedBegins();
  }

  private clientLost(node: Node): void {
    for (const txn of this.tm.all()) {
      // Prepared transactions still complete, as orphans (transactions.md §12.2).
      if (txn.clientNid === node.nid && !txn.prepared) this.abort(txn, []);
    }
    node.state = NodeStates.UNKNOWN;
    this.broadcastNodes([node]);
    this.nodes.remove(node);
  }

  // --- recovery (cluster.md §7) ---------------------------------------------------------------

  private startRecovery(): void {
    this.setClusterStateAndNotify(ClusterStates.RECOVERING);
    this.tm.reset();
    this.recovery = { targetPtid: null, askedNid: null, alternates: [], truncateTids: new Map() };
    for (const storage of this.identifiedStorages()) this.askRecovery(storage);
    this.challengeMasters();
    this.checkRecovery();
  }

  private askRecovery(node: Node): void {
    const phase = this.phase;
    node.connection!.ask('AskRecovery', [], (answer) => {
      if (this.phase !== phase || answer === null || answer.info.name !== 'AnswerRecovery') return;
      const [ptid, , truncateTid] = answer.args as ArgsOf<'AnswerRecovery'>;
      this.recovery.truncateTids.set(node.nid!, truncateTid);
      this.recoveryAnswered(node, ptid);
    });
  }

  private recoveryAnswered(node: Node, ptid: number | null): void {
    const newest = this.recovery.targetPtid ?? this.pt.ptid;
    if (ptid !== null && (newest === null || ptid > newest)) {
      this.recovery.targetPtid = ptid;
      this.recovery.alternates.length = 0;
      this.askPartitionTable(node);
    } else if (ptid !== null && ptid === this.recovery.targetPtid && this.pt.ptid !== ptid) {
      if (this.recovery.askedNid === null) this.askPartitionTable(node);
      else this.recovery.alternates.push(node.nid!);
    }
    this.checkRecovery();
  }

  private askNextPartitionTable(): void {
    while (this.recovery.alternates.length > 0) {
      const node = this.nodes.byNid(this.recovery.alternates.shift()!);
      if (node?.connection != null) {
        this.askPartitionTable(node);
        return;
      }
    }
    if (this.recovery.targetPtid !== null && this.pt.ptid !== this.recovery.targetPtid) {
      this.logger.warn(`waiting for a storage with partition table ${this.recovery.targetPtid}`);
    }
  }

  private askPartitionTable(node: Node): void {
    const phase = this.phase;
    this.recovery.askedNid = node.nid;
    node.connection!.ask('AskPartitionTable', [], (answer) => {
      if (this.phase !== phase || answer === null || answer.info.name !== 'AnswerPartitionTable') return;
      const [ptid, numReplicas, rows] = answer.args as ArgsOf<'AnswerPartitionTable'>;
      if (ptid !== this.recovery.targetPtid) return;
      this.recovery.askedNid = null;
      this.loadPartitionTable(ptid, numReplicas, rows);
      // A truncation interrupted by a restart of the master goes on (cluster.md §7.1).
      this.truncateTid = this.recovery.truncateTids.get(node.nid!) ?? null;
      this.checkRecovery();
    });
  }

  private loadPartitionTable(ptid: number, numReplicas: number, rows: ArgsOf<'AnswerPartitionTable'>[2]): void {
    this.pt = PartitionTable.fromWire(ptid, numReplicas, rows);
    this.ptMembers.clear();
    const created: Node[] = [];
    for (const nid of this.pt.nodeIds()) {
      this.ptMembers.add(nid);
      if (this.nodes.byNid(nid) === undefined) {
        created.push(this.nodes.add({
          nid, type: NodeTypes.STORAGE, address: null, state: NodeStates.DOWN, idTimestamp: null, connection: null,
        }));
      }
    }
    this.broadcastNodes(created);
    for (const admin of this.identified().filter((node) => node.type === NodeTypes.ADMIN)) {
      this.sendPartitionTable(admin.connection!);
    }
  }

  /** Starts verification when the conditions of cluster.md §7.2 are met. */
  private checkRecovery(): void {
    if (this.clusterState !== ClusterStates.RECOVERING || this.shuttingDown) return;
    if (this.recovery.targetPtid !== null && this.pt.ptid !== this.recovery.targetPtid) return;
    const pending = this.identifiedStorages().filter((node) => node.state === NodeStates.PENDING);
    let started: Node[];
    if (this.pt.ptid !== null) {
      const pendingNids = new Set(pending.map((node) => node.nid!));
      if (!this.pt.operational((nid) => pendingNids.has(nid))) return;
      if (!this.startupAllowed) {
        // Like `mdadm --assemble --no-degraded`; every node of the table must truncate.
        const required = this.truncateTid !== null
          ? this.pt.nodeIds()
          : this.pt.rows.flatMap((row) => row.filter((c) => isReadable(c.state)).map((c) => c.nid));
        if (required.some((nid) => !pendingNids.has(nid))) return;
      }
      started = pending.filter((node) => this.ptMembers.has(node.nid!));
    } else {
      const autostart = this.config.autostart;
      if (!this.startupAllowed && (autostart === undefined || pending.length < autostart)) return;
      started = pending;
    }
    if (started.length === 0 || started.some((node) => node.connection!.pendingRequests > 0)) return;
    if (this.pt.ptid !== null && this.sendTruncateToLaggards()) return;
    this.endRecovery(started);
  }

  /**
   * While a truncation is pending, the storages that did not record it (or recorded a later
   * TID) are told again and asked AskRecovery again; true if any was (cluster.md §7.2 rule 4).
   */
  private sendTruncateToLaggards(): boolean {
    const tid = this.truncateTid;
    if (tid === null) return false;
    const laggards = this.identifiedStorages().filter((node) => {
      if (!this.recovery.truncateTids.has(node.nid!)) return false;
      const recorded = this.recovery.truncateTids.get(node.nid!) ?? null;
      return recorded === null || compareIds(tid, recorded) < 0;
    });
    for (const node of laggards) {
      this.recovery.truncateTids.delete(node.nid!);
      node.connection!.notify('Truncate', [tid]);
      this.askRecovery(node);
    }
    return laggards.length > 0;
  }

  private endRecovery(started: Node[]): void {
    for (const node of started) node.state = NodeStates.RUNNING;
    this.broadcastNodes([...started, ...this.endElection()]);
    if (this.pt.ptid === null) {
      const nids = started.map((node) => node.nid!).sort((a, b) => a - b);
      this.pt = new PartitionTable(this.config.partitions, this.config.replicas);
      tweak(this.pt, nids, this.topology, this.warn);
      this.pt.ptid = 1;
      for (const nid of nids) this.ptMembers.add(nid);
      for (const admin of this.identified().filter((node) => node.type === NodeTypes.ADMIN)) {
        this.sendPartitionTable(admin.connection!);
      }
    } else {
      this.broadcastPartitionChanges(outdateNotRunning(this.pt, this.isRunning));
    }
    this.startVerification();
  }

  // --- verification (cluster.md §8) -----------------------------------------------------------

  /** Asks `name` to each node; `done` runs once every node answered or was lost. */
  private askAll<N extends PacketName>(
    nodes: readonly Node[], name: N, args: ArgsOf<N>, onAnswer: (node: Node, args: unknown[]) => void, done: () => void,
  ): void {
    const phase = this.phase;
    const asked = nodes.filter((node) => node.connection !== null && !node.connection.isAborting);
    let waiting = asked.length;
    if (waiting === 0) {
      done();
      return;
    }
    for (const node of asked) {
      node.connection!.ask(name, args, (answer) => {
        if (this.phase !== phase) return;
        if (answer !== null && answer.info.name !== 'Error') onAnswer(node, answer.args);
        if (--waiting === 0) done();
      });
    }
  }

  private readableNodes(): Node[] {
    return this.identifiedStorages().filter((node) =>
      node.state === NodeStates.RUNNING && this.pt.cellsOfNode(node.nid!).some(({ cell }) => isReadable(cell.state)));
  }

  private startVerification(): void {
    this.setClusterStateAndNotify(ClusterStates.VERIFYING);
    this.tm.reset();
    this.completedPacks.clear();
    for (const storage of this.identifiedStorages()) this.sendPartitionTable(storage.connection!);
    const voted = new Map<string, { ttid: Buffer; tid: Buffer | null; voters: Set<number> }>();
    this.askAll(this.readableNodes(), 'AskLockedTransactions', [], (node, [locked]) => {
      for (const [ttid, tid] of locked as ArgsOf<'AnswerLockedTransactions'>[0]) {
        const key = ttid.toString('hex');
        const entry = voted.get(key) ?? { ttid, tid: null, voters: new Set<number>() };
        entry.voters.add(node.nid!);
        if (tid !== null) entry.tid = tid;
        voted.set(key, entry);
      }
    }, () => this.findFinalTids([...voted.values()], () => {
      for (const { ttid, tid, voters } of voted.values()) {
        if (tid === null) continue;
        for (const nid of voters) this.nodes.byNid(nid)?.connection?.notify('ValidateTransaction', [ttid, tid]);
      }
      this.askLastIds();
    }));
  }

  /**
   * For each voted transaction no node reported locked, asks the other readable nodes of its
   * partition, one at a time, whether they committed it already.
   */
  private findFinalTids(entries: { ttid: Buffer; tid: Buffer | null; voters: Set<number> }[], done: () => void): void {
    const phase = this.phase;
    const next = (index: number, candidates: Node[] | null): void => {
      if (this.phase !== phase) return;
      const entry = entries[index];
      if (entry === undefined) return done();
      if (entry.tid !== null) return next(index + 1, null);
      const list = candidates ?? this.pt.readableCells(partitionOf(entry.ttid, this.pt.numPartitions))
        .filter((cell) => !entry.voters.has(cell.nid) && this.isRunning(cell.nid))
        .map((cell) => this.nodes.byNid(cell.nid)!);
      const node = list.shift();
      if (node === undefined) return next(index + 1, null);
      node.connection!.ask('AskFinalTID', [entry.ttid], (answer) => {
        if (answer !== null && answer.info.name === 'AnswerFinalTID') {
          const [tid] = answer.args as ArgsOf<'AnswerFinalTID'>;
          if (tid !== null) entry.tid = tid;
        }
        next(entry.tid !== null ? index + 1 : index, entry.tid !== null ? null : list);
      });
    };
    next(0, null);
  }

  private askLastIds(): void {
    let lastTid: Buffer | null = null;
    let lastOid: Buffer | null = null;
    let firstTid: Buffer = MAX_TID;
    // Pending storages are asked too: this is where every storage applies a recorded truncation.
    this.askAll(this.identifiedStorages(), 'AskLastIDs', [], (_node, args) => {
      const [tid, oid, first] = args as ArgsOf<'AnswerLastIDs'>;
      if (tid !== null && (lastTid === null || compareIds(tid, lastTid) > 0)) lastTid = tid;
      if (oid !== null && (lastOid === null || compareIds(oid, lastOid) > 0)) lastOid = oid;
      if (compareIds(first, firstTid) < 0) firstTid = first;
    }, () => {
      this.tm.setLastIds(lastTid, lastOid, firstTid);
      if (this.truncateTid !== null) this.logger.info(`database truncated after ${tidToHex(this.truncateTid)}`);
      this.truncateTid = null;
      this.askPackOrders();
    });
  }

  private askPackOrders(): void {
    const readable = this.readableNodes();
    let completed: Buffer | null = null;
    for (const node of readable) {
      const id = this.completedPacks.get(node.nid!);
      if (id !== undefined && (completed === null || compareIds(id, completed) < 0)) completed = id;
    }
    const fromId = p64(u64(completed ?? ZERO_TID) + 1n);
    const orders = new Map<string, PackOrder>();
    this.askAll(readable, 'AskPackOrders', [fromId], (_node, [list]) => {
      for (const order of list as PackOrder[]) orders.set(order[0].toString('hex'), order);
    }, () => {
      this.knownPackOrders = [...orders.values()].sort((a, b) => compareIds(a[0], b[0]));
      this.startService();
    });
  }

  packCompleted(conn: Connection, packId: Buffer): void {
    const node = conn.peer as Node;
    this.completedPacks.set(node.nid!, packId);
    this.releasePackWaiters();
  }

  /** WaitForPack: answered once every storage with readable cells has packed up to `packId`. */
  waitForPack(conn: Connection, msgId: number, packId: Buffer): void {
    if (this.packWaiters.length >= MAX_PACK_WAITERS) throw notReady('too many clients waiting for packs');
    this.packWaiters.push({ conn, msgId, packId });
    this.releasePackWaiters();
  }

  private releasePackWaiters(): void {
    if (this.packWaiters.length === 0) return;
    const readable = this.readableNodes();
    this.packWaiters = this.packWaiters.filter((waiter) => {
      if (waiter.conn.isAborting) return false;
      const done = readable.every((node) => {
        const completed = this.completedPacks.get(node.nid!);
        return completed !== undefined && compareIds(completed, waiter.packId) >= 0;
      });
      if (done) waiter.conn.answerTo(waiter.msgId, 'WaitedForPack', []);
      return !done;
    });
  }

  // --- service (cluster.md §9) ----------------------------------------------------------------

  private startService(): void {
    this.setClusterStateAndNotify(ClusterStates.RUNNING);
    for (const storage of this.identifiedStorages()) {
      if (storage.state === NodeStates.RUNNING) this.startOperation(storage);
    }
  }

  private startOperation(node: Node): void {
    this.starting.add(node.nid!);
    node.connection!.notify('StartOperation', [false]);
  }

  storageReady(conn: Connection): void {
    const node = conn.peer as Node;
    if (!this.starting.delete(node.nid!)) return;
    this.ready.set(node.nid!, ++this.readiness);
    const approved = this.knownPackOrders.filter((order) => order[1] === true).map((order) => order[0]);
    if (approved.length > 0) conn.notify('NotifyPackSigned', [approved, []]);
    this.retryDelayedBegins();
  }

  /**
   * The cluster stops being operational, or a truncation after `truncate` was requested: back
   * to recovery (cluster.md §9.3).
   */
  private leaveOperation(truncate: Buffer | null = null): void {
    this.logger.warn('cluster no longer operational');
    for (const peer of this.identified()) {
      if (peer.type === NodeTypes.STORAGE || peer.type === NodeTypes.CLIENT) peer.connection!.notify('StopOperation', []);
      if (peer.type === NodeTypes.CLIENT) peer.connection!.abort();
      if (peer.type === NodeTypes.STORAGE && truncate !== null) peer.connection!.notify('Truncate', [truncate]);
    }
    const demoted = this.identifiedStorages().filter((node) => node.state === NodeStates.RUNNING);
    for (const node of demoted) node.state = NodeStates.PENDING;
    this.broadcastNodes(demoted);
    this.ready.clear();
    this.starting.clear();
    this.delayedBegins = [];
    this.knownPackOrders = [];
    if (truncate !== null) this.truncateTid = truncate;
    // No automatic restart while truncating: all the nodes of the table must be back.
    this.startupAllowed = this.truncateTid === null;
    this.startRecovery();
  }

  unfinishedTransactions(conn: Connection, partitions: number[]): ArgsOf<'AnswerUnfinishedTransactions'> {
    const node = conn.peer as Node;
    for (const partition of partitions) {
      if (partition < 0 || partition >= this.pt.numPartitions) throw protocolError(`invalid partition ${partition}`);
      const cell = this.pt.cell(partition, node.nid!);
      if (cell !== undefined && !isReadable(cell.state)) this.updatable.add(`${partition}:${node.nid}`);
    }
    const pending = this.tm.all();
    for (const txn of pending) txn.notify.add(node.nid!);
    return [this.lastTransaction(), pending.map((txn) => txn.ttid)];
  }

  replicationDone(conn: Connection, partition: number, tid: Buffer): void {
    const node = conn.peer as Node;
    if (partition < 0 || partition >= this.pt.numPartitions) throw protocolError(`invalid partition ${partition}`);
    const cell = this.pt.cell(partition, node.nid!);
    if (cell === undefined) throw protocolError(`${describeNode(node)} has no cell for partition ${partition}`);
    const key = `${partition}:${node.nid}`;
    if (cell.state !== CellStates.OUT_OF_DATE || !this.updatable.delete(key)) {
      this.logger.info(`late replication notification of ${describeNode(node)} for partition ${partition}`);
      return;
    }
    this.logger.info(`${describeNode(node)} replicated partition ${partition} up to ${tidToHex(tid)}`);
    this.broadcastPartitionChanges(replicationDone(this.pt, partition, node.nid!));
  }

  // --- transactions (transactions.md §1-§3, §10, §12) -----------------------------------------

  lastTransaction(): Buffer {
    return this.tm.lastTid ?? ZERO_TID;
  }

  lastIds(): ArgsOf<'AnswerLastIDs'> {
    return [this.lastTransaction(), this.tm.lastOid, this.tm.firstTid];
  }

  newOids(count: number): Buffer[] {
    if (!Number.isInteger(count) || count < 0 || count > 0xffff) throw protocolError(`invalid number of oids ${count}`);
    return this.tm.newOids(count);
  }

  beginTransaction(conn: Connection, msgId: number, tid: Buffer | null): void {
    // New transactions wait while storages are starting, and forever once stopping.
    if (this.clusterState !== ClusterStates.RUNNING || this.starting.size > 0) {
      if (this.clusterState === ClusterStates.RUNNING) {
        if (this.delayedBegins.length >= MAX_DELAYED_BEGINS) throw notReady('too many transactions waiting');
        this.delayedBegins.push({ conn, msgId, tid });
      }
      return;
    }
    const node = conn.peer as Node;
    if (tid !== null) {
      if (this.tm.hasPending) throw protocolError("There can't be concurrent transactions when a TID is specified");
      if (compareIds(tid, this.lastTransaction()) <= 0) throw protocolError('TID must be greater than the last committed one');
    } else if (this.tm.hasImposed) {
      throw protocolError("There can't be concurrent transactions when a TID is specified");
    }
    const txn = this.tm.begin(node.nid!, tidFromTime(this.env.clock.now()), this.readiness, tid);
    conn.answerTo(msgId, 'AnswerBeginTransaction', [txn.ttid]);
  }

  private retryDelayedBegins(): void {
    if (this.starting.size > 0 || this.clusterState !== ClusterStates.RUNNING) return;
    const delayed = this.delayedBegins;
    this.delayedBegins = [];
    for (const { conn, msgId, tid } of delayed) {
      if (conn.isAborting) continue;
      try {
        this.beginTransaction(conn, msgId, tid);
      } catch (error) {
        if (!(error instanceof NeoError)) throw error;
        conn.answerError(error.code, error.message, msgId);
      }
    }
  }

  private clientTransaction(conn: Connection, ttid: Buffer): Transaction {
    const txn = this.tm.get(ttid);
    if (txn === undefined || txn.clientNid !== (conn.peer as Node).nid) throw protocolError(`unknown ttid ${tidToHex(ttid)}`);
    return txn;
  }

  finishTransaction(conn: Connection, msgId: number, ...[ttid, oids, deleted, checked, pack]: ArgsOf<'AskFinishTransaction'>): void {
    const txn = this.clientTransaction(conn, ttid);
    if (txn.prepared) throw protocolError('commit already requested');
    const np = this.pt.numPartitions;
    if (pack !== null) {
      const packTid = pack[1];
      if (compareIds(packTid, ZERO_TID) === 0 || compareIds(packTid, this.lastTransaction()) > 0) {
        throw protocolError('invalid pack time');
      }
    }
    if (txn.failed.size > 0 && !operationalWithout(this.pt, this.isRunning, txn.failed)) {
      this.abort(txn, []);
      throw new NeoError(ErrorCodes.INCOMPLETE_TRANSACTION, '');
    }
    const partitions = new Set<number>([partitionOf(ttid, np), ...deleted, ...checked]);
    for (const oid of oids) partitions.add(partitionOf(oid, np));
    const involved = new Set<number>();
    const failedConnections: Connection[] = [];
    for (const partition of partitions) {
      if (!Number.isInteger(partition) || partition < 0 || partition >= np) throw protocolError(`invalid partition ${partition}`);
      for (const cell of this.pt.cells(partition)) {
        const storage = this.nodes.byNid(cell.nid);
        if (storage?.connection == null) continue;
        const readiness = this.ready.get(cell.nid);
        if (txn.failed.has(cell.nid)) failedConnections.push(storage.connection);
        else if (readiness !== undefined && readiness <= txn.readiness) involved.add(cell.nid);
      }
    }
    if (involved.size === 0) {
      this.abort(txn, []);
      throw new NeoError(ErrorCodes.INCOMPLETE_TRANSACTION, 'no storage node to commit to');
    }
    // Storages that missed writes are disconnected and their cells outdated now, before any lock
    // is asked (§10.1). Waiting for the close event is not enough: until then such a storage still
    // counts as RUNNING, so losing another replica of a written partition would outdate that
    // replica (which locked the transaction) and leave the one missing the writes readable; after
    // a recovery, verification would not ask the outdated one and replication would copy the
    // partition without the writes. `connectionLost` ignores the later close event.
    for (const failed of failedConnections) {
      failed.close();
      this.connectionLost(failed);
    }
    const tid = this.tm.prepare(txn, oids, involved, msgId, tidFromTime(this.env.clock.now()), np);
    txn.packApproved = pack !== null;
    if (pack !== null) this.knownPackOrders.push([tid, true, pack[0] !== null, pack[0], pack[1]]);
    for (const nid of involved) {
      this.nodes.byNid(nid)!.connection!.ask('AskLockInformation', [ttid, tid, txn.packApproved], (answer) => {
        if (answer === null || answer.info.name !== 'AnswerInformationLocked') return;
        this.tm.lock(ttid, nid);
        this.completeTransactions();
      });
    }
  }

  /** Completes, in TID order, the transactions every involved storage locked (§10.3). */
  private completeTransactions(): void {
    const completed = this.tm.takeCompleted();
    for (const txn of completed) {
      const tid = txn.tid!;
      for (const client of this.identified()) {
        if (client.type !== NodeTypes.CLIENT) continue;
        if (client.nid === txn.clientNid) {
          client.connection!.answerTo(txn.finishMsgId, 'AnswerTransactionFinished', [txn.ttid, tid]);
        } else {
          client.connection!.notify('InvalidateObjects', [tid, txn.oids]);
        }
      }
      for (const nid of txn.involved) this.nodes.byNid(nid)?.connection?.notify('NotifyUnlockInformation', [txn.ttid]);
      if (txn.packApproved) {
        for (const nid of this.ready.keys()) this.nodes.byNid(nid)?.connection?.notify('NotifyPackSigned', [[tid], []]);
      }
      for (const nid of txn.notify) this.nodes.byNid(nid)?.connection?.notify('NotifyTransactionFinished', [txn.ttid, tid]);
      for (const { nid, msgId } of txn.finalTidWaiters) {
        this.nodes.byNid(nid)?.connection?.answerTo(msgId, 'AnswerFinalTID', [tid]);
      }
    }
    if (completed.length > 0) {
      this.retryDelayedBegins();
      this.maybeFinishStopping();
    }
  }

  abortTransaction(conn: Connection, ttid: Buffer, nids: number[]): void {
    const txn = this.tm.get(ttid);
    // Aborting an unknown transaction is harmless: begin may have failed.
    if (txn === undefined || txn.clientNid !== (conn.peer as Node).nid) return;
    if (txn.prepared) throw protocolError('commit already requested');
    this.abort(txn, nids);
  }

  /** Forgets an unprepared transaction and tells the ready storages concerned. */
  private abort(txn: Transaction, nids: readonly number[]): void {
    this.tm.remove(txn);
    const targets = new Set([...nids, ...txn.notify]);
    if (nids.length === 0) for (const nid of this.ready.keys()) targets.add(nid);
    for (const nid of targets) {
      if (this.ready.has(nid)) this.nodes.byNid(nid)?.connection?.notify('AbortTransaction', [txn.ttid, []]);
    }
    for (const waiter of txn.finalTidWaiters) {
      this.nodes.byNid(waiter.nid)?.connection?.answerTo(waiter.msgId, 'AnswerFinalTID', [null]);
    }
    this.retryDelayedBegins();
    this.maybeFinishStopping();
  }

  failedVote(conn: Connection, ttid: Buffer, nids: number[]): void {
    const txn = this.clientTransaction(conn, ttid);
    const failed = nids.filter((nid) => {
      const readiness = this.ready.get(nid);
      return readiness !== undefined && readiness <= txn.readiness;
    });
    if (!operationalWithout(this.pt, this.isRunning, new Set([...txn.failed, ...failed]))) {
      throw new NeoError(ErrorCodes.INCOMPLETE_TRANSACTION, '');
    }
    for (const nid of failed) txn.failed.add(nid);
    conn.answerError(ErrorCodes.ACK, '');
  }

  askFinalTid(conn: Connection, msgId: number, ttid: Buffer): void {
    const txn = this.tm.get(ttid);
    if (txn !== undefined) {
      if (txn.prepared) {
        txn.finalTidWaiters.push({ nid: (conn.peer as Node).nid!, msgId });
        return;
      }
      conn.answer('AnswerFinalTID', [null]);
      return;
    }
    // Not pending: committed if not above the last TID, and then the storages know its TID.
    const committed = compareIds(ttid, this.lastTransaction()) <= 0;
    conn.answer('AnswerFinalTID', [committed ? MAX_TID : null]);
  }

  packOrders(minPackId: Buffer, firstApprovedOnly: boolean): PackOrder[] {
    const orders = this.knownPackOrders.filter((order) => compareIds(order[0], minPackId) >= 0);
    if (!firstApprovedOnly) return orders;
    const first = orders.find((order) => order[1] === true);
    return first === undefined ? [] : [first];
  }

  // --- management (cluster.md §10, §12) -------------------------------------------------------

  setClusterState(conn: Connection, state: ClusterState): void {
    if (state !== ClusterStates.STOPPING) {
      const sources = STATE_WORKFLOW.get(state);
      if (sources === undefined) throw new NeoError(ErrorCodes.DENIED, 'Invalid state requested');
      if (!sources.includes(this.clusterState)) throw new NeoError(ErrorCodes.DENIED, 'Can not switch to this state');
    }
    switch (state) {
      case ClusterStates.VERIFYING: {
        const storages = this.identifiedStorages();
        if (storages.length === 0) throw new NeoError(ErrorCodes.DENIED, 'Cannot exit recovery without any storage node');
        const busy = storages.find((node) => node.connection!.pendingRequests > 0);
        if (busy !== undefined) {
          throw new NeoError(ErrorCodes.DENIED, `Cannot exit recovery now: node ${describeNode(busy)} is entering cluster`);
        }
        this.startupAllowed = true;
        conn.answerError(ErrorCodes.ACK, 'Cluster state changed');
        this.checkRecovery();
        return;
      }
      case ClusterStates.STARTING_BACKUP:
        if (this.tm.hasPending || this.identified().some((node) => node.type === NodeTypes.CLIENT)) {
          throw new NeoError(ErrorCodes.DENIED,
            `Can not switch to ${state.name} state with pending transactions or connected clients`);
        }
        throw new NeoError(ErrorCodes.DENIED, 'No upstream cluster to backup defined in configuration');
      case ClusterStates.STOPPING:
        conn.answerError(ErrorCodes.ACK, 'Cluster state changed');
        this.stopCluster();
        return;
      default:
        // STOPPING_BACKUP: its sources are backup states, which this master never enters.
        throw new NeoError(ErrorCodes.DENIED, 'Can not switch to this state');
    }
  }

  private stopCluster(): void {
    if (this.clusterState === ClusterStates.STOPPING) return;
    this.setClusterStateAndNotify(ClusterStates.STOPPING);
    this.delayedBegins = [];
    this.maybeFinishStopping();
  }

  /** Once no transaction is pending, storages are told they are DOWN and the master exits. */
  private maybeFinishStopping(): void {
    if (this.clusterState !== ClusterStates.STOPPING || this.shuttingDown || this.tm.hasPending) return;
    this.shuttingDown = true;
    this.listener?.close();
    for (const storage of this.identifiedStorages()) {
      storage.connection!.notify('NotifyNodeInformation', [
        this.nextTimestamp(), [[NodeTypes.STORAGE, storage.address, storage.nid, NodeStates.DOWN, null]],
      ]);
    }
    for (const conn of [...this.connections]) conn.abort();
    this.logger.info('cluster stopped');
    if (this.connections.size === 0) this.finishStop();
    else this.stopTimer = this.env.timers.after(STOP_FLUSH_TIMEOUT_MS, () => this.stop());
  }

  private finishStop(): void {
    this.stopTimer?.cancel();
    this.stopTimer = null;
    this.resolveStopped();
  }

  /** Refuses a request of neoctl outside RUNNING, with NEO's message naming its RPC. */
  private requireRunning(rpc: string): void {
    if (this.clusterState !== ClusterStates.RUNNING) {
      throw new NeoError(ErrorCodes.DENIED, `${rpc} RPC can not be used in ${this.clusterState.name} state`);
    }
  }

  addPendingNodes(conn: Connection, nids: number[]): void {
    this.requireRunning('addPendingNodes');
    const added: Node[] = [];
    for (const nid of new Set(nids)) {
      const node = this.nodes.byNid(nid);
      if (node?.type !== NodeTypes.STORAGE || node.state !== NodeStates.PENDING || node.connection === null) continue;
      node.state = NodeStates.RUNNING;
      this.ptMembers.add(nid);
      this.startOperation(node);
      added.push(node);
    }
    this.broadcastNodes(added);
    conn.answerError(ErrorCodes.ACK, added.length === 0
      ? 'No node added'
      : `Nodes added: ${added.map((node) => nidToString(node.nid)).join(', ')}`);
  }

  setNumReplicas(conn: Connection, numReplicas: number): void {
    this.requireRunning('setNumReplicas');
    if (!Number.isInteger(numReplicas) || numReplicas < 0) throw protocolError(`invalid number of replicas ${numReplicas}`);
    this.pt.numReplicas = numReplicas;
    this.broadcastPartitionChanges([], true);
    conn.answerError(ErrorCodes.ACK, '');
  }

  tweakPartitionTable(dryRun: boolean, dropNids: number[]): ArgsOf<'AnswerTweakPartitionTable'> {
    this.requireRunning('tweakPartitionTable');
    const excluded = new Set(dropNids);
    for (const node of this.nodes.storages()) if (node.state === NodeStates.PENDING) excluded.add(node.nid!);
    const nids = [...new Set([...this.ptMembers, ...this.pt.nodeIds()])].filter((nid) => !excluded.has(nid)).sort((a, b) => a - b);
    const down = nids.find((nid) => !this.isRunning(nid));
    if (down !== undefined) throw new NeoError(ErrorCodes.DENIED, `down nodes must be listed explicitly (${nidToString(down)})`);
    if (nids.length === 0) throw new NeoError(ErrorCodes.DENIED, "Can't remove all nodes.");
    const table = dryRun ? PartitionTable.fromWire(this.pt.ptid, this.pt.numReplicas, this.pt.toWire()) : this.pt;
    const changes = tweak(table, nids, this.topology, this.warn);
    if (!dryRun) this.broadcastPartitionChanges(changes);
    return [changes.length > 0, table.toWire()];
  }

  setNodeState(conn: Connection, nid: number, state: NodeState): void {
    const node = this.nodes.byNid(nid);
    if (node === undefined) throw new NeoError(ErrorCodes.DENIED, 'unknown node');
    if (node === this.self) throw new NeoError(ErrorCodes.DENIED, 'can not kill primary master node');
    if (node.type === NodeTypes.MASTER) {
      this.setMasterState(conn, node, state);
      return;
    }
    if (node.type !== NodeTypes.STORAGE) throw new NeoError(ErrorCodes.DENIED, `not implemented yet: changing the state of a ${node.type.name} node`);
    if (state === NodeStates.DOWN) {
      if (node.state === NodeStates.DOWN) {
        conn.answerError(ErrorCodes.ACK, 'node already in DOWN state');
        return;
      }
      this.refuseIfOnlyReadableCopy(nid);
      const wasConnected = node.connection;
      node.state = NodeStates.DOWN;
      node.connection = null;
      if (wasConnected !== null) {
        wasConnected.notify('NotifyNodeInformation', [this.nextTimestamp(), [this.nodes.toWire(node)]]);
        wasConnected.abort();
      }
      this.ready.delete(nid);
      this.starting.delete(nid);
      this.broadcastNodes([node]);
      this.broadcastPartitionChanges(outdateNotRunning(this.pt, this.isRunning));
      this.tm.forgetStorage(nid);
      this.completeTransactions();
      conn.answerError(ErrorCodes.ACK, 'state changed');
      return;
    }
    if (state === NodeStates.UNKNOWN) {
      if (node.state === NodeStates.RUNNING) throw new NeoError(ErrorCodes.DENIED, 'a running node must be stopped before removal');
      this.refuseIfOnlyReadableCopy(nid);
      const changes: CellChange[] = [];
      for (const { partition } of this.pt.cellsOfNode(nid)) {
        this.pt.setCell(partition, nid, CellStates.DISCARDED);
        changes.push([partition, nid, CellStates.DISCARDED]);
        for (const cell of this.pt.cells(partition)) {
          if (cell.state === CellStates.FEEDING) {
            cell.state = CellStates.UP_TO_DATE;
            changes.push([partition, cell.nid, CellStates.UP_TO_DATE]);
          }
        }
      }
      this.ptMembers.delete(nid);
      node.state = NodeStates.UNKNOWN;
      const connection = node.connection;
      node.connection = null;
      if (connection !== null) {
        connection.notify('NotifyNodeInformation', [this.nextTimestamp(), [this.nodes.toWire(node)]]);
        connection.abort();
      }
      this.broadcastNodes([node]);
      this.nodes.remove(node);
      this.broadcastPartitionChanges(changes);
      conn.answerError(ErrorCodes.ACK, 'node permanently removed');
      return;
    }
    throw new NeoError(ErrorCodes.DENIED, `can not set a node ${state.name}`);
  }

  private refuseIfOnlyReadableCopy(nid: number): void {
    for (const { partition, cell } of this.pt.cellsOfNode(nid)) {
      if (!isReadable(cell.state)) continue;
      const other = this.pt.cells(partition).some((c) => c.nid !== nid && isReadable(c.state));
      if (!other) {
        throw new NeoError(ErrorCodes.DENIED, `Refuse to drop nodes that contain the only readable copies of partition ${partition}`);
      }
    }
  }

  /**
   * `neoctl truncate TID` (storage.md §7): once the checks pass, the cluster leaves service and
   * storages record the truncation, which they apply when verification asks their last ids.
   */
  truncate(conn: Connection, tid: Buffer): void {
    this.requireRunning('truncate');
    if (compareIds(this.lastTransaction(), tid) <= 0) {
      throw new NeoError(ErrorCodes.DENIED, 'Truncating after last transaction does nothing');
    }
    if (compareIds(this.tm.firstTid, tid) > 0) {
      throw new NeoError(ErrorCodes.DENIED, 'Truncating before first transaction is probably not what you intended to do');
    }
    if (this.knownPackOrders.some((order) => order[1] === true && compareIds(order[0], tid) > 0)) {
      throw new NeoError(ErrorCodes.DENIED, 'Can not truncate before an approved pack');
    }
    conn.answerError(ErrorCodes.ACK, '');
    this.logger.warn(`truncating the database after ${tidToHex(tid)}`);
    this.leaveOperation(tid);
  }

  /** `neoctl prune_orphan`: every listed storage must be identified, whatever its state (as NEO). */
  repair(conn: Connection, nids: number[], dryRun: boolean): void {
    const storages = nids.map((nid) => {
      const node = this.nodes.byNid(nid);
      if (node?.type !== NodeTypes.STORAGE || node.connection === null) {
        throw new NeoError(ErrorCodes.DENIED, `invalid storage node ${nidToString(nid)}`);
      }
      return node;
    });
    for (const node of storages) node.connection!.notify('NotifyRepair', [dryRun]);
    conn.answerError(ErrorCodes.ACK, '');
  }

  /**
   * `neoctl check` (storage.md §6): for each partition with at least two readable cells, one of
   * them checks the others. A node already checking another partition is preferred, so that the
   * checks concentrate on few nodes; else the node of the last readable cell.
   */
  checkReplicas(conn: Connection, partitions: Map<number, number | null>, minTid: Buffer, maxTid: Buffer | null): void {
    // Unlike NEO, refused outside RUNNING: storages only accept CheckPartition in operation.
    this.requireRunning('checkReplicas');
    const np = this.pt.numPartitions;
    const sources = new Map<number, Address | null>();
    for (const [partition, reference] of partitions) {
      if (!Number.isInteger(partition) || partition < 0 || partition >= np) {
        throw new NeoError(ErrorCodes.DENIED, `invalid partition ${partition}`);
      }
      if (reference === null) {
        sources.set(partition, null);
        continue;
      }
      const node = this.nodes.byNid(reference);
      if (node?.type !== NodeTypes.STORAGE || node.address === null) {
        throw new NeoError(ErrorCodes.DENIED, `invalid storage node ${nidToString(reference)}`);
      }
      sources.set(partition, node.address);
    }
    const max = maxTid ?? this.lastTransaction();
    if (compareIds(minTid, max) > 0) {
      this.logger.warn(`nothing to check: min_tid=${tidToHex(minTid)} > max_tid=${tidToHex(max)}`);
      conn.answerError(ErrorCodes.ACK, '');
      return;
    }
    const checkers = new Set<number>();
    for (const [partition, source] of sources) {
      const cells = this.pt.readableCells(partition).filter((cell) => this.isRunning(cell.nid));
      if (cells.length <= 1) continue;
      let checker = cells.find((cell) => checkers.has(cell.nid))?.nid;
      if (checker === undefined) {
        checker = cells.at(-1)!.nid;
        checkers.add(checker);
      }
      this.logger.info(`${nidToString(checker)} checks partition ${partition}`
        + ` from ${tidToHex(minTid)} to ${tidToHex(max)}`
        + (source === null ? ' without reference' : ` against ${formatAddress(source)}`));
      this.nodes.byNid(checker)!.connection!.notify('CheckPartition', [partition, ['', source], minTid, max]);
    }
    conn.answerError(ErrorCodes.ACK, '');
  }

  /** Corrupted cells are only reported: nothing can repair them (cluster.md CORRUPTED state). */
  partitionCorrupted(partition: number, nids: number[]): void {
    this.logger.error(`Partition ${partition} corrupted in: ${nids.map((nid) => nidToString(nid)).join(', ')}`);
  }

  flushLog(): void {
    for (const peer of this.identified()) if (peer.type !== NodeTypes.ADMIN) peer.connection!.notify('FlushLog', []);
  }
}
