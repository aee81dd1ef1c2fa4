// Packets on a byte stream: the handshake, then `[msg_id, code, args]` msgpack arrays with no
// other framing (protocol.md §1.2-1.3). PacketReader turns received chunks into checked packets;
// encodePacket writes one packet exactly as Python's packer does.

import { decodeEnumExt } from './enums.js';
import { MAX_ITEM_BYTES, MsgpackError, StreamDecoder, Writer } from './msgpack.js';
import { HANDSHAKE, HANDSHAKE_MAGIC, packetByCode, packetByName } from './packets.js';
import type { ArgsOf, PacketInfo, PacketName } from './packets.js';
import { ArgumentError } from './schema.js';

const MAX_MSG_ID = 0xffffffff;

export interface Packet {
  readonly msgId: number;
  readonly info: PacketInfo;
  /** Checked and converted arguments; `ArgsOf<info.name>` in wire order. */
  readonly args: unknown[];
  /** Encoded size in bytes. */
  readonly size: number;
}

/** The peer is not a NEO node of our protocol version: close without sending anything. */
export class HandshakeError extends Error {
  override readonly name = 'HandshakeError';
}

/** Bytes that are not a packet (bad msgpack, bad framing, unknown code): close, no Error packet. */
export class MalformedPacketError extends Error {
  override readonly name = 'MalformedPacketError';
}

/** A known packet with wrong arguments: answer Error(PROTOCOL_ERROR) with its id, then close. */
export class BadArgumentsError extends Error {
  override readonly name = 'BadArgumentsError';
  readonly msgId: number;
  readonly info: PacketInfo;
  constructor(msgId: number, info: PacketInfo, message: string) {
    super(message);
    this.msgId = msgId;
    this.info = info;
  }
}

export function encodePacket<N extends PacketName>(msgId: number, name: N, args: ArgsOf<N>): Buffer {
  return encodePacketInfo(msgId, packetByName(name), args as unknown[]);
}

/** Same as encodePacket, for a packet known by its info (e.g. when relaying). */
export function encodePacketInfo(msgId: number, info: PacketInfo, args: readonly unknown[]): Buffer {
  if (!Number.isInteger(msgId) || msgId < 0 || msgId > MAX_MSG_ID) {
    throw new TypeError(`invalid msg_id ${msgId}`);
  }
  const schemas = info.args;
  if (args.length !== schemas.length) {
    throw new TypeError(`${info.name} takes ${schemas.length} arguments, not ${args.length}`);
  }
  const writer = new Writer();
  writer.arrayHeader(3);
  writer.int(msgId);
  writer.int(info.code);
  writer.arrayHeader(schemas.length);
  for (let i = 0; i < schemas.length; i++) schemas[i]![1].write(writer, args[i]);
  return writer.finish();
}

/** Checks the outer shape and the arguments of a decoded msgpack value. */
export function checkPacket(value: unknown, size: number): Packet {
  if (!Array.isArray(value) || value.length !== 3) {
    throw new MalformedPacketError('a packet must be a 3-element array');
  }
  const [msgId, code, rawArgs] = value as [unknown, unknown, unknown];
  if (typeof msgId !== 'number' || !Number.isInteger(msgId) || msgId < 0 || msgId > MAX_MSG_ID) {
    throw new MalformedPacketError(`invalid msg_id ${String(msgId)}`);
  }
  const info = typeof code === 'number' ? packetByCode(code) : undefined;
  if (info === undefined) throw new MalformedPacketError(`unknown packet code ${String(code)}`);
  if (!Array.isArray(rawArgs)) throw new MalformedPacketError(`${info.name}: args must be an array`);
  const schemas = info.args;
  if (rawArgs.length !== schemas.length) {
    throw new BadArgumentsError(
      msgId,
      info,
      `${info.name} takes ${schemas.length} arguments, got ${rawArgs.length}`,
    );
  }
  // Converted in place: the decoded array is ours alone.
  const args = rawArgs as unknown[];
  let i = 0;
  try {
    for (; i < schemas.length; i++) args[i] = schemas[i]![1].read(rawArgs[i]);
  } catch (error) {
    if (!(error instanceof ArgumentError)) throw error;
    throw new BadArgumentsError(msgId, info, `${info.name}.${error.within(schemas[i]![0]).message}`);
  }
  return { msgId, info, args, size };
}

/**
 * Reads one direction of a connection: first the peer's handshake, then packets. Input can be
 * cut anywhere. After an error the reader must not be used again (the connection is closed).
 */
export class PacketReader {
  private handshakeDone = false;
  private handshakeBytes = Buffer.alloc(0);
  private readonly decoder: StreamDecoder;

  constructor(maxPacketBytes = MAX_ITEM_BYTES) {
    this.decoder = new StreamDecoder(decodeEnumExt, maxPacketBytes);
  }

  get handshaken(): boolean {
    return this.handshakeDone;
  }

  /**
   * Feeds received bytes; calls `onPacket` for each complete packet, in order. Throws
   * HandshakeError, MalformedPacketError or BadArgumentsError. `onPacket` returning false
   * stops decoding this chunk (the connection is being aborted: the rest is dropped).
   */
  push(chunk: Buffer, onPacket: (packet: Packet) => boolean | void): void {
    if (!this.handshakeDone) {
      chunk = this.readHandshake(chunk);
      if (!this.handshakeDone) return;
    }
    try {
      this.decoder.push(chunk, (value, size) => onPacket(checkPacket(value, size)));
    } catch (error) {
      if (error instanceof MsgpackError) throw new MalformedPacketError(error.message);
      throw error;
    }
  }

  private readHandshake(chunk: Buffer): Buffer {
    const have = Buffer.concat([this.handshakeBytes, chunk]);
    const compared = Math.min(have.length, HANDSHAKE.length);
    if (!have.subarray(0, compared).equals(HANDSHAKE.subarray(0, compared))) {
      const magicLength = Math.min(compared, HANDSHAKE_MAGIC.length);
      const magicOk = have.subarray(0, magicLength).equals(HANDSHAKE_MAGIC.subarray(0, magicLength));
      throw new HandshakeError(
        magicOk && compared === HANDSHAKE.length
          ? `Protocol version mismatch (peer speaks version ${have[5]}, we speak 5)`
          : `not a NEO peer (handshake bytes ${have.subarray(0, compared).toString('hex')})`,
      );
    }
    if (have.length < HANDSHAKE.length) {
      this.handshakeBytes = have;
      return Buffer.alloc(0);
    }
    this.handshakeDone = true;
    this.handshakeBytes = Buffer.alloc(0);
    return have.subarray(HANDSHAKE.length);
  }
}
