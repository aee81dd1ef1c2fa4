// What every daemon's entry point does the same way: options (command line over neo.conf),
// --help, the log, the real environment (TCP or TLS), and a clean stop on SIGINT/SIGTERM.

import { readFileSync } from 'node:fs';
import type { Env } from '../core/env.js';
import { ConfigError } from '../core/errors.js';
import { formatHelp, loadConfig } from '../core/config.js';
import type { ConfigOf, OptionSpec } from '../core/config.js';
import { DynamicMasterList } from '../core/master-list.js';
import { createLogger } from '../core/realenv.js';
import { createRealEnv } from './env.js';

export interface Stoppable {
  /** Stops the node: closes connections and the database. */
  stop(): void | Promise<void>;
}

interface CommonConfig {
  readonly peerTimeout?: number | undefined;
  readonly logfile?: string | undefined;
  readonly ca?: string | undefined;
  readonly cert?: string | undefined;
  readonly key?: string | undefined;
}

/** Parses options or exits: 0 after --help, 2 with a one-line error for a bad configuration. */
export function parseOrExit<const T extends readonly OptionSpec[]>(
  program: string,
  description: string,
  options: T,
  argv: readonly string[] = process.argv.slice(2),
): ConfigOf<T> {
  try {
    const result = loadConfig(options, argv);
    if (result.help) {
      process.stdout.write(formatHelp(program, options, description));
      process.exit(0);
    }
    return result.config;
  } catch (error) {
    return exitOnConfigError(program, error);
  }
}

/** The --dynamic-master-list file, read (or created) before the node starts; exits 2 if it can't be. */
export function openMasterListOrExit(program: string, path: string | undefined): DynamicMasterList | undefined {
  try {
    return path === undefined ? undefined : DynamicMasterList.open(path);
  } catch (error) {
    return exitOnConfigError(program, error);
  }
}

function exitOnConfigError(program: string, error: unknown): never {
  if (error instanceof ConfigError) {
    process.stderr.write(`${program}: error: ${error.message}\n`);
    process.exit(2);
  }
  throw error;
}

/** The real environment of a daemon, logging to --logfile when given, else to stderr. */
export function daemonEnv(role: string, config: CommonConfig): Env {
  const logger = createLogger({ name: role, level: 'info', ...(config.logfile ? { file: config.logfile } : {}) });
  const tls =
    config.ca !== undefined && config.cert !== undefined && config.key !== undefined
      ? { ca: readFileSync(config.ca), cert: readFileSync(config.cert), key: readFileSync(config.key) }
      : undefined;
  return createRealEnv({
    logger,
    ...(tls ? { tls } : {}),
    ...(config.peerTimeout !== undefined ? { peerTimeoutMs: config.peerTimeout * 1000 } : {}),
  });
}

/** Starts a daemon and stops it cleanly on SIGINT/SIGTERM; a failed start exits with 1. */
export function runDaemon(env: Env, start: () => Promise<Stoppable>): void {
  let node: Stoppable | undefined;
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    env.logger.info(`${signal} received, stopping`);
    try {
      await node?.stop();
    } finally {
      process.exit(0);
    }
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
  start().then(
    (started) => {
      node = started;
    },
    (error: unknown) => {
      env.logger.error(`cannot start: ${error instanceof Error ? error.message : String(error)}`);
      process.exit(1);
    },
  );
}
