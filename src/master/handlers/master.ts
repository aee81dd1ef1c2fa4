// Connections between masters (cluster.md §6, protocol.md §5.5).

import type { Address } from '../../core/env.js';
import type { Connection, Handler } from '../../net/connection.js';
import type { ClusterState } from '../../protocol/enums.js';
import type { ArgsOf } from '../../protocol/packets.js';
import type { MasterApp } from '../app.js';
import { MasterHandler } from './base.js';

/** The primary's side of an identified secondary master: it only pings, or goes away. */
export class SecondaryHandler extends MasterHandler {}

/**
 * A connection this master opened to another master: an election challenge while it plays
 * primary in RECOVERING, or, in the secondary role, its connection to the primary.
 */
export class OtherMasterHandler implements Handler {
  private readonly app: MasterApp;

  constructor(app: MasterApp) {
    this.app = app;
  }

  NotPrimaryMaster(conn: Connection, primary: number | null, knownMasters: Address[]): void {
    this.app.notPrimaryMaster(conn, primary, knownMasters);
  }

  NotifyNodeInformation(conn: Connection, ...[, nodes]: ArgsOf<'NotifyNodeInformation'>): void {
    this.app.primaryNodeInformation(conn, nodes);
  }

  NotifyClusterInformation(conn: Connection, state: ClusterState): void {
    this.app.primaryClusterInformation(conn, state);
  }

  FlushLog(): void {
    // Logs are not buffered: nothing to flush.
  }

  connectionClosed(conn: Connection): void {
    this.app.otherMasterLost(conn);
  }
}
