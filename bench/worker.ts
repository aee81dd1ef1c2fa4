// One benchmark client: a process of its own, as an application embedding the client library
// would be. It opens the storage, prints `ready`, waits for `go` on stdin (so that every client
// of a measurement starts together and connection setup is not timed), runs its workload and
// prints one JSON line: what it did, its CPU time over the workload and its peak RSS.
//
// Usage: node dist/bench/worker.js '<WorkerJob as JSON>'

import { createInterface } from 'node:readline';
import { openStorage } from '../src/index.js';
import type { NeoStorage } from '../src/index.js';
import { p64, u64 } from '../src/protocol/ids.js';
import { peakRssKiB } from './processes.js';

export type WorkerJob =
  | { kind: 'commit'; uri: string; objects: number; objectBytes: number; durationMs: number; maxCommits?: number }
  | { kind: 'load'; uri: string; cache: boolean; firstOid: string; lastOid: string; durationMs: number; seed: number }
  | { kind: 'commit-until-stopped'; uri: string; objectBytes: number; pauseMs?: number };

export interface WorkerResult {
  /** Operations done: commits or loads. */
  count: number;
  elapsedMs: number;
  /** User + system CPU seconds of this process during the workload. */
  cpuSeconds: number;
  maxRssKiB: number;
  /** commit: the first and last oid written (hex); load: unused. */
  firstOid?: string;
  lastOid?: string;
  /** commit-until-stopped: the wall-clock times (ms) at which each commit returned. */
  commitTimesMs?: number[];
  /** Errors met and retried past (commit-until-stopped only). */
  errors?: number;
}

const elapsedMs = (start: bigint) => Number(process.hrtime.bigint() - start) / 1e6;
const txnMeta = () => ({ user: 'bench', description: '', extension: {} });

async function commitOnce(storage: NeoStorage, txn: ReturnType<typeof txnMeta>, objects: number, data: Buffer, written: Buffer[]): Promise<void> {
  await storage.tpcBegin(txn);
  for (let i = 0; i < objects; i++) {
    const oid = await storage.newOid();
    await storage.store(oid, null, data, txn);
    written.push(oid);
  }
  await storage.tpcVote(txn);
  await storage.tpcFinish(txn);
}

async function commits(storage: NeoStorage, job: Extract<WorkerJob, { kind: 'commit' }>): Promise<Partial<WorkerResult>> {
  const data = Buffer.alloc(job.objectBytes, 0x61);
  const written: Buffer[] = [];
  const start = process.hrtime.bigint();
  let count = 0;
  while (elapsedMs(start) < job.durationMs && count < (job.maxCommits ?? Infinity)) {
    await commitOnce(storage, txnMeta(), job.objects, data, written);
    count++;
  }
  // Oids come from the master in sorted batches: the smallest and largest bound what we wrote.
  const sorted = written.map(u64).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  return {
    count,
    elapsedMs: elapsedMs(start),
    ...(sorted.length > 0 ? { firstOid: p64(sorted[0]!).toString('hex'), lastOid: p64(sorted.at(-1)!).toString('hex') } : {}),
  };
}

/** Loads random oids of [firstOid, lastOid] (all written before by the benchmark). */
async function loads(storage: NeoStorage, job: Extract<WorkerJob, { kind: 'load' }>): Promise<Partial<WorkerResult>> {
  const first = u64(Buffer.from(job.firstOid, 'hex'));
  const span = Number(u64(Buffer.from(job.lastOid, 'hex')) - first) + 1;
  let state = job.seed >>> 0 || 1;
  const start = process.hrtime.bigint();
  let count = 0;
  while (elapsedMs(start) < job.durationMs) {
    // xorshift32: the same sequence of oids on every run with this seed.
    state ^= state << 13;
    state >>>= 0;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    await storage.load(p64(first + BigInt(state % span)));
    count++;
  }
  return { count, elapsedMs: elapsedMs(start) };
}

/** Commits until `stop` arrives on stdin, retrying past errors (a master being killed). */
async function commitsUntilStopped(
  storage: NeoStorage, job: Extract<WorkerJob, { kind: 'commit-until-stopped' }>, told: (command: string) => boolean,
): Promise<Partial<WorkerResult>> {
  const data = Buffer.alloc(job.objectBytes, 0x62);
  const commitTimesMs: number[] = [];
  let errors = 0;
  const start = process.hrtime.bigint();
  let resumed = false;
  while (!told('stop')) {
    const txn = txnMeta();
    try {
      const killed = told('killed');
      await commitOnce(storage, txn, 1, data, []);
      commitTimesMs.push(Date.now());
      if (job.pauseMs !== undefined) await new Promise((resolve) => setTimeout(resolve, job.pauseMs));
      // The first commit begun after the parent killed a node: tell it we are served again.
      if (killed && !resumed) {
        resumed = true;
        process.stdout.write('resumed\n');
      }
    } catch {
      errors++;
      await storage.tpcAbort(txn).catch(() => {});
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }
  return { count: commitTimesMs.length, elapsedMs: elapsedMs(start), commitTimesMs, errors };
}

async function main(): Promise<void> {
  const job = JSON.parse(process.argv[2]!) as WorkerJob;
  const storage = await openStorage(job.uri, { cacheSizeBytes: job.kind === 'load' && job.cache ? 64 * 1024 * 1024 : 0 });
  const lines = createInterface({ input: process.stdin });
  const commands: string[] = [];
  let wake: (() => void) | null = null;
  lines.on('line', (line) => {
    commands.push(line.trim());
    wake?.();
  });
  const command = async (wanted: string) => {
    while (!commands.includes(wanted)) await new Promise<void>((resolve) => (wake = resolve));
  };
  process.stdout.write('ready\n');
  await command('go');
  const cpuBefore = process.cpuUsage();
  let result: Partial<WorkerResult>;
  if (job.kind === 'commit') result = await commits(storage, job);
  else if (job.kind === 'load') result = await loads(storage, job);
  else result = await commitsUntilStopped(storage, job, (wanted) => commands.includes(wanted));
  const cpu = process.cpuUsage(cpuBefore);
  await storage.close();
  lines.close();
  const full: WorkerResult = {
    count: 0,
    elapsedMs: 0,
    ...result,
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
    // Not process.resourceUsage().maxRSS: Linux carries it over from the parent across exec.
    maxRssKiB: peakRssKiB(process.pid) ?? 0,
  };
  process.stdout.write(`${JSON.stringify(full)}\n`);
}

await main();
