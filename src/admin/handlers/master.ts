// The admin's connection to the primary master: while identifying (where a secondary master may
// point to the primary), then passive, keeping the copies of the node list, partition table and
// cluster state up to date.

import type { Address } from '../../core/env.js';
import { PartitionTable } from '../../core/partition-table.js';
import type { WireCellChange, WireRow } from '../../core/partition-table.js';
import type { WireNodeInfo } from '../../core/node-table.js';
import type { Connection, Handler } from '../../net/connection.js';
import type { ClusterState } from '../../protocol/enums.js';
import type { AdminApp } from '../app.js';

export class IdentificationHandler implements Handler {
  readonly #app: AdminApp;

  constructor(app: AdminApp) {
    this.#app = app;
  }

  NotPrimaryMaster(_conn: Connection, primary: number | null, knownMasters: Address[]): void {
    this.#app.notPrimaryMaster(primary, knownMasters);
  }

  connectionClosed(conn: Connection, error?: Error): void {
    this.#app.identificationFailed(conn, error);
  }
}

export class MasterHandler implements Handler {
  readonly #app: AdminApp;

  constructor(app: AdminApp) {
    this.#app = app;
  }

  connectionClosed(conn: Connection): void {
    this.#app.masterLost(conn);
  }

  Ping(conn: Connection): void {
    conn.answer('Pong', []);
  }

  NotifyNodeInformation(_conn: Connection, _timestamp: number, nodes: WireNodeInfo[]): void {
    this.#app.mastersNotified(nodes);
    for (const node of nodes) this.#app.nodes.update(node);
    this.#app.partitionTableUpdated();
  }

  SendPartitionTable(_conn: Connection, ptid: number | null, numReplicas: number, rows: WireRow[]): void {
    this.#app.setPartitionTable(rows.length === 0 ? null : PartitionTable.fromWire(ptid, numReplicas, rows));
  }

  NotifyPartitionChanges(conn: Connection, ptid: number, numReplicas: number, changes: WireCellChange[]): void {
    const pt = this.#app.pt;
    if (pt === null || !pt.applyChanges(ptid, numReplicas, changes, false)) {
      this.#app.logger.warn(`${conn.label}: ignored partition changes of ptid ${ptid} (have ${pt?.ptid ?? 'no table'})`);
      return;
    }
    this.#app.partitionTableUpdated();
  }

  NotifyClusterInformation(_conn: Connection, state: ClusterState): void {
    this.#app.updateMonitor({ clusterState: state });
  }

  NotifyUpstreamAdmin(conn: Connection, address: Address): void {
    // Reporting to the admin of the upstream cluster (cluster.md §14.3) is not implemented.
    this.#app.logger.info(`${conn.label}: upstream admin at ${address.host}:${address.port} (not monitored)`);
  }

  FlushLog(): void {
    // The log is written synchronously: nothing to flush.
  }
}
