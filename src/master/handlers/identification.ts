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

/**
 * The topology path a storage announces in the `devpath` extra (cluster.md §10.3), as strings:
 * a list of bytes or str (NEO's storages send bytes, read here as latin1 so that distinct byte
 * strings stay distinct). Undefined when absent; null when it is not such a list, which NEO does
 * not check at identification either: the caller ignores it rather than refuse the node.
 */
export function devpathOf(extra: ReadonlyMap<string, unknown>): string[] | null | undefined {
  const devpath = extra.get('devpath');
  if (devpath === undefined) return undefined;
  if (!Array.isArray(devpath)) return null;
  const path: string[] = [];
  for (const step of devpath as unknown[]) {
    if (Buffer.isBuffer(step)) path.push(step.toString('latin1'));
    else if (typeof step === 'string') path.push(step);
    else return null;
  }
  return path;
}
