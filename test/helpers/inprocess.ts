// What in-process cluster tests share: an Env on the memory network with Node's real timers
// (the nodes under test never touch timers themselves), and bounded polling.

import assert from 'node:assert/strict';
import type { Env } from '../../src/core/env.js';
import type { MemoryNetwork } from '../../src/net/memory.js';
import { recordingLogger } from './logger.js';

/** Polls `condition` every 2 ms; fails the test after `timeoutMs`. */
export async function until(condition: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!condition()) {
    if (performance.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

/**
 * An environment for node `name` on `network`, logging into `lines`. `now` gives the wall clock
 * in seconds (by default the real one).
 */
export function inProcessEnv(
  network: MemoryNetwork,
  name: string,
  lines: string[],
  now: () => number = () => Date.now() / 1000,
): Env {
  return {
    clock: { now, monotonicMs: () => performance.now() },
    timers: {
      after: (ms, fn) => {
        const timer = setTimeout(fn, ms);
        return { cancel: () => clearTimeout(timer) };
      },
      every: (ms, fn) => {
        const timer = setInterval(fn, ms);
        return { cancel: () => clearInterval(timer) };
      },
      soon: (fn) => void setImmediate(fn),
    },
    random: { next: () => 0.5, int: () => 0, bytes: (n) => Buffer.alloc(n) },
    transport: network.transport('127.0.0.1'),
    logger: recordingLogger(`${name}: `, lines),
  };
}
