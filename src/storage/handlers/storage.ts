// Packets from other storage nodes (replication and replica checks, storage.md §5-§6). Being a
// replication source is not implemented yet: those requests are refused with an explicit error, so
// the fetching node fails its replication instead of waiting forever.

import type { Connection, Handler } from '../../net/connection.js';
import { ErrorCodes } from '../../protocol/enums.js';
import { NeoError } from '../../protocol/errors.js';
import type { StorageApp } from '../app.js';
import { peerNid } from './client.js';

const notImplemented = (what: string) => new NeoError(ErrorCodes.BACKEND_NOT_IMPLEMENTED, `not implemented: ${what}`);

export class StorageHandler implements Handler {
  readonly app: StorageApp;

  constructor(app: StorageApp) {
    this.app = app;
  }

  connectionClosed(conn: Connection): void {
    const nid = peerNid(conn);
    const node = nid === null ? undefined : this.app.nodes.byNid(nid);
    if (node?.connection === conn) node.connection = null;
  }

  Ping(conn: Connection): void {
    conn.answer('Pong', []);
  }

  CloseClient(conn: Connection): void {
    conn.close();
  }

  AskFetchTransactions(): void {
    throw notImplemented('replication source (AskFetchTransactions)');
  }

  AskFetchObjects(): void {
    throw notImplemented('replication source (AskFetchObjects)');
  }

  AskCheckTIDRange(): void {
    throw notImplemented('replica check (AskCheckTIDRange)');
  }

  AskCheckSerialRange(): void {
    throw notImplemented('replica check (AskCheckSerialRange)');
  }
}
