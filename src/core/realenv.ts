// The real-world Env: wall clock, timers, crypto randomness, log output and sockets. Together with
// the transports in src/net/, this is the only code allowed to touch Date, performance, timers,
// sockets and crypto randomness; node logic only sees the interfaces of env.ts.

import { openSync, writeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { Clock, Env, Logger, LogLevel, Random, TimerHandle, Timers, Transport } from './env.js';

/**
 * How far the high-resolution estimate of the wall clock may stray from Date.now() before it is
 * re-anchored. Date.now() truncates to the millisecond, and the two clocks are read a few
 * microseconds apart, so a faithful estimate stays within this margin.
 */
const CLOCK_TOLERANCE_MS = 1;

export function realClock(): Clock {
  let originMs = performance.timeOrigin;
  return {
    now(): number {
      const sinceOriginMs = performance.now();
      const wallMs = Date.now();
      let nowMs = originMs + sinceOriginMs;
      // The monotonic clock does not follow wall-clock steps (NTP, settimeofday) and stops while
      // the machine sleeps, so origin + performance.now() drifts. Re-anchor on Date.now() then:
      // the result stays within a millisecond of the true time and keeps sub-ms resolution.
      if (nowMs < wallMs - CLOCK_TOLERANCE_MS || nowMs >= wallMs + 1 + CLOCK_TOLERANCE_MS) {
        nowMs = wallMs + 0.5;
        originMs = nowMs - sinceOriginMs;
      }
      return nowMs / 1000;
    },
    monotonicMs(): number {
      return performance.now();
    },
  };
}

/** Node turns a longer delay into 1 ms (with a warning): refuse it instead. */
const MAX_TIMER_DELAY_MS = 2 ** 31 - 1;

function checkDelay(delayMs: number): void {
  if (!(delayMs >= 0 && delayMs <= MAX_TIMER_DELAY_MS)) {
    throw new RangeError(`timer delay ${delayMs} ms is not in 0..${MAX_TIMER_DELAY_MS}`);
  }
}

/** Timers keep the process alive while armed, as a node waiting for a timeout must not exit. */
export function realTimers(): Timers {
  return {
    after(delayMs: number, fn: () => void): TimerHandle {
      checkDelay(delayMs);
      const timer = setTimeout(fn, delayMs);
      return { cancel: () => clearTimeout(timer) };
    },
    every(periodMs: number, fn: () => void): TimerHandle {
      checkDelay(periodMs);
      const timer = setInterval(fn, periodMs);
      return { cancel: () => clearInterval(timer) };
    },
    soon(fn: () => void): void {
      setImmediate(fn);
    },
  };
}

const RANDOM_BITS = 53;
const TWO_POW_48 = 2 ** 48;
const TWO_POW_53 = 2 ** RANDOM_BITS;

/** Random bytes fetched from the system at once: one call per draw cost a client 12 µs per load. */
const RANDOM_POOL_BYTES = 4096;
const BYTES_PER_DRAW = 7;

export function realRandom(): Random {
  let pool = Buffer.alloc(0);
  let offset = 0;
  /** A uniform integer in [0, 2^53), the widest range a double holds exactly. */
  const random53 = (): number => {
    if (offset + BYTES_PER_DRAW > pool.length) {
      pool = randomBytes(RANDOM_POOL_BYTES);
      offset = 0;
    }
    const draw = (pool[offset]! & 0x1f) * TWO_POW_48 + pool.readUIntBE(offset + 1, 6);
    offset += BYTES_PER_DRAW;
    return draw;
  };
  return {
    next(): number {
      return random53() / TWO_POW_53;
    },
    int(n: number): number {
      if (!Number.isSafeInteger(n) || n <= 0) throw new RangeError(`random.int(${n}): n must be a positive safe integer`);
      // Rejection sampling: drawing below the largest multiple of n keeps every result equally
      // likely. More than half the range is accepted, so the expected number of draws is < 2.
      const limit = TWO_POW_53 - (TWO_POW_53 % n);
      for (;;) {
        const draw = random53();
        if (draw < limit) return draw % n;
      }
    },
    bytes(length: number): Buffer {
      return randomBytes(length);
    },
  };
}

const LEVEL_RANK: Readonly<Record<LogLevel, number>> = { debug: 0, info: 1, warn: 2, error: 3 };
// Python's spelling, which NEO operators read in their logs.
const LEVEL_LABEL: Readonly<Record<LogLevel, string>> = {
  debug: 'DEBUG',
  info: 'INFO',
  warn: 'WARNING',
  error: 'ERROR',
};

/** Where log lines go: anything with a write(text), such as process.stderr. */
export interface LogSink {
  write(text: string): unknown;
}

export interface LoggerOptions {
  /** Lines below this level are dropped. Default: 'info'. */
  level?: LogLevel;
  /** The name of the root logger; children append `.child`. Default: none. */
  name?: string;
  /** Appends to this file (created if missing), as with --logfile. Overrides `sink`. */
  file?: string;
  /** Default: process.stderr. */
  sink?: LogSink;
}

function pad(value: number, width: number): string {
  return String(value).padStart(width, '0');
}

/** `YYYY-MM-DD HH:MM:SS.mmm` in local time, as Python's logging prints it. */
function formatTimestamp(date: Date): string {
  return (
    `${date.getFullYear()}-${pad(date.getMonth() + 1, 2)}-${pad(date.getDate(), 2)} ` +
    `${pad(date.getHours(), 2)}:${pad(date.getMinutes(), 2)}:${pad(date.getSeconds(), 2)}` +
    `.${pad(date.getMilliseconds(), 3)}`
  );
}

function fileSink(path: string): LogSink {
  // Synchronous appends: the last lines before a crash or an assertion stop must reach the file.
  const fd = openSync(path, 'a');
  return { write: (text: string) => writeSync(fd, text) };
}

/** A Logger writing `YYYY-MM-DD HH:MM:SS.mmm LEVEL name: message` lines. */
export function createLogger(options: LoggerOptions = {}): Logger {
  const minRank = LEVEL_RANK[options.level ?? 'info'];
  const sink = options.file !== undefined ? fileSink(options.file) : (options.sink ?? process.stderr);
  const make = (name: string): Logger => {
    const prefix = name === '' ? '' : `${name}: `;
    const log = (level: LogLevel, message: string): void => {
      if (LEVEL_RANK[level] < minRank) return;
      sink.write(`${formatTimestamp(new Date())} ${LEVEL_LABEL[level]} ${prefix}${message}\n`);
    };
    return {
      debug: (message) => log('debug', message),
      info: (message) => log('info', message),
      warn: (message) => log('warn', message),
      error: (message) => log('error', message),
      child: (childName) => make(name === '' ? childName : `${name}.${childName}`),
    };
  };
  return make(options.name ?? '');
}
