// Incoming connections before identification (protocol.md §5.4): only clients and storages, only
// while operational, only nodes the master told us about (with the same id timestamp).

import type { Connection, Handler } from '../../net/connection.js';
import { NodeTypes } from '../../protocol/enums.js';
import type { NodeType } from '../../protocol/enums.js';
import { notReady, protocolError } from '../../protocol/errors.js';
import type { Address } from '../../protocol/schema.js';
import type { StorageApp } from '../app.js';
import { ClientHandler } from './client.js';
import { StorageHandler } from './storage.js';

export class IdentificationHandler implements Handler {
  readonly app: StorageApp;

  constructor(app: StorageApp) {
    this.app = app;
  }

  RequestIdentification(
    conn: Connection, nodeType: NodeType, nid: number | null, _address: Address | null, clusterName: string,
    idTimestamp: number | null,
  ): void {
    const app = this.app;
    if (clusterName !== app.clusterName) throw protocolError('invalid cluster name');
    if (!app.operational) throw notReady('Retry Later');
    if (nid === null) {
      if (nodeType !== NodeTypes.STORAGE) throw protocolError('reject anonymous non-storage node');
      conn.handler = new StorageHandler(app);
      conn.answer('AcceptIdentification', [NodeTypes.STORAGE, null, null]);
      return;
    }
    if (nid === app.nid) throw protocolError('uuid conflict or loopback connection');
    if (nodeType !== NodeTypes.CLIENT && nodeType !== NodeTypes.STORAGE) {
      throw protocolError('reject non-client-or-storage node');
    }
    const msgId = conn.peerMsgId;
    // The master may not have told us about this node yet: wait for its next notification.
    const accept = (): boolean => {
      if (conn.isClosed) return true;
      const node = app.nodes.byNid(nid);
      if (node === undefined || node.idTimestamp !== idTimestamp || node.type !== nodeType) {
        if (idTimestamp !== null && idTimestamp > app.nodeTimestamp) return false;
        conn.answerError(notReady().code, 'unknown by master', msgId);
        return true;
      }
      if (node.connection !== null && !node.connection.isClosed) {
        conn.answerError(protocolError('').code, 'already connected', msgId);
        return true;
      }
      node.connection = conn;
      conn.peer = nid;
      conn.handler = nodeType === NodeTypes.CLIENT ? new ClientHandler(app) : new StorageHandler(app);
      conn.answerTo(msgId, 'AcceptIdentification', [NodeTypes.STORAGE, app.nid, nid]);
      return true;
    };
    if (!accept()) app.delayIdentification(accept);
  }
}
