// `npm run bench [-- --full]`: runs the benchmarks, prints tables and writes them as JSON under
// bench/results/. Every figure comes with the limit it runs against, measured in the same run on
// the same machine, and the ratio to it; a goal missed names the limit that binds.

import { mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { measureBaselines } from './baselines.js';
import type { Baselines } from './baselines.js';
import { benchFailover, benchLayout, LAYOUTS } from './cluster.js';
import type { LayoutResult, Rate, Sizes } from './cluster.js';
import { benchCodec } from './codec.js';

const { values } = parseArgs({ options: { full: { type: 'boolean', default: false } } });
const full = values.full === true;
const CODEC_MIN_MS = full ? 2000 : 400;
const BASELINE_MS = full ? 2000 : 800;
const SIZES: Sizes = full
  ? { durationMs: 5000, bulkObjects: 100_000, bulkObjectsPerTxn: 1000, catchUpCommits: 10_000 }
  : { durationMs: 1500, bulkObjects: 10_000, bulkObjectsPerTxn: 1000, catchUpCommits: 2_000 };
const CORES = availableParallelism();

const fmt = (n: number, digits = 0) => n.toLocaleString('en-US', { maximumFractionDigits: digits });
const ms = (seconds: number) => `${fmt(seconds * 1000, 2)} ms`;

interface Row {
  figure: string;
  value: string;
  limit: string;
  ratio: string;
  goal: string;
  verdict: string;
}

/** A figure, its limit and ratio; `goalRatio` null when the figure has no goal. */
function row(figure: string, value: number, limit: number, limitIs: string, goalRatio: number | null, binding?: string): Row {
  const ratio = value / limit;
  const met = goalRatio === null ? null : ratio >= goalRatio;
  return {
    figure,
    value: fmt(value),
    limit: `${fmt(limit)} (${limitIs})`,
    ratio: fmt(ratio, 2),
    goal: goalRatio === null ? '-' : `>= ${fmt(goalRatio, 2)}`,
    verdict: met === null ? '-' : met ? 'met' : `MISSED${binding === undefined ? '' : `: ${binding}`}`,
  };
}

/** The limit CPU alone puts on a rate: every core busy, each operation costing `cpuPerOp`. */
const cpuLimit = (rate: Rate, cores: number) => (rate.cpuPerOp > 0 ? cores / rate.cpuPerOp : Infinity);

function layoutRows(result: LayoutResult, b: Baselines): Row[] {
  const rtt = b.roundTripsPerSec;
  // A commit needs about 5 sequential round trips and 2 durable writes (vote, lock).
  const commitLimit = 1 / (5 / rtt + 2 / b.fsyncPerSec);
  // The same with a real SQLite commit (the storage's settings) in place of a bare fsync.
  const sqliteCommitLimit = 1 / (5 / rtt + 2 / b.sqliteCommitsPerSec);
  const c1 = result.commits1.perSec;
  // With one client the processes mostly take turns: the CPU of an operation is on its critical
  // path. When it adds up to about the wall time of an operation, CPU is what binds.
  const serialBinding = (rate: Rate, what: string, other: string): string => {
    const wall = 1 / rate.perSec;
    return rate.cpuPerOp >= wall * 0.75
      ? `CPU: ${ms(rate.cpuPerOp)} per ${what} summed over the processes, for ${ms(wall)} of wall time per ${what}`
      : other;
  };
  const binding1 = serialBinding(result.commits1, 'commit', `SQLite commits (${fmt(b.sqliteCommitsPerSec)}/s) allow ${fmt(sqliteCommitLimit)}/s`);
  const scaled = (rate: Rate, clients: number, goal: number): Row => {
    const limitCpu = cpuLimit(rate, CORES);
    return row(`commits/s, ${clients} clients (CPU ${ms(rate.cpuPerOp)}/commit)`, rate.perSec, c1, 'x the 1-client figure', goal,
      `CPU allows ${fmt(limitCpu)}/s on ${CORES} cores (${fmt(rate.perSec / limitCpu, 2)} of it)`);
  };
  const rows = [
    row(`commits/s, 1 client (CPU ${ms(result.commits1.cpuPerOp)}/commit)`, c1, commitLimit, '1/(5/RTT + 2/FSYNC)', 0.7, binding1),
    scaled(result.commits4, 4, 2.5),
    scaled(result.commits16, 16, 3.5),
    row(`commits/s, 1 client, 10 x 1 KiB (CPU ${ms(result.commits10x1KiB.cpuPerOp)}/commit)`, result.commits10x1KiB.perSec, commitLimit, '1/(5/RTT + 2/FSYNC)', null),
    row(`cold loads/s, 1 client (CPU ${ms(result.coldLoads1.cpuPerOp)}/load)`, result.coldLoads1.perSec, rtt, 'RTT, 1 in flight', 0.7,
      serialBinding(result.coldLoads1, 'load', 'latency of the round trip and the storage\'s read')),
    row(`cold loads/s, 4 clients (CPU ${ms(result.coldLoads4.cpuPerOp)}/load)`, result.coldLoads4.perSec, result.coldLoads1.perSec, 'x the 1-client figure', 2.5,
      `CPU allows ${fmt(cpuLimit(result.coldLoads4, CORES))}/s on ${CORES} cores`),
    row('warm loads/s, 1 client (cache hits)', result.warmLoads1.perSec, rtt, 'RTT, 1 in flight', null),
    row(`bulk write, objects/s (${fmt(result.bulk.objects)} x 1 KiB, ${fmt(result.bulk.mbPerSec, 1)} MB/s)`, result.bulk.objectsPerSec, b.sqliteInsertsPerSec, 'raw SQLite inserts of 1 KiB rows', 0.25,
      `CPU: ${fmt(result.bulk.cpuPerObject * 1e6)} µs per object summed over the processes, for ${fmt(1e6 / result.bulk.objectsPerSec)} µs of wall time per object`),
  ];
  if (result.catchUp !== null) {
    const { seconds, commitsMissed, commitsServedMeanwhile, startSeconds } = result.catchUp;
    const split = `${fmt(startSeconds, 2)} s to start the process, ${fmt(seconds - startSeconds, 2)} s to replicate`;
    rows.push({
      figure: `catch-up of ${fmt(commitsMissed)} commits, s (${fmt(commitsServedMeanwhile)} commits served meanwhile, 1 every 20 ms)`,
      value: fmt(seconds, 2), limit: '1 s (goal)', ratio: fmt(seconds, 2), goal: '< 1 s',
      verdict: seconds < 1 ? `met: ${split}` : `MISSED: ${split}`,
    });
  }
  return rows;
}

async function main(): Promise<void> {
  const started = process.hrtime.bigint();
  console.log(`NEO/TS benchmarks (${full ? 'full' : 'quick'} mode), node ${process.version}, ${CORES} cores`);
  console.log('\nCodec: packets/s and MB/s; baseline = copying the same bytes (ratio: time vs copy)');
  const codec = benchCodec(CODEC_MIN_MS);
  console.table(codec.map((r) => ({
    packet: r.packet,
    bytes: r.bytes,
    'encode/s': fmt(r.encodePerSec),
    'encode MB/s': fmt(r.encodeMBps),
    'decode/s': fmt(r.decodePerSec),
    'decode MB/s': fmt(r.decodeMBps),
    'copy MB/s': fmt(r.copyMBps),
    'decode vs copy': `${fmt(r.decodeVsCopy, 2)}x`,
    'encode vs copy': `${fmt(r.encodeVsCopy, 2)}x`,
  })));
  const smallOk = codec.filter((r) => r.bytes < 100).every((r) => r.decodePerSec >= 2_000_000);
  const largeOk = codec.filter((r) => r.bytes > 50_000).every((r) => r.decodeVsCopy <= 2);
  console.log(`goal: decode >= 2,000,000 small packets/s: ${smallOk ? 'met' : 'MISSED (CPU-bound: run on a quiet machine)'}`);
  console.log(`goal: large packets decoded within 2x of a plain copy: ${largeOk ? 'met' : 'MISSED'}`);

  const progress = (line: string) => process.stderr.write(`  ... ${line}\n`);
  const baselines = await measureBaselines(BASELINE_MS);
  console.log('\nLimits measured now, on this machine:');
  console.table([
    { limit: 'RTT: loopback request/answer, 1 connection, 1 in flight', 'per second': fmt(baselines.roundTripsPerSec) },
    { limit: 'RTT: the same, 16 in flight', 'per second': fmt(baselines.roundTripsPerSec16) },
    { limit: 'FSYNC: write + fdatasync in the data folder', 'per second': fmt(baselines.fsyncPerSec) },
    { limit: 'SQLite commits (WAL, synchronous=FULL, as the storage)', 'per second': fmt(baselines.sqliteCommitsPerSec) },
    { limit: 'SQLite raw inserts of 1 KiB rows, same settings', 'per second': fmt(baselines.sqliteInsertsPerSec) },
  ]);
  const failover = await benchFailover(progress);
  const layouts: LayoutResult[] = [];
  for (const layout of LAYOUTS) {
    const result = await benchLayout(layout, SIZES, progress);
    layouts.push(result);
    console.log(`\n${result.layout}: SQLite storages, 12 partitions; objects of 100 B unless said; cold = client cache off`);
    console.table(layoutRows(result, baselines));
    const cpuLine = (what: string, rate: Rate) => `${what}: ${Object.entries(rate.cpuPerOpBy).filter(([, v]) => v > 0).map(([name, v]) => `${name} ${ms(v)}`).join(', ')}`;
    console.log(`CPU per operation by process (${CORES} cores in all): ${[
      cpuLine('commit, 1 client', result.commits1), cpuLine('commit, 16 clients', result.commits16), cpuLine('cold load, 1 client', result.coldLoads1),
    ].join('; ')}`);
    console.log(`peak RSS (MiB): ${Object.entries(result.peakRssKiB).map(([name, kib]) => `${name} ${fmt(kib / 1024, 1)}`).join(', ')}`);
  }
  console.log(`\nfail-over (2 masters + 1 storage, a client committing): commits again ${fmt(failover.seconds, 2)} s after kill -9 of the primary`
    + ` (${failover.errorsMeanwhile} failed attempts meanwhile); goal < 5 s: ${failover.seconds < 5 ? 'met' : 'MISSED'}`);
  console.log('durability: every commit figure counts transactions whose tpc_finish returned after the storages fsync\'ed');
  console.log('(WAL, synchronous=FULL) the data at vote and the final tid at lock: they survive a power loss.');
  console.log(`total time: ${fmt(Number(process.hrtime.bigint() - started) / 1e9, 1)} s`);

  const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
  const dir = join(root, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `bench-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, JSON.stringify({ mode: full ? 'full' : 'quick', node: process.version, cores: CORES, sizes: SIZES, codec, baselines, layouts, failover }, null, 1));
  console.log(`written: ${file}`);
}

await main();
