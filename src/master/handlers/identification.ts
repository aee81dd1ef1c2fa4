// The handler of a connection accepted by the primary master, until its peer identifies
// (protocol.md §5.3, cluster.md §3.3).

import type { Connection, Handler } from '../../net/connection.js';
import type { ArgsOf } from '../../protocol/packets.js';
import type { MasterApp } from '../app.js';

export class IdentificationHandler implements Handler {
  private readonly app: MasterApp;

  constructor(app: MasterApp) {
    this.app = app;
  }

  RequestIdentification(conn: Connection, ...args: ArgsOf<'RequestIdentification'>): void {
    this.app.identify(conn, ...args);
  }

  connectionClosed(): void {
    // Nothing was recorded for an unidentified peer.
  }
}
