// Access to the shared specification files (../shared/spec next to the project).

import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ENUMS } from '../../src/protocol/enums.js';
import { Ext, Float64 } from '../../src/protocol/msgpack.js';

const here = dirname(fileURLToPath(import.meta.url));
/** The project root (tests run from dist/test/helpers). */
export const PROJECT_ROOT = resolve(here, '..', '..', '..');
export const SPEC_DIR = process.env['NEO_SPEC_DIR'] ?? resolve(PROJECT_ROOT, '..', 'shared', 'spec');

export function readSpecJson<T = any>(name: string): T {
  return JSON.parse(readFileSync(join(SPEC_DIR, name), 'utf8')) as T;
}

export interface TranscriptLine {
  seq: number;
  conn: number;
  from: string;
  to: string;
  offset: number;
  msg_id: number | null;
  code: number | null;
  name: string;
  args: unknown;
  raw_hex: string;
}

export function readTranscripts(): { file: string; lines: TranscriptLine[] }[] {
  const dir = join(SPEC_DIR, 'transcripts');
  return readdirSync(dir)
    .filter((name) => name.endsWith('.jsonl'))
    .sort()
    .map((file) => ({
      file,
      lines: readFileSync(join(dir, file), 'utf8')
        .split('\n')
        .filter((line) => line.trim() !== '')
        .map((line) => JSON.parse(line) as TranscriptLine),
    }));
}

/** The byte stream of each (connection, sender), in offset order, with its packets. */
export function transcriptStreams(): Map<string, TranscriptLine[]> {
  const streams = new Map<string, TranscriptLine[]>();
  for (const { lines } of readTranscripts()) {
    for (const line of lines) {
      const key = `${line.conn}:${line.from}`;
      let stream = streams.get(key);
      if (stream === undefined) streams.set(key, (stream = []));
      stream.push(line);
    }
  }
  for (const stream of streams.values()) stream.sort((a, b) => a.offset - b.offset);
  return streams;
}

/** Converts a transcript `args` JSON value (README "msgpack-to-JSON mapping") to our values. */
export function fromTranscriptJson(value: unknown): unknown {
  if (value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map(fromTranscriptJson);
  const object = value as Record<string, unknown>;
  if ('hex' in object) return Buffer.from(object['hex'] as string, 'hex');
  if ('map' in object) {
    return new Map(
      (object['map'] as [unknown, unknown][]).map(([k, v]) => [fromTranscriptJson(k), fromTranscriptJson(v)]),
    );
  }
  if ('ext' in object) {
    const info = ENUMS[object['ext'] as number]!;
    return info.items[object['value'] as number]!;
  }
  throw new Error(`unexpected JSON object in transcript: ${JSON.stringify(value)}`);
}

/** Converts a msgpack-vectors.json value to our values (floats wrapped to force float64). */
export function fromVectorJson(value: any): unknown {
  const [kind] = Object.keys(value);
  const v = value[kind!];
  switch (kind) {
    case 'int':
      return typeof v === 'string' ? BigInt(v) : v;
    case 'float':
      return new Float64(v);
    case 'bool':
      return v;
    case 'nil':
      return null;
    case 'bin':
      return v.hex !== undefined ? Buffer.from(v.hex, 'hex') : Buffer.alloc(v.len, parseInt(v.fill, 16));
    case 'str':
      return typeof v === 'string' ? v : v.fill.repeat(v.len);
    case 'array':
      return Array.isArray(v) ? v.map(fromVectorJson) : Array.from({ length: v.len }, () => fromVectorJson(v.fill));
    case 'map':
      if (Array.isArray(v)) return new Map(v.map(([k, x]: [any, any]) => [fromVectorJson(k), fromVectorJson(x)]));
      return new Map(Array.from({ length: v.len }, (_, i) => [v.key.int_from + i, fromVectorJson(v.value)]));
    case 'ext':
      return new Ext(
        v.code,
        v.data_hex !== undefined ? Buffer.from(v.data_hex, 'hex') : Buffer.alloc(v.data_len, parseInt(v.data_fill, 16)),
      );
  }
  throw new Error(`unknown vector value kind ${String(kind)}`);
}

/** A small seeded PRNG (xorshift32) so that random test inputs replay exactly. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0 || 1;
  return () => {
    state ^= state << 13;
    state >>>= 0;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    return state / 0x100000000;
  };
}
