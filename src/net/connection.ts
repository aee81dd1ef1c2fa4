// One NEO connection over a Stream: the handshake both ways, message ids (protocol.md §1.4),
// requests matched to their answers by id (answers may come out of order), notifications,
// Error packets, and dispatch of incoming packets to handler methods named after them.
// Everything runs to completion inside the stream's data callback: no awaits.

import type { Address, Env, Logger, Stream, TimerHandle, Timers } from '../core/env.js';
import {
  BadArgumentsError,
  HandshakeError,
  MalformedPacketError,
  PacketReader,
  encodePacket,
  encodePacketInfo,
} from '../protocol/codec.js';
import type { Packet } from '../protocol/codec.js';
import { ErrorCodes } from '../protocol/enums.js';
import type { ErrorCode } from '../protocol/enums.js';
import { NeoError, errorFromCode } from '../protocol/errors.js';
import { HANDSHAKE, packetByName } from '../protocol/packets.js';
import type { ArgsOf, PacketInfo, PacketName } from '../protocol/packets.js';

/** Handler methods are named after the packets they accept; a missing one means "unexpected". */
export type PacketMethods = {
  [N in PacketName]?: (conn: Connection, ...args: ArgsOf<N>) => void;
};

export interface Handler extends PacketMethods {
  /** The connection is closed (by either side, or failed); pending requests already failed. */
  connectionClosed?(conn: Connection, error?: Error): void;
  /** The connecting side's stream is established. */
  connectionCompleted?(conn: Connection): void;
}

/** What `ask` callbacks receive: the answer (or Error) packet, or null if the connection closed. */
export type AnswerCallback = (answer: Packet | null) => void;

/** The connection closed before the answer came. */
export class ConnectionClosedError extends Error {
  override readonly name = 'ConnectionClosedError';
}

const MSG_ID_MODULO = 0x100000000;
/** Bound on requests waiting for an answer on one connection (a peer that never answers). */
const MAX_PENDING_REQUESTS = 100_000;

/**
 * Noticing a dead or hung peer faster than TCP keep-alive (about 90 s in NEO): after
 * `intervalMs` without receiving anything, send a Ping (every NEO node answers it, Python ones
 * included); after `timeoutMs` without receiving anything at all, close the connection. Any
 * received byte counts as a sign of life, so a busy but alive peer is never declared dead.
 */
export interface Heartbeat {
  readonly timers: Timers;
  readonly intervalMs: number;
  readonly timeoutMs: number;
}

export interface ConnectionOptions {
  stream: Stream;
  handler: Handler;
  logger: Logger;
  /** A label for logs, e.g. the peer's address. */
  label: string;
  maxPacketBytes?: number;
  heartbeat?: Heartbeat;
}

/** The heartbeat of a node's connections, from its environment (none if not configured). */
export function heartbeatFor(env: Env): Heartbeat | undefined {
  const timeoutMs = env.peerTimeoutMs;
  if (timeoutMs === undefined || timeoutMs <= 0) return undefined;
  return { timers: env.timers, intervalMs: Math.max(250, timeoutMs / 4), timeoutMs };
}

/** The peer sent nothing (not even a Pong) for the heartbeat's timeout. */
export class PeerTimeoutError extends Error {
  override readonly name = 'PeerTimeoutError';
}

interface PendingRequest {
  readonly expected: PacketInfo;
  readonly callback: AnswerCallback;
}

export class Connection {
  handler: Handler;
  readonly stream: Stream;
  readonly logger: Logger;
  label: string;
  /** Free for the owner: e.g. the node this connection belongs to once identified. */
  peer: unknown = undefined;
  /** Id of the packet being dispatched, for `answer` (a delayed answer keeps it itself). */
  peerMsgId = 0;
  private nextMsgId = 0;
  private readonly reader: PacketReader;
  private readonly pending = new Map<number, PendingRequest>();
  private aborting = false;
  private closed = false;
  private heartbeatTimer: TimerHandle | null = null;
  /** Heartbeat ticks since something was last received. */
  private silentTicks = 0;
  /** Packets of the batch being built (see batch), or null. */
  private batched: Uint8Array[] | null = null;

  constructor(options: ConnectionOptions) {
    this.stream = options.stream;
    this.handler = options.handler;
    this.logger = options.logger;
    this.label = options.label;
    this.reader = new PacketReader(options.maxPacketBytes);
    this.stream.setHandlers({
      connect: () => this.handler.connectionCompleted?.(this),
      data: (chunk) => this.received(chunk),
      close: (error) => this.streamClosed(error),
    });
    // Both sides send the handshake at once, without waiting for the peer's (§1.2).
    this.stream.write(HANDSHAKE);
    if (options.heartbeat !== undefined) this.startHeartbeat(options.heartbeat);
  }

  private startHeartbeat({ timers, intervalMs, timeoutMs }: Heartbeat): void {
    const silentTicksAllowed = Math.max(1, Math.ceil(timeoutMs / intervalMs));
    this.heartbeatTimer = timers.every(intervalMs, () => {
      if (this.isAborting) return;
      this.silentTicks++;
      if (this.silentTicks > silentTicksAllowed) {
        const seconds = (timeoutMs / 1000).toFixed(1);
        this.logger.warn(`${this.label}: no answer from the peer for ${seconds} s: closing`);
        this.stream.destroy();
        this.streamClosed(new PeerTimeoutError(`${this.label}: peer silent for ${seconds} s`));
      } else if (this.silentTicks === 1) {
        this.ask('Ping', [], () => {});
      }
    });
  }

  get remoteAddress(): Address | null {
    return this.stream.remoteAddress;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Closing after an Error or on request: no more packets are processed or sent. */
  get isAborting(): boolean {
    return this.aborting || this.closed;
  }

  get pendingRequests(): number {
    return this.pending.size;
  }

  toString(): string {
    return this.label;
  }

  // --- sending -------------------------------------------------------------------------------

  /** Sends a request; `callback` gets its answer (or an Error packet, or null on close). */
  ask<N extends PacketName>(name: N, args: ArgsOf<N>, callback: AnswerCallback): number {
    const info = packetByName(name);
    if (info.kind !== 'request' && info.kind !== 'request-error') {
      throw new TypeError(`${name} is not a request`);
    }
    if (this.isAborting) {
      callback(null);
      return -1;
    }
    if (this.pending.size >= MAX_PENDING_REQUESTS) {
      throw new Error(`${this.label}: more than ${MAX_PENDING_REQUESTS} requests pending`);
    }
    const msgId = this.takeMsgId();
    this.pending.set(msgId, { expected: info.answer!, callback });
    this.write(encodePacketInfo(msgId, info, args as unknown[]));
    return msgId;
  }

  /**
   * A request as a promise: resolves with the answer's arguments, rejects with a NeoError for an
   * Error packet (ACK excepted, which resolves) or ConnectionClosedError.
   */
  request<N extends PacketName>(name: N, args: ArgsOf<N>): Promise<unknown[]> {
    return new Promise((resolve, reject) => {
      this.ask(name, args, (answer) => {
        if (answer === null) return reject(new ConnectionClosedError(`${this.label}: connection closed`));
        if (answer.info.name === 'Error') {
          const [code, message] = answer.args as ArgsOf<'Error'>;
          if (code === ErrorCodes.ACK.value) return resolve(answer.args);
          return reject(errorFromCode(code, message));
        }
        resolve(answer.args);
      });
    });
  }

  notify<N extends PacketName>(name: N, args: ArgsOf<N>): void {
    if (this.isAborting) return;
    this.write(encodePacket(this.takeMsgId(), name, args));
  }

  /** Answers the packet being dispatched. */
  answer<N extends PacketName>(name: N, args: ArgsOf<N>): void {
    this.answerTo(this.peerMsgId, name, args);
  }

  /** Answers the request of id `msgId` (a delayed answer, or a stream of replies). */
  answerTo<N extends PacketName>(msgId: number, name: N, args: ArgsOf<N>): void {
    if (this.isAborting) return;
    this.write(encodePacket(msgId, name, args));
  }

  /**
   * Runs `send`; the packets it sends leave in one write. A stream of many small replies (e.g. a
   * replication source's records) then costs one system call and one pass through Node's stream
   * machinery instead of one per packet, which is most of a small packet's cost.
   */
  batch(send: () => void): void {
    if (this.batched !== null) return send();
    const chunks: Uint8Array[] = [];
    this.batched = chunks;
    try {
      send();
    } finally {
      this.batched = null;
      if (chunks.length > 0) this.stream.write(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks));
    }
  }

  private write(chunk: Uint8Array): void {
    if (this.batched !== null) this.batched.push(chunk);
    else this.stream.write(chunk);
  }

  /** Sends Error(code, message) for request `msgId`; PROTOCOL_ERROR and NOT_READY then close. */
  answerError(code: ErrorCode, message: string, msgId = this.peerMsgId): void {
    if (this.isAborting) return;
    this.write(encodePacket(msgId, 'Error', [code.value, message]));
    if (code === ErrorCodes.PROTOCOL_ERROR || code === ErrorCodes.NOT_READY) this.abort();
  }

  /** Stops processing input, flushes what is queued, then closes (protocol.md §6.2). */
  abort(): void {
    if (this.isAborting) return;
    this.aborting = true;
    // What a batch holds so far was sent before the abort: it goes first.
    if (this.batched !== null && this.batched.length > 0) this.stream.write(Buffer.concat(this.batched.splice(0)));
    this.stream.end();
  }

  /** Closes at once. */
  close(): void {
    if (this.closed) return;
    this.aborting = true;
    this.stream.destroy();
  }

  private takeMsgId(): number {
    const msgId = this.nextMsgId;
    this.nextMsgId = (msgId + 1) % MSG_ID_MODULO;
    return msgId;
  }

  // --- receiving -----------------------------------------------------------------------------

  private received(chunk: Buffer): void {
    this.silentTicks = 0;
    if (this.isAborting) return;
    // The answers to the packets of one chunk leave together (e.g. a storage answering a run of
    // stores): one write instead of one per answer.
    this.batch(() => {
      try {
        this.reader.push(chunk, (packet) => {
          this.dispatch(packet);
          return !this.isAborting;
        });
      } catch (error) {
        this.refuseInput(error);
      }
    });
  }

  private refuseInput(error: unknown): void {
    if (error instanceof HandshakeError || error instanceof MalformedPacketError) {
      // No Error packet for these: the peer may not even speak NEO (§1.2, §1.10).
      this.logger.warn(`${this.label}: closing: ${error.message}`);
      this.close();
    } else if (error instanceof BadArgumentsError) {
      this.logger.warn(`${this.label}: closing: malformed ${error.info.name}: ${error.message}`);
      this.answerError(ErrorCodes.PROTOCOL_ERROR, `malformed ${error.info.name}: ${error.message}`, error.msgId);
    } else {
      throw error;
    }
  }

  private dispatch(packet: Packet): void {
    const { info } = packet;
    if (info.kind === 'answer' || info.kind === 'error') {
      const request = this.pending.get(packet.msgId);
      if (request !== undefined) {
        if (info.kind === 'error' || info === request.expected) {
          this.pending.delete(packet.msgId);
          request.callback(packet);
          return;
        }
      } else if (info.kind === 'error') {
        this.unsolicitedError(packet);
        return;
      }
      this.logger.warn(`${this.label}: unexpected answer ${info.name} (id ${packet.msgId})`);
      this.answerError(ErrorCodes.PROTOCOL_ERROR, `Unexpected answer: ${info.name}`, packet.msgId);
      return;
    }
    const method = this.handler[info.name] as ((conn: Connection, ...args: unknown[]) => void) | undefined;
    this.peerMsgId = packet.msgId;
    if (method === undefined && info.name === 'Ping') {
      // Every node answers Ping in every state (protocol.md §4.3); handlers may override it.
      this.answer('Pong', []);
      return;
    }
    if (method === undefined) {
      this.logger.warn(`${this.label}: unexpected packet ${info.name}`);
      this.answerError(ErrorCodes.PROTOCOL_ERROR, `unexpected packet ${info.name}`);
      return;
    }
    try {
      method.call(this.handler, this, ...packet.args);
    } catch (error) {
      if (!(error instanceof NeoError)) throw error;
      this.logger.info(`${this.label}: ${info.name} refused: ${error.toString()}`);
      this.answerError(error.code, error.message);
    }
  }

  /** An Error packet that answers nothing we asked: given to the handler, or logged. */
  private unsolicitedError(packet: Packet): void {
    const [code, message] = packet.args as ArgsOf<'Error'>;
    if (this.handler.Error !== undefined) {
      this.peerMsgId = packet.msgId;
      this.handler.Error(this, code, message);
      return;
    }
    const error = errorFromCode(code, message);
    this.logger.warn(`${this.label}: peer sent ${error.toString()}`);
    if (error.closesConnection) this.abort();
  }

  private streamClosed(error: Error | undefined): void {
    if (this.closed) return;
    this.closed = true;
    this.aborting = true;
    this.heartbeatTimer?.cancel();
    const pending = [...this.pending.values()];
    this.pending.clear();
    for (const request of pending) request.callback(null);
    this.handler.connectionClosed?.(this, error);
  }
}
