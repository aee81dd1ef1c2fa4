// Connections with other storage nodes, in both directions (storage.md §5-§6): as a replication
// source this node streams AddTransaction / AddObject under the id of the request, then answers;
// it also answers replica checks. As a fetching node it stores what its source streams (the
// replicator decides whether a packet belongs to the replication in progress).

import type { Connection, Handler } from '../../net/connection.js';
import { CellStates, ErrorCodes } from '../../protocol/enums.js';
import { NeoError, protocolError } from '../../protocol/errors.js';
import { ZERO_HASH, ZERO_TID } from '../../protocol/ids.js';
import type { ArgsOf, PacketName } from '../../protocol/packets.js';
import { cellStateOf } from '../backends/backend.js';
import type { StorageApp } from '../app.js';
import { peerNid } from './client.js';

/** Bound on the items a peer may ask for in one replication or check request. */
const MAX_REQUEST_LENGTH = 1_000_000;
/** Records a replication source sends per turn of the event loop (see #stream). */
const STREAM_SLICE = 100;

type ObjectKeys = ArgsOf<'AskFetchObjects'>[5];

export class StorageHandler implements Handler {
  readonly app: StorageApp;

  constructor(app: StorageApp) {
    this.app = app;
  }

  connectionClosed(conn: Connection): void {
    const nid = peerNid(conn);
    const node = nid === null ? undefined : this.app.nodes.byNid(nid);
    if (node?.connection === conn) node.connection = null;
    this.app.replicator?.connectionLost(conn);
  }

  Ping(conn: Connection): void {
    conn.answer('Pong', []);
  }

  CloseClient(conn: Connection): void {
    conn.close();
  }

  // --- Replication source (storage.md §5.4) ---------------------------------------------------

  /**
   * Runs `start` once no transaction locked here has a TID ≤ maxTid (it would not be fully
   * visible yet); `start` streams and answers request `msgId` itself. A NeoError it throws is
   * the answer.
   */
  #whenUnlocked(conn: Connection, maxTid: Buffer, start: (msgId: number) => void): void {
    const { tm } = this.app;
    const msgId = conn.peerMsgId;
    const attempt = (): boolean => {
      if (conn.isClosed) return true;
      if (tm.isLockedTid(maxTid)) return false;
      try {
        start(msgId);
      } catch (error) {
        if (!(error instanceof NeoError)) throw error;
        conn.answerError(error.code, error.message, msgId);
      }
      return true;
    };
    if (!attempt()) tm.delayRead(attempt);
  }

  /**
   * Sends `count` records (`send(i)`), STREAM_SLICE per turn of the event loop and per write,
   * then `answer()`. Node flushes a socket's queued writes only between turns: one long loop
   * would hand the fetching node everything at the end, while slices let it store one while we
   * encode the next. The records were read before: nothing can fail midway.
   */
  #stream(conn: Connection, count: number, send: (i: number) => void, answer: () => void): void {
    let next = 0;
    const slice = (): void => {
      if (conn.isClosed) return;
      conn.batch(() => {
        for (const end = Math.min(count, next + STREAM_SLICE); next < end; next++) send(next);
      });
      if (next < count) this.app.env.timers.soon(slice);
      else answer();
    };
    slice();
  }

  AskFetchTransactions(
    conn: Connection, partition: number, length: number, minTid: Buffer, maxTid: Buffer, knownTids: Buffer[],
    askPackInfo: boolean,
  ): void {
    this.#checkReadable(partition, ErrorCodes.REPLICATION_ERROR);
    checkLength(length);
    const { backend } = this.app;
    this.#whenUnlocked(conn, maxTid, (msgId) => {
      this.#checkReadable(partition, ErrorCodes.REPLICATION_ERROR);
      const known = new Set(knownTids.map((tid) => tid.toString('hex')));
      const completedPack = askPackInfo ? backend.getPackedIDs(false).get(partition) ?? ZERO_TID : null;
      // One range read of every record (rather than one query per record), then the stream.
      const records = backend.getReplicationTransactions(minTid, maxTid, length + 1, partition);
      const nextTid = records.length > length ? records.pop()!.tid : null;
      const missing = records.filter(({ tid }) => !known.delete(tid.toString('hex')));
      const toDelete = [...known].map((key) => Buffer.from(key, 'hex'));
      this.#stream(conn, missing.length, (i) => {
        const { tid, record: txn } = missing[i]!;
        const { pack } = txn;
        conn.answerTo(msgId, 'AddTransaction', [tid, txn.user, txn.description, txn.ext, txn.packed, txn.ttid, [...txn.oids],
          pack === null ? null : [pack.approved, pack.partial, pack.oids === null ? null : [...pack.oids], pack.packTid]]);
      }, () => conn.answerTo(msgId, 'AnswerFetchTransactions', [nextTid, toDelete, completedPack]));
    });
  }

  AskFetchObjects(
    conn: Connection, partition: number, length: number, minTid: Buffer, maxTid: Buffer, minOid: Buffer,
    known: ObjectKeys,
  ): void {
    this.#checkReadable(partition, ErrorCodes.REPLICATION_ERROR);
    checkLength(length);
    const { tm, backend } = this.app;
    if (tm.isLockedTid(maxTid)) throw protocolError('transactions must be fetched before objects');
    // serial (hex) → [serial, OIDs (hex) the fetching node already has]
    const remaining = new Map<string, [Buffer, Set<string>]>();
    for (const [serial, oids] of known) {
      remaining.set(serial.toString('hex'), [serial, new Set(oids.map((oid) => oid.toString('hex')))]);
    }
    const records = backend.getReplicationObjects(minTid, maxTid, length + 1, partition, minOid);
    const next = records.length > length ? records.pop()! : null;
    const msgId = conn.peerMsgId;
    const missing = records.filter(({ serial, oid }) => {
      const entry = remaining.get(serial.toString('hex'));
      if (entry === undefined || !entry[1].delete(oid.toString('hex'))) return true;
      if (entry[1].size === 0) remaining.delete(serial.toString('hex'));
      return false;
    });
    const toDelete: ObjectKeys = new Map();
    for (const [serial, oids] of remaining.values()) toDelete.set(serial, [...oids].map((key) => Buffer.from(key, 'hex')));
    this.#stream(conn, missing.length, (i) => {
      const { oid, serial, record } = missing[i]!;
      // No data (deletion, undone creation) travels as compression 0, zero checksum, no bytes.
      const compression = record.compression ?? 0;
      const checksum = record.compression === null ? ZERO_HASH : record.checksum;
      conn.answerTo(msgId, 'AddObject', [oid, serial, compression, checksum, record.data, record.dataSerial]);
    }, () => conn.answerTo(msgId, 'AnswerFetchObjects', [next?.serial ?? null, next?.oid ?? null, toDelete]));
  }

  /** REPLICATION_ERROR unless our cell is readable; CHECKING_ERROR unless it is not out of date. */
  #checkReadable(partition: number, code: typeof ErrorCodes.REPLICATION_ERROR | typeof ErrorCodes.CHECKING_ERROR): void {
    const { app } = this;
    const cell = app.backend.getPartitionTable().find((c) => c.partition === partition && c.nid === app.nid);
    const ok = cell !== undefined && (code === ErrorCodes.REPLICATION_ERROR
      ? app.backend.isReadable(partition)
      : cellStateOf(cell.tid) !== CellStates.OUT_OF_DATE);
    if (!ok) throw new NeoError(code, `partition ${partition} not readable`);
  }

  // --- Replica checks (storage.md §6) -----------------------------------------------------------

  AskCheckTIDRange(conn: Connection, partition: number, length: number, minTid: Buffer, maxTid: Buffer): void {
    this.#checkReadable(partition, ErrorCodes.CHECKING_ERROR);
    checkLength(length);
    this.#whenUnlocked(conn, maxTid, (msgId) => {
      const { count, tidChecksum, maxTid: last } = this.app.backend.checkTIDRange(partition, length, minTid, maxTid);
      conn.answerTo(msgId, 'AnswerCheckTIDRange', [count, tidChecksum, last]);
    });
  }

  AskCheckSerialRange(
    conn: Connection, partition: number, length: number, minTid: Buffer, maxTid: Buffer, minOid: Buffer,
  ): void {
    this.#checkReadable(partition, ErrorCodes.CHECKING_ERROR);
    checkLength(length);
    if (this.app.tm.isLockedTid(maxTid)) throw protocolError('transactions must be checked before objects');
    const r = this.app.backend.checkSerialRange(partition, length, minTid, maxTid, minOid);
    conn.answer('AnswerCheckSerialRange', [r.count, r.tidChecksum, r.maxTid, r.oidChecksum, r.maxOid]);
  }

  // --- Fetching side (storage.md §5.4): what the source streams --------------------------------

  AddTransaction(conn: Connection, ...args: ArgsOf<'AddTransaction'>): void {
    const replicator = this.app.replicator;
    if (replicator?.isReplicatingConnection(conn)) replicator.addTransaction(...args);
  }

  AddObject(conn: Connection, ...args: ArgsOf<'AddObject'>): void {
    const replicator = this.app.replicator;
    if (replicator?.isReplicatingConnection(conn)) replicator.addObject(...args);
  }
}

function checkLength(length: number): void {
  if (!Number.isInteger(length) || length < 0 || length > MAX_REQUEST_LENGTH) throw protocolError(`invalid length ${length}`);
}
