// The package's public face: openStorage(uri) for applications, the NeoStorage class for callers
// that bring their own environment (tests, simulator), the errors and the pickle helpers.

import type { Env, Logger } from './core/env.js';
import { createRealEnv } from './cli/env.js';
import { createLogger } from './core/realenv.js';
import { NeoStorage } from './client/storage.js';
import type { ConflictResolver } from './client/storage.js';
import { parseNeoUri } from './client/uri.js';

export { NeoStorage, DEFAULT_CACHE_SIZE_BYTES } from './client/storage.js';
export type {
  ConflictResolver,
  DataRecord,
  HistoryEntry,
  InvalidationListener,
  LoadBeforeResult,
  LoadResult,
  NeoStorageOptions,
  TransactionInfo,
  TransactionMeta,
  TransactionRecord,
  UndoLogEntry,
} from './client/storage.js';
export {
  ConflictError,
  NEOPrimaryMasterLost,
  POSError,
  POSKeyError,
  ReadConflictError,
  ReadOnlyError,
  StorageClosedError,
  StorageConfigError,
  StorageError,
  StorageTransactionError,
  UndoError,
} from './client/errors.js';
export { ClientCache } from './client/cache.js';
export { dumps, loads, dumpsExtension, loadsExtension, PickleError } from './client/pickle.js';
export type { PickleDict, PickleValue } from './client/pickle.js';
export { parseNeoUri, parseByteSize } from './client/uri.js';
export type { ParsedUri } from './client/uri.js';
export { ZERO_TID, MAX_TID, p64, u64, tidToHex, timeFromTid, tidFromTime } from './protocol/ids.js';

export interface OpenStorageOptions {
  /** Conflict resolution hook (see ConflictResolver). Without it, every conflict is an error. */
  resolveConflict?: ConflictResolver;
  /** Overrides the URI's cache-size. */
  cacheSizeBytes?: number;
  readOnly?: boolean;
  logger?: Logger;
  /** Reject after this long without a usable primary master (default: wait, as NEO). */
  openTimeoutMs?: number;
  /**
   * Close a connection whose peer (master or storage) sent nothing for this long, after a
   * Ping; 0 relies on TCP keep-alive only, as NEO. Default 10 s.
   */
  peerTimeoutMs?: number;
  /** A ready environment (tests); by default the real one (TCP, or TLS for neos://). */
  env?: Env;
}

const DEFAULT_PEER_TIMEOUT_MS = 10_000;

/**
 * Opens a NEO storage from a zodburi-style URI, `neo://CLUSTER@HOST:PORT[,HOST:PORT...]?opts` or
 * `neos://...` (TLS: ca, cert and key options, defaulting to $NEO_CA, $NEO_CERT, $NEO_KEY).
 * Resolves once connected to the primary master.
 */
export async function openStorage(uri: string, options: OpenStorageOptions = {}): Promise<NeoStorage> {
  const parsed = parseNeoUri(uri, process.env);
  const env = options.env ?? createRealEnv({
    logger: options.logger ?? createLogger({ level: 'warn' }),
    peerTimeoutMs: options.peerTimeoutMs ?? DEFAULT_PEER_TIMEOUT_MS,
    ...(parsed.tls === null ? {} : { tls: parsed.tls }),
  });
  const storage = new NeoStorage({
    env,
    clusterName: parsed.clusterName,
    masterNodes: parsed.masterNodes,
    compress: parsed.compress,
    compressLevel: parsed.compressLevel,
    readOnly: options.readOnly ?? parsed.readOnly,
    cacheSizeBytes: options.cacheSizeBytes ?? parsed.cacheSizeBytes,
    ignoreWrongChecksum: parsed.ignoreWrongChecksum,
    resolveConflict: options.resolveConflict,
    ...(options.openTimeoutMs === undefined ? {} : { openTimeoutMs: options.openTimeoutMs }),
  });
  try {
    return await storage.open();
  } catch (error) {
    storage.close();
    throw error;
  }
}
