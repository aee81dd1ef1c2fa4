// Requests of the admin node, most of them forwarded from neoctl (cluster.md §10, §14.1).

import type { Connection } from '../../net/connection.js';
import type { ClusterState, NodeState } from '../../protocol/enums.js';
import type { ArgsOf } from '../../protocol/packets.js';
import { MasterHandler } from './base.js';

export class AdminHandler extends MasterHandler {
  AskClusterState(conn: Connection): void {
    conn.answer('AnswerClusterState', [this.app.clusterState]);
  }

  SetClusterState(conn: Connection, state: ClusterState): void {
    this.app.setClusterState(conn, state);
  }

  AskRecovery(conn: Connection): void {
    conn.answer('AnswerRecovery', [this.app.pt.ptid, null, null]);
  }

  AskLastIDs(conn: Connection): void {
    conn.answer('AnswerLastIDs', this.app.lastIds());
  }

  AskLastTransaction(conn: Connection): void {
    conn.answer('AnswerLastTransaction', [this.app.lastTransaction()]);
  }

  AddPendingNodes(conn: Connection, nids: number[]): void {
    this.app.addPendingNodes(conn, nids);
  }

  SetNumReplicas(conn: Connection, numReplicas: number): void {
    this.app.setNumReplicas(conn, numReplicas);
  }

  TweakPartitionTable(conn: Connection, dryRun: boolean, dropNids: number[]): void {
    conn.answer('AnswerTweakPartitionTable', this.app.tweakPartitionTable(dryRun, dropNids));
  }

  SetNodeState(conn: Connection, nid: number, state: NodeState): void {
    this.app.setNodeState(conn, nid, state);
  }

  Truncate(conn: Connection, tid: Buffer): void {
    this.app.truncate(conn, tid);
  }

  CheckReplicas(conn: Connection, ...[partitions, minTid, maxTid]: ArgsOf<'CheckReplicas'>): void {
    this.app.checkReplicas(conn, partitions, minTid, maxTid);
  }

  Repair(conn: Connection, nids: number[], dryRun: boolean): void {
    this.app.repair(conn, nids, dryRun);
  }

  FlushLog(): void {
    this.app.flushLog();
  }
}
