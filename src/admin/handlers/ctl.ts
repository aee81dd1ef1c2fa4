// neoctl connections to the admin (protocol.md §5.6-5.7, §7.6; cluster.md §14.1): no
// identification; some requests are answered from the admin's copies, the others are forwarded
// to the primary master and its reply relayed with neoctl's message id. Without a master
// connection, every request gets NOT_READY (which closes the connection).

import type { Packet } from '../../protocol/codec.js';
import type { Connection, Handler } from '../../net/connection.js';
import { ErrorCodes, NodeTypes } from '../../protocol/enums.js';
import type { CellState, ClusterState, NodeState, NodeType } from '../../protocol/enums.js';
import { protocolError } from '../../protocol/errors.js';
import type { ArgsOf, PacketName } from '../../protocol/packets.js';
import type { AdminApp } from '../app.js';

export class CtlHandler implements Handler {
  readonly #app: AdminApp;

  constructor(app: AdminApp) {
    this.#app = app;
  }

  connectionClosed(conn: Connection): void {
    this.#app.ctlConnectionClosed(conn);
  }

  /** Admins of monitored backup clusters identify; monitoring them is not implemented. */
  RequestIdentification(_conn: Connection, type: NodeType, _nid: number | null, _address: unknown, name: string): void {
    this.#app.requireMaster();
    if (type !== NodeTypes.ADMIN) throw protocolError('reject non-admin node');
    if (!(this.#app.config.monitorBackup ?? []).includes(name)) {
      throw protocolError(`unknown backup cluster '${name}'`);
    }
    throw protocolError(`not implemented: monitoring of backup cluster '${name}'`);
  }

  Ping(conn: Connection): void {
    this.#app.requireMaster();
    conn.answer('Pong', []);
  }

  AskPrimary(conn: Connection): void {
    this.#app.requireMaster();
    const nid = this.#app.primaryNid;
    if (nid === null) throw protocolError('the primary master has no node id');
    conn.answer('AnswerPrimary', [nid]);
  }

  AskClusterState(conn: Connection): void {
    this.#app.requireMaster();
    conn.answer('AnswerClusterState', [this.#app.clusterState]);
  }

  AskNodeList(conn: Connection, type: NodeType | null): void {
    const app = this.#app;
    app.requireMaster();
    const nodes = type === null ? app.nodes.all() : app.nodes.ofType(type);
    conn.answer('AnswerNodeList', [nodes.map((node) => app.nodes.toWire(node))]);
  }

  /** Rows min..max-1 (max 0: up to the last one); the node argument is ignored, as NEO does. */
  AskPartitionList(conn: Connection, minOffset: number, maxOffset: number): void {
    this.#app.requireMaster();
    const pt = this.#app.pt;
    const numPartitions = pt?.numPartitions ?? 0;
    const end = maxOffset === 0 ? numPartitions : maxOffset;
    if (minOffset < end && (minOffset < 0 || end > numPartitions)) {
      // NEO sends this Error with a message id of its own and keeps the connection open.
      conn.notify('Error', [ErrorCodes.PROTOCOL_ERROR.value, 'invalid partition table offset']);
      return;
    }
    const rows: [number, CellState][][] = [];
    for (let offset = minOffset; offset < end; offset++) {
      rows.push(pt!.cells(offset).map((cell): [number, CellState] => [cell.nid, cell.state]));
    }
    conn.answer('AnswerPartitionList', [pt?.ptid ?? null, pt?.numReplicas ?? 0, rows]);
  }

  AskMonitorInformation(conn: Connection): void {
    this.#app.requireMaster();
    this.#app.askMonitorInformation(conn, conn.peerMsgId);
  }

  FlushLog(): void {
    // Our log is written synchronously: only the master and its nodes may have something to flush.
    this.#app.requireMaster().notify('FlushLog', []);
  }

  // --- forwarded to the primary master -------------------------------------------------------

  AddPendingNodes(conn: Connection, nids: number[]): void {
    this.#forward(conn, 'AddPendingNodes', [nids]);
  }

  AskLastIDs(conn: Connection): void {
    this.#forward(conn, 'AskLastIDs', []);
  }

  AskLastTransaction(conn: Connection): void {
    this.#forward(conn, 'AskLastTransaction', []);
  }

  AskRecovery(conn: Connection): void {
    this.#forward(conn, 'AskRecovery', []);
  }

  CheckReplicas(conn: Connection, ...args: ArgsOf<'CheckReplicas'>): void {
    this.#forward(conn, 'CheckReplicas', args);
  }

  Repair(conn: Connection, nids: number[], dryRun: boolean): void {
    this.#forward(conn, 'Repair', [nids, dryRun]);
  }

  SetClusterState(conn: Connection, state: ClusterState): void {
    this.#forward(conn, 'SetClusterState', [state]);
  }

  SetNodeState(conn: Connection, nid: number, state: NodeState): void {
    this.#forward(conn, 'SetNodeState', [nid, state]);
  }

  SetNumReplicas(conn: Connection, numReplicas: number): void {
    this.#forward(conn, 'SetNumReplicas', [numReplicas]);
  }

  Truncate(conn: Connection, tid: Buffer): void {
    this.#forward(conn, 'Truncate', [tid]);
  }

  TweakPartitionTable(conn: Connection, dryRun: boolean, dropNids: number[]): void {
    this.#forward(conn, 'TweakPartitionTable', [dryRun, dropNids]);
  }

  /** Sends the same request to the master; its reply goes back with neoctl's message id. */
  #forward<N extends PacketName>(conn: Connection, name: N, args: ArgsOf<N>): void {
    const master = this.#app.requireMaster();
    const msgId = conn.peerMsgId;
    master.ask(name, args, (answer) => relay(conn, msgId, answer));
  }
}

function relay(conn: Connection, msgId: number, answer: Packet | null): void {
  if (answer === null) {
    conn.answerError(ErrorCodes.PROTOCOL_ERROR, 'connection to master lost', msgId);
    return;
  }
  conn.answerTo(msgId, answer.info.name as PacketName, answer.args as never);
  const [code] = answer.args;
  if (answer.info.name === 'Error' && code === ErrorCodes.PROTOCOL_ERROR.value) conn.abort();
}
