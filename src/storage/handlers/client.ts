// Packets from clients once identified (transactions.md §5-§15): stores, checks, votes, aborts,
// deadlock avoidance, and the read side (loads, history, undo serials, iteration).

import { createHash } from 'node:crypto';
import type { Connection, Handler } from '../../net/connection.js';
import { ErrorCodes } from '../../protocol/enums.js';
import { NeoError, protocolError } from '../../protocol/errors.js';
import { INVALID_PARTITION, ZERO_HASH, oidToHex, tidToHex } from '../../protocol/ids.js';
import type { ArgsOf, PacketName } from '../../protocol/packets.js';
import type { ObjectValue, PackOrderInfo } from '../backends/backend.js';
import { DELAYED } from '../transactions.js';
import type { StorageApp } from '../app.js';

/** The peer node (its NID) recorded on an identified connection. */
export function peerNid(conn: Connection): number | null {
  return typeof conn.peer === 'number' ? conn.peer : null;
}

export class ClientHandler implements Handler {
  readonly app: StorageApp;

  constructor(app: StorageApp) {
    this.app = app;
  }

  connectionClosed(conn: Connection): void {
    const nid = peerNid(conn);
    if (nid === null) return;
    const node = this.app.nodes.byNid(nid);
    if (node?.connection === conn) node.connection = null;
    // Voted transactions may still be finished through the master (transactions.md §12.2).
    if (this.app.operational) this.app.tm.abortFor(nid, false);
  }

  Ping(conn: Connection): void {
    conn.answer('Pong', []);
  }

  /**
   * Runs `attempt` now; while it returns DELAYED, it is queued (a store by TTID, or a read) and
   * run again when locks are released. Errors of a delayed run are answered to the request.
   */
  #delayable<N extends PacketName>(
    conn: Connection, ttid: Buffer | null, name: N, attempt: () => ArgsOf<N> | typeof DELAYED,
  ): void {
    const msgId = conn.peerMsgId;
    const first = attempt();
    if (first !== DELAYED) {
      conn.answerTo(msgId, name, first);
      return;
    }
    const retry = (): boolean => {
      if (conn.isClosed) return true;
      try {
        const args = attempt();
        if (args === DELAYED) return false;
        conn.answerTo(msgId, name, args);
      } catch (error) {
        if (!(error instanceof NeoError)) throw error;
        conn.answerError(error.code, error.message, msgId);
      }
      return true;
    };
    if (ttid === null) this.app.tm.delayRead(retry);
    else this.app.tm.delayStore(ttid, retry);
  }

  // --- Writes -------------------------------------------------------------------------------------

  AskStoreObject(
    conn: Connection, oid: Buffer, serial: Buffer, compression: number, checksum: Buffer, data: Buffer,
    dataSerial: Buffer | null, ttid: Buffer | null,
  ): void {
    if (compression < 0 || compression > 1) throw protocolError('invalid compression value');
    if (ttid === null) throw protocolError('store without a ttid');
    let value: ObjectValue | null = null;
    if (data.length > 0 || !checksum.equals(ZERO_HASH)) {
      if (!createHash('sha1').update(data).digest().equals(checksum)) throw protocolError('invalid checksum');
      value = { compression, checksum, data };
    }
    const tm = this.app.tm;
    tm.register(ttid, peerNid(conn));
    this.#delayable(conn, ttid, 'AnswerStoreObject', () => {
      const answer = tm.storeObject(ttid, serial, oid, value, dataSerial);
      return answer === DELAYED ? DELAYED : [answer];
    });
  }

  AskCheckCurrentSerial(conn: Connection, ttid: Buffer, oid: Buffer, serial: Buffer): void {
    const tm = this.app.tm;
    tm.register(ttid, peerNid(conn));
    this.#delayable(conn, ttid, 'AnswerCheckCurrentSerial', () => {
      const answer = tm.checkCurrentSerial(ttid, oid, serial);
      return answer === DELAYED ? DELAYED : [answer];
    });
  }

  AskRelockObject(conn: Connection, ttid: Buffer, oid: Buffer): void {
    const tm = this.app.tm;
    let release = true;
    this.#delayable(conn, ttid, 'AnswerRelockObject', () => {
      const answer = tm.relockObject(ttid, oid, release);
      release = false;
      return answer === DELAYED ? DELAYED : [answer];
    });
  }

  AskStoreTransaction(
    conn: Connection, ttid: Buffer, user: Buffer, description: Buffer, ext: Buffer, oids: Buffer[],
    pack: [Buffer[] | null, Buffer] | null,
  ): void {
    this.app.tm.register(ttid, peerNid(conn));
    let order: PackOrderInfo | null = null;
    if (pack !== null) {
      const [packOids, packTid] = pack;
      const partial = packOids !== null && packOids.length > 0;
      order = { approved: null, partial, oids: partial ? packOids : null, packTid };
    }
    this.app.tm.vote(ttid, { oids, user, description, ext }, order);
    const msgId = conn.peerMsgId;
    this.app.whenDurable(() => conn.answerTo(msgId, 'AnswerStoreTransaction', []));
  }

  AskVoteTransaction(conn: Connection, ttid: Buffer): void {
    this.app.tm.vote(ttid, null, null);
    const msgId = conn.peerMsgId;
    this.app.whenDurable(() => conn.answerTo(msgId, 'AnswerVoteTransaction', []));
  }

  AbortTransaction(_conn: Connection, ttid: Buffer): void {
    this.app.tm.abort(ttid);
  }

  AskFinalTID(conn: Connection, ttid: Buffer): void {
    conn.answer('AnswerFinalTID', [this.app.tm.getFinalTID(ttid)]);
  }

  // --- Reads --------------------------------------------------------------------------------------

  AskObject(conn: Connection, oid: Buffer, at: Buffer | null, before: Buffer | null): void {
    const { tm, backend } = this.app;
    this.#delayable(conn, null, 'AnswerObject', () => {
      if (tm.isReadLocked(oid)) return DELAYED;
      const record = backend.getObject(oid, at, before);
      if (record === 'oidNotFound') throw new NeoError(ErrorCodes.OID_NOT_FOUND, oidToHex(oid));
      if (record === 'oidDoesNotExist') throw new NeoError(ErrorCodes.OID_DOES_NOT_EXIST, oidToHex(oid));
      return [oid, record.serial, record.nextSerial, record.compression, record.checksum, record.data, record.dataSerial];
    });
  }

  AskObjectHistory(conn: Connection, oid: Buffer, first: number, last: number): void {
    if (first >= last) throw protocolError('invalid offsets');
    const { tm, backend } = this.app;
    this.#delayable(conn, null, 'AnswerObjectHistory', () => {
      if (tm.isReadLocked(oid)) return DELAYED;
      const history = backend.getObjectHistory(oid, first, last - first);
      if (history === null) throw new NeoError(ErrorCodes.OID_NOT_FOUND, oidToHex(oid));
      return [oid, history.map(({ serial, size }): [Buffer, number] => [serial, size])];
    });
  }

  AskTIDs(conn: Connection, first: number, last: number, partition: number): void {
    if (first >= last) throw protocolError('invalid offsets');
    const backend = this.app.backend;
    const partitions = partition === INVALID_PARTITION ? backend.getReadablePartitions() : [partition];
    conn.answer('AnswerTIDs', [backend.getTIDList(first, last - first, partitions)]);
  }

  AskTIDsFrom(conn: Connection, minTid: Buffer, maxTid: Buffer, length: number, partition: number): void {
    const { tm, backend } = this.app;
    this.#delayable(conn, null, 'AnswerTIDsFrom', () => {
      if (tm.isLockedTid(maxTid)) return DELAYED;
      return [backend.getReplicationTIDList(minTid, maxTid, length, partition)];
    });
  }

  AskTransactionInformation(conn: Connection, tid: Buffer): void {
    const record = this.app.backend.getTransaction(tid);
    if (record === null) throw new NeoError(ErrorCodes.TID_NOT_FOUND, `${tidToHex(tid)} does not exist`);
    conn.answer('AnswerTransactionInformation', [tid, record.user, record.description, record.ext, record.packed, [...record.oids]]);
  }

  AskObjectUndoSerial(conn: Connection, ttid: Buffer, ltid: Buffer, undoneTid: Buffer, oids: Buffer[]): void {
    const { tm, backend } = this.app;
    const result = new Map<Buffer, [Buffer, Buffer | null, boolean]>();
    for (const oid of oids) {
      const info = backend.findUndoTID(oid, ltid, undoneTid, tm.storedSerial(ttid, oid));
      if (info === null) continue;
      if (info === 'oidNotFound') throw new NeoError(ErrorCodes.OID_NOT_FOUND, oidToHex(oid));
      result.set(oid, [info.currentSerial, info.undoSerial, info.isCurrent]);
    }
    conn.answer('AnswerObjectUndoSerial', [result]);
  }

  AskOIDsFrom(conn: Connection, partition: number, length: number, minOid: Buffer, tid: Buffer): void {
    const { tm, backend } = this.app;
    this.#delayable(conn, null, 'AnswerOIDsFrom', () => {
      if (tm.isLockedTid(tid)) return DELAYED;
      const { nextOid, oids } = backend.getOIDsFrom(partition, length, minOid, tid);
      return [nextOid, oids];
    });
  }

  AskPackOrders(conn: Connection, minPackId: Buffer): void {
    const orders = this.app.backend.getPackOrders(minPackId).map(
      (o): ArgsOf<'AnswerPackOrders'>[0][number] => [o.id, o.approved, o.partial, o.oids === null ? null : [...o.oids], o.packTid]);
    conn.answer('AnswerPackOrders', [orders]);
  }
}
