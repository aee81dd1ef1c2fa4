#!/usr/bin/env node
// neosimple: a whole local cluster in one command (a master, two storages with replicas 1 and an
// admin, on loopback, SQLite in a data folder that is kept and reopened on the next start).
// Each node is a real process of its own, as in production; their logs go to the data folder.

import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { formatAddress } from '../core/address.js';
import type { Address } from '../core/env.js';
import { createLogger } from '../core/realenv.js';
import { Connection } from '../net/connection.js';
import { ClusterStates } from '../protocol/enums.js';
import type { ClusterState } from '../protocol/enums.js';
import { createRealEnv } from './env.js';

const HELP = `usage: neosimple [options]

Starts a local NEO cluster on loopback: 1 master, 2 storages (SQLite, replicas 1) and 1 admin,
each in its own process. Data and logs are kept in the data folder and reopened on the next start.
Stop it with Ctrl-C.

options:
  --temp_dir DIR     data folder (default: ./neo-data)
  --name NAME        cluster name of a new data folder (default: neo_<random>; an existing
                     folder keeps its own)
  --partitions N     partitions of a new cluster (default: 12)
  --replicas N       replicas of a new cluster (default: 1)
  --adapter NAME     SQLite (default) or Memory (nothing kept)
  --bind_ip IP       address to listen on (default: 127.0.0.1)
  -h, --help         show this help
`;

const STARTUP_TIMEOUT_MS = 60_000;
const POLL_INTERVAL_MS = 200;
const STOP_TIMEOUT_MS = 10_000;

interface Node {
  readonly name: string;
  readonly process: ChildProcess;
  readonly address: Promise<Address>;
}

const here = dirname(fileURLToPath(import.meta.url));
const nodes: Node[] = [];
let stopping = false;
/** Rejected when a node exits while the cluster is not being stopped. */
let nodeFailed!: (error: Error) => void;
const nodeFailure = new Promise<never>((_resolve, reject) => (nodeFailed = reject));
nodeFailure.catch(() => {});

function fail(message: string): never {
  process.stderr.write(`neosimple: error: ${message}\n`);
  process.exit(2);
}

function parseOptions() {
  try {
    const { values } = parseArgs({
      options: {
        temp_dir: { type: 'string', default: './neo-data' },
        name: { type: 'string' },
        partitions: { type: 'string', default: '12' },
        replicas: { type: 'string', default: '1' },
        adapter: { type: 'string', default: 'SQLite' },
        bind_ip: { type: 'string', default: '127.0.0.1' },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
    if (values.help) {
      process.stdout.write(HELP);
      process.exit(0);
    }
    const partitions = Number(values.partitions);
    const replicas = Number(values.replicas);
    if (!Number.isInteger(partitions) || partitions < 1) fail(`--partitions must be a positive integer`);
    if (!Number.isInteger(replicas) || replicas < 0 || replicas > 1) fail(`--replicas must be 0 or 1 (2 storages)`);
    if (values.adapter !== 'SQLite' && values.adapter !== 'Memory') fail(`--adapter must be SQLite or Memory`);
    return { ...values, partitions, replicas, dataDir: resolve(values.temp_dir) };
  } catch (error) {
    return fail(`${(error as Error).message} (see --help)`);
  }
}

/** The cluster name is kept in the data folder, since the storages' databases belong to it. */
function clusterName(dataDir: string, wanted: string | undefined, random: () => number): string {
  const file = join(dataDir, 'neosimple.json');
  if (existsSync(file)) {
    const saved = (JSON.parse(readFileSync(file, 'utf8')) as { cluster: string }).cluster;
    if (wanted !== undefined && wanted !== saved) {
      fail(`${dataDir} holds cluster '${saved}', not '${wanted}' (choose another --temp_dir)`);
    }
    return saved;
  }
  const name = wanted ?? `neo_${Math.floor(random() * 1e6)}`;
  writeFileSync(file, JSON.stringify({ cluster: name }) + '\n');
  return name;
}

function startNode(name: string, program: string, args: string[], dataDir: string): Node {
  const child = spawn(process.execPath, [join(here, `${program}.js`), ...args], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const log = createWriteStream(join(dataDir, `${name}.log`), { flags: 'a' });
  const address = new Promise<Address>((resolveAddress, rejectAddress) => {
    let pending = '';
    child.stderr!.on('data', (chunk: Buffer) => {
      log.write(chunk);
      pending += chunk.toString('utf8');
      const match = /listening on (\[[^\]]+\]|[^\s:]+):(\d+)/.exec(pending);
      if (match) resolveAddress({ host: match[1]!.replace(/^\[|\]$/g, ''), port: Number(match[2]) });
    });
    child.on('exit', (code, signal) => {
      const error = new Error(`${name} exited (${signal ?? `status ${code}`}); see ${join(dataDir, `${name}.log`)}`);
      rejectAddress(error);
      if (!stopping) {
        process.stderr.write(`neosimple: ${error.message}\n`);
        nodeFailed(error);
      }
    });
  });
  address.catch(() => {}); // reported through nodeFailure; only awaited for some nodes
  const node = { name, process: child, address };
  nodes.push(node);
  return node;
}

/** Asks the admin for the cluster state until it is RUNNING. */
async function waitRunning(admin: Address): Promise<void> {
  const env = createRealEnv({ logger: createLogger({ level: 'error' }) });
  const deadline = Date.now() + STARTUP_TIMEOUT_MS;
  let last = 'unknown';
  while (Date.now() < deadline) {
    const connection = new Connection({
      stream: env.transport.connect(admin),
      handler: {},
      logger: env.logger,
      label: 'admin',
    });
    try {
      const [state] = (await connection.request('AskClusterState', [])) as [ClusterState | null];
      if (state === ClusterStates.RUNNING) return;
      last = state?.name ?? 'unknown';
    } catch (error) {
      last = (error as Error).message;
    } finally {
      connection.close();
    }
    await new Promise((r) => setTimeout(r, POLL_INTERVAL_MS));
  }
  throw new Error(`the cluster is not RUNNING after ${STARTUP_TIMEOUT_MS / 1000} s (last: ${last})`);
}

async function stopAll(): Promise<void> {
  const exits = nodes.map(
    (node) =>
      new Promise<void>((resolveExit) => {
        if (node.process.exitCode !== null || node.process.signalCode !== null) return resolveExit();
        node.process.once('exit', () => resolveExit());
        node.process.kill('SIGTERM');
      }),
  );
  const timer = setTimeout(() => {
    for (const node of nodes) node.process.kill('SIGKILL');
  }, STOP_TIMEOUT_MS);
  await Promise.all(exits);
  clearTimeout(timer);
}

async function main(): Promise<void> {
  const options = parseOptions();
  mkdirSync(options.dataDir, { recursive: true });
  const name = clusterName(options.dataDir, options.name, Math.random);
  const ip = options.bind_ip;
  const common = ['--cluster', name];

  const stop = async (status: number) => {
    if (stopping) return;
    stopping = true;
    process.stdout.write('\nstopping the cluster...\n');
    await stopAll();
    process.stdout.write('stopped.\n');
    process.exit(status);
  };
  process.on('SIGINT', () => void stop(0));
  process.on('SIGTERM', () => void stop(0));

  try {
    const master = startNode('master', 'neomaster', [
      ...common,
      '--bind', `${ip}:0`,
      '--partitions', String(options.partitions),
      '--replicas', String(options.replicas),
      '--autostart', '2',
    ], options.dataDir);
    const masterAddress = await Promise.race([master.address, nodeFailure]);
    const masters = ['--masters', formatAddress(masterAddress)];
    for (const index of [0, 1]) {
      const database = options.adapter === 'SQLite' ? join(options.dataDir, `storage${index}.sqlite`) : `storage${index}`;
      startNode(`storage${index}`, 'neostorage', [
        ...common, ...masters,
        '--bind', `${ip}:0`,
        '--adapter', options.adapter,
        '--database', database,
      ], options.dataDir);
    }
    const admin = startNode('admin', 'neoadmin', [...common, ...masters, '--bind', `${ip}:0`], options.dataDir);
    const adminAddress = await Promise.race([admin.address, nodeFailure]);
    await Promise.race([waitRunning(adminAddress), nodeFailure]);
    const uri = `neo://${name}@${formatAddress(masterAddress)}`;
    process.stdout.write(
      [
        `NEO cluster '${name}' is RUNNING: 1 master, 2 storages (${options.adapter}), replicas ${options.replicas}`,
        `  data and logs: ${options.dataDir}`,
        `  master: ${formatAddress(masterAddress)}`,
        `  admin:  ${formatAddress(adminAddress)}    e.g. neoctl -a ${formatAddress(adminAddress)} print node`,
        `  connect: const storage = await openStorage('${uri}')   // import { openStorage } from 'neots'`,
        'Press Ctrl-C to stop.',
        '',
      ].join('\n'),
    );
  } catch (error) {
    process.stderr.write(`neosimple: error: ${(error as Error).message}\n`);
    await stop(1);
  }
}

void main();
