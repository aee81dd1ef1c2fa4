// Packets of identified storage nodes: during recovery and verification the master mostly asks
// (answers come back to the asking code), in service storages report their progress.

import type { Connection } from '../../net/connection.js';
import { MasterHandler } from './base.js';

/** RECOVERING and VERIFYING (cluster.md §7, §8). */
export class StorageHandler extends MasterHandler {
  NotifyPackCompleted(conn: Connection, packId: Buffer): void {
    this.app.packCompleted(conn, packId);
  }

  /** Also outside RUNNING: a check started in service may end after the cluster left it. */
  NotifyPartitionCorrupted(_conn: Connection, partition: number, nids: number[]): void {
    this.app.partitionCorrupted(partition, nids);
  }
}

/** RUNNING (cluster.md §9, §16.3). */
export class StorageServiceHandler extends StorageHandler {
  NotifyReady(conn: Connection): void {
    this.app.storageReady(conn);
  }

  AskUnfinishedTransactions(conn: Connection, partitions: number[]): void {
    conn.answer('AnswerUnfinishedTransactions', this.app.unfinishedTransactions(conn, partitions));
  }

  NotifyReplicationDone(conn: Connection, partition: number, tid: Buffer): void {
    this.app.replicationDone(conn, partition, tid);
  }

  AskPackOrders(conn: Connection, minPackId: Buffer): void {
    conn.answer('AnswerPackOrders', [this.app.packOrders(minPackId, true)]);
  }

  AskLastTransaction(conn: Connection): void {
    conn.answer('AnswerLastTransaction', [this.app.lastTransaction()]);
  }
}
