// The dynamic master list (cluster.md §6.6, -D/--dynamic-master-list): a JSON file of the master
// addresses a node knows, [[host, port], ...], read at start-up in addition to --masters and
// rewritten whenever that set changes, so that masters can be added or removed without editing
// every node's configuration. As in NEO, the file holds every master the node knows of: those of
// --masters, those of the file itself, and those learned from the cluster.

import { closeSync, fsyncSync, openSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import type { Address, Logger } from './env.js';
import { ConfigError } from './errors.js';
import { NodeStates, NodeTypes } from '../protocol/enums.js';
import type { NodeTable, WireNodeInfo } from './node-table.js';
import { sameAddress } from './node-table.js';

const OPTION = 'dynamic-master-list';

/** The file's text, or null when it does not exist. */
function readText(path: string): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new ConfigError(`cannot read the dynamic master list ${path}: ${(error as Error).message}`, OPTION, { cause: error });
  }
}

/** Parses a master list: anything but [[host, port], ...] is an error naming the file. */
function parseMasterList(path: string, text: string): Address[] {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new ConfigError(`the dynamic master list ${path} is not valid JSON: ${(error as Error).message}`, OPTION, { cause: error });
  }
  const isPair = (item: unknown): item is [string, number] =>
    Array.isArray(item) && item.length === 2 && typeof item[0] === 'string' && item[0] !== ''
    && Number.isInteger(item[1]) && (item[1] as number) > 0 && (item[1] as number) <= 0xffff;
  if (!Array.isArray(value) || !value.every(isPair)) {
    throw new ConfigError(`the dynamic master list ${path} is not a JSON list of [host, port] pairs`, OPTION);
  }
  return union([], value.map(([host, port]) => ({ host, port })));
}

/**
 * Replaces the file atomically: written and flushed to disk under a temporary name in the same
 * folder, then renamed, so that a crash leaves either the old list or the new one, never half.
 */
function saveMasterList(path: string, addresses: readonly Address[]): void {
  const tmp = `${path}.tmp`;
  try {
    const fd = openSync(tmp, 'w');
    try {
      writeSync(fd, serialize(addresses));
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } finally {
    rmSync(tmp, { force: true });
  }
}

/** `base` followed by the addresses of `more` it does not hold yet. */
export function union(base: readonly Address[], more: readonly Address[]): Address[] {
  const result = [...base];
  for (const address of more) if (!result.some((known) => sameAddress(known, address))) result.push(address);
  return result;
}

/** The file's content: sorted, so that the same set always gives the same text. */
function serialize(addresses: readonly Address[]): string {
  const sorted = union([], addresses).sort((a, b) => (a.host < b.host ? -1 : a.host > b.host ? 1 : a.port - b.port));
  return `${JSON.stringify(sorted.map(({ host, port }) => [host, port]))}\n`;
}

/** A node's dynamic master list: what it read at start-up, and the rewrites as it learns more. */
export class DynamicMasterList {
  readonly path: string;
  /** The addresses the file held at start-up. */
  readonly loaded: readonly Address[];
  #written: string;

  private constructor(path: string, loaded: Address[], written: string) {
    this.path = path;
    this.loaded = loaded;
    this.#written = written;
  }

  /**
   * Reads the list, or creates it empty when missing, as NEO does: a path that cannot be read or
   * written is a configuration error at start-up rather than a failure discovered later.
   */
  static open(path: string): DynamicMasterList {
    const text = readText(path);
    if (text !== null) {
      const loaded = parseMasterList(path, text);
      return new DynamicMasterList(path, loaded, serialize(loaded));
    }
    try {
      saveMasterList(path, []);
    } catch (error) {
      throw new ConfigError(`cannot create the dynamic master list ${path}: ${(error as Error).message}`, OPTION, { cause: error });
    }
    return new DynamicMasterList(path, [], serialize([]));
  }

  /**
   * Rewrites the file if the set of known masters differs from the one last written. A failure
   * only loses the update, so it is logged and the node keeps running (NEO does the same).
   */
  update(addresses: readonly Address[], logger: Logger): void {
    const text = serialize(addresses);
    if (text === this.#written) return;
    try {
      saveMasterList(this.path, addresses);
      this.#written = text;
    } catch (error) {
      logger.error(`cannot save the list of masters to ${this.path}: ${(error as Error).message}`);
    }
  }
}

/**
 * What a NotifyNodeInformation changes in a list of known master addresses, before `table`
 * applies it, as NEO's node manager does: a master announced at a new address is added, one
 * known by its id but announced elsewhere moves, one announced UNKNOWN is forgotten. Returns
 * whether the list changed.
 */
export function followMasters(known: Address[], table: NodeTable<unknown>, nodes: readonly WireNodeInfo[]): boolean {
  let changed = false;
  for (const [type, address, nid, state] of nodes) {
    if (type !== NodeTypes.MASTER) continue;
    const entry = (address !== null ? table.byAddress(address) : undefined) ?? (nid !== null ? table.byNid(nid) : undefined);
    // Unknown to the table: an UNKNOWN master still leaves the list.
    const old = entry?.address ?? address;
    const now = state === NodeStates.UNKNOWN ? null : address;
    if (old !== null && !sameAddress(old, now)) {
      const index = known.findIndex((a) => sameAddress(a, old));
      if (index >= 0) {
        known.splice(index, 1);
        changed = true;
      }
    }
    if (now !== null && !known.some((a) => sameAddress(a, now))) {
      known.push(now);
      changed = true;
    }
  }
  return changed;
}
