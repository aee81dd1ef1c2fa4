// The plain TCP transport, and the Stream over a Node socket that the TLS transport shares.

import net from 'node:net';
import type { Address, Listener, Logger, Stream, StreamHandlers, Transport } from '../core/env.js';
import { formatAddress } from '../core/address.js';
import { FAULTS_VARIABLE, faultsFromVariable } from './faults.js';
import type { FaultInjector } from './faults.js';

/** Keep-alive idle time before the first probe (spec §6.1). */
const KEEPALIVE_IDLE_MS = 60_000;

/**
 * TCP options of every NEO connection (spec §6.1): no Nagle, keep-alive after 60 s idle.
 * NEO also sets the probe interval (10 s) and count (3); Node 20 has no API for them, and its
 * libuv (1.46) sets them itself to 1 s and 10 probes, so a dead peer is detected after about 70 s
 * instead of NEO's 90 s.
 */
export function configureSocket(socket: net.Socket): void {
  socket.setNoDelay(true);
  socket.setKeepAlive(true, KEEPALIVE_IDLE_MS);
}

export interface TcpTransportOptions {
  /** Receives errors that no stream can report (e.g. a failing accept on a listener). */
  logger?: Logger;
  /**
   * Fault injection (see faults.ts). Default: what $NEOTS_FAULTS asks for, read once here, when
   * the transport is created; null turns it off whatever the environment says.
   */
  faults?: FaultInjector | null;
}

/** The injector of a new transport: the one given, else the environment's (off when unset). */
export function transportFaults(options: TcpTransportOptions): FaultInjector | null {
  return options.faults !== undefined ? options.faults : faultsFromVariable(process.env[FAULTS_VARIABLE], options.logger);
}

function socketAddress(host: string | undefined, port: number | undefined): Address | null {
  return host === undefined || port === undefined ? null : { host, port };
}

/**
 * A Stream over a net.Socket or a tls.TLSSocket. Events that happen before setHandlers (only
 * possible if a caller installs its handlers late) are replayed when the handlers arrive.
 */
export class SocketStream implements Stream {
  readonly #socket: net.Socket;
  /** The address connected to, for a connecting stream. */
  readonly #target: Address | null;
  readonly #faults: FaultInjector | null;
  #handlers: StreamHandlers | null = null;
  #connected = false;
  #ended = false;
  #closed = false;
  #error: Error | undefined;

  /**
   * `connectEvent` is the socket event that means established ('connect', or 'secureConnect'
   * for TLS), or null for an accepted socket, which is established already. `faults` may cut
   * the connection when a chunk arrives (tests only).
   */
  constructor(
    socket: net.Socket,
    connectEvent: 'connect' | 'secureConnect' | null,
    target: Address | null,
    faults: FaultInjector | null = null,
  ) {
    this.#socket = socket;
    this.#target = target;
    this.#faults = faults;
    this.#connected = connectEvent === null;
    socket.on('error', (error) => {
      this.#error ??= error;
    });
    socket.once('close', () => {
      this.#closed = true;
      this.#handlers?.close(this.#error);
    });
    if (connectEvent !== null) {
      socket.once(connectEvent, () => {
        this.#connected = true;
        this.#handlers?.connect?.();
      });
    }
  }

  get remoteAddress(): Address | null {
    return this.#target ?? socketAddress(this.#socket.remoteAddress, this.#socket.remotePort);
  }

  get localAddress(): Address | null {
    return socketAddress(this.#socket.localAddress, this.#socket.localPort);
  }

  setHandlers(handlers: StreamHandlers): void {
    const first = this.#handlers === null;
    this.#handlers = handlers;
    if (!first) return;
    // Attaching the data listener starts reading: nothing is read before someone can take it.
    // After end(), input is dropped (spec §6.2: stop processing input, flush, close) but still
    // read, so that the peer's end of stream arrives and the socket closes.
    this.#socket.on('data', (chunk: Buffer) => {
      if (this.#ended) return;
      // An injected fault: the chunk is lost with the connection, as when a link dies.
      if (this.#faults?.cutOnReceive(this.remoteAddress)) this.destroy();
      else this.#handlers?.data(chunk);
    });
    if (this.#connected && this.#target !== null) process.nextTick(() => this.#handlers?.connect?.());
    if (this.#closed) process.nextTick(() => this.#handlers?.close(this.#error));
  }

  write(chunk: Uint8Array): void {
    // Node queues writes made while connecting and buffers without limit under backpressure.
    // A socket that is no longer writable (the peer ended it) would report the write as an error.
    if (!this.#ended && this.#socket.writable) this.#socket.write(chunk);
  }

  end(): void {
    if (this.#ended || this.#closed) return;
    this.#ended = true;
    this.#socket.end();
  }

  destroy(): void {
    this.#ended = true;
    this.#socket.destroy();
  }
}

/** Binds a net.Server and hands it each accepted socket, already configured. */
export async function listenTcp(
  address: Address,
  onSocket: (socket: net.Socket) => void,
  logger: Logger | undefined,
): Promise<Listener> {
  const server = net.createServer((socket) => {
    configureSocket(socket);
    onSocket(socket);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: address.host, port: address.port }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  server.on('error', (error) => {
    // Failures to accept (e.g. EMFILE) must not crash the node; the listener goes on.
    logger?.error(`listener on ${formatAddress(address)}: ${error.message}`);
  });
  const bound = server.address();
  if (bound === null || typeof bound === 'string') throw new Error('a TCP server has an address once listening');
  return {
    address: { host: bound.address, port: bound.port },
    close: () => server.close(),
  };
}

export function tcpTransport(options: TcpTransportOptions = {}): Transport {
  const faults = transportFaults(options);
  return {
    listen: (address, accept) => listenTcp(address, (socket) => accept(new SocketStream(socket, null, null, faults)), options.logger),
    connect(address: Address): Stream {
      const socket = net.connect({ host: address.host, port: address.port });
      configureSocket(socket);
      return new SocketStream(socket, 'connect', address, faults);
    },
  };
}
