// Random and mutated frames (mutations of real transcript packets) never take a node down: each
// bad frame closes its connection (or gets an Error packet first), valid ones are dispatched.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Stream, Transport } from '../../src/core/env.js';
import { Connection } from '../../src/net/connection.js';
import type { Handler } from '../../src/net/connection.js';
import { memoryNetwork } from '../../src/net/memory.js';
import { tcpTransport } from '../../src/net/tcp.js';
import { HANDSHAKE } from '../../src/protocol/packets.js';
import { recordingLogger } from '../helpers/logger.js';
import { readTranscripts, seededRandom } from '../helpers/spec.js';

const SEED = 0x5eed2026;

/** Accepts every packet and does nothing, so that only the protocol layer is exercised. */
function acceptingHandler(onPacket: () => void): Handler {
  return new Proxy({} as Handler, {
    get: (_target, property) =>
      typeof property === 'string' && /^[A-Z]/.test(property) && property !== 'Error' ? onPacket : undefined,
  });
}

function corpus(): Buffer[] {
  return readTranscripts()
    .flatMap(({ lines }) => lines)
    .filter((line) => line.name !== 'Handshake')
    .map((line) => Buffer.from(line.raw_hex, 'hex'));
}

function mutate(packets: Buffer[], random: () => number): Buffer {
  const pick = () => packets[Math.floor(random() * packets.length)]!;
  const byte = () => Math.floor(random() * 256);
  const frame = Buffer.from(pick());
  const at = () => Math.floor(random() * frame.length);
  switch (Math.floor(random() * 8)) {
    case 0: // flip one byte
      frame[at()] = byte();
      return frame;
    case 1: // flip several bytes
      for (let i = 0; i < 1 + Math.floor(random() * 4); i++) frame[at()] = byte();
      return frame;
    case 2: // truncate
      return frame.subarray(0, at());
    case 3: { // insert a byte
      const i = at();
      return Buffer.concat([frame.subarray(0, i), Buffer.from([byte()]), frame.subarray(i)]);
    }
    case 4: { // delete a byte
      const i = at();
      return Buffer.concat([frame.subarray(0, i), frame.subarray(i + 1)]);
    }
    case 5: // splice two packets
      return Buffer.concat([frame.subarray(0, at()), pick().subarray(Math.floor(random() * 8))]);
    case 6: // entirely random bytes
      return Buffer.from(Array.from({ length: 1 + Math.floor(random() * 40) }, byte));
    default: // an unmodified packet
      return frame;
  }
}

interface Outcome {
  dispatched: number;
  closed: number;
  errorsSent: number;
}

async function fuzz(
  transport: Transport,
  frames: Buffer[],
  framesPerConnection: number,
  drain: () => Promise<void>,
): Promise<Outcome> {
  const logger = recordingLogger();
  const outcome: Outcome = { dispatched: 0, closed: 0, errorsSent: 0 };
  const handler = acceptingHandler(() => outcome.dispatched++);
  const servers: Connection[] = [];
  const listener = await transport.listen({ host: '127.0.0.1', port: 0 }, (stream) => {
    servers.push(new Connection({ stream, handler, logger, label: 'fuzzed' }));
  });
  for (let start = 0; start < frames.length; start += framesPerConnection) {
    const stream: Stream = transport.connect(listener.address);
    let closed!: () => void;
    const done = new Promise<void>((resolve) => (closed = resolve));
    stream.setHandlers({
      data: (chunk) => {
        // Everything after our peer's handshake is an Error packet (code 0x8000 = cd 80 00).
        if (chunk.includes(Buffer.from('cd8000', 'hex'))) outcome.errorsSent++;
      },
      close: () => closed(),
    });
    stream.write(HANDSHAKE);
    for (const frame of frames.slice(start, start + framesPerConnection)) stream.write(frame);
    await drain();
    stream.end();
    await drain();
    await done;
  }
  await drain();
  listener.close();
  outcome.closed = logger.lines.filter((line) => /closing/.test(line)).length;
  return outcome;
}

describe('fuzzing the protocol layer', () => {
  const packets = corpus();

  it('survives 100,000 random and mutated frames through the in-memory transport', async () => {
    const random = seededRandom(SEED);
    const frames = Array.from({ length: 100_000 }, () => mutate(packets, random));
    const queue: (() => void)[] = [];
    const network = memoryNetwork({ schedule: (deliver) => void queue.push(deliver) });
    const drain = async () => {
      for (let i = 0; i < queue.length; i++) queue[i]!();
      queue.length = 0;
    };
    const outcome = await fuzz(network.transport(), frames, 1, drain);
    console.log(`fuzz (memory, seed ${SEED}): ${JSON.stringify(outcome)}`);
    assert.ok(outcome.dispatched > 10_000, 'valid frames are dispatched');
    assert.ok(outcome.closed > 30_000, 'bad frames close their connection');
    assert.ok(outcome.errorsSent > 1_000, 'frames with bad arguments get an Error packet');
  });

  it('survives a few thousand mutated frames over real TCP', async () => {
    const random = seededRandom(SEED + 1);
    const frames = Array.from({ length: 3_000 }, () => mutate(packets, random));
    const drain = () => new Promise<void>((resolve) => setTimeout(resolve, 1));
    const outcome = await fuzz(tcpTransport(), frames, 2, drain);
    console.log(`fuzz (tcp, seed ${SEED + 1}): ${JSON.stringify(outcome)}`);
    assert.ok(outcome.dispatched > 200, "valid frames are dispatched");
    assert.ok(outcome.closed > 500, "bad frames close their connection");
  });
});
