// The three transports (TCP, TLS, in-memory) behave alike: bound ports, ordered bytes, one close
// per end, refused connections, flushing end(). Then what is particular to TLS (mutual
// authentication against the cluster's CA, TLS 1.2, refusing plain TCP) and to the in-memory
// network (scheduler control, cut connections).

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import type { Address, Stream, Transport } from '../../src/core/env.js';
import { tcpTransport } from '../../src/net/tcp.js';
import { tlsTransport } from '../../src/net/tls.js';
import type { TlsCredentials } from '../../src/net/tls.js';
import { memoryNetwork } from '../../src/net/memory.js';
import { createLogger } from '../../src/core/realenv.js';

const HOST = '127.0.0.1';
const ANY_PORT: Address = { host: HOST, port: 0 };
const NEO_HANDSHAKE = Buffer.from([0x92, 0xa3, 0x4e, 0x45, 0x4f, 0x05]);
const TEST_TIMEOUT_MS = 20_000;
/** How long to wait to be confident that an event does not happen. */
const QUIET_MS = 100;

/** One end of a connection as a test sees it: what it received and how it closed. */
interface Peer {
  readonly stream: Stream;
  received(): Buffer;
  readonly connected: Promise<void>;
  readonly closed: Promise<Error | undefined>;
  closeCount(): number;
  /** Resolves once `length` bytes in all have arrived. */
  receivedAtLeast(length: number): Promise<void>;
}

function attach(stream: Stream, onData?: (chunk: Buffer) => void): Peer {
  const chunks: Buffer[] = [];
  let receivedLength = 0;
  let closeCount = 0;
  const waiters: { length: number; resolve: () => void }[] = [];
  let connect!: () => void;
  let close!: (error: Error | undefined) => void;
  const connected = new Promise<void>((resolve) => (connect = resolve));
  const closed = new Promise<Error | undefined>((resolve) => (close = resolve));
  stream.setHandlers({
    connect: () => connect(),
    data(chunk) {
      chunks.push(chunk);
      receivedLength += chunk.length;
      for (const waiter of waiters.filter((w) => w.length <= receivedLength)) waiter.resolve();
      onData?.(chunk);
    },
    close(error) {
      closeCount++;
      close(error);
    },
  });
  return {
    stream,
    received: () => Buffer.concat(chunks),
    connected,
    closed,
    closeCount: () => closeCount,
    receivedAtLeast: (length) =>
      length <= receivedLength ? Promise.resolve() : new Promise((resolve) => waiters.push({ length, resolve })),
  };
}

/** Accepted streams, as Peers, in the order they arrive. */
function acceptor(onData?: (chunk: Buffer, stream: Stream) => void): {
  accept: (stream: Stream) => void;
  peers: Peer[];
  next(): Promise<Peer>;
} {
  const peers: Peer[] = [];
  const waiting: ((peer: Peer) => void)[] = [];
  let taken = 0;
  return {
    peers,
    accept(stream) {
      const peer = attach(stream, onData && ((chunk) => onData(chunk, stream)));
      peers.push(peer);
      const waiter = waiting.shift();
      if (waiter !== undefined) {
        taken++;
        waiter(peer);
      }
    },
    next: () => {
      const ready = peers[taken];
      if (ready === undefined) return new Promise((resolve) => waiting.push(resolve));
      taken++;
      return Promise.resolve(ready);
    },
  };
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Deterministic bytes, so that a reordered or lost chunk cannot go unnoticed. */
function pattern(length: number, seed: number): Buffer {
  const bytes = Buffer.alloc(length);
  for (let i = 0; i < length; i++) bytes[i] = (i * 31 + seed * 7) & 0xff;
  return bytes;
}

function errorCode(error: Error | undefined): unknown {
  return (error as { code?: unknown } | undefined)?.code;
}

interface TransportCase {
  readonly name: string;
  /** Called inside each test, after `before` has prepared what the case needs. */
  make(): { server: Transport; client: Transport };
}

// ---------------------------------------------------------------------------------------------
// Throw-away PKI for the TLS tests.

interface Pki {
  dir: string;
  ca: string;
  nodeA: TlsCredentials;
  nodeB: TlsCredentials;
  /** Signed by another CA, with that CA as its trust anchor. */
  stranger: TlsCredentials;
  /** Signed by the cluster's CA, then revoked. */
  revoked: TlsCredentials;
  /** The cluster's CA file followed by a CRL listing `revoked`. */
  caWithCrl: string;
}

function openssl(cwd: string, ...args: string[]): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

const EC_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

function makeCa(dir: string, name: string): void {
  openssl(dir, 'req', '-x509', ...EC_KEY, '-keyout', `${name}.key`, '-out', `${name}.crt`, '-days', '2',
    '-subj', `/CN=${name}`, '-addext', 'basicConstraints=critical,CA:TRUE',
    '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
}

function makeNode(dir: string, name: string, ca: string): TlsCredentials {
  // Every node is both a TLS client and a TLS server (spec §6.5).
  writeFileSync(join(dir, `${name}.ext`),
    'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth,clientAuth\n');
  openssl(dir, 'req', ...EC_KEY, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`);
  openssl(dir, 'x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.crt`, '-CAkey', `${ca}.key`,
    '-CAcreateserial', '-out', `${name}.crt`, '-days', '2', '-extfile', `${name}.ext`);
  return { ca: join(dir, `${ca}.crt`), cert: join(dir, `${name}.crt`), key: readFileSync(join(dir, `${name}.key`)) };
}

function makePki(): Pki {
  const dir = mkdtempSync(join(tmpdir(), 'neots-tls-'));
  makeCa(dir, 'cluster-ca');
  makeCa(dir, 'other-ca');
  const revoked = makeNode(dir, 'revoked', 'cluster-ca');
  writeFileSync(join(dir, 'index.txt'), '');
  writeFileSync(join(dir, 'crlnumber'), '01\n');
  writeFileSync(join(dir, 'ca.cnf'), [
    '[ca]', 'default_ca = cluster', '[cluster]', 'database = index.txt', 'crlnumber = crlnumber',
    'certificate = cluster-ca.crt', 'private_key = cluster-ca.key', 'default_md = sha256',
    'default_crl_days = 2', '',
  ].join('\n'));
  openssl(dir, 'ca', '-config', 'ca.cnf', '-revoke', 'revoked.crt');
  openssl(dir, 'ca', '-config', 'ca.cnf', '-gencrl', '-out', 'cluster.crl');
  const caWithCrl = join(dir, 'cluster-ca-with-crl.pem');
  writeFileSync(caWithCrl, Buffer.concat([readFileSync(join(dir, 'cluster-ca.crt')), readFileSync(join(dir, 'cluster.crl'))]));
  return {
    dir,
    ca: join(dir, 'cluster-ca.crt'),
    nodeA: makeNode(dir, 'node-a', 'cluster-ca'),
    nodeB: makeNode(dir, 'node-b', 'cluster-ca'),
    stranger: makeNode(dir, 'stranger', 'other-ca'),
    revoked,
    caWithCrl,
  };
}

let pki: Pki | undefined;

function thePki(): Pki {
  assert.ok(pki, 'the PKI is made in before()');
  return pki;
}

before(() => {
  pki = makePki();
});

after(() => {
  if (pki) rmSync(pki.dir, { recursive: true, force: true });
});

// ---------------------------------------------------------------------------------------------
// What every transport must do.

const cases: TransportCase[] = [
  { name: 'tcp', make: () => ({ server: tcpTransport(), client: tcpTransport() }) },
  { name: 'tls', make: () => ({ server: tlsTransport(thePki().nodeA), client: tlsTransport(thePki().nodeB) }) },
  {
    name: 'memory',
    make: () => {
      const network = memoryNetwork({ schedule: setImmediate });
      return { server: network.transport(), client: network.transport() };
    },
  },
];

for (const transportCase of cases) {
  describe(`${transportCase.name} transport`, { timeout: TEST_TIMEOUT_MS }, () => {
    it('listening on port 0 binds a real port and reports it', async () => {
      const { server } = transportCase.make();
      const listener = await server.listen(ANY_PORT, () => {});
      try {
        assert.equal(listener.address.host, HOST);
        assert.ok(listener.address.port > 0 && listener.address.port < 65536);
      } finally {
        listener.close();
      }
    });

    it('echoes many chunks in order, the first written before the connection is established', async () => {
      const { server, client } = transportCase.make();
      const accepted = acceptor((chunk, stream) => stream.write(chunk));
      const listener = await server.listen(ANY_PORT, accepted.accept);
      try {
        const stream = client.connect(listener.address);
        const peer = attach(stream);
        const sent: Buffer[] = [NEO_HANDSHAKE];
        stream.write(NEO_HANDSHAKE);
        for (let i = 0; i < 300; i++) {
          // Sizes from 1 byte to 64 KiB, so that chunks are both coalesced and split.
          const chunk = pattern(i % 10 === 0 ? 65536 : 1 + ((i * 97) % 1500), i);
          sent.push(chunk);
          stream.write(chunk);
        }
        const expected = Buffer.concat(sent);
        await peer.connected;
        await peer.receivedAtLeast(expected.length);
        assert.ok(peer.received().equals(expected));
        assert.deepEqual(stream.remoteAddress, listener.address);
        assert.equal(stream.localAddress?.host, HOST);
        const serverSide = await accepted.next();
        assert.deepEqual(serverSide.stream.localAddress, listener.address);
        assert.deepEqual(serverSide.stream.remoteAddress, stream.localAddress);
        stream.end();
        assert.equal(await peer.closed, undefined);
        assert.equal(await serverSide.closed, undefined);
      } finally {
        listener.close();
      }
    });

    it('calls each close handler exactly once, whichever side closes and however often', async () => {
      const { server, client } = transportCase.make();
      const accepted = acceptor();
      const listener = await server.listen(ANY_PORT, accepted.accept);
      try {
        const byClient = attach(client.connect(listener.address));
        await byClient.connected;
        const serverOfFirst = await accepted.next();
        byClient.stream.destroy();
        byClient.stream.destroy();
        byClient.stream.end();
        await Promise.all([byClient.closed, serverOfFirst.closed]);

        const byServer = attach(client.connect(listener.address));
        await byServer.connected;
        const serverOfSecond = await accepted.next();
        serverOfSecond.stream.end();
        serverOfSecond.stream.destroy();
        await Promise.all([byServer.closed, serverOfSecond.closed]);
        byServer.stream.write(Buffer.from('dropped after close'));
        byServer.stream.end();

        await delay(QUIET_MS);
        for (const peer of [byClient, serverOfFirst, byServer, serverOfSecond]) assert.equal(peer.closeCount(), 1);
      } finally {
        listener.close();
      }
    });

    it('reports a refused connection as a close with ECONNREFUSED, never connected', async () => {
      const { server, client } = transportCase.make();
      const listener = await server.listen(ANY_PORT, () => {});
      listener.close();
      const peer = attach(client.connect(listener.address));
      let connected = false;
      void peer.connected.then(() => (connected = true));
      const error = await peer.closed;
      assert.equal(errorCode(error), 'ECONNREFUSED');
      assert.equal(connected, false);
      assert.equal(peer.closeCount(), 1);
    });

    it('end() sends everything written before closing', async () => {
      const { server, client } = transportCase.make();
      const big = pattern(4 * 1024 * 1024, 5);
      const listener = await server.listen(ANY_PORT, (stream) => {
        attach(stream);
        stream.write(NEO_HANDSHAKE);
        stream.write(big);
        stream.end();
      });
      try {
        const peer = attach(client.connect(listener.address));
        assert.equal(await peer.closed, undefined);
        assert.ok(peer.received().equals(Buffer.concat([NEO_HANDSHAKE, big])));
      } finally {
        listener.close();
      }
    });
  });
}

// ---------------------------------------------------------------------------------------------
// TLS as Python NEO does it.

describe('tls transport against the cluster CA', { timeout: TEST_TIMEOUT_MS }, () => {
  it('refuses a client whose certificate comes from another CA, logging why', async () => {
    const accepted = acceptor();
    const lines: string[] = [];
    const logger = createLogger({ sink: { write: (line: string) => lines.push(line) } });
    const listener = await tlsTransport({ ...thePki().nodeA, logger }).listen(ANY_PORT, accepted.accept);
    try {
      const peer = attach(tlsTransport(thePki().stranger).connect(listener.address));
      peer.stream.write(NEO_HANDSHAKE);
      assert.ok(await peer.closed);
      await delay(QUIET_MS);
      assert.equal(accepted.peers.length, 0);
      assert.equal(lines.length, 1);
      assert.match(lines[0] ?? '', /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} INFO refusing TLS peer 127\.0\.0\.1 port \d+: (SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_GET_ISSUER_CERT|UNABLE_TO_VERIFY_LEAF_SIGNATURE)\n$/);
    } finally {
      listener.close();
    }
  });

  it('refuses a client that presents no certificate', async () => {
    const accepted = acceptor();
    const lines: string[] = [];
    const logger = createLogger({ sink: { write: (line: string) => lines.push(line) } });
    const listener = await tlsTransport({ ...thePki().nodeA, logger }).listen(ANY_PORT, accepted.accept);
    try {
      const socket = tls.connect({
        host: HOST,
        port: listener.address.port,
        ca: readFileSync(thePki().ca),
        checkServerIdentity: () => undefined,
      });
      socket.on('error', () => {});
      socket.write(NEO_HANDSHAKE);
      await new Promise((resolve) => socket.once('close', resolve));
      assert.equal(accepted.peers.length, 0);
      assert.match(lines.join(''), /refusing TLS peer 127\.0\.0\.1 port \d+: /);
    } finally {
      listener.close();
    }
  });

  it('refuses a server whose certificate comes from another CA', async () => {
    const stranger = thePki().stranger;
    // The stranger trusts the cluster's CA, so only the client's check can fail.
    const listener = await tlsTransport({ ...stranger, ca: thePki().ca }).listen(ANY_PORT, () => {});
    try {
      const peer = attach(tlsTransport(thePki().nodeB).connect(listener.address));
      const error = await peer.closed;
      assert.match(String(errorCode(error)), /SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT/);
    } finally {
      listener.close();
    }
  });

  it('refuses a certificate revoked by a CRL in the CA file', async () => {
    const accepted = acceptor();
    const { nodeA, revoked, caWithCrl } = thePki();
    const listener = await tlsTransport({ ...nodeA, ca: caWithCrl }).listen(ANY_PORT, accepted.accept);
    try {
      const refused = attach(tlsTransport(revoked).connect(listener.address));
      assert.ok(await refused.closed);
      const allowed = attach(tlsTransport(thePki().nodeB).connect(listener.address));
      await allowed.connected;
      allowed.stream.destroy();
      await allowed.closed;
      await delay(QUIET_MS);
      assert.equal(accepted.peers.length, 1);
    } finally {
      listener.close();
    }
  });

  it('closes a plain TCP client that sends the NEO handshake', async () => {
    const accepted = acceptor();
    const listener = await tlsTransport(thePki().nodeA).listen(ANY_PORT, accepted.accept);
    try {
      const peer = attach(tcpTransport().connect(listener.address));
      peer.stream.write(NEO_HANDSHAKE);
      await peer.closed;
      assert.equal(peer.received().length, 0);
      assert.equal(accepted.peers.length, 0);
    } finally {
      listener.close();
    }
  });

  it('negotiates TLS 1.2 as a server, even with a client that offers TLS 1.3', async () => {
    const listener = await tlsTransport(thePki().nodeA).listen(ANY_PORT, (stream) => attach(stream));
    try {
      const { nodeB } = thePki();
      const socket = tls.connect({
        host: HOST,
        port: listener.address.port,
        ca: readFileSync(thePki().ca),
        cert: readFileSync(String(nodeB.cert)),
        key: nodeB.key,
        maxVersion: 'TLSv1.3',
        checkServerIdentity: () => undefined,
      });
      await new Promise<void>((resolve, reject) => {
        socket.once('secureConnect', resolve);
        socket.once('error', reject);
      });
      assert.equal(socket.getProtocol(), 'TLSv1.2');
      assert.equal(socket.authorized, true);
      socket.destroy();
    } finally {
      listener.close();
    }
  });

  it('negotiates TLS 1.2 as a client, presents its certificate and sends no SNI', async () => {
    const { nodeA } = thePki();
    const server = tls.createServer({
      ca: readFileSync(thePki().ca),
      cert: readFileSync(String(nodeA.cert)),
      key: nodeA.key,
      requestCert: true,
      rejectUnauthorized: true,
      maxVersion: 'TLSv1.3',
    });
    const secured = new Promise<tls.TLSSocket>((resolve) => server.once('secureConnection', resolve));
    await new Promise<void>((resolve) => server.listen(0, HOST, resolve));
    try {
      const address = server.address();
      assert.ok(address !== null && typeof address !== 'string');
      const peer = attach(tlsTransport(thePki().nodeB).connect({ host: HOST, port: address.port }));
      const socket = await secured;
      await peer.connected;
      assert.equal(socket.getProtocol(), 'TLSv1.2');
      assert.equal(socket.authorized, true);
      assert.equal(socket.getPeerCertificate().subject.CN, 'node-b');
      assert.equal(socket.servername, false);
      peer.stream.destroy();
      await peer.closed;
    } finally {
      server.close();
    }
  });
});

// ---------------------------------------------------------------------------------------------
// The in-memory network's controls.

/** A scheduler that runs pending deliveries in a seeded random order, as a simulator could. */
function shufflingScheduler(seed: number): { schedule: (fn: () => void) => void; run(): number } {
  const pending: (() => void)[] = [];
  let state = seed;
  const nextIndex = (n: number): number => {
    state = (state * 1103515245 + 12345) % 2147483648;
    return state % n;
  };
  return {
    schedule: (fn) => void pending.push(fn),
    run() {
      let steps = 0;
      while (pending.length > 0) {
        const [fn] = pending.splice(nextIndex(pending.length), 1);
        fn?.();
        steps++;
      }
      return steps;
    },
  };
}

describe('memory network', { timeout: TEST_TIMEOUT_MS }, () => {
  it('keeps each connection in order whatever order the scheduler delivers in', async () => {
    for (const seed of [1, 2, 3, 42]) {
      const scheduler = shufflingScheduler(seed);
      const network = memoryNetwork({ schedule: scheduler.schedule });
      const accepted = acceptor((chunk, stream) => stream.write(chunk));
      const listener = await network.transport('10.0.0.1').listen({ host: '10.0.0.1', port: 1000 }, accepted.accept);
      const client = network.transport('10.0.0.2');
      const peers = [0, 1, 2].map(() => attach(client.connect(listener.address)));
      const sent = peers.map((peer, p) => {
        const chunks = Array.from({ length: 50 }, (_, i) => pattern(1 + i, p * 100 + i));
        for (const chunk of chunks) peer.stream.write(chunk);
        peer.stream.end();
        return Buffer.concat(chunks);
      });
      assert.ok(scheduler.run() > 0);
      // The client ended before the echo came back: it only checks what the server received.
      assert.equal(accepted.peers.length, 3);
      for (const serverSide of accepted.peers) {
        const index = peers.findIndex((peer) => peer.stream.localAddress?.port === serverSide.stream.remoteAddress?.port);
        assert.ok(serverSide.received().equals(sent[index] ?? Buffer.alloc(0)), `seed ${seed}`);
        assert.equal(serverSide.closeCount(), 1);
      }
      for (const peer of peers) assert.equal(peer.closeCount(), 1);
    }
  });

  it('cut(stream) breaks the connection on both sides with ECONNRESET', async () => {
    const network = memoryNetwork({ schedule: setImmediate });
    const accepted = acceptor();
    const listener = await network.transport().listen(ANY_PORT, accepted.accept);
    const peer = attach(network.transport().connect(listener.address));
    await peer.connected;
    const serverSide = await accepted.next();
    peer.stream.write(Buffer.from('lost in flight'));
    network.cut(peer.stream);
    assert.equal(errorCode(await peer.closed), 'ECONNRESET');
    assert.equal(errorCode(await serverSide.closed), 'ECONNRESET');
    assert.equal(serverSide.received().length, 0);
  });

  it('cutBetween breaks every connection between two hosts and spares the others', async () => {
    const network = memoryNetwork({ schedule: setImmediate });
    const master = { host: '10.0.0.1', port: 2051 };
    const accepted = acceptor();
    const listener = await network.transport(master.host).listen(master, accepted.accept);
    const storage = attach(network.transport('10.0.0.2').connect(master));
    const client = attach(network.transport('10.0.0.3').connect(master));
    await Promise.all([storage.connected, client.connected]);
    assert.equal(network.cutBetween({ host: '10.0.0.2' }, master), 1);
    assert.equal(errorCode(await storage.closed), 'ECONNRESET');
    await delay(QUIET_MS);
    assert.equal(client.closeCount(), 0);
    assert.equal(network.cutBetween(master, { host: '10.0.0.3' }), 1);
    assert.equal(errorCode(await client.closed), 'ECONNRESET');
    listener.close();
  });

  it('refuses to bind an address already in use', async () => {
    const transport = memoryNetwork({ schedule: setImmediate }).transport();
    const listener = await transport.listen({ host: HOST, port: 5000 }, () => {});
    await assert.rejects(transport.listen({ host: HOST, port: 5000 }, () => {}), { code: 'EADDRINUSE' });
    listener.close();
  });
});
