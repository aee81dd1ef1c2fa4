// Codec throughput: encode and decode of typical packets, next to a plain copy of the same bytes
// measured in the same run (the baseline a codec cannot beat).

import { PacketReader, encodePacket } from '../src/protocol/codec.js';
import { HANDSHAKE } from '../src/protocol/packets.js';
import type { ArgsOf, PacketName } from '../src/protocol/packets.js';

export interface CodecResult {
  packet: string;
  bytes: number;
  encodePerSec: number;
  encodeMBps: number;
  decodePerSec: number;
  decodeMBps: number;
  copyMBps: number;
  /** Decoding time relative to copying the same bytes (1 = as fast as a copy). */
  decodeVsCopy: number;
  encodeVsCopy: number;
}

const OID = Buffer.from('0000000000000001', 'hex');
const TID = Buffer.from('03f58e0000000000', 'hex');
const HASH = Buffer.alloc(20, 7);
const CHUNK_BYTES = 65536;

interface Case<N extends PacketName = PacketName> {
  label: string;
  name: N;
  args: ArgsOf<N>;
}

function cases(): Case[] {
  const data1k = Buffer.alloc(1024, 1);
  const data100k = Buffer.alloc(100 * 1024, 2);
  const store = (data: Buffer): ArgsOf<'AskStoreObject'> => [OID, TID, 0, HASH, data, null, TID];
  const object = (data: Buffer): ArgsOf<'AnswerObject'> => [OID, TID, null, 0, HASH, data, null];
  return [
    { label: 'AskObject', name: 'AskObject', args: [OID, null, TID] },
    { label: 'AnswerStoreObject', name: 'AnswerStoreObject', args: [null] },
    { label: 'AskStoreObject 1 KiB', name: 'AskStoreObject', args: store(data1k) },
    { label: 'AnswerObject 1 KiB', name: 'AnswerObject', args: object(data1k) },
    { label: 'AskStoreObject 100 KiB', name: 'AskStoreObject', args: store(data100k) },
    { label: 'AnswerObject 100 KiB', name: 'AnswerObject', args: object(data100k) },
  ] as Case[];
}

function timeIt(minMs: number, run: () => number): { count: number; seconds: number } {
  let count = 0;
  const start = process.hrtime.bigint();
  let elapsed = 0;
  while (elapsed < minMs) {
    count += run();
    elapsed = Number(process.hrtime.bigint() - start) / 1e6;
  }
  return { count, seconds: elapsed / 1000 };
}

function chunksOf(stream: Buffer): Buffer[] {
  const chunks: Buffer[] = [];
  for (let i = 0; i < stream.length; i += CHUNK_BYTES) chunks.push(stream.subarray(i, i + CHUNK_BYTES));
  return chunks;
}

export function benchCodec(minMs: number): CodecResult[] {
  return cases().map(({ label, name, args }) => {
    const one = encodePacket(0, name, args);
    const perBatch = Math.max(1, Math.floor((4 << 20) / one.length));
    const encode = timeIt(minMs, () => {
      for (let i = 0; i < perBatch; i++) encodePacket(i, name, args);
      return perBatch;
    });
    const packets = Array.from({ length: perBatch }, (_, i) => encodePacket(i, name, args));
    const chunks = chunksOf(Buffer.concat([HANDSHAKE, ...packets]));
    const decode = timeIt(minMs, () => {
      let seen = 0;
      const reader = new PacketReader();
      for (const chunk of chunks) reader.push(chunk, () => void seen++);
      if (seen !== perBatch) throw new Error(`decoded ${seen} of ${perBatch}`);
      return seen;
    });
    // Baseline: copying the same bytes, chunk by chunk, into fresh buffers.
    const copy = timeIt(minMs, () => {
      for (const chunk of chunks) Buffer.from(chunk);
      return perBatch;
    });
    const mb = (count: number, seconds: number) => (count * one.length) / seconds / 1e6;
    const encodeMBps = mb(encode.count, encode.seconds);
    const decodeMBps = mb(decode.count, decode.seconds);
    const copyMBps = mb(copy.count, copy.seconds);
    return {
      packet: label,
      bytes: one.length,
      encodePerSec: encode.count / encode.seconds,
      encodeMBps,
      decodePerSec: decode.count / decode.seconds,
      decodeMBps,
      copyMBps,
      decodeVsCopy: copyMBps / decodeMBps,
      encodeVsCopy: copyMBps / encodeMBps,
    };
  });
}
