// Real clusters for tests: every node is a process of its own, started from the compiled
// programs on 127.0.0.1 with ports chosen by the system, and killed by pid when the test ends.

import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { formatAddress } from '../../src/core/address.js';
import type { Address } from '../../src/core/env.js';
import { AdminClient } from '../../src/ctl/client.js';
import { tcpTransport } from '../../src/net/tcp.js';
import { NodeStates, NodeTypes } from '../../src/protocol/enums.js';
import { recordingLogger } from './logger.js';
import { PROJECT_ROOT } from './spec.js';

const CLI = resolve(PROJECT_ROOT, 'dist', 'src', 'cli');
const START_TIMEOUT_MS = 20_000;

export interface NodeProcess {
  readonly name: string;
  readonly child: ChildProcess;
  readonly address: Address;
  /** Everything the node logged so far. */
  log(): string;
  /** Resolves with the exit status (or signal) once the process is gone. */
  readonly exited: Promise<number | string>;
}

export class TestCluster {
  readonly name: string;
  readonly dir: string;
  readonly nodes: NodeProcess[] = [];
  private readonly all = new Set<ChildProcess>();

  constructor(name = `test_${process.pid}_${Math.floor(Math.random() * 1e6)}`) {
    this.name = name;
    this.dir = mkdtempSync(join(tmpdir(), 'neots-cluster-'));
  }

  /** Starts `program` with `args` and waits until it logs the address it listens on. */
  async start(name: string, program: string, args: string[]): Promise<NodeProcess> {
    const child = spawn(process.execPath, [join(CLI, `${program}.js`), ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.all.add(child);
    let output = '';
    const exited = new Promise<number | string>((resolveExit) => {
      child.on('exit', (code, signal) => {
        this.all.delete(child);
        resolveExit(signal ?? code ?? -1);
      });
    });
    const address = await new Promise<Address>((resolveAddress, reject) => {
      const timer = setTimeout(() => reject(new Error(`${name} did not listen in time:\n${output}`)), START_TIMEOUT_MS);
      const onData = (chunk: Buffer) => {
        output += chunk.toString('utf8');
        const match = /listening on (\[[^\]]+\]|[^\s:]+):(\d+)/.exec(output);
        if (match) {
          clearTimeout(timer);
          resolveAddress({ host: match[1]!.replace(/^\[|\]$/g, ''), port: Number(match[2]) });
        }
      };
      child.stderr!.on('data', onData);
      child.stdout!.on('data', onData);
      void exited.then((status) => {
        clearTimeout(timer);
        reject(new Error(`${name} exited (${status}) before listening:\n${output}`));
      });
    });
    const node: NodeProcess = { name, child, address, log: () => output, exited };
    this.nodes.push(node);
    return node;
  }

  /**
   * With `masters` (every master of the cluster, see freePorts), the master binds `bind` and
   * elects a primary among them.
   */
  startMaster(options: {
    partitions?: number; replicas?: number; autostart?: number; name?: string; bind?: Address; masters?: readonly Address[];
  } = {}): Promise<NodeProcess> {
    return this.start(options.name ?? 'master', 'neomaster', [
      '--cluster', this.name,
      '--bind', options.bind === undefined ? '127.0.0.1:0' : formatAddress(options.bind),
      ...(options.masters !== undefined ? ['--masters', options.masters.map(formatAddress).join(' ')] : []),
      '--partitions', String(options.partitions ?? 4),
      '--replicas', String(options.replicas ?? 0),
      ...(options.autostart !== undefined ? ['--autostart', String(options.autostart)] : []),
    ]);
  }

  startStorage(index: number, master: Address | readonly Address[], adapter = 'SQLite'): Promise<NodeProcess> {
    return this.start(`storage${index}`, 'neostorage', [
      '--cluster', this.name,
      '--bind', '127.0.0.1:0',
      '--masters', masterList(master),
      '--adapter', adapter,
      '--database', adapter === 'SQLite' ? join(this.dir, `storage${index}.sqlite`) : `storage${index}`,
    ]);
  }

  startAdmin(master: Address | readonly Address[]): Promise<NodeProcess> {
    return this.start('admin', 'neoadmin', [
      '--cluster', this.name,
      '--bind', '127.0.0.1:0',
      '--masters', masterList(master),
    ]);
  }

  /** kill -9. */
  async kill(node: NodeProcess, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    node.child.kill(signal);
    await node.exited;
  }

  /** Stops every process still running (SIGKILL) and removes the data folder. */
  async destroy(): Promise<void> {
    const running = [...this.all];
    for (const child of running) child.kill('SIGKILL');
    await Promise.all(this.nodes.map((node) => node.exited));
    rmSync(this.dir, { recursive: true, force: true });
  }
}

function masterList(master: Address | readonly Address[]): string {
  return ('host' in master ? [master] : master).map(formatAddress).join(' ');
}

/**
 * `count` ports of 127.0.0.1 free right now, for nodes that must know each other's address
 * before they start (several masters).
 */
export async function freePorts(count: number): Promise<Address[]> {
  const { createServer } = await import('node:net');
  const servers = await Promise.all(Array.from({ length: count }, () => new Promise<import('node:net').Server>((resolveServer, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolveServer(server));
  })));
  const addresses = servers.map((server) => ({ host: '127.0.0.1', port: (server.address() as { port: number }).port }));
  await Promise.all(servers.map((server) => new Promise((resolveClose) => server.close(resolveClose))));
  return addresses;
}

/** Asks the admin (as neoctl does) until the cluster state is `wanted`; bounded in time. */
export async function waitClusterState(admin: Address, wanted: string, timeoutMs = 30_000): Promise<void> {
  const { Connection } = await import('../../src/net/connection.js');
  const { tcpTransport } = await import('../../src/net/tcp.js');
  const { recordingLogger } = await import('./logger.js');
  const transport = tcpTransport();
  const logger = recordingLogger();
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer';
  while (Date.now() < deadline) {
    const connection = new Connection({ stream: transport.connect(admin), handler: {}, logger, label: 'ctl' });
    try {
      const [state] = (await connection.request('AskClusterState', [])) as [{ name: string } | null];
      last = state?.name ?? 'unknown';
      if (last === wanted) return;
    } catch (error) {
      last = (error as Error).message;
    } finally {
      connection.close();
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`cluster not ${wanted} after ${timeoutMs} ms (last: ${last})`);
}

/**
 * The address of the RUNNING primary master as the admin knows it (AskPrimary, then the masters'
 * list); null if the admin does not answer or lists no such master.
 */
export async function primaryMasterAddress(admin: Address): Promise<Address | null> {
  const client = new AdminClient(tcpTransport({ faults: null }), admin, recordingLogger());
  try {
    const primary = await client.ask('AskPrimary', []);
    const nodes = await client.ask('AskNodeList', [NodeTypes.MASTER]);
    if (primary.name !== 'AnswerPrimary' || nodes.name !== 'AnswerNodeList') return null;
    const [nid] = primary.args as [number];
    const [list] = nodes.args as [[unknown, Address | null, number | null, { name: string }, unknown][]];
    return list.find(([, , listed, state]) => listed === nid && state.name === NodeStates.RUNNING.name)?.[1] ?? null;
  } catch {
    return null;
  } finally {
    client.close();
  }
}

/** `promise`, or a rejection naming `what` after `ms`: every wait of a cluster test is bounded. */
export async function bounded<T>(what: string, promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no outcome after ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
