// Handlers of the client's connections, NEO style: one per kind of peer and state, methods named
// after packets. They only translate packets into calls on the storage object.

import type { Connection, Handler } from '../net/connection.js';
import type { ArgsOf } from '../protocol/packets.js';
import type { Address } from '../core/env.js';

/** What the handlers need from the storage object. */
export interface ClientApp {
  notPrimaryMaster(conn: Connection, primary: number | null, knownMasters: Address[]): void;
  masterLost(conn: Connection): void;
  nodeInformation(nodes: ArgsOf<'NotifyNodeInformation'>[1]): void;
  partitionTable(...args: ArgsOf<'SendPartitionTable'>): void;
  partitionChanges(...args: ArgsOf<'NotifyPartitionChanges'>): void;
  invalidateObjects(tid: Buffer, oids: Buffer[]): void;
  deadlock(conn: Connection, ttid: Buffer, oid: Buffer): void;
  storageLost(conn: Connection): void;
}

function answerPing(conn: Connection): void {
  conn.answer('Pong', []);
}

/** A master connection before identification is accepted. */
export function masterBootstrapHandler(app: ClientApp): Handler {
  return {
    NotPrimaryMaster: (conn, primary, knownMasters) => app.notPrimaryMaster(conn, primary, knownMasters),
    Ping: answerPing,
  };
}

/** The identified connection to the primary master. */
export function primaryMasterHandler(app: ClientApp): Handler {
  return {
    Ping: answerPing,
    NotifyNodeInformation: (_conn, _timestamp, nodes) => app.nodeInformation(nodes),
    SendPartitionTable: (_conn, ptid, numReplicas, rows) => app.partitionTable(ptid, numReplicas, rows),
    NotifyPartitionChanges: (_conn, ptid, numReplicas, changes) => app.partitionChanges(ptid, numReplicas, changes),
    InvalidateObjects: (_conn, tid, oids) => app.invalidateObjects(tid, oids),
    // Only for clients of a backup cluster, which we are not: nothing to do.
    InvalidatePartitions: () => undefined,
    NotifyClusterInformation: () => undefined,
    // The cluster left RUNNING (e.g. truncation): the master closes the connection next and the
    // client reconnects when it is used again.
    StopOperation: () => undefined,
    NotifyPackSigned: () => undefined,
    connectionClosed: (conn) => app.masterLost(conn),
  };
}

/** A connection to a storage node (identified or not). */
export function storageHandler(app: ClientApp): Handler {
  return {
    Ping: answerPing,
    NotifyDeadlock: (conn, ttid, oid) => app.deadlock(conn, ttid, oid),
    // The storage no longer needs this connection; we keep it while we use it (§6.3).
    CloseClient: () => undefined,
    connectionClosed: (conn) => app.storageLost(conn),
  };
}
