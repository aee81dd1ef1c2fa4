// What every identified peer may send the primary master, whatever its type.

import type { Connection, Handler } from '../../net/connection.js';
import type { MasterApp } from '../app.js';

export class MasterHandler implements Handler {
  protected readonly app: MasterApp;

  constructor(app: MasterApp) {
    this.app = app;
  }

  Ping(conn: Connection): void {
    conn.answer('Pong', []);
  }

  connectionClosed(conn: Connection): void {
    this.app.connectionLost(conn);
  }
}
