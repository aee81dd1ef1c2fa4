// The TLS transport (spec §6.5): TLS first, then the NEO handshake and packets inside it, with the
// TLS context Python NEO uses: TLS 1.2 exactly, mutual authentication against the cluster's CA,
// no host name check, no SNI.

import { readFileSync } from 'node:fs';
import type net from 'node:net';
import tls from 'node:tls';
import type { Address, Logger, Stream, Transport } from '../core/env.js';
import { configureSocket, listenTcp, SocketStream, transportFaults } from './tcp.js';
import type { TcpTransportOptions } from './tcp.js';

/** Each is PEM text in a Buffer, or the path of a PEM file. */
export interface TlsCredentials {
  /** The cluster's CA certificate(s), possibly followed by CRLs. */
  ca: Buffer | string;
  cert: Buffer | string;
  key: Buffer | string;
}

export interface TlsTransportOptions extends TlsCredentials, TcpTransportOptions {}

/** The content type of a TLS handshake record, the first byte a TLS client sends. */
const TLS_HANDSHAKE_RECORD = 0x16;

/**
 * Forward-secret AEAD suites only: the core of Python's restricted server cipher string, which
 * every Python NEO node offers.
 */
const CIPHERS = 'ECDHE+AESGCM:ECDHE+CHACHA20';

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----[\s\S]+?-----END \1-----/g;

function readPem(source: Buffer | string): string {
  return (typeof source === 'string' ? readFileSync(source) : source).toString('latin1');
}

/** Splits a CA file into its certificates and its CRLs (Python takes both from one file). */
function splitCaFile(pem: string): { ca: string[]; crl: string[] } {
  const ca: string[] = [];
  const crl: string[] = [];
  for (const block of pem.matchAll(PEM_BLOCK)) {
    if (block[1] === 'X509 CRL') crl.push(block[0]);
    else ca.push(block[0]);
  }
  return { ca, crl };
}

function secureContextOptions(credentials: TlsCredentials): tls.SecureContextOptions {
  const { ca, crl } = splitCaFile(readPem(credentials.ca));
  return {
    ca,
    // Node checks CRLs for every certificate of the chain when any is given, where Python checks
    // only the leaf: a CA file with CRLs must then hold one from each issuer (root included).
    ...(crl.length > 0 ? { crl } : {}),
    cert: readPem(credentials.cert),
    key: readPem(credentials.key),
    minVersion: 'TLSv1.2',
    maxVersion: 'TLSv1.2',
    ciphers: CIPHERS,
    honorCipherOrder: true,
  };
}

function describePeer(socket: net.Socket): string {
  // A socket that failed its handshake may be closed already and no longer know its peer.
  return socket.remoteAddress === undefined ? 'unknown peer' : `${socket.remoteAddress} port ${socket.remotePort}`;
}

/**
 * Calls `proceed` once the first byte from the peer is known to start a TLS handshake record,
 * leaving that byte unread; closes the socket if it is anything else (a node without TLS).
 */
function expectTlsRecord(socket: net.Socket, proceed: () => void, logger: Logger | undefined): void {
  // Until TLS takes the socket over, an error only means it closes; nothing was accepted yet.
  socket.on('error', () => {});
  const onReadable = (): void => {
    const first = socket.read(1) as Buffer | null;
    // Null: no byte yet, or the end of the stream, after which the socket closes by itself.
    if (first === null) return;
    socket.off('readable', onReadable);
    socket.unshift(first);
    if (first[0] === TLS_HANDSHAKE_RECORD) {
      proceed();
    } else {
      logger?.info(`closing connection from ${describePeer(socket)}: not TLS`);
      socket.destroy();
    }
  };
  socket.on('readable', onReadable);
}

/** `credentials` files are read at once, so that a bad path fails at start-up. */
export function tlsTransport(options: TlsTransportOptions): Transport {
  const secure = secureContextOptions(options);
  const { logger } = options;
  const faults = transportFaults(options);
  return {
    async listen(address: Address, accept: (stream: Stream) => void) {
      // Never listens itself: it receives the sockets that start with a TLS record.
      // Node verifies the client's certificate only after the handshake, whatever the options;
      // with rejectUnauthorized it would then close the socket without telling why, so the
      // check is made here, where the reason can be logged.
      const tlsServer = tls.createServer({ ...secure, requestCert: true, rejectUnauthorized: false }, (socket) => {
        if (socket.authorized) {
          accept(new SocketStream(socket, null, null, faults));
        } else {
          logger?.info(`refusing TLS peer ${describePeer(socket)}: ${String(socket.authorizationError)}`);
          socket.destroy();
        }
      });
      tlsServer.on('tlsClientError', (error, socket) => {
        logger?.info(`TLS handshake with ${describePeer(socket)} failed: ${error.message}`);
      });
      return listenTcp(
        address,
        (socket) => expectTlsRecord(socket, () => tlsServer.emit('connection', socket), logger),
        logger,
      );
    },
    connect(address: Address): Stream {
      const socket = tls.connect({
        ...secure,
        host: address.host,
        port: address.port,
        // Nodes are authenticated by the cluster's CA alone, as in NEO: a certificate need not
        // name the address it is used at. A numeric host also means no SNI is sent.
        checkServerIdentity: () => undefined,
      });
      configureSocket(socket);
      return new SocketStream(socket, 'secureConnect', address, faults);
    },
  };
}
