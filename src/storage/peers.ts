// Outgoing connections to other storage nodes (replication sources, replicas to check): opened
// and identified as a storage node, then recorded as the node's connection if it has none.

import type { NodeEntry } from '../core/node-table.js';
import { Connection, heartbeatFor } from '../net/connection.js';
import { NodeTypes } from '../protocol/enums.js';
import { errorFromCode } from '../protocol/errors.js';
import { nidToString } from '../protocol/ids.js';
import type { ArgsOf } from '../protocol/packets.js';
import type { StorageApp } from './app.js';
import { StorageHandler } from './handlers/storage.js';

/**
 * Connects to `node` (which must have an address and a nid); `identified` is called once with null
 * when the peer accepted us, or with the reason of the failure (the connection is then closed).
 * The connection is closed with the others when operation stops.
 */
export function connectStorage(
  app: StorageApp, node: NodeEntry<Connection>, identified: (error: string | null) => void,
): Connection {
  const conn = new Connection({
    stream: app.env.transport.connect(node.address!),
    handler: new StorageHandler(app),
    logger: app.logger,
    label: `storage ${nidToString(node.nid!)}`,
    heartbeat: heartbeatFor(app.env),
  });
  app.adoptConnection(conn);
  const args: ArgsOf<'RequestIdentification'> = [
    NodeTypes.STORAGE, app.nid, app.address, app.clusterName, app.idTimestamp, new Map(),
  ];
  conn.ask('RequestIdentification', args, (answer) => {
    if (answer === null) {
      identified('connection closed');
      return;
    }
    if (answer.info.name === 'Error') {
      const [code, message] = answer.args as ArgsOf<'Error'>;
      conn.close();
      identified(`identification refused: ${errorFromCode(code, message).toString()}`);
      return;
    }
    const [nodeType, nid] = answer.args as ArgsOf<'AcceptIdentification'>;
    if (nodeType !== NodeTypes.STORAGE || nid !== node.nid) {
      conn.close();
      identified(`${conn.label} is not storage ${nidToString(node.nid!)}`);
      return;
    }
    conn.peer = nid;
    if (node.connection === null || node.connection.isClosed) node.connection = conn;
    identified(null);
  });
  return conn;
}
