// The real environment of a process: the real clock, timers and random source from core, and the
// TCP or TLS transport from net. Only the CLI builds one; tests build controlled environments.

import type { Env, Logger, Transport } from '../core/env.js';
import { createLogger, realClock, realRandom, realTimers } from '../core/realenv.js';
import { tcpTransport } from '../net/tcp.js';
import { tlsTransport } from '../net/tls.js';
import type { TlsCredentials } from '../net/tls.js';

export interface RealEnvOptions {
  /** See Env.peerTimeoutMs. */
  peerTimeoutMs?: number;
  /** Default: createLogger() (stderr, level info). */
  logger?: Logger;
  /** The transport to use; when absent, TLS if `tls` is given, plain TCP otherwise. */
  transport?: Transport;
  tls?: TlsCredentials;
}

export function createRealEnv(options: RealEnvOptions = {}): Env {
  const logger = options.logger ?? createLogger();
  const transport =
    options.transport ??
    (options.tls !== undefined ? tlsTransport({ ...options.tls, logger }) : tcpTransport({ logger }));
  return {
    clock: realClock(),
    timers: realTimers(),
    random: realRandom(),
    transport,
    logger,
    ...(options.peerTimeoutMs !== undefined ? { peerTimeoutMs: options.peerTimeoutMs } : {}),
  };
}
