#!/usr/bin/env node
// neoctl: sends one command to an admin node and prints the result (spec/neoctl.md).

import { readFileSync } from 'node:fs';
import { NEOCTL_OPTIONS } from '../core/config.js';
import { createLogger } from '../core/realenv.js';
import { AdminClient, CtlFailure } from '../ctl/client.js';
import { CommandError, parseCommand } from '../ctl/commands.js';
import { runCommand } from '../ctl/run.js';
import { parseOrExit } from './common.js';
import { createRealEnv } from './env.js';

const config = parseOrExit('neoctl', 'NEO Control node', NEOCTL_OPTIONS);

function fail(message: string, status = 1): void {
  process.stderr.write(`${message}\n`);
  process.exitCode = status;
}

async function main(): Promise<void> {
  let command;
  try {
    command = parseCommand(config.cmd);
  } catch (error) {
    if (!(error instanceof CommandError)) throw error;
    return fail(error.message);
  }
  // Like NEO's neoctl, -l logs everything of this run, and nothing is logged without it.
  const logger = config.logfile !== undefined
    ? createLogger({ name: 'neoctl', level: 'debug', file: config.logfile })
    : createLogger({ sink: { write: () => true } });
  const tls = config.ca !== undefined && config.cert !== undefined && config.key !== undefined
    ? { ca: readFileSync(config.ca), cert: readFileSync(config.cert), key: readFileSync(config.key) }
    : undefined;
  const env = createRealEnv({ logger, ...(tls ? { tls } : {}) });
  const client = new AdminClient(env.transport, config.address, logger);
  try {
    const text = await runCommand(command, client);
    if (text !== null) process.stdout.write(`${text}\n`);
  } catch (error) {
    if (!(error instanceof CtlFailure)) throw error;
    fail(error.message, error.status);
  } finally {
    client.close();
  }
}

main().catch((error: unknown) => {
  fail(`neoctl: error: ${error instanceof Error ? error.message : String(error)}`);
});
