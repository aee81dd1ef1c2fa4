// Fault injection in the real transports, for tests with real processes.
//
// Nodes connect to the addresses the master announces, so no proxy can sit between two real
// processes: the transport itself cuts connections. It is off unless the environment variable
// NEOTS_FAULTS is set when the transport is created (once per process), e.g.
//
//   NEOTS_FAULTS='cut=0.002,seed=42'
//
// cut=P: each chunk of bytes received on any connection of the process cuts that connection with
//        probability P (the chunk is dropped and the socket destroyed: both sides see a close,
//        as when a link dies mid-stream).
// seed=S: seed of the generator that draws the cuts (default 1), our own xorshift32, so that a
//        process's decisions depend only on the seed and the sequence of chunks it receives.

import type { Address, Logger } from '../core/env.js';
import { formatAddress } from '../core/address.js';

/** The environment variable that switches fault injection on. */
export const FAULTS_VARIABLE = 'NEOTS_FAULTS';

export interface FaultOptions {
  /** Probability, in [0, 1], that a received chunk cuts its connection. */
  readonly cutProbability: number;
  readonly seed: number;
}

/** Parses `cut=P,seed=S` (each field optional, in any order); throws on anything else. */
export function parseFaults(spec: string): FaultOptions {
  let cutProbability = 0;
  let seed = 1;
  for (const field of spec.split(',').map((part) => part.trim()).filter((part) => part !== '')) {
    const match = /^(cut|seed)=(.+)$/.exec(field);
    const value = match === null ? NaN : Number(match[2]);
    if (match?.[1] === 'cut' && value >= 0 && value <= 1) cutProbability = value;
    else if (match?.[1] === 'seed' && Number.isInteger(value)) seed = value;
    else throw new Error(`${FAULTS_VARIABLE}: bad field ${JSON.stringify(field)} (expected cut=P with 0 ≤ P ≤ 1, seed=N)`);
  }
  return { cutProbability, seed };
}

/** xorshift32: small, seeded, and independent of Math.random. Returns numbers in [0, 1). */
export function xorshift32(seed: number): () => number {
  // Scramble the seed so that neighbouring seeds do not start alike; 0 is a fixed point.
  let state = Math.imul(seed | 0, 0x9e3779b1) >>> 0 || 1;
  return () => {
    state ^= state << 13;
    state >>>= 0;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    return state / 0x100000000;
  };
}

/** Draws, for each received chunk, whether its connection is cut. One per transport. */
export class FaultInjector {
  readonly options: FaultOptions;
  readonly #random: () => number;
  readonly #logger: Logger | undefined;
  #cuts = 0;

  constructor(options: FaultOptions, logger?: Logger) {
    this.options = options;
    this.#random = xorshift32(options.seed);
    this.#logger = logger;
  }

  /** How many connections this injector cut. */
  get cuts(): number {
    return this.#cuts;
  }

  /** Called by the transport for each chunk received from `peer`: true means cut now. */
  cutOnReceive(peer: Address | null): boolean {
    if (this.options.cutProbability === 0 || this.#random() >= this.options.cutProbability) return false;
    this.#cuts++;
    this.#logger?.info(`fault injection: cutting the connection with ${peer === null ? 'unknown peer' : formatAddress(peer)}`);
    return true;
  }
}

/** The injector that `value` (the variable's content, if set) asks for; null when unset or empty. */
export function faultsFromVariable(value: string | undefined, logger?: Logger): FaultInjector | null {
  if (value === undefined || value.trim() === '') return null;
  const options = parseFaults(value);
  logger?.info(`fault injection on: cut=${options.cutProbability}, seed=${options.seed}`);
  return new FaultInjector(options, logger);
}
