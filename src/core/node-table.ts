// The nodes a node knows about (cluster.md §4): id, type, address, state, the id timestamp the
// primary master gave it, and the connection to it when there is one. Kept up to date from
// NotifyNodeInformation everywhere but on the primary master, which is its source.

import type { Address } from './env.js';
import { NodeStates, NodeTypes } from '../protocol/enums.js';
import type { NodeState, NodeType } from '../protocol/enums.js';
import type { ArgsOf } from '../protocol/packets.js';
import { nidToString } from '../protocol/ids.js';

export type WireNodeInfo = ArgsOf<'NotifyNodeInformation'>[1][number];

export interface NodeEntry<C = unknown> {
  nid: number | null;
  type: NodeType;
  address: Address | null;
  state: NodeState;
  idTimestamp: number | null;
  /** The identified connection to this node, if any. */
  connection: C | null;
}

export function sameAddress(a: Address | null, b: Address | null): boolean {
  return a !== null && b !== null && a.host === b.host && a.port === b.port;
}

export function describeNode(node: NodeEntry<unknown>): string {
  return node.nid !== null ? nidToString(node.nid) : `${node.type.name}@${node.address?.host}:${node.address?.port}`;
}

export class NodeTable<C = unknown> {
  private readonly nodes: NodeEntry<C>[] = [];

  all(): readonly NodeEntry<C>[] {
    return this.nodes;
  }

  byNid(nid: number): NodeEntry<C> | undefined {
    return this.nodes.find((node) => node.nid === nid);
  }

  byAddress(address: Address): NodeEntry<C> | undefined {
    return this.nodes.find((node) => sameAddress(node.address, address));
  }

  byConnection(connection: C): NodeEntry<C> | undefined {
    return this.nodes.find((node) => node.connection === connection);
  }

  ofType(type: NodeType): NodeEntry<C>[] {
    return this.nodes.filter((node) => node.type === type);
  }

  storages(): NodeEntry<C>[] {
    return this.ofType(NodeTypes.STORAGE);
  }

  isRunning(nid: number): boolean {
    return this.byNid(nid)?.state === NodeStates.RUNNING;
  }

  add(node: NodeEntry<C>): NodeEntry<C> {
    this.nodes.push(node);
    return node;
  }

  remove(node: NodeEntry<C>): void {
    const index = this.nodes.indexOf(node);
    if (index >= 0) this.nodes.splice(index, 1);
  }

  /**
   * Applies one NodeInfo from NotifyNodeInformation; UNKNOWN removes the node. Returns the
   * entry (removed or not) so the caller can act on state changes.
   */
  update(info: WireNodeInfo): NodeEntry<C> {
    const [type, address, nid, state, idTimestamp] = info;
    let node = (nid !== null ? this.byNid(nid) : undefined) ?? (address !== null ? this.byAddress(address) : undefined);
    if (node === undefined) {
      node = this.add({ nid, type, address, state, idTimestamp, connection: null });
    } else {
      node.nid = nid;
      node.type = type;
      node.address = address;
      node.state = state;
      node.idTimestamp = idTimestamp;
    }
    if (state === NodeStates.UNKNOWN) this.remove(node);
    return node;
  }

  toWire(node: NodeEntry<C>): WireNodeInfo {
    return [node.type, node.address, node.nid, node.state, node.idTimestamp];
  }
}
