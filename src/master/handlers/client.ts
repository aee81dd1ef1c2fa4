// Requests of identified clients (transactions.md §1-§3, §10, §12; cluster.md §2.3).

import type { Connection } from '../../net/connection.js';
import type { ArgsOf } from '../../protocol/packets.js';
import { MasterHandler } from './base.js';

export class ClientHandler extends MasterHandler {
  AskBeginTransaction(conn: Connection, tid: Buffer | null): void {
    this.app.beginTransaction(conn, conn.peerMsgId, tid);
  }

  AskNewOIDs(conn: Connection, count: number): void {
    conn.answer('AnswerNewOIDs', [this.app.newOids(count)]);
  }

  AskFinishTransaction(conn: Connection, ...args: ArgsOf<'AskFinishTransaction'>): void {
    this.app.finishTransaction(conn, conn.peerMsgId, ...args);
  }

  AbortTransaction(conn: Connection, ttid: Buffer, nids: number[]): void {
    this.app.abortTransaction(conn, ttid, nids);
  }

  FailedVote(conn: Connection, ttid: Buffer, nids: number[]): void {
    this.app.failedVote(conn, ttid, nids);
  }

  AskFinalTID(conn: Connection, ttid: Buffer): void {
    this.app.askFinalTid(conn, conn.peerMsgId, ttid);
  }

  AskLastTransaction(conn: Connection): void {
    conn.answer('AnswerLastTransaction', [this.app.lastTransaction()]);
  }

  AskLastIDs(conn: Connection): void {
    conn.answer('AnswerLastIDs', this.app.lastIds());
  }

  AskPackOrders(conn: Connection, minPackId: Buffer): void {
    conn.answer('AnswerPackOrders', [this.app.packOrders(minPackId, false)]);
  }

  WaitForPack(conn: Connection, packId: Buffer): void {
    this.app.waitForPack(conn, conn.peerMsgId, packId);
  }
}
