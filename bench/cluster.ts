// Workloads against clusters of real processes on loopback: the nodes are started from the
// compiled programs (as the cluster tests do) and every client is a process of its own
// (bench/worker.ts). Figures are rates over the workload's wall time; CPU time is summed over
// every process of the cluster and of the clients for the same interval.

import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { formatAddress } from '../src/core/address.js';
import type { Address } from '../src/core/env.js';
import { AdminClient } from '../src/ctl/client.js';
import { tcpTransport } from '../src/net/tcp.js';
import { CellStates } from '../src/protocol/enums.js';
import { freePorts, TestCluster, waitClusterState, bounded, primaryMasterAddress } from '../test/helpers/cluster.js';
import type { NodeProcess } from '../test/helpers/cluster.js';
import { recordingLogger } from '../test/helpers/logger.js';
import { cpuSeconds, peakRssKiB } from './processes.js';
import type { WorkerJob, WorkerResult } from './worker.js';

const WORKER = fileURLToPath(new URL('./worker.js', import.meta.url));
const PARTITIONS = 12;
const SMALL_OBJECT_BYTES = 100;
const KIB = 1024;
const WARM_OBJECTS = 1000;
/** Pause between the commits of the client that keeps the cluster busy during a catch-up. */
const SERVING_PAUSE_MS = 20;
/** No workload of the benchmark may take longer than this: it fails instead of hanging. */
const STEP_BOUND_MS = 300_000;
/** Bound on starting a client process and opening its storage. */
const READY_BOUND_MS = 30_000;

export interface Sizes {
  /** Duration of each timed workload. */
  durationMs: number;
  /** Bulk write: objects in all, and per transaction. */
  bulkObjects: number;
  bulkObjectsPerTxn: number;
  /** Commits made while a storage is down, before it is restarted. */
  catchUpCommits: number;
}

export interface Layout {
  name: string;
  storages: number;
  replicas: number;
}

export const LAYOUTS: readonly Layout[] = [
  { name: '1 master + 1 storage, replicas 0', storages: 1, replicas: 0 },
  { name: '1 master + 2 storages, replicas 1', storages: 2, replicas: 1 },
];

export interface Rate {
  perSec: number;
  /** CPU seconds of all processes (nodes and clients) per operation. */
  cpuPerOp: number;
  /** The same, per process (clients summed as `clients`). */
  cpuPerOpBy: Record<string, number>;
}

export interface LayoutResult {
  layout: string;
  commits1: Rate;
  commits4: Rate;
  commits16: Rate;
  commits10x1KiB: Rate;
  coldLoads1: Rate;
  coldLoads4: Rate;
  warmLoads1: Rate;
  bulk: { objects: number; objectsPerSec: number; mbPerSec: number; cpuPerObject: number };
  catchUp: {
    commitsMissed: number; seconds: number; commitsServedMeanwhile: number;
    /** Of `seconds`: from the spawn to `listening on` (Node start, module loading, database open). */
    startSeconds: number;
  } | null;
  /** Peak RSS in KiB of each node process, and the largest of the client processes. */
  peakRssKiB: Record<string, number>;
}

export interface FailoverResult {
  /** From the kill -9 of the primary to the first commit through its successor. */
  seconds: number;
  errorsMeanwhile: number;
}

/** A running worker process: `go`, then its result. */
class Worker {
  readonly child: ChildProcess;
  readonly ready: Promise<void>;
  readonly result: Promise<WorkerResult>;
  #lines: string[] = [];
  /** Everyone waiting for the next line (ready, result and resumed wait at once). */
  #waiting: (() => void)[] = [];

  constructor(job: WorkerJob) {
    this.child = spawn(process.execPath, [WORKER, JSON.stringify(job)], { stdio: ['pipe', 'pipe', 'inherit'] });
    const exited = new Promise<number | string>((resolve) => this.child.on('exit', (code, signal) => resolve(signal ?? code ?? -1)));
    createInterface({ input: this.child.stdout! }).on('line', (line) => {
      this.#lines.push(line);
      for (const wake of this.#waiting.splice(0)) wake();
    });
    const line = async (test: (line: string) => boolean, what: string): Promise<string> => {
      for (;;) {
        const found = this.#lines.find(test);
        if (found !== undefined) return found;
        const status = await Promise.race([exited, new Promise<null>((resolve) => this.#waiting.push(() => resolve(null)))]);
        if (status !== null && this.#lines.find(test) === undefined) throw new Error(`bench worker exited (${status}) before ${what}`);
      }
    };
    this.ready = line((l) => l === 'ready', 'being ready').then(() => undefined);
    this.result = line((l) => l.startsWith('{'), 'its result').then((l) => JSON.parse(l) as WorkerResult);
    this.resumed = line((l) => l === 'resumed', 'resuming').then(() => undefined);
    // Rejections surface through whoever awaits them; never as unhandled ones.
    for (const promise of [this.ready, this.result, this.resumed]) promise.catch(() => {});
  }

  readonly resumed: Promise<void>;

  send(command: string): void {
    this.child.stdin!.write(`${command}\n`);
  }

  kill(): void {
    if (this.child.exitCode === null) this.child.kill('SIGKILL');
  }
}

interface Run {
  results: WorkerResult[];
  rate: Rate;
  /** Peak RSS of each client process. */
  clientRssKiB: number[];
}

/** Starts the workers, lets them go together, and sums their rates and everyone's CPU. */
async function runWorkers(jobs: WorkerJob[], nodes: readonly NodeProcess[]): Promise<Run> {
  const workers = jobs.map((job) => new Worker(job));
  try {
    await bounded('bench workers ready', Promise.all(workers.map((w) => w.ready)), READY_BOUND_MS);
    const cpuBefore = nodes.map((node) => cpuSeconds(node.child.pid!) ?? 0);
    for (const worker of workers) worker.send('go');
    const results = await bounded('bench workload', Promise.all(workers.map((w) => w.result)), STEP_BOUND_MS);
    const count = Math.max(1, results.reduce((sum, r) => sum + r.count, 0));
    const cpuPerOpBy: Record<string, number> = { clients: results.reduce((sum, r) => sum + r.cpuSeconds, 0) / count };
    nodes.forEach((node, i) => {
      cpuPerOpBy[node.name] = ((cpuSeconds(node.child.pid!) ?? cpuBefore[i]!) - cpuBefore[i]!) / count;
    });
    const perSec = results.reduce((sum, r) => sum + (r.elapsedMs > 0 ? r.count / (r.elapsedMs / 1000) : 0), 0);
    return {
      results,
      rate: { perSec, cpuPerOp: Object.values(cpuPerOpBy).reduce((a, b) => a + b, 0), cpuPerOpBy },
      clientRssKiB: results.map((r) => r.maxRssKiB),
    };
  } finally {
    for (const worker of workers) worker.kill();
  }
}

const commitJob = (uri: string, objects: number, objectBytes: number, durationMs: number, maxCommits?: number): WorkerJob => ({
  kind: 'commit', uri, objects, objectBytes, durationMs, ...(maxCommits !== undefined ? { maxCommits } : {}),
});

/** The cells of the partition table, as the admin sees them; null if it does not answer. */
async function cellStates(admin: Address): Promise<string[] | null> {
  const client = new AdminClient(tcpTransport({ faults: null }), admin, recordingLogger());
  try {
    const answer = await client.ask('AskPartitionList', [0, 0, null]);
    if (answer.name !== 'AnswerPartitionList') return null;
    const [, , rows] = answer.args as [unknown, number, [number, { name: string }][][]];
    return rows.flatMap((row) => row.map(([, state]) => state.name));
  } catch {
    return null;
  } finally {
    client.close();
  }
}

async function allUpToDate(admin: Address): Promise<void> {
  for (;;) {
    const states = await cellStates(admin);
    if (states !== null && states.length > 0 && states.every((state) => state === CellStates.UP_TO_DATE.name)) return;
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

async function startCluster(cluster: TestCluster, layout: Layout, masters?: Address[]): Promise<{ admin: NodeProcess; uri: string; storages: NodeProcess[]; masterNodes: NodeProcess[] }> {
  const masterNodes: NodeProcess[] = [];
  for (const [index, bind] of (masters ?? [undefined]).entries()) {
    masterNodes.push(await cluster.startMaster({
      name: `master${index}`, partitions: PARTITIONS, replicas: layout.replicas, autostart: layout.storages,
      ...(bind !== undefined ? { bind, masters } : {}),
    }));
  }
  const masterAddresses = masters ?? [masterNodes[0]!.address];
  const storages: NodeProcess[] = [];
  for (let i = 0; i < layout.storages; i++) storages.push(await cluster.startStorage(i, masterAddresses));
  const admin = await cluster.startAdmin(masterAddresses);
  await waitClusterState(admin.address, 'RUNNING');
  await bounded('cells up to date', allUpToDate(admin.address), STEP_BOUND_MS);
  const uri = `neo://${cluster.name}@${masterAddresses.map(formatAddress).join(',')}`;
  return { admin, uri, storages, masterNodes };
}

export async function benchLayout(layout: Layout, sizes: Sizes, progress: (line: string) => void): Promise<LayoutResult> {
  const cluster = new TestCluster(`bench_${process.pid}`);
  try {
    const { admin, uri, storages } = await startCluster(cluster, layout);
    const clientRss: number[] = [];
    const step = async (what: string, jobs: WorkerJob[]): Promise<Run> => {
      progress(`${layout.name}: ${what}`);
      const run = await runWorkers(jobs, cluster.nodes.filter((n) => n.child.exitCode === null));
      clientRss.push(...run.clientRssKiB);
      return run;
    };
    const d = sizes.durationMs;
    const commits = (clients: number, objects = 1, bytes = SMALL_OBJECT_BYTES) =>
      step(`commits, ${clients} client(s), ${objects} x ${bytes} B`, Array.from({ length: clients }, () => commitJob(uri, objects, bytes, d)));
    const commits1 = (await commits(1)).rate;
    const commits4 = (await commits(4)).rate;
    const commits16 = (await commits(16)).rate;
    const commits10x1KiB = (await commits(1, 10, KIB)).rate;

    // The bulk write, by one client, also makes the objects the loads read: its oids are
    // contiguous (nobody else asks the master for oids meanwhile).
    const bulkTxns = Math.ceil(sizes.bulkObjects / sizes.bulkObjectsPerTxn);
    const bulkRun = await step(`bulk write, ${sizes.bulkObjects} x 1 KiB`, [commitJob(uri, sizes.bulkObjectsPerTxn, KIB, STEP_BOUND_MS, bulkTxns)]);
    const bulkResult = bulkRun.results[0]!;
    const objectsPerSec = (bulkResult.count * sizes.bulkObjectsPerTxn) / (bulkResult.elapsedMs / 1000);
    const bulk = {
      objects: bulkResult.count * sizes.bulkObjectsPerTxn, objectsPerSec, mbPerSec: (objectsPerSec * KIB) / 1e6,
      cpuPerObject: bulkRun.rate.cpuPerOp / sizes.bulkObjectsPerTxn,
    };
    const loadJob = (cache: boolean, seed: number, lastOid = bulkResult.lastOid!): WorkerJob => ({
      kind: 'load', uri, cache, firstOid: bulkResult.firstOid!, lastOid, durationMs: d, seed,
    });
    const coldLoads1 = (await step('cold loads, 1 client', [loadJob(false, 1)])).rate;
    const coldLoads4 = (await step('cold loads, 4 clients', [1, 2, 3, 4].map((seed) => loadJob(false, seed)))).rate;
    // Warm: 1,000 objects that fit in the client's cache, read over and over.
    const warmLoads1 = (await step('warm loads, 1 client', [loadJob(true, 1, hexAdd(bulkResult.firstOid!, WARM_OBJECTS - 1))])).rate;

    let catchUp: LayoutResult['catchUp'] = null;
    if (layout.storages > 1) {
      progress(`${layout.name}: catch-up after ${sizes.catchUpCommits} commits`);
      const victim = storages.at(-1)!;
      await cluster.kill(victim);
      const clients = 4;
      await step(`commits while ${victim.name} is down`, Array.from({ length: clients }, () =>
        commitJob(uri, 1, KIB, STEP_BOUND_MS, Math.ceil(sizes.catchUpCommits / clients))));
      // A client keeps committing during the catch-up (one commit every SERVING_PAUSE_MS): the
      // cluster keeps serving, and the figure is not that of a machine saturated by a client.
      const serving = new Worker({ kind: 'commit-until-stopped', uri, objectBytes: KIB, pauseMs: SERVING_PAUSE_MS });
      try {
        await bounded('serving client ready', serving.ready, READY_BOUND_MS);
        serving.send('go');
        const start = process.hrtime.bigint();
        await cluster.startStorage(layout.storages - 1, cluster.nodes[0]!.address);
        const startSeconds = Number(process.hrtime.bigint() - start) / 1e9;
        await bounded('catch-up', allUpToDate(admin.address), STEP_BOUND_MS);
        const seconds = Number(process.hrtime.bigint() - start) / 1e9;
        serving.send('stop');
        const served = await bounded('serving client result', serving.result, STEP_BOUND_MS);
        catchUp = { commitsMissed: Math.ceil(sizes.catchUpCommits / clients) * clients, seconds, commitsServedMeanwhile: served.count, startSeconds };
      } finally {
        serving.kill();
      }
    }
    const peakRss: Record<string, number> = {};
    for (const node of cluster.nodes) {
      const rss = node.child.exitCode === null ? peakRssKiB(node.child.pid!) : null;
      if (rss !== null) peakRss[node.name] = Math.max(peakRss[node.name] ?? 0, rss);
    }
    // Every client process's peak is measured; the table gives their median and largest.
    const sorted = clientRss.sort((a, b) => a - b);
    peakRss[`clients (${sorted.length} processes): median`] = sorted[Math.floor(sorted.length / 2)]!;
    peakRss['clients: largest'] = sorted.at(-1)!;
    return { layout: layout.name, commits1, commits4, commits16, commits10x1KiB, coldLoads1, coldLoads4, warmLoads1, bulk, catchUp, peakRssKiB: peakRss };
  } finally {
    await cluster.destroy();
  }
}

function hexAdd(hex: string, n: number): string {
  return (BigInt(`0x${hex}`) + BigInt(n)).toString(16).padStart(16, '0');
}

/**
 * Two masters, one storage: a client commits without pause while the primary master is killed
 * -9; the figure is the time until a commit returns again (through the new primary).
 */
export async function benchFailover(progress: (line: string) => void): Promise<FailoverResult> {
  progress('fail-over of the primary master');
  const cluster = new TestCluster(`bench_failover_${process.pid}`);
  try {
    const masters = await freePorts(2);
    const { admin, uri, masterNodes } = await startCluster(cluster, { name: 'failover', storages: 1, replicas: 0 }, masters);
    const worker = new Worker({ kind: 'commit-until-stopped', uri, objectBytes: SMALL_OBJECT_BYTES });
    try {
      await bounded('fail-over client ready', worker.ready, READY_BOUND_MS);
      worker.send('go');
      await new Promise((resolve) => setTimeout(resolve, 500));
      const primary = await primaryMasterAddress(admin.address);
      const victim = masterNodes.find((node) => node.address.port === primary?.port);
      if (victim === undefined) throw new Error('bench: the admin names no primary among the masters');
      const killedAt = Date.now();
      await cluster.kill(victim);
      worker.send('killed');
      await bounded('commits after the kill of the primary', worker.resumed, STEP_BOUND_MS);
      worker.send('stop');
      const result = await bounded('fail-over client result', worker.result, STEP_BOUND_MS);
      const resumedAt = result.commitTimesMs!.find((t) => t > killedAt)!;
      return { seconds: (resumedAt - killedAt) / 1000, errorsMeanwhile: result.errors ?? 0 };
    } finally {
      worker.kill();
    }
  } finally {
    await cluster.destroy();
  }
}
