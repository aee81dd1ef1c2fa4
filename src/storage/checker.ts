// Replica checks (storage.md §6): for each CheckPartition from the master (one partition at a
// time, in order), this node compares its cell with every other readable cell of the partition,
// in ranges: first the TIDs of its transactions, then the (tid, oid) keys of its object records.
// Each range is digested by every participant (AskCheckTIDRange / AskCheckSerialRange to the
// peers, the backend for us); participants whose answer differs from the reference's (or all of
// them without reference) are reported with NotifyPartitionCorrupted and leave the check.

import type { NodeEntry } from '../core/node-table.js';
import type { Connection } from '../net/connection.js';
import type { Packet } from '../protocol/codec.js';
import { CellStates, NodeStates, NodeTypes } from '../protocol/enums.js';
import { errorFromCode } from '../protocol/errors.js';
import { ZERO_OID, nidToString, p64, tidToHex, u64 } from '../protocol/ids.js';
import type { ArgsOf } from '../protocol/packets.js';
import type { Address } from '../protocol/schema.js';
import { cellStateOf, isReadableState } from './backends/backend.js';
import type { StorageApp } from './app.js';
import { connectStorage } from './peers.js';

/** Items digested per range (NEO's value; a peer bounds what it accepts). */
export const CHECK_COUNT = 40_000;

type Source = ArgsOf<'CheckPartition'>[1];

interface CheckOrder {
  readonly partition: number;
  readonly source: Source;
  readonly minTid: Buffer;
  readonly maxTid: Buffer;
}

interface Participant {
  readonly nid: number;
  /** null for this node (digests computed by the backend). */
  conn: Connection | null;
  /** The answer to the current range, as its arguments; null while waiting. */
  answer: unknown[] | null;
}

interface Check extends CheckOrder {
  readonly participants: Map<number, Participant>;
  /** The node whose answers are right by definition, if any. */
  reference: number | null;
  nextTid: Buffer;
  /** null during the TID phase; the next OID during the serial phase. */
  nextOid: Buffer | null;
  /** Counts ranges, so that answers to an older range are ignored. */
  round: number;
  corrupted: boolean;
}

const plusOne = (id: Buffer) => p64(u64(id) + 1n);

export class Checker {
  readonly #app: StorageApp;
  readonly #queue: CheckOrder[] = [];
  #current: Check | null = null;
  #stopped = false;

  constructor(app: StorageApp) {
    this.#app = app;
  }

  /** The partition being checked, if any (tests and logs). */
  get currentPartition(): number | null {
    return this.#current?.partition ?? null;
  }

  /** End of operation: checks in progress and queued are forgotten. */
  stop(): void {
    this.#stopped = true;
    this.#current = null;
    this.#queue.length = 0;
  }

  check(partition: number, source: Source, minTid: Buffer, maxTid: Buffer): void {
    this.#queue.push({ partition, source, minTid, maxTid });
    if (this.#current === null) this.#next();
  }

  #next(): void {
    this.#current = null;
    const { logger } = this.#app;
    for (let order = this.#queue.shift(); order !== undefined && !this.#stopped; order = this.#queue.shift()) {
      const failure = this.#begin(order);
      if (failure === null) return;
      logger.error(`Failed to start checking partition ${order.partition} (${failure})`);
    }
  }

  /** Starts checking a partition; returns why it cannot be checked, or null. */
  #begin(order: CheckOrder): string | null {
    const app = this.#app;
    const { partition, source: [upstream, address] } = order;
    const cells = app.backend.getPartitionTable().filter((cell) => cell.partition === partition);
    const own = cells.find((cell) => cell.nid === app.nid);
    if (own === undefined || cellStateOf(own.tid) === CellStates.OUT_OF_DATE) return 'discarded or out-of-date';
    if (upstream !== '') return 'checking against an upstream cluster is not implemented';
    const peers: NodeEntry<Connection>[] = [];
    for (const cell of cells) {
      if (cell.nid === app.nid || !isReadableState(cellStateOf(cell.tid))) continue;
      const node = app.nodes.byNid(cell.nid);
      if (node?.type === NodeTypes.STORAGE && node.state === NodeStates.RUNNING && node.address !== null) peers.push(node);
    }
    let reference: number | null = null;
    if (address !== null) {
      if (sameAddress(address, app.address)) reference = app.nid!;
      else reference = peers.find((node) => sameAddress(node.address!, address))?.nid ?? null;
      if (reference === null) return 'unavailable source';
    }
    if (peers.length === 0) return 'no replica';
    const check: Check = {
      ...order, participants: new Map(), reference, nextTid: order.minTid, nextOid: null, round: 0, corrupted: false,
    };
    this.#current = check;
    check.participants.set(app.nid!, { nid: app.nid!, conn: null, answer: null });
    for (const node of peers) {
      const participant: Participant = { nid: node.nid!, conn: null, answer: null };
      check.participants.set(node.nid!, participant);
      if (node.connection !== null && !node.connection.isClosed) {
        participant.conn = node.connection;
        continue;
      }
      participant.conn = connectStorage(app, node, (error) => {
        if (this.#current !== check || !check.participants.has(participant.nid)) return;
        if (error !== null) this.#lost(check, participant, error);
        else this.#ask(check, participant);
      });
    }
    app.logger.info(`checking partition ${partition} from ${tidToHex(order.minTid)} to ${tidToHex(order.maxTid)}`
      + ` with ${peers.map((node) => nidToString(node.nid!)).join(', ')}`
      + (reference === null ? ' (no reference)' : ` (reference ${nidToString(reference)})`));
    this.#startWhenUnlocked(check);
    return null;
  }

  /** Transactions locked up to max_tid are not all visible yet: the first range waits for them. */
  #startWhenUnlocked(check: Check): void {
    const { tm } = this.#app;
    const attempt = (): boolean => {
      if (this.#current !== check) return true;
      if (tm.isLockedTid(check.maxTid)) return false;
      this.#nextRange(check);
      return true;
    };
    if (!attempt()) tm.delayRead(attempt);
  }

  /** Asks every participant for the current range; our own digest is computed at once. */
  #nextRange(check: Check): void {
    check.round++;
    for (const participant of check.participants.values()) {
      participant.answer = null;
      if (participant.conn === null) participant.answer = this.#localAnswer(check);
      // A connection still identifying asks once identified.
      else if (participant.conn.peer === participant.nid) this.#ask(check, participant);
    }
    this.#compare(check);
  }

  #localAnswer(check: Check): unknown[] {
    const { backend } = this.#app;
    const { partition, nextTid, maxTid, nextOid } = check;
    if (nextOid === null) {
      const r = backend.checkTIDRange(partition, CHECK_COUNT, nextTid, maxTid);
      return [r.count, r.tidChecksum, r.maxTid];
    }
    const r = backend.checkSerialRange(partition, CHECK_COUNT, nextTid, maxTid, nextOid);
    return [r.count, r.tidChecksum, r.maxTid, r.oidChecksum, r.maxOid];
  }

  #ask(check: Check, participant: Participant): void {
    const conn = participant.conn!;
    const round = check.round;
    if (round === 0) return; // the first range is not asked yet (waiting for locked transactions)
    const callback = (answer: Packet | null): void => {
      if (this.#current !== check || check.round !== round || check.participants.get(participant.nid) !== participant) return;
      if (answer === null) {
        this.#lost(check, participant, 'connection closed');
        return;
      }
      if (answer.info.name === 'Error') {
        const [code, message] = answer.args as ArgsOf<'Error'>;
        this.#lost(check, participant, errorFromCode(code, message).toString());
        return;
      }
      participant.answer = answer.args;
      this.#compare(check);
    };
    const { partition, nextTid, maxTid, nextOid } = check;
    if (nextOid === null) conn.ask('AskCheckTIDRange', [partition, CHECK_COUNT, nextTid, maxTid], callback);
    else conn.ask('AskCheckSerialRange', [partition, CHECK_COUNT, nextTid, maxTid, nextOid], callback);
  }

  /** A peer left the check: without it, the check goes on if at least two participants remain. */
  #lost(check: Check, participant: Participant, reason: string): void {
    const { logger } = this.#app;
    check.participants.delete(participant.nid);
    logger.warn(`check of partition ${check.partition}: ${nidToString(participant.nid)} lost (${reason})`);
    if (check.reference === participant.nid) check.reference = null;
    if (check.participants.size < 2) {
      logger.warn(`check of partition ${check.partition} aborted`);
      this.#next();
      return;
    }
    this.#compare(check);
  }

  /** Once every participant answered the range: report differences, then go on. */
  #compare(check: Check): void {
    const answers = [...check.participants.values()];
    if (answers.some((p) => p.answer === null)) return;
    const app = this.#app;
    const keys = new Set(answers.map((p) => answerKey(p.answer!)));
    if (keys.size > 1) {
      const reference = check.reference === null ? null : check.participants.get(check.reference)!;
      const expected = reference === null ? null : answerKey(reference.answer!);
      const corrupted = answers.filter((p) => answerKey(p.answer!) !== expected).map((p) => p.nid);
      for (const nid of corrupted) check.participants.delete(nid);
      check.corrupted = true;
      app.logger.error(`partition ${check.partition} differs in ${corrupted.map((nid) => nidToString(nid)).join(', ')}`
        + ` between ${tidToHex(check.nextTid)} and ${tidToHex(check.maxTid)}`);
      app.masterConnection?.notify('NotifyPartitionCorrupted', [check.partition, corrupted]);
      if (check.participants.size < 2) {
        app.logger.warn(`check of partition ${check.partition} aborted`);
        this.#queue.length = 0;
        this.#next();
        return;
      }
    }
    const answer = check.participants.values().next().value!.answer!;
    const count = answer[0] as number;
    if (check.nextOid === null) {
      // TID phase: the serial phase starts over from min_tid once every TID was digested.
      if (count < CHECK_COUNT) {
        check.nextTid = check.minTid;
        check.nextOid = ZERO_OID;
      } else {
        check.nextTid = plusOne(answer[2] as Buffer);
      }
    } else {
      if (count < CHECK_COUNT) {
        this.#done(check);
        return;
      }
      check.nextTid = answer[2] as Buffer;
      check.nextOid = plusOne(answer[4] as Buffer);
    }
    this.#nextRange(check);
  }

  #done(check: Check): void {
    const { logger } = this.#app;
    const nids = [...check.participants.keys()].map((nid) => nidToString(nid)).join(', ');
    if (check.corrupted) logger.warn(`partition ${check.partition}: remaining replicas (${nids}) identical up to ${tidToHex(check.maxTid)}`);
    else logger.info(`partition ${check.partition}: replicas identical up to ${tidToHex(check.maxTid)}`);
    this.#next();
  }
}

function sameAddress(a: Address, b: Address): boolean {
  return a.host === b.host && a.port === b.port;
}

/** Answers compare by value (counts, digests, last ids). */
function answerKey(args: readonly unknown[]): string {
  return args.map((value) => (Buffer.isBuffer(value) ? value.toString('hex') : String(value))).join(':');
}
