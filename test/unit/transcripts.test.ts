// Every packet Python NEO sent in the captured scenario decodes to its recorded code and
// arguments and re-encodes, from the decoded values and the packet table, to exactly its bytes.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PacketReader, encodePacketInfo } from '../../src/protocol/codec.js';
import type { Packet } from '../../src/protocol/codec.js';
import { decodeEnumExt } from '../../src/protocol/enums.js';
import { decode } from '../../src/protocol/msgpack.js';
import { packetByCode } from '../../src/protocol/packets.js';
import { fromTranscriptJson, readTranscripts, seededRandom, transcriptStreams } from '../helpers/spec.js';

function decodeStream(chunks: Buffer[]): Packet[] {
  const reader = new PacketReader();
  const packets: Packet[] = [];
  for (const chunk of chunks) reader.push(chunk, (packet) => void packets.push(packet));
  return packets;
}

function streamBytes(lines: { raw_hex: string }[]): Buffer {
  return Buffer.from(lines.map((line) => line.raw_hex).join(''), 'hex');
}

describe('transcripts of Python NEO traffic', () => {
  const transcripts = readTranscripts();

  it('decode packet by packet to the recorded code and args, and re-encode byte for byte', () => {
    let checked = 0;
    let handshakes = 0;
    for (const { file, lines } of transcripts) {
      for (const line of lines) {
        const raw = Buffer.from(line.raw_hex, 'hex');
        if (line.name === 'Handshake') {
          assert.equal(line.raw_hex, '92a34e454f05', `${file} seq ${line.seq}`);
          handshakes++;
          continue;
        }
        const where = `${file} seq ${line.seq} ${line.name}`;
        // The generic msgpack view matches the JSON record.
        const generic = decode(raw, decodeEnumExt) as [number, number, unknown[]];
        assert.deepEqual(generic, [line.msg_id, line.code, fromTranscriptJson(line.args)], where);
        // The typed view: known code, checked args, exact re-encoding.
        const info = packetByCode(line.code!);
        assert.ok(info, `${where}: unknown code`);
        assert.equal(info.name, line.name, where);
        const [packet] = decodeStream([Buffer.concat([Buffer.from('92a34e454f05', 'hex'), raw])]);
        assert.ok(packet, where);
        assert.equal(packet.size, raw.length, where);
        assert.equal(encodePacketInfo(packet.msgId, packet.info, packet.args).toString('hex'), line.raw_hex, where);
        checked++;
      }
    }
    console.log(`transcripts: ${checked} packets (+ ${handshakes} handshakes) checked byte for byte`);
    assert.equal(checked, 1171);
    assert.equal(handshakes, 78);
  });

  it('decode every captured stream identically whatever the chunk boundaries', () => {
    const random = seededRandom(20261122);
    let streams = 0;
    for (const [key, lines] of transcriptStreams()) {
      const bytes = streamBytes(lines);
      const expected = lines.filter((l) => l.name !== 'Handshake').map((l) => l.raw_hex);
      const check = (chunks: Buffer[], how: string) => {
        const packets = decodeStream(chunks);
        assert.deepEqual(
          packets.map((p) => encodePacketInfo(p.msgId, p.info, p.args).toString('hex')),
          expected,
          `stream ${key} ${how}`,
        );
      };
      check([bytes], 'whole');
      if (bytes.length <= 600) {
        for (let cut = 1; cut < bytes.length; cut++) {
          check([bytes.subarray(0, cut), bytes.subarray(cut)], `cut at ${cut}`);
        }
      }
      for (let round = 0; round < 20; round++) {
        const chunks: Buffer[] = [];
        for (let pos = 0; pos < bytes.length; ) {
          const size = 1 + Math.floor(random() * (round % 2 === 0 ? 8 : 200));
          chunks.push(bytes.subarray(pos, pos + size));
          pos += size;
        }
        check(chunks, `random split round ${round}`);
      }
      if (bytes.length <= 4000) {
        check([...bytes].map((b) => Buffer.from([b])), 'one byte at a time');
      }
      streams++;
    }
    assert.equal(streams, 78);
  });
});
