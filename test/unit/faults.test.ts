// The transport's fault injection: parsing of NEOTS_FAULTS, a seeded generator that replays, and a
// cut that both ends of a real TCP connection see as a close.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Stream } from '../../src/core/env.js';
import { FaultInjector, faultsFromVariable, parseFaults, xorshift32 } from '../../src/net/faults.js';
import { tcpTransport } from '../../src/net/tcp.js';

/** Connects a client stream to a fresh listener; resolves with both ends and their events. */
async function connectedPair(faults: FaultInjector | null) {
  const transport = tcpTransport({ faults });
  const events: string[] = [];
  let server: Stream | null = null;
  const accepted = new Promise<Stream>((resolve) => {
    void transport.listen({ host: '127.0.0.1', port: 0 }, (stream) => resolve(stream)).then((listener) => {
      const client = transport.connect(listener.address);
      client.setHandlers({
        data: (chunk) => events.push(`client got ${chunk.toString()}`),
        close: () => events.push('client closed'),
        connect: () => client.write(Buffer.from('hello')),
      });
      clientStream = client;
      closeListener = () => listener.close();
    });
  });
  let clientStream: Stream | null = null;
  let closeListener = (): void => {};
  server = await accepted;
  return { server, client: () => clientStream!, events, closeListener: () => closeListener() };
}

describe('fault injection', () => {
  it('parses cut and seed, and refuses anything else', () => {
    assert.deepEqual(parseFaults('cut=0.002,seed=42'), { cutProbability: 0.002, seed: 42 });
    assert.deepEqual(parseFaults(' seed=7 '), { cutProbability: 0, seed: 7 });
    assert.throws(() => parseFaults('cut=2'), /bad field "cut=2"/);
    assert.throws(() => parseFaults('drop=0.1'), /bad field "drop=0.1"/);
    assert.throws(() => parseFaults('seed=x'), /bad field/);
    assert.equal(faultsFromVariable(undefined), null);
    assert.equal(faultsFromVariable(''), null);
    assert.equal(faultsFromVariable('cut=0.5,seed=3')?.options.cutProbability, 0.5);
  });

  it('draws the same cuts for the same seed, at about the asked rate', () => {
    const draws = (seed: number) => {
      const injector = new FaultInjector({ cutProbability: 0.01, seed });
      return Array.from({ length: 20_000 }, () => injector.cutOnReceive(null));
    };
    assert.deepEqual(draws(42), draws(42));
    assert.notDeepEqual(draws(42), draws(43));
    const cuts = draws(42).filter(Boolean).length;
    assert.ok(cuts > 120 && cuts < 280, `${cuts} cuts out of 20000 at 1 %`);
    const random = xorshift32(0);
    for (let i = 0; i < 1000; i++) {
      const value = random();
      assert.ok(value >= 0 && value < 1);
    }
  });

  it('off: data flows', async () => {
    const { server, events, client, closeListener } = await connectedPair(null);
    const received = await new Promise<string>((resolve) => {
      server.setHandlers({ data: (chunk) => resolve(chunk.toString()), close: () => {} });
    });
    assert.equal(received, 'hello');
    client().destroy();
    server.destroy();
    closeListener();
    assert.deepEqual(events, []);
  });

  it('cut=1: the first chunk received cuts the connection, and both ends see a close', async () => {
    const faults = new FaultInjector({ cutProbability: 1, seed: 1 });
    const { server, events, closeListener } = await connectedPair(faults);
    const serverEvents: string[] = [];
    await new Promise<void>((resolve) => {
      server.setHandlers({
        data: (chunk) => serverEvents.push(`server got ${chunk.toString()}`),
        close: () => {
          serverEvents.push('server closed');
          resolve();
        },
      });
    });
    // The client's close follows the server's reset.
    for (let i = 0; i < 100 && !events.includes('client closed'); i++) await new Promise((r) => setTimeout(r, 10));
    closeListener();
    assert.deepEqual(serverEvents, ['server closed']);
    assert.deepEqual(events, ['client closed']);
    assert.equal(faults.cuts, 1);
  });
});
