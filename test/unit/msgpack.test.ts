import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { Ext, Float64, MsgpackError, StreamDecoder, decode, encode } from '../../src/protocol/msgpack.js';
import { fromVectorJson, readSpecJson } from '../helpers/spec.js';

interface Vector {
  name: string;
  value: unknown;
  encoded: { hex?: string; len?: number; sha256?: string };
}

function checkEncoded(bytes: Buffer, expected: Vector['encoded'], name: string): void {
  if (expected.hex !== undefined) {
    assert.equal(bytes.toString('hex'), expected.hex, name);
  } else {
    assert.equal(bytes.length, expected.len, `${name}: length`);
    assert.equal(createHash('sha256').update(bytes).digest('hex'), expected.sha256, `${name}: sha256`);
  }
}

/** What decoding gives back: floats are plain numbers. */
function unwrapFloats(value: unknown): unknown {
  if (value instanceof Float64) return value.value;
  if (Array.isArray(value)) return value.map(unwrapFloats);
  if (value instanceof Map) return new Map([...value].map(([k, v]) => [unwrapFloats(k), unwrapFloats(v)]));
  return value;
}

describe('msgpack codec', () => {
  const vectors = readSpecJson<{ vectors: Vector[] }>('msgpack-vectors.json').vectors;

  it(`encodes all ${vectors.length} golden vectors exactly as Python's packb`, () => {
    for (const vector of vectors) {
      checkEncoded(encode(fromVectorJson(vector.value)), vector.encoded, vector.name);
    }
  });

  it('decodes every golden vector back to its value', () => {
    for (const vector of vectors) {
      const value = fromVectorJson(vector.value);
      const bytes = encode(value);
      assert.deepEqual(decode(bytes), unwrapFloats(value), vector.name);
    }
  });

  it('keeps integral floats as float64 only when asked', () => {
    assert.equal(encode(1).toString('hex'), '01');
    assert.equal(encode(new Float64(1)).toString('hex'), 'cb3ff0000000000000');
    assert.equal(encode(1.5).toString('hex'), 'cb3ff8000000000000');
  });

  it('decodes maps with bytes, int and ext keys, in wire order', () => {
    const key = Buffer.from('0000000000000001', 'hex');
    const value = new Map<unknown, unknown>([
      [key, 1],
      [7, null],
      [new Ext(0, Buffer.from([1])), true],
    ]);
    const decoded = decode(encode(value)) as Map<unknown, unknown>;
    assert.deepEqual([...decoded.keys()], [key, 7, new Ext(0, Buffer.from([1]))]);
  });

  it('rejects invalid and truncated input', () => {
    assert.throws(() => decode(Buffer.from([0xc1])), MsgpackError);
    assert.throws(() => decode(Buffer.from([0xc4, 0x05, 1, 2])), MsgpackError);
    assert.throws(() => decode(Buffer.from([0x01, 0x02])), MsgpackError);
  });

  it('streams values cut at every byte boundary', () => {
    const values = [1, [2, Buffer.from('abc')], new Map([[Buffer.from('k'), -5]]), 'NEO', 1.25];
    const bytes = Buffer.concat(values.map((v) => encode(v)));
    for (let cut = 0; cut <= bytes.length; cut++) {
      const decoder = new StreamDecoder();
      const seen: unknown[] = [];
      decoder.push(bytes.subarray(0, cut), (v) => void seen.push(v));
      decoder.push(bytes.subarray(cut), (v) => void seen.push(v));
      assert.deepEqual(seen, values, `cut at ${cut}`);
      assert.equal(decoder.bufferedBytes, 0);
    }
  });

  it('refuses an item over the size limit from its header, without buffering it', () => {
    const decoder = new StreamDecoder(undefined, 1000);
    const header = Buffer.from([0xc6, 0x00, 0x01, 0x00, 0x00]); // bin32 of 65536 bytes
    assert.throws(() => decoder.push(header, () => {}), /exceeds the limit/);
  });

  it('waits for a large bin without re-decoding each chunk', () => {
    const big = Buffer.alloc(1 << 20, 7);
    const bytes = encode([1, big]);
    const decoder = new StreamDecoder();
    const seen: unknown[] = [];
    for (let i = 0; i < bytes.length; i += 1000) decoder.push(bytes.subarray(i, i + 1000), (v) => void seen.push(v));
    assert.equal(seen.length, 1);
    assert.ok((seen[0] as [number, Buffer])[1].equals(big));
  });
});
