// The environment through which a node reaches the outside world. Node logic only ever uses
// these interfaces, so the same code runs in a real process (see realenv.ts) and inside a
// controlled, deterministic test environment.

import type { Address } from '../protocol/schema.js';

export type { Address };

export interface Clock {
  /** Wall-clock time in seconds since the UNIX epoch, with sub-millisecond precision. */
  now(): number;
  /** Monotonic time in milliseconds, for measuring durations and timeouts. */
  monotonicMs(): number;
}

export interface TimerHandle {
  cancel(): void;
}

export interface Timers {
  /** Calls `fn` once after `delayMs`. */
  after(delayMs: number, fn: () => void): TimerHandle;
  /** Calls `fn` every `periodMs` until cancelled. */
  every(periodMs: number, fn: () => void): TimerHandle;
  /**
   * Calls `fn` once, after the I/O events already received have been handled (in a real process:
   * setImmediate). Lets a node batch the work of several requests that arrived together.
   */
  soon(fn: () => void): void;
}

export interface Random {
  /** A float in [0, 1). */
  next(): number;
  /** An integer in [0, n). */
  int(n: number): number;
  bytes(length: number): Buffer;
}

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

export interface Logger {
  debug(message: string): void;
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
  /** A logger whose lines are prefixed with `name` (e.g. a node or a connection). */
  child(name: string): Logger;
}

/** One byte stream (a TCP or TLS connection, or an in-memory pipe). */
export interface Stream {
  /** The peer's address when known (accepted or connected streams). */
  readonly remoteAddress: Address | null;
  readonly localAddress: Address | null;
  /**
   * Installs the callbacks. `data` receives chunks in order; `close` is called exactly once, when
   * the stream is closed by either side or fails (with the error then).
   */
  setHandlers(handlers: StreamHandlers): void;
  /** Queues bytes; they are sent in order. Writes after close are dropped. */
  write(chunk: Uint8Array): void;
  /** Flushes what is queued, then closes. */
  end(): void;
  /** Closes at once, dropping what is queued. */
  destroy(): void;
}

export interface StreamHandlers {
  /** The connecting side's stream is established (never called for accepted streams). */
  connect?(): void;
  data(chunk: Buffer): void;
  close(error?: Error): void;
}

export interface Listener {
  /** The address actually bound (the real port when asked for port 0). */
  readonly address: Address;
  close(): void;
}

export interface Transport {
  /** Starts listening; `accept` is called with each new stream. */
  listen(address: Address, accept: (stream: Stream) => void): Promise<Listener>;
  /** Starts connecting. Writes are queued until the stream is established. */
  connect(address: Address): Stream;
}

/** Everything a node may use of the outside world. */
export interface Env {
  readonly clock: Clock;
  readonly timers: Timers;
  readonly random: Random;
  readonly transport: Transport;
  readonly logger: Logger;
  /**
   * How long a peer may stay silent before its connection is closed (Ping is sent first);
   * undefined or 0: rely on TCP keep-alive only, as NEO does.
   */
  readonly peerTimeoutMs?: number;
}
