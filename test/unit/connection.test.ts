import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Stream, StreamHandlers, Transport } from '../../src/core/env.js';
import { Connection } from '../../src/net/connection.js';
import type { Handler } from '../../src/net/connection.js';
import { memoryNetwork } from '../../src/net/memory.js';
import { tcpTransport } from '../../src/net/tcp.js';
import { encodePacket } from '../../src/protocol/codec.js';
import { HANDSHAKE } from '../../src/protocol/packets.js';
import { ErrorCodes, NodeTypes } from '../../src/protocol/enums.js';
import { NeoError } from '../../src/protocol/errors.js';
import { recordingLogger } from '../helpers/logger.js';

const OID = Buffer.from('0000000000000001', 'hex');
const TID = Buffer.from('03f58e0000000000', 'hex');

/** A server connection and a client connection over `transport`. */
async function pair(transport: Transport, serverHandler: Handler, clientHandler: Handler = {}) {
  const logger = recordingLogger();
  let server!: Connection;
  const accepted = new Promise<void>((resolve) => {
    void transport
      .listen({ host: '127.0.0.1', port: 0 }, (stream) => {
        server = new Connection({ stream, handler: serverHandler, logger, label: 'server' });
        resolve();
      })
      .then((l) => (listener = l));
  });
  let listener: { address: { host: string; port: number }; close(): void } | undefined;
  while (listener === undefined) await new Promise((r) => setImmediate(r));
  const client = new Connection({
    stream: transport.connect(listener.address),
    handler: clientHandler,
    logger,
    label: 'client',
  });
  await accepted;
  return { server, client, logger, close: () => listener!.close() };
}

function closedPromise(handler: Handler): Promise<Error | undefined> {
  return new Promise((resolve) => {
    handler.connectionClosed = (_conn, error) => resolve(error);
  });
}

const transports: [string, () => Transport][] = [
  ['memory', () => memoryNetwork({ schedule: setImmediate }).transport()],
  ['tcp', () => tcpTransport()],
];

for (const [kind, makeTransport] of transports) {
  describe(`connection over ${kind}`, () => {
    it('matches answers to requests by id, even out of order', async () => {
      const delayed: number[] = [];
      const server: Handler = {
        AskObject(conn, oid) {
          // Answer the first request only after the second.
          delayed.push(conn.peerMsgId);
          if (delayed.length === 2) {
            for (const msgId of delayed.reverse()) {
              conn.answerTo(msgId, 'AnswerObject', [oid, TID, null, 0, Buffer.alloc(20), Buffer.from([msgId]), null]);
            }
          }
        },
      };
      const { client, close } = await pair(makeTransport(), server);
      const [a, b] = await Promise.all([
        client.request('AskObject', [OID, null, null]),
        client.request('AskObject', [OID, null, null]),
      ]);
      assert.deepEqual(a[5], Buffer.from([0]));
      assert.deepEqual(b[5], Buffer.from([1]));
      client.close();
      close();
    });

    it('delivers Error answers as NeoError and keeps the connection for non-fatal codes', async () => {
      const server: Handler = {
        AskObject(_conn, oid) {
          throw new NeoError(ErrorCodes.OID_DOES_NOT_EXIST, oid.toString('hex'));
        },
        Ping(conn) {
          conn.answer('Pong', []);
        },
      };
      const { client, close } = await pair(makeTransport(), server);
      await assert.rejects(client.request('AskObject', [OID, null, null]), (error: unknown) => {
        assert.ok(error instanceof NeoError);
        assert.equal(error.code, ErrorCodes.OID_DOES_NOT_EXIST);
        assert.equal(error.message, '0000000000000001');
        return true;
      });
      assert.deepEqual(await client.request('Ping', []), []);
      client.close();
      close();
    });

    it('answers an unexpected packet with PROTOCOL_ERROR and closes', async () => {
      const clientHandler: Handler = {};
      const closed = closedPromise(clientHandler);
      const { client, close } = await pair(makeTransport(), {}, clientHandler);
      await assert.rejects(client.request('AskLastTransaction', []), (error: unknown) => {
        assert.ok(error instanceof NeoError);
        assert.equal(error.code, ErrorCodes.PROTOCOL_ERROR);
        assert.match(error.message, /unexpected packet AskLastTransaction/);
        return true;
      });
      await closed;
      close();
    });

    it('fails pending requests when the connection closes', async () => {
      const { client, server, close } = await pair(makeTransport(), { AskLastTransaction() {} });
      const answer = client.request('AskLastTransaction', []);
      await new Promise((r) => setTimeout(r, 10));
      server.close();
      await assert.rejects(answer, /connection closed/);
      close();
    });

    it('numbers requests and notifications from 0 and dispatches notifications', async () => {
      const seen: number[] = [];
      const server: Handler = {
        NotifyReady(conn) {
          seen.push(conn.peerMsgId);
        },
        Ping(conn) {
          seen.push(conn.peerMsgId);
          conn.answer('Pong', []);
        },
      };
      const { client, close } = await pair(makeTransport(), server);
      client.notify('NotifyReady', []);
      client.notify('NotifyReady', []);
      await client.request('Ping', []);
      assert.deepEqual(seen, [0, 1, 2]);
      client.close();
      close();
    });
  });
}

describe('connection bad input', () => {
  async function rawPeer(bytes: Buffer[]): Promise<{ closedBy: string; received: Buffer; logs: string[] }> {
    const network = memoryNetwork({ schedule: setImmediate });
    const transport = network.transport();
    const logger = recordingLogger();
    let serverConnection: Connection | undefined;
    const listener = await transport.listen({ host: '127.0.0.1', port: 0 }, (stream) => {
      serverConnection = new Connection({ stream, handler: { Ping: (c) => c.answer('Pong', []) }, logger, label: 'server' });
    });
    const stream: Stream = transport.connect(listener.address);
    const chunks: Buffer[] = [];
    const closed = new Promise<void>((resolve) =>
      stream.setHandlers({ data: (c) => void chunks.push(c), close: () => resolve() }),
    );
    for (const b of bytes) stream.write(b);
    await closed;
    listener.close();
    assert.ok(serverConnection?.isAborting, "the server side is closing");
    return { closedBy: 'server', received: Buffer.concat(chunks), logs: logger.lines };
  }

  const handshake = Buffer.from('92a34e454f05', 'hex');

  it('closes without an Error on another protocol version', async () => {
    const { received, logs } = await rawPeer([Buffer.from('92a34e454f04', 'hex')]);
    assert.equal(received.toString('hex'), '92a34e454f05');
    assert.ok(logs.some((l) => /Protocol version mismatch/.test(l)), logs.join('\n'));
  });

  it('closes without an Error on a TLS hello', async () => {
    const { received, logs } = await rawPeer([Buffer.from('160301020001', 'hex')]);
    assert.equal(received.toString('hex'), '92a34e454f05');
    assert.ok(logs.some((l) => /not a NEO peer/.test(l)));
  });

  it('closes on an unknown packet code', async () => {
    const { logs } = await rawPeer([handshake, Buffer.from('9300cd7fff90', 'hex')]);
    assert.ok(logs.some((l) => /unknown packet code 32767/.test(l)));
  });

  it('answers wrong argument types with PROTOCOL_ERROR then closes', async () => {
    // AskObject with a msgpack str where bin8 is required.
    const bad = Buffer.from('930520' + '93' + 'a8' + '3030303030303031' + 'c0c0', 'hex');
    const { received, logs } = await rawPeer([handshake, bad]);
    const error = encodePacket(5, 'Error', [ErrorCodes.PROTOCOL_ERROR.value, '']).subarray(0, 6);
    assert.ok(received.subarray(6).subarray(0, 6).equals(error), received.toString('hex'));
    assert.ok(logs.some((l) => /AskObject.oid: expected bin8, got str/.test(l)), logs.join('\n'));
  });

  it('answers a wrong argument count with PROTOCOL_ERROR then closes', async () => {
    const { logs } = await rawPeer([handshake, Buffer.from('930102' + '91c0', 'hex')]);
    assert.ok(logs.some((l) => /Ping takes 0 arguments, got 1/.test(l)), logs.join('\n'));
  });

  it('closes on a frame over the size limit', async () => {
    const { logs } = await rawPeer([handshake, Buffer.from('930020' + '93c6ffffffff', 'hex')]);
    assert.ok(logs.some((l) => /exceeds the limit/.test(l)), logs.join('\n'));
  });

  it('accepts packets sent right behind the handshake, in one chunk', async () => {
    const network = memoryNetwork({ schedule: setImmediate });
    const transport = network.transport();
    const logger = recordingLogger();
    const listener = await transport.listen({ host: '127.0.0.1', port: 0 }, (stream) => {
      new Connection({ stream, handler: { RequestIdentification: (c) => c.answer('AcceptIdentification', [NodeTypes.MASTER, -268435455, 1]) }, logger, label: 's' });
    });
    const client = new Connection({ stream: transport.connect(listener.address), handler: {}, logger, label: 'c' });
    const answer = await client.request('RequestIdentification', [NodeTypes.STORAGE, null, null, 'c', null, new Map()]);
    assert.deepEqual(answer, [NodeTypes.MASTER, -268435455, 1]);
    client.close();
    listener.close();
  });
});

describe('heartbeat: noticing a dead or hung peer', () => {
  /** Timers that fire only when the test says so. */
  function manualTimers() {
    const periodic: (() => void)[] = [];
    return {
      timers: {
        after: () => ({ cancel() {} }),
        every: (_ms: number, fn: () => void) => {
          periodic.push(fn);
          return { cancel: () => void periodic.splice(periodic.indexOf(fn), 1) };
        },
        soon: (fn: () => void) => void setImmediate(fn),
      },
      tick: async () => {
        for (const fn of [...periodic]) fn();
        await new Promise((r) => setImmediate(r));
        await new Promise((r) => setImmediate(r));
      },
    };
  }

  async function setup(peer: (stream: Stream) => void) {
    const transport = memoryNetwork({ schedule: setImmediate }).transport();
    const listener = await transport.listen({ host: '127.0.0.1', port: 0 }, peer);
    const { timers, tick } = manualTimers();
    let closedWith: Error | undefined | null = null;
    const connection = new Connection({
      stream: transport.connect(listener.address),
      handler: { connectionClosed: (_c, error) => void (closedWith = error), NotifyReady: () => {} },
      logger: recordingLogger(),
      label: 'watched',
      heartbeat: { timers, intervalMs: 1000, timeoutMs: 3000 },
    });
    return { connection, tick, closed: () => closedWith, close: () => listener.close() };
  }

  it('keeps a connection whose peer answers Ping (NEO nodes answer it in every state)', async () => {
    const { connection, tick, close } = await setup((stream) => {
      new Connection({ stream, handler: {}, logger: recordingLogger(), label: 'peer' });
    });
    for (let i = 0; i < 20; i++) await tick();
    assert.equal(connection.isClosed, false);
    connection.close();
    close();
  });

  it('closes a connection whose peer stays silent, failing its pending requests', async () => {
    const { connection, tick, closed, close } = await setup((stream) => {
      stream.setHandlers({ data: () => {}, close: () => {} }); // accepts, never answers
    });
    const failed = assert.rejects(connection.request('AskLastTransaction', []), /connection closed/);
    for (let i = 0; i < 5 && !connection.isClosed; i++) await tick();
    assert.equal(connection.isClosed, true);
    assert.match(String(closed()), /peer silent for 3\.0 s/);
    await failed;
    close();
  });

  it('never declares a peer dead while it keeps sending, even without answering Ping', async () => {
    let peerStream: Stream | undefined;
    const { connection, tick, close } = await setup((stream) => {
      peerStream = stream;
      stream.setHandlers({ data: () => {}, close: () => {} });
      stream.write(Buffer.from('92a34e454f05', 'hex'));
    });
    for (let i = 0; i < 20; i++) {
      peerStream?.write(encodePacket(i, 'NotifyReady', []));
      await tick();
    }
    assert.equal(connection.isClosed, false);
    connection.close();
    close();
  });
});

describe('batched writes', () => {
  /** A stream that records what the connection writes, and feeds it what the test receives. */
  function recordingStream() {
    const writes: Buffer[] = [];
    let ended = false;
    let handlers: StreamHandlers | null = null;
    const stream: Stream = {
      remoteAddress: null,
      localAddress: null,
      setHandlers: (h) => void (handlers = h),
      // As a socket stream: writes after end() are dropped.
      write: (chunk) => void (ended || writes.push(Buffer.from(chunk))),
      end: () => void (ended = true),
      destroy: () => void (ended = true),
    };
    return { stream, writes, ended: () => ended, receive: (bytes: Buffer) => handlers!.data(bytes) };
  }

  it('sends the packets written inside batch() in one write, in order', () => {
    const { stream, writes } = recordingStream();
    const connection = new Connection({ stream, handler: {}, logger: recordingLogger(), label: 'batch' });
    assert.deepEqual(writes, [HANDSHAKE]);
    connection.batch(() => {
      connection.answerTo(7, 'Pong', []);
      connection.answerTo(8, 'Pong', []);
    });
    assert.deepEqual(writes.slice(1), [Buffer.concat([encodePacket(7, 'Pong', []), encodePacket(8, 'Pong', [])])]);
  });

  it('answers the packets of one received chunk in one write; an abort sends them first, then closes', () => {
    const { stream, writes, ended, receive } = recordingStream();
    new Connection({ stream, handler: {}, logger: recordingLogger(), label: 'batch' });
    const malformed = Buffer.from('930102' + '91c0', 'hex'); // wrong argument count: Error, then close
    receive(Buffer.concat([HANDSHAKE, encodePacket(10, 'Ping', []), encodePacket(11, 'Ping', []), malformed]));
    assert.equal(writes.length, 2, 'the handshake, then one write');
    const pongs = Buffer.concat([encodePacket(10, 'Pong', []), encodePacket(11, 'Pong', [])]);
    assert.deepEqual(writes[1]!.subarray(0, pongs.length), pongs);
    assert(writes[1]!.length > pongs.length, 'the Error packet follows the answers');
    assert(ended(), 'closed after the Error');
  });
});
