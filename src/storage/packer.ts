// Background pack (transactions.md §17.3, storage.md §2.7.4): once an approved pack order is
// newer than what this node's UP_TO_DATE cells completed, each of those partitions is packed up to
// the order's pack TID in small steps on timers, so that clients are served in between. Progress
// is only kept in memory: a pack interrupted by the end of operation restarts its partition later
// (packing is idempotent).

import type { TimerHandle } from '../core/env.js';
import { errorFromCode } from '../protocol/errors.js';
import { ZERO_OID, compareIds, p64, partitionOf, tidToHex, u64 } from '../protocol/ids.js';
import type { ArgsOf } from '../protocol/packets.js';
import type { StorageApp } from './app.js';

const plusOne = (id: Buffer) => p64(u64(id) + 1n);

/** OIDs per step at first; then adapted so that a step takes between MIN_STEP_MS and MAX_STEP_MS. */
const INITIAL_STEP_OIDS = 100;
const MIN_STEP_OIDS = 10;
const MAX_STEP_OIDS = 100_000;
const MIN_STEP_MS = 10;
const MAX_STEP_MS = 100;
/** While packing, commit after a step when the last commit is older than this (storage.md §2.7.4). */
const COMMIT_INTERVAL_MS = 1000;

type WirePackOrder = ArgsOf<'AnswerPackOrders'>[0][number];

interface PackJob {
  readonly id: Buffer;
  readonly packTid: Buffer;
  /** OIDs of a partial pack, null for a full one. */
  readonly oids: Buffer[] | null;
  /** The completed pack id of the partitions to pack (they all had this one). */
  readonly previous: Buffer;
  /** Partitions still to pack, lowest first. */
  readonly partitions: number[];
  /** Resume point in the current partition: next OID (full pack) or index in its OIDs (partial). */
  nextOid: Buffer | null;
  oidIndex: number;
  /** Partial pack: the OIDs of the current partition, once computed. */
  partitionOids: Buffer[] | null;
  packedPartitions: number;
}

export class Packer {
  readonly #app: StorageApp;
  #job: PackJob | null = null;
  /** An AskPackOrders is in flight. */
  #asking = false;
  #timer: TimerHandle | null = null;
  #stepOids = INITIAL_STEP_OIDS;
  #lastCommitMs = 0;
  #stopped = false;

  constructor(app: StorageApp) {
    this.#app = app;
  }

  /** Whether a pack order is being processed (tests and logs). */
  get packing(): boolean {
    return this.#job !== null;
  }

  /** End of operation: the pack in progress is abandoned, to be resumed at the next start. */
  stop(): void {
    this.#stopped = true;
    this.#timer?.cancel();
    this.#timer = null;
    this.#job = null;
  }

  /**
   * Starts processing the next approved order if the lowest pack completed on own UP_TO_DATE cells
   * is older than the newest approved one; its details come from the master.
   */
  maybePack(): void {
    const app = this.#app;
    if (this.#stopped || this.#job !== null || this.#asking) return;
    const previous = this.#lowestCompleted();
    if (previous === null || compareIds(previous, app.lastPackId) >= 0) return;
    const master = app.masterConnection;
    if (master === null) return;
    this.#asking = true;
    master.ask('AskPackOrders', [plusOne(previous)], (answer) => {
      this.#asking = false;
      if (this.#stopped || answer === null) return;
      if (answer.info.name === 'Error') {
        const [code, message] = answer.args as ArgsOf<'Error'>;
        app.logger.error(`master refused AskPackOrders: ${errorFromCode(code, message).toString()}`);
        return;
      }
      const [orders] = answer.args as ArgsOf<'AnswerPackOrders'>;
      const order = orders[0];
      if (order === undefined) return; // nothing approved after what we completed
      this.#start(order, previous);
    });
  }

  /** The lowest completed pack id over own UP_TO_DATE cells, null if there is none. */
  #lowestCompleted(): Buffer | null {
    let lowest: Buffer | null = null;
    for (const id of this.#app.backend.getPackedIDs(true).values()) {
      if (lowest === null || compareIds(id, lowest) < 0) lowest = id;
    }
    return lowest;
  }

  #start([id, approved, partial, oids, packTid]: WirePackOrder, previous: Buffer): void {
    const app = this.#app;
    // The cells may have changed while the master answered: start over from what they are now.
    const lowest = this.#lowestCompleted();
    if (lowest === null || !lowest.equals(previous)) {
      this.maybePack();
      return;
    }
    if (approved !== true || compareIds(id, previous) <= 0) {
      app.logger.error(`master answered AskPackOrders with order ${tidToHex(id)}, not an approved order after ${tidToHex(previous)}`);
      return;
    }
    const partitions = [...app.backend.getPackedIDs(true)]
      .filter(([, packed]) => packed.equals(previous))
      .map(([partition]) => partition)
      .sort((a, b) => a - b);
    this.#job = {
      id, packTid, oids: partial ? oids ?? [] : null, previous, partitions, nextOid: null, oidIndex: 0, partitionOids: null, packedPartitions: 0,
    };
    this.#lastCommitMs = app.env.clock.monotonicMs();
    this.#schedule();
  }

  #schedule(): void {
    if (this.#timer !== null || this.#stopped) return;
    this.#timer = this.#app.env.timers.after(0, () => {
      this.#timer = null;
      this.#step();
    });
  }

  /** One bounded piece of work on the lowest partition left. */
  #step(): void {
    const job = this.#job;
    if (job === null || this.#stopped) return;
    const app = this.#app;
    const { backend, logger } = app;
    const partition = job.partitions[0];
    if (partition === undefined) {
      this.#finish(job);
      return;
    }
    // The cell may have been discarded, or be no longer UP_TO_DATE, since the pack started.
    const completed = backend.getPackedIDs(true).get(partition);
    if (completed === undefined || !completed.equals(job.previous)) {
      this.#nextPartition(job);
      this.#schedule();
      return;
    }
    if (job.nextOid === null && job.oidIndex === 0) {
      const what = job.oids === null ? 'pack' : 'partial pack';
      logger.info(`${what} ${tidToHex(job.id)} @${tidToHex(job.packTid)}: partition ${partition}...`);
    }
    const started = app.env.clock.monotonicMs();
    let done: boolean;
    if (job.oids === null) {
      const last = backend.packPartition(partition, job.packTid, job.nextOid ?? ZERO_OID, this.#stepOids);
      done = last === null;
      if (last !== null) job.nextOid = plusOne(last);
    } else {
      const np = backend.getNumPartitions();
      const oids = job.partitionOids ??= job.oids.filter((oid) => partitionOf(oid, np) === partition);
      const chunk = oids.slice(job.oidIndex, job.oidIndex + this.#stepOids);
      backend.packOids(partition, job.packTid, chunk);
      job.oidIndex += chunk.length;
      done = job.oidIndex >= oids.length;
    }
    const now = app.env.clock.monotonicMs();
    this.#adapt(now - started);
    if (done) {
      backend.setPartitionPacked(partition, job.id);
      job.packedPartitions++;
      this.#nextPartition(job);
    }
    if (done || now - this.#lastCommitMs > COMMIT_INTERVAL_MS) {
      backend.commit();
      this.#lastCommitMs = now;
    }
    this.#schedule();
  }

  #adapt(elapsedMs: number): void {
    if (elapsedMs < MIN_STEP_MS) this.#stepOids = Math.min(MAX_STEP_OIDS, this.#stepOids * 2);
    else if (elapsedMs > MAX_STEP_MS) this.#stepOids = Math.max(MIN_STEP_OIDS, Math.floor(this.#stepOids / 2));
  }

  #nextPartition(job: PackJob): void {
    job.partitions.shift();
    job.nextOid = null;
    job.oidIndex = 0;
    job.partitionOids = null;
  }

  #finish(job: PackJob): void {
    const app = this.#app;
    this.#job = null;
    if (job.packedPartitions > 0) {
      app.logger.info(`${job.packedPartitions} partition(s) processed for pack ${tidToHex(job.id)}`);
    }
    app.notifyPackCompleted();
    this.maybePack();
  }
}
