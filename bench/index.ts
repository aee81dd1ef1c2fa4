// `npm run bench [-- --full]`: runs the benchmarks, prints a table and writes it as JSON under
// bench/results/. Every figure comes with a baseline measured in the same run.

import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { measureBaselines } from './baselines.js';
import { benchCluster } from './cluster.js';
import { benchCodec } from './codec.js';

const { values } = parseArgs({ options: { full: { type: 'boolean', default: false } } });
const minMs = values.full ? 2000 : 400;

const fmt = (n: number, digits = 0) => n.toLocaleString('en-US', { maximumFractionDigits: digits });

async function main(): Promise<void> {
  console.log(`NEO/TS benchmarks (${values.full ? 'full' : 'quick'} mode), node ${process.version}`);
  console.log('\nCodec: packets/s and MB/s; baseline = copying the same bytes (ratio: time vs copy)');
  const codec = benchCodec(minMs);
  const rows = codec.map((r) => ({
    packet: r.packet,
    bytes: r.bytes,
    'encode/s': fmt(r.encodePerSec),
    'encode MB/s': fmt(r.encodeMBps),
    'decode/s': fmt(r.decodePerSec),
    'decode MB/s': fmt(r.decodeMBps),
    'copy MB/s': fmt(r.copyMBps),
    'decode vs copy': `${fmt(r.decodeVsCopy, 2)}x`,
    'encode vs copy': `${fmt(r.encodeVsCopy, 2)}x`,
  }));
  console.table(rows);
  const small = codec.filter((r) => r.bytes < 100);
  const large = codec.filter((r) => r.bytes > 50_000);
  const smallOk = small.every((r) => r.decodePerSec >= 2_000_000);
  const largeOk = large.every((r) => r.decodeVsCopy <= 2);
  console.log(`goal: decode >= 2,000,000 small packets/s: ${smallOk ? 'met' : 'MISSED'}`);
  console.log(`goal: large packets decoded within 2x of a plain copy: ${largeOk ? 'met' : 'MISSED'}`);

  console.log('\nCluster (1 master, 2 SQLite storages, replicas 1, 100-byte objects; client cache off for loads)');
  const baselines = await measureBaselines(minMs * 2);
  const cluster = await benchCluster(minMs * 3);
  const rtt = baselines.roundTripsPerSec;
  // A commit needs about 5 sequential round trips and 2 durable writes (vote, lock).
  const commitLimit = 1 / (5 / rtt + 2 / baselines.fsyncPerSec);
  console.table([
    { figure: 'commits/s, 1 client', value: fmt(cluster.commitsPerSec1), limit: fmt(commitLimit), ratio: fmt(cluster.commitsPerSec1 / commitLimit, 2), 'limit is': '1/(5/RTT + 2/FSYNC)' },
    { figure: 'commits/s, 4 clients', value: fmt(cluster.commitsPerSec4), limit: fmt(cluster.commitsPerSec1 * 2.5), ratio: fmt(cluster.commitsPerSec4 / cluster.commitsPerSec1, 2), 'limit is': 'x the 1-client figure' },
    { figure: 'cold loads/s, 1 client', value: fmt(cluster.coldLoadsPerSec1), limit: fmt(rtt), ratio: fmt(cluster.coldLoadsPerSec1 / rtt, 2), 'limit is': 'RTT (1 in flight)' },
    { figure: 'cold loads/s, 4 clients', value: fmt(cluster.coldLoadsPerSec4), limit: fmt(baselines.roundTripsPerSec16), ratio: fmt(cluster.coldLoadsPerSec4 / cluster.coldLoadsPerSec1, 2), 'limit is': 'x the 1-client figure' },
  ]);
  console.log(`baselines: RTT ${fmt(rtt)}/s (16 in flight: ${fmt(baselines.roundTripsPerSec16)}/s), fsync ${fmt(baselines.fsyncPerSec)}/s, SQLite commits ${fmt(baselines.sqliteCommitsPerSec)}/s`);

  const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
  const dir = join(root, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `bench-${process.pid}.json`);
  writeFileSync(file, JSON.stringify({ mode: values.full ? 'full' : 'quick', node: process.version, codec, baselines, cluster }, null, 1));
  console.log(`\nwritten: ${file}`);
}

await main();
