// `npm run bench [-- --full]`: runs the benchmarks, prints a table and writes it as JSON under
// bench/results/. Every figure comes with a baseline measured in the same run.

import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { benchCodec } from './codec.js';

const { values } = parseArgs({ options: { full: { type: 'boolean', default: false } } });
const minMs = values.full ? 2000 : 400;

const fmt = (n: number, digits = 0) => n.toLocaleString('en-US', { maximumFractionDigits: digits });

function main(): void {
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

  const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
  const dir = join(root, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `codec-${process.pid}.json`);
  writeFileSync(file, JSON.stringify({ mode: values.full ? 'full' : 'quick', node: process.version, codec }, null, 1));
  console.log(`\nwritten: ${file}`);
}

main();
