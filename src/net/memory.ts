// An in-memory network for tests and the simulator: transports sharing one address space, whose
// streams behave like TCP connections (ordered bytes, refused connections, clean or broken
// close), with every delivery going through a scheduler the caller may control, and hooks to
// break connections.

import type { Address, Listener, Stream, StreamHandlers, Transport } from '../core/env.js';
import { formatAddress } from '../core/address.js';

/** Shaped like Node's system errors, so code that looks at `code` sees the same values. */
export class MemoryNetworkError extends Error {
  override readonly name = 'MemoryNetworkError';
  readonly code: 'ECONNREFUSED' | 'ECONNRESET' | 'EADDRINUSE';

  constructor(code: MemoryNetworkError['code'], message: string) {
    super(message);
    this.code = code;
  }
}

/** Matches an address: a host alone matches every port of it. */
export interface AddressPattern {
  readonly host: string;
  readonly port?: number;
}

export interface MemoryNetworkOptions {
  /**
   * Runs `deliver` later. Each call delivers the next event of one stream end (connected, a
   * chunk, closed); since each end consumes its own events in order, any order of calls keeps
   * TCP's ordering per connection. Required: node code never reaches timers itself (tests pass
   * setImmediate, a simulator its own queue).
   */
  schedule: (deliver: () => void) => void;
}

export interface MemoryNetwork {
  /** A transport whose outgoing streams originate from `host` (default 127.0.0.1). */
  transport(host?: string): Transport;
  /** Breaks the connection of `stream`: data in flight is lost, both ends close with ECONNRESET. */
  cut(stream: Stream): void;
  /** Breaks every connection between an end matching `a` and one matching `b`; returns how many. */
  cutBetween(a: AddressPattern, b: AddressPattern): number;
}

type StreamEvent =
  | { readonly kind: 'connect' }
  | { readonly kind: 'data'; readonly chunk: Buffer }
  | { readonly kind: 'eof' }
  | { readonly kind: 'close'; readonly error: Error | undefined };

const FIRST_DYNAMIC_PORT = 32768;
const LAST_PORT = 65535;

function matches(pattern: AddressPattern, address: Address): boolean {
  return pattern.host === address.host && (pattern.port === undefined || pattern.port === address.port);
}

/** One end of an in-memory connection. */
class MemoryStream implements Stream {
  readonly localAddress: Address;
  readonly remoteAddress: Address;
  readonly #schedule: (deliver: () => void) => void;
  readonly #onClosed: (end: MemoryStream) => void;
  #handlers: StreamHandlers | null = null;
  /** Events for this end, delivered one per scheduled call. */
  #inbox: StreamEvent[] = [];
  /** The other end, once established. */
  #peer: MemoryStream | null = null;
  /** What was written or ended before the connection was established. */
  #pendingWrites: Buffer[] = [];
  #ended = false;
  /** A close event is queued: nothing else is delivered or sent. */
  #closing = false;
  #closed = false;

  constructor(
    localAddress: Address,
    remoteAddress: Address,
    schedule: (deliver: () => void) => void,
    onClosed: (end: MemoryStream) => void,
  ) {
    this.localAddress = localAddress;
    this.remoteAddress = remoteAddress;
    this.#schedule = schedule;
    this.#onClosed = onClosed;
  }

  get peer(): MemoryStream | null {
    return this.#peer;
  }

  get isClosing(): boolean {
    return this.#closing || this.#closed;
  }

  setHandlers(handlers: StreamHandlers): void {
    const first = this.#handlers === null;
    this.#handlers = handlers;
    // Deliveries that found no handlers left their events in the inbox.
    if (first) for (let i = 0; i < this.#inbox.length; i++) this.#schedule(() => this.#deliverNext());
  }

  write(chunk: Uint8Array): void {
    if (this.#ended || this.isClosing || chunk.length === 0) return;
    // A copy, as the caller may reuse its buffer once write returns.
    const copy = Buffer.from(chunk);
    if (this.#peer === null) this.#pendingWrites.push(copy);
    else this.#peer.push({ kind: 'data', chunk: copy });
  }

  end(): void {
    if (this.#ended || this.isClosing) return;
    this.#ended = true;
    // Before establishment, the end of stream follows the pending writes in establish().
    this.#peer?.push({ kind: 'eof' });
  }

  destroy(): void {
    if (this.isClosing) return;
    this.#ended = true;
    this.#peer?.push({ kind: 'eof' });
    this.startClosing(undefined);
  }

  /** Connects this (connecting) end to `peer` and sends what was written meanwhile. */
  establish(peer: MemoryStream): void {
    this.#peer = peer;
    this.push({ kind: 'connect' });
    for (const chunk of this.#pendingWrites) peer.push({ kind: 'data', chunk });
    this.#pendingWrites = [];
    if (this.#ended) peer.push({ kind: 'eof' });
  }

  attach(peer: MemoryStream): void {
    this.#peer = peer;
  }

  push(event: StreamEvent): void {
    if (this.isClosing) return;
    this.#inbox.push(event);
    this.#schedule(() => this.#deliverNext());
  }

  /** Drops everything not yet delivered and queues the close event. */
  startClosing(error: Error | undefined): void {
    if (this.isClosing) return;
    this.#closing = true;
    this.#pendingWrites = [];
    this.#inbox = [{ kind: 'close', error }];
    this.#schedule(() => this.#deliverNext());
  }

  #deliverNext(): void {
    const handlers = this.#handlers;
    const event = this.#inbox[0];
    if (handlers === null || event === undefined || this.#closed) return;
    this.#inbox.shift();
    switch (event.kind) {
      case 'connect':
        handlers.connect?.();
        break;
      case 'data':
        if (!this.#ended) handlers.data(event.chunk);
        break;
      case 'eof':
        // Like a socket that does not allow half-open connections: end in turn, then close.
        if (!this.#ended) this.#peer?.push({ kind: 'eof' });
        this.#ended = true;
        this.#close(undefined, handlers);
        break;
      case 'close':
        this.#close(event.error, handlers);
        break;
    }
  }

  #close(error: Error | undefined, handlers: StreamHandlers): void {
    this.#closed = true;
    this.#inbox = [];
    this.#onClosed(this);
    handlers.close(error);
  }
}

interface MemoryListener {
  readonly address: Address;
  readonly accept: (stream: Stream) => void;
}

export function memoryNetwork(options: MemoryNetworkOptions): MemoryNetwork {
  const schedule = options.schedule;
  const listeners = new Map<string, MemoryListener>();
  /** Ends that are not closed yet, to find the connections to cut. */
  const openEnds = new Set<MemoryStream>();
  let nextPort = FIRST_DYNAMIC_PORT;

  const key = (address: Address): string => formatAddress(address);
  const onClosed = (end: MemoryStream): void => void openEnds.delete(end);

  function allocatePort(host: string): number {
    for (let tries = FIRST_DYNAMIC_PORT; tries <= LAST_PORT; tries++) {
      const port = nextPort;
      nextPort = nextPort === LAST_PORT ? FIRST_DYNAMIC_PORT : nextPort + 1;
      if (!listeners.has(key({ host, port }))) return port;
    }
    throw new Error(`memory network: no free port left on ${host}`);
  }

  function newEnd(local: Address, remote: Address): MemoryStream {
    const end = new MemoryStream(local, remote, schedule, onClosed);
    openEnds.add(end);
    return end;
  }

  function establish(connecting: MemoryStream): void {
    if (connecting.isClosing) return;
    const target = connecting.remoteAddress;
    const listener = listeners.get(key(target));
    if (listener === undefined) {
      const error = new MemoryNetworkError('ECONNREFUSED', `connect ECONNREFUSED ${key(target)}`);
      connecting.startClosing(error);
      return;
    }
    const accepted = newEnd(listener.address, connecting.localAddress);
    accepted.attach(connecting);
    // The connecting end's 'connect' is queued before anything the accepting side may write.
    connecting.establish(accepted);
    listener.accept(accepted);
  }

  function cutEnd(end: MemoryStream): void {
    end.startClosing(new MemoryNetworkError('ECONNRESET', 'read ECONNRESET'));
  }

  function cut(stream: Stream): void {
    if (!(stream instanceof MemoryStream)) throw new TypeError('memory network: not a memory stream');
    const peer = stream.peer;
    cutEnd(stream);
    if (peer !== null) cutEnd(peer);
  }

  function cutBetween(a: AddressPattern, b: AddressPattern): number {
    let count = 0;
    for (const end of [...openEnds]) {
      const { localAddress: local, remoteAddress: remote } = end;
      // Both ends of a connection may match; cutting the first marks the other as closing.
      if (end.isClosing || !matches(a, local) || !matches(b, remote)) continue;
      cut(end);
      count++;
    }
    return count;
  }

  function transport(host = '127.0.0.1'): Transport {
    return {
      async listen(address: Address, accept: (stream: Stream) => void): Promise<Listener> {
        const bound = { host: address.host, port: address.port === 0 ? allocatePort(address.host) : address.port };
        const boundKey = key(bound);
        if (listeners.has(boundKey)) {
          throw new MemoryNetworkError('EADDRINUSE', `listen EADDRINUSE: address already in use ${boundKey}`);
        }
        const listener = { address: bound, accept };
        listeners.set(boundKey, listener);
        return {
          address: bound,
          close: () => {
            if (listeners.get(boundKey) === listener) listeners.delete(boundKey);
          },
        };
      },
      connect(address: Address): Stream {
        const connecting = newEnd({ host, port: allocatePort(host) }, { host: address.host, port: address.port });
        schedule(() => establish(connecting));
        return connecting;
      },
    };
  }

  return { transport, cut, cutBetween };
}
