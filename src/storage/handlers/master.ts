// Packets from the primary master (storage.md §1, transactions.md §10): recovery, verification,
// start/stop of operation, partition table changes, node notifications, and the second phase of
// commits (lock, unlock, abort).

import type { Connection, Handler } from '../../net/connection.js';
import { ClusterStates, NodeStates, NodeTypes } from '../../protocol/enums.js';
import type { ClusterState } from '../../protocol/enums.js';
import { protocolError } from '../../protocol/errors.js';
import { nidToString, tidToHex } from '../../protocol/ids.js';
import type { ArgsOf } from '../../protocol/packets.js';
import type { CellChange } from '../backends/backend.js';
import type { StorageApp } from '../app.js';

type WireRow = ArgsOf<'SendPartitionTable'>[2][number];
type WireCellChange = ArgsOf<'NotifyPartitionChanges'>[2][number];
type WireNodeInfo = ArgsOf<'NotifyNodeInformation'>[1][number];

export class MasterHandler implements Handler {
  readonly app: StorageApp;

  constructor(app: StorageApp) {
    this.app = app;
  }

  connectionClosed(conn: Connection): void {
    this.app.masterLost(conn);
  }

  Ping(conn: Connection): void {
    conn.answer('Pong', []);
  }

  // --- Node and cluster notifications ---------------------------------------------------------

  NotifyNodeInformation(_conn: Connection, timestamp: number, nodes: WireNodeInfo[]): void {
    const app = this.app;
    app.mastersNotified(nodes);
    for (const info of nodes) {
      const [type, , nid, state, idTimestamp] = info;
      if (nid !== null && nid === app.nid) {
        app.logger.info(`I was told I'm ${state.name}`);
        if (state === NodeStates.DOWN || state === NodeStates.UNKNOWN) {
          app.shutdown(state === NodeStates.UNKNOWN);
          return;
        }
        app.idTimestamp = idTimestamp;
        continue;
      }
      const node = app.nodes.update(info);
      if (type === NodeTypes.CLIENT && state !== NodeStates.RUNNING && nid !== null) {
        app.logger.info(`client ${nidToString(nid)} is ${state.name}: aborting its transactions`);
        app.tm.abortFor(nid, true);
      }
      if (state === NodeStates.UNKNOWN || (type === NodeTypes.CLIENT && state !== NodeStates.RUNNING)) {
        const peer = node.connection;
        node.connection = null;
        peer?.close();
      }
    }
    app.nodeInformationReceived(timestamp);
  }

  NotifyClusterInformation(_conn: Connection, state: ClusterState): void {
    this.app.clusterState = state;
    if (state === ClusterStates.STOPPING) this.app.logger.info('cluster is stopping');
  }

  // --- Recovery and verification --------------------------------------------------------------

  AskRecovery(conn: Connection): void {
    const backend = this.app.backend;
    conn.answer('AnswerRecovery', [backend.getPtid(), backend.getBackupTid(), backend.getTruncateTid()]);
  }

  AskPartitionTable(conn: Connection): void {
    const { ptid, numReplicas, rows } = this.app.partitionTableWire();
    if (ptid === null) throw protocolError('no partition table');
    conn.answer('AnswerPartitionTable', [ptid, numReplicas, rows]);
  }

  SendPartitionTable(_conn: Connection, ptid: number | null, numReplicas: number, rows: WireRow[]): void {
    if (ptid === null || rows.length === 0 || rows.some((row) => row.length === 0)) {
      throw protocolError('Partial partition table received');
    }
    const cells: CellChange[] = rows.flatMap((row, partition) => row.map(([nid, state]) => ({ partition, nid, state })));
    this.app.changePartitionTable(ptid, numReplicas, cells, true);
  }

  NotifyPartitionChanges(_conn: Connection, ptid: number, numReplicas: number, changes: WireCellChange[]): void {
    const current = this.app.backend.getPtid();
    if (current === null || ptid !== current + 1) throw protocolError('wrong partition table id');
    const cells = changes.map(([partition, nid, state]) => ({ partition, nid, state }));
    this.app.changePartitionTable(ptid, numReplicas, cells, false);
  }

  Truncate(_conn: Connection, tid: Buffer): void {
    const backend = this.app.backend;
    backend.setBackupTid(null);
    backend.setTruncateTid(tid);
    backend.commit();
    this.app.logger.info(`truncation at ${tidToHex(tid)} recorded`);
  }

  AskLockedTransactions(conn: Connection): void {
    const locked = new Map<Buffer, Buffer | null>();
    for (const { ttid, tid } of this.app.backend.getUnfinishedTIDs()) locked.set(ttid, tid);
    conn.answer('AnswerLockedTransactions', [locked]);
  }

  /** Verification replays a transaction that was locked but not unlocked (cluster.md §8). */
  ValidateTransaction(_conn: Connection, ttid: Buffer, tid: Buffer): void {
    const backend = this.app.backend;
    backend.lockTransaction(ttid, tid, true);
    backend.commit();
    backend.unlockTransaction(ttid, tid);
    backend.commit();
  }

  AskLastIDs(conn: Connection): void {
    const backend = this.app.backend;
    if (backend.getTruncateTid() !== null) {
      backend.truncate();
      backend.commit();
    }
    // With --disable-pack nothing is reported before the first approval (as NEO).
    if (this.app.config.disablePack !== true) this.app.notifyPackCompleted(true);
    const { lastTid, lastOid, firstTid } = backend.getLastIDs();
    conn.answer('AnswerLastIDs', [lastTid, lastOid, firstTid]);
  }

  AskPackOrders(conn: Connection, minPackId: Buffer): void {
    const orders = this.app.backend.getPackOrders(minPackId).map(
      (o): ArgsOf<'AnswerPackOrders'>[0][number] => [o.id, o.approved, o.partial, o.oids === null ? null : [...o.oids], o.packTid]);
    conn.answer('AnswerPackOrders', [orders]);
  }

  NotifyPackSigned(_conn: Connection, approved: Buffer[], rejected: Buffer[]): void {
    const app = this.app;
    // With --disable-pack the approvals are not even recorded (as NEO).
    if (app.config.disablePack !== true && app.backend.signPackOrders(approved, rejected).changed) app.backend.commit();
    app.packOrdersApproved(approved);
  }

  AskFinalTID(conn: Connection, ttid: Buffer): void {
    conn.answer('AnswerFinalTID', [this.app.operational ? this.app.tm.getFinalTID(ttid) : this.app.backend.getFinalTID(ttid)]);
  }

  NotifyRepair(_conn: Connection, dryRun: boolean): void {
    const { found, deleted } = this.app.backend.pruneOrphans(dryRun);
    if (!dryRun) this.app.backend.commit();
    this.app.logger.info(`prune_orphan: ${found} orphan data rows found, ${deleted} deleted`);
  }

  FlushLog(): void {
    // Our log is written as it goes: nothing to flush.
  }

  // --- Operation --------------------------------------------------------------------------------

  StartOperation(conn: Connection, backup: boolean): void {
    if (backup) this.app.logger.error('backup mode is not implemented: serving as a normal storage');
    if (this.app.operational) return;
    this.app.startOperation();
    conn.notify('NotifyReady', []);
    this.app.startBackgroundWork();
  }

  /** `neoctl check` (storage.md §6): compare our cell of the partition with the other replicas. */
  CheckPartition(_conn: Connection, partition: number, source: ArgsOf<'CheckPartition'>[1], minTid: Buffer, maxTid: Buffer): void {
    const checker = this.app.checker;
    if (checker === null) {
      this.app.logger.error(`Failed to start checking partition ${partition} (not operational)`);
      return;
    }
    checker.check(partition, source, minTid, maxTid);
  }

  StopOperation(): void {
    this.app.stopOperation();
  }

  AskLockInformation(conn: Connection, ttid: Buffer, tid: Buffer, packApproved: boolean): void {
    if (!this.app.operational) throw protocolError('not operational');
    this.app.tm.lock(ttid, tid, packApproved);
    const msgId = conn.peerMsgId;
    this.app.whenDurable(() => conn.answerTo(msgId, 'AnswerInformationLocked', [ttid]));
  }

  NotifyUnlockInformation(_conn: Connection, ttid: Buffer): void {
    if (!this.app.operational) throw protocolError('not operational');
    this.app.tm.unlock(ttid);
    this.app.armDeferredCommit();
  }

  AbortTransaction(_conn: Connection, ttid: Buffer): void {
    this.#transactionFinished(ttid, null);
  }

  /** A transaction pending when we asked for unfinished ones ended (storage.md §5.2). */
  NotifyTransactionFinished(_conn: Connection, ttid: Buffer, tid: Buffer): void {
    this.#transactionFinished(ttid, tid);
  }

  #transactionFinished(ttid: Buffer, tid: Buffer | null): void {
    if (!this.app.operational) return;
    this.app.tm.abort(ttid);
    this.app.replicator?.transactionFinished(ttid, tid);
  }
}
