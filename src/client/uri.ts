// NEO's zodburi form (transactions.md §19): neo://CLUSTER@HOST:PORT[,HOST:PORT...]?options and
// neos://... for TLS. Query keys that are client options (spelled with '_' or '-') go to the
// storage; the others are returned for the layer above (database options).

import type { Address } from '../core/env.js';
import { parseAddress } from '../core/address.js';
import { StorageConfigError } from './errors.js';

export interface TlsFiles {
  ca: string;
  cert: string;
  key: string;
}

export interface ParsedUri {
  clusterName: string;
  masterNodes: Address[];
  /** Set for neos://. */
  tls: TlsFiles | null;
  compress: boolean;
  /** zlib level, when given as compress=zlib=N. */
  compressLevel: number | undefined;
  readOnly: boolean;
  /** Undefined when not given in the URI. */
  cacheSizeBytes: number | undefined;
  ignoreWrongChecksum: boolean;
  /** Query keys that are not client options. */
  otherOptions: Record<string, string>;
}

const MASTER_PORT_REQUIRED = undefined;
const SIZE_UNITS: Record<string, number> = { '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4 };

function bad(message: string): StorageConfigError {
  return new StorageConfigError(`invalid NEO URI: ${message}`);
}

function parseBool(key: string, value: string): boolean {
  const v = value.toLowerCase();
  if (['1', 'true', 'yes', 'on', ''].includes(v)) return true;
  if (['0', 'false', 'no', 'off'].includes(v)) return false;
  throw bad(`${key}=${value} is not a boolean`);
}

/** '20MB', '512k', '1048576' → bytes. */
export function parseByteSize(text: string): number {
  const match = /^\s*(\d+)\s*([KMGT]?)B?\s*$/i.exec(text);
  if (match === null) throw bad(`bad size '${text}'`);
  return Number(match[1]) * SIZE_UNITS[match[2]!.toUpperCase()]!;
}

function parseCompress(value: string): { compress: boolean; level: number | undefined } {
  const match = /^zlib(?:=(\d))?$/i.exec(value);
  if (match !== null) {
    const level = match[1] === undefined ? undefined : Number(match[1]);
    if (level !== undefined && (level < 1 || level > 9)) throw bad(`zlib level ${level} not in 1..9`);
    return { compress: true, level };
  }
  return { compress: parseBool('compress', value), level: undefined };
}

/**
 * Parses a neo:// or neos:// URI. `env` supplies NEO_CA/NEO_CERT/NEO_KEY defaults for neos://
 * (the caller passes process.env; src/client never reads the process environment itself).
 */
export function parseNeoUri(uri: string, env: Record<string, string | undefined> = {}): ParsedUri {
  const match = /^(neos?):\/\/([^@/?#]*)@([^/?#]*)(\/[^?#]*)?(\?[^#]*)?(#.*)?$/.exec(uri);
  if (match === null) throw bad(`expected neo://CLUSTER@HOST:PORT[,HOST:PORT...][?options], got '${uri}'`);
  const [, scheme, rawCluster, rawMasters, path, query, fragment] = match;
  if ((path !== undefined && path !== '' && path !== '/') || (fragment !== undefined && fragment !== '#')) {
    throw bad('path and fragment must be empty');
  }
  const clusterName = decodeURIComponent(rawCluster!);
  if (clusterName === '') throw bad('missing cluster name');
  const masterNodes = rawMasters!.split(',').filter((s) => s !== '').map((text) => {
    try {
      return parseAddress(decodeURIComponent(text), MASTER_PORT_REQUIRED);
    } catch (error) {
      throw bad((error as Error).message);
    }
  });
  if (masterNodes.length === 0) throw bad('missing master address');

  const parsed: ParsedUri = {
    clusterName,
    masterNodes,
    tls: null,
    compress: true,
    compressLevel: undefined,
    readOnly: false,
    cacheSizeBytes: undefined,
    ignoreWrongChecksum: false,
    otherOptions: {},
  };
  const tlsGiven: Partial<TlsFiles> = {};
  for (const [rawKey, value] of new URLSearchParams(query?.slice(1) ?? '')) {
    const key = rawKey.replace(/-/g, '_');
    switch (key) {
      case 'compress': {
        const c = parseCompress(value);
        parsed.compress = c.compress;
        parsed.compressLevel = c.level;
        break;
      }
      case 'read_only': parsed.readOnly = parseBool(rawKey, value); break;
      case 'cache_size': parsed.cacheSizeBytes = parseByteSize(value); break;
      case 'ignore_wrong_checksum': parsed.ignoreWrongChecksum = parseBool(rawKey, value); break;
      case 'ca': case 'cert': case 'key': tlsGiven[key] = value; break;
      case 'name': case 'master_nodes': throw bad(`'${rawKey}' must be given in the URI itself`);
      default: parsed.otherOptions[rawKey] = value;
    }
  }
  if (scheme === 'neos') {
    const files = {
      ca: tlsGiven.ca ?? env['NEO_CA'],
      cert: tlsGiven.cert ?? env['NEO_CERT'],
      key: tlsGiven.key ?? env['NEO_KEY'],
    };
    const missing = (['ca', 'cert', 'key'] as const).filter((k) => files[k] === undefined || files[k] === '');
    if (missing.length > 0) {
      throw bad(`neos:// needs ${missing.join(', ')} (query options or NEO_CA/NEO_CERT/NEO_KEY)`);
    }
    parsed.tls = files as TlsFiles;
  } else if (Object.keys(tlsGiven).length > 0) {
    throw bad('ca/cert/key are only for neos:// URIs');
  }
  return parsed;
}
