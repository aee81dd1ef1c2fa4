// Our own msgpack codec. NEO's Python nodes pack with msgpack.packb(use_bin_type=True) and we
// must reproduce those bytes exactly: the shortest integer forms, bin (never str) for bytes,
// float64 for every float, maps with bin/int/ext keys in insertion order, and ext types 0..4.
// No JavaScript msgpack library does all of that (see README), and NEO only uses a small subset.
//
// Value mapping (decode):
//   nil -> null, bool -> boolean, int -> number (bigint beyond 2^53), float -> number,
//   bin -> Buffer (a view into the received bytes, never copied), str -> string,
//   array -> unknown[], map -> Map (keys as decoded, insertion order kept),
//   ext -> whatever the ext decoder returns (by default an Ext).
// Encode is the reverse; a number is an int when it is integral and a float otherwise, so a
// whole float must be wrapped in Float64 (the packet schemas do that for float fields).

/** A msgpack ext value. Subclasses (NEO's enum items) keep `type` and `data` meaningful. */
export class Ext {
  readonly type: number;
  readonly data: Buffer;
  constructor(type: number, data: Buffer) {
    this.type = type;
    this.data = data;
  }
}

/** Forces float64 encoding of a number that happens to be integral (e.g. 1.0). */
export class Float64 {
  readonly value: number;
  constructor(value: number) {
    this.value = value;
  }
}

/** Malformed or unsupported msgpack input. */
export class MsgpackError extends Error {
  override readonly name = 'MsgpackError';
}

export type ExtDecoder = (type: number, data: Buffer) => unknown;

const defaultExtDecoder: ExtDecoder = (type, data) => new Ext(type, data);

// ---------------------------------------------------------------------------------------------
// Encoding

const INITIAL_BUFFER_BYTES = 256;

/** Appends msgpack items to a growing buffer. One Writer per encoded message. */
export class Writer {
  buf: Buffer;
  pos = 0;

  constructor(initialBytes = INITIAL_BUFFER_BYTES) {
    this.buf = Buffer.allocUnsafe(initialBytes);
  }

  /** The encoded bytes (a view: the Writer must not be used afterwards). */
  finish(): Buffer {
    return this.buf.subarray(0, this.pos);
  }

  ensure(extra: number): void {
    const needed = this.pos + extra;
    if (needed <= this.buf.length) return;
    // Grow to what is needed plus room, so that one large bin costs a single copy of itself.
    const grown = Buffer.allocUnsafe(Math.max(needed + INITIAL_BUFFER_BYTES, this.buf.length * 2));
    this.buf.copy(grown, 0, 0, this.pos);
    this.buf = grown;
  }

  nil(): void {
    this.ensure(1);
    this.buf[this.pos++] = 0xc0;
  }

  bool(value: boolean): void {
    this.ensure(1);
    this.buf[this.pos++] = value ? 0xc3 : 0xc2;
  }

  /** An integer in the shortest form, as Python's packer chooses it. */
  int(value: number): void {
    const buf = this.ensureRet(9);
    let pos = this.pos;
    if (value >= 0) {
      if (value < 0x80) {
        buf[pos++] = value;
      } else if (value < 0x100) {
        buf[pos++] = 0xcc;
        buf[pos++] = value;
      } else if (value < 0x10000) {
        buf[pos++] = 0xcd;
        buf.writeUInt16BE(value, pos);
        pos += 2;
      } else if (value < 0x100000000) {
        buf[pos++] = 0xce;
        buf.writeUInt32BE(value, pos);
        pos += 4;
      } else {
        buf[pos++] = 0xcf;
        buf.writeBigUInt64BE(BigInt(value), pos);
        pos += 8;
      }
    } else if (value >= -0x20) {
      buf[pos++] = value & 0xff;
    } else if (value >= -0x80) {
      buf[pos++] = 0xd0;
      buf.writeInt8(value, pos);
      pos += 1;
    } else if (value >= -0x8000) {
      buf[pos++] = 0xd1;
      buf.writeInt16BE(value, pos);
      pos += 2;
    } else if (value >= -0x80000000) {
      buf[pos++] = 0xd2;
      buf.writeInt32BE(value, pos);
      pos += 4;
    } else {
      buf[pos++] = 0xd3;
      buf.writeBigInt64BE(BigInt(value), pos);
      pos += 8;
    }
    this.pos = pos;
  }

  bigint(value: bigint): void {
    if (value >= -0x8000000000000000n && value <= 0xffffffffffffffffn) {
      if (value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER)) {
        this.int(Number(value));
        return;
      }
      this.ensure(9);
      if (value >= 0n) {
        this.buf[this.pos++] = 0xcf;
        this.buf.writeBigUInt64BE(value, this.pos);
      } else {
        this.buf[this.pos++] = 0xd3;
        this.buf.writeBigInt64BE(value, this.pos);
      }
      this.pos += 8;
      return;
    }
    throw new MsgpackError(`integer out of msgpack range: ${value}`);
  }

  float64(value: number): void {
    this.ensure(9);
    this.buf[this.pos++] = 0xcb;
    this.buf.writeDoubleBE(value, this.pos);
    this.pos += 8;
  }

  bin(value: Uint8Array): void {
    const length = value.length;
    this.ensure(length + 5);
    const buf = this.buf;
    if (length < 0x100) {
      buf[this.pos++] = 0xc4;
      buf[this.pos++] = length;
    } else if (length < 0x10000) {
      buf[this.pos++] = 0xc5;
      buf.writeUInt16BE(length, this.pos);
      this.pos += 2;
    } else {
      buf[this.pos++] = 0xc6;
      buf.writeUInt32BE(length, this.pos);
      this.pos += 4;
    }
    buf.set(value, this.pos);
    this.pos += length;
  }

  str(value: string): void {
    const length = Buffer.byteLength(value, 'utf8');
    this.ensure(length + 5);
    const buf = this.buf;
    if (length < 0x20) {
      buf[this.pos++] = 0xa0 | length;
    } else if (length < 0x100) {
      buf[this.pos++] = 0xd9;
      buf[this.pos++] = length;
    } else if (length < 0x10000) {
      buf[this.pos++] = 0xda;
      buf.writeUInt16BE(length, this.pos);
      this.pos += 2;
    } else {
      buf[this.pos++] = 0xdb;
      buf.writeUInt32BE(length, this.pos);
      this.pos += 4;
    }
    this.pos += buf.write(value, this.pos, 'utf8');
  }

  arrayHeader(length: number): void {
    this.ensure(5);
    if (length < 0x10) {
      this.buf[this.pos++] = 0x90 | length;
    } else if (length < 0x10000) {
      this.buf[this.pos++] = 0xdc;
      this.buf.writeUInt16BE(length, this.pos);
      this.pos += 2;
    } else {
      this.buf[this.pos++] = 0xdd;
      this.buf.writeUInt32BE(length, this.pos);
      this.pos += 4;
    }
  }

  mapHeader(length: number): void {
    this.ensure(5);
    if (length < 0x10) {
      this.buf[this.pos++] = 0x80 | length;
    } else if (length < 0x10000) {
      this.buf[this.pos++] = 0xde;
      this.buf.writeUInt16BE(length, this.pos);
      this.pos += 2;
    } else {
      this.buf[this.pos++] = 0xdf;
      this.buf.writeUInt32BE(length, this.pos);
      this.pos += 4;
    }
  }

  ext(type: number, data: Uint8Array): void {
    if (!Number.isInteger(type) || type < 0 || type > 127) {
      throw new MsgpackError(`ext type out of range: ${type}`);
    }
    const length = data.length;
    this.ensure(length + 6);
    const buf = this.buf;
    const fixCode = FIXEXT_CODES.get(length);
    if (fixCode !== undefined) {
      buf[this.pos++] = fixCode;
    } else if (length < 0x100) {
      buf[this.pos++] = 0xc7;
      buf[this.pos++] = length;
    } else if (length < 0x10000) {
      buf[this.pos++] = 0xc8;
      buf.writeUInt16BE(length, this.pos);
      this.pos += 2;
    } else {
      buf[this.pos++] = 0xc9;
      buf.writeUInt32BE(length, this.pos);
      this.pos += 4;
    }
    buf[this.pos++] = type;
    buf.set(data, this.pos);
    this.pos += length;
  }

  /** Any value, choosing the msgpack type from the JavaScript type (see the mapping above). */
  value(value: unknown): void {
    if (value === null || value === undefined) return this.nil();
    switch (typeof value) {
      case 'boolean':
        return this.bool(value);
      case 'number':
        return Number.isInteger(value) ? this.int(value) : this.float64(value);
      case 'bigint':
        return this.bigint(value);
      case 'string':
        return this.str(value);
    }
    if (value instanceof Uint8Array) return this.bin(value);
    if (Array.isArray(value)) {
      this.arrayHeader(value.length);
      for (const item of value) this.value(item);
      return;
    }
    if (value instanceof Map) {
      this.mapHeader(value.size);
      for (const [k, v] of value) {
        this.value(k);
        this.value(v);
      }
      return;
    }
    if (value instanceof Ext) return this.ext(value.type, value.data);
    if (value instanceof Float64) return this.float64(value.value);
    throw new MsgpackError(`cannot encode a value of type ${describe(value)}`);
  }

  private ensureRet(extra: number): Buffer {
    this.ensure(extra);
    return this.buf;
  }
}

const FIXEXT_CODES = new Map([
  [1, 0xd4],
  [2, 0xd5],
  [4, 0xd6],
  [8, 0xd7],
  [16, 0xd8],
]);

/** Encodes one value into a fresh buffer. */
export function encode(value: unknown): Buffer {
  const writer = new Writer();
  writer.value(value);
  return writer.finish();
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value === 'object') return value.constructor?.name ?? 'object';
  return typeof value;
}

// ---------------------------------------------------------------------------------------------
// Decoding

/** Thrown internally when the input ends in the middle of an item. */
class Incomplete {
  /** Total bytes (from the start of the buffer) needed before retrying makes sense. */
  needed = 0;
}
const INCOMPLETE = new Incomplete();

/** Decoding limits, as Python's unpacker has them (max_buffer_size = 64 MiB). */
export const MAX_ITEM_BYTES = 0x4000000;
const MAX_DEPTH = 64;

/**
 * Decodes items from `buf` starting at `pos`. Throws INCOMPLETE (with `needed` set) when the
 * buffer ends inside the item, MsgpackError when the bytes are not valid msgpack.
 */
class Reader {
  buf: Buffer = Buffer.alloc(0);
  pos = 0;
  end = 0;
  depth = 0;
  readonly extDecoder: ExtDecoder;
  readonly maxItemBytes: number;

  constructor(extDecoder: ExtDecoder, maxItemBytes: number) {
    this.extDecoder = extDecoder;
    this.maxItemBytes = maxItemBytes;
  }

  need(count: number): void {
    if (this.pos + count > this.end) {
      INCOMPLETE.needed = this.pos + count;
      throw INCOMPLETE;
    }
  }

  length(n: number): number {
    if (n > this.maxItemBytes) throw new MsgpackError(`item of ${n} bytes exceeds the limit`);
    return n;
  }

  value(): unknown {
    this.need(1);
    const buf = this.buf;
    const byte = buf[this.pos++]!;
    if (byte < 0x80) return byte;
    if (byte >= 0xe0) return byte - 0x100;
    if (byte < 0x90) return this.map(byte & 0x0f);
    if (byte < 0xa0) return this.array(byte & 0x0f);
    if (byte < 0xc0) return this.str(byte & 0x1f);
    let n: number;
    switch (byte) {
      case 0xc0:
        return null;
      case 0xc2:
        return false;
      case 0xc3:
        return true;
      case 0xc4:
        this.need(1);
        return this.bin(buf[this.pos++]!);
      case 0xc5:
        this.need(2);
        n = buf.readUInt16BE(this.pos);
        this.pos += 2;
        return this.bin(n);
      case 0xc6:
        this.need(4);
        n = buf.readUInt32BE(this.pos);
        this.pos += 4;
        return this.bin(this.length(n));
      case 0xc7:
        this.need(1);
        return this.ext(buf[this.pos++]!);
      case 0xc8:
        this.need(2);
        n = buf.readUInt16BE(this.pos);
        this.pos += 2;
        return this.ext(n);
      case 0xc9:
        this.need(4);
        n = buf.readUInt32BE(this.pos);
        this.pos += 4;
        return this.ext(this.length(n));
      case 0xca:
        this.need(4);
        this.pos += 4;
        return buf.readFloatBE(this.pos - 4);
      case 0xcb:
        this.need(8);
        this.pos += 8;
        return buf.readDoubleBE(this.pos - 8);
      case 0xcc:
        this.need(1);
        return buf[this.pos++]!;
      case 0xcd:
        this.need(2);
        this.pos += 2;
        return buf.readUInt16BE(this.pos - 2);
      case 0xce:
        this.need(4);
        this.pos += 4;
        return buf.readUInt32BE(this.pos - 4);
      case 0xcf:
        this.need(8);
        this.pos += 8;
        return safeNumber(buf.readBigUInt64BE(this.pos - 8));
      case 0xd0:
        this.need(1);
        this.pos += 1;
        return buf.readInt8(this.pos - 1);
      case 0xd1:
        this.need(2);
        this.pos += 2;
        return buf.readInt16BE(this.pos - 2);
      case 0xd2:
        this.need(4);
        this.pos += 4;
        return buf.readInt32BE(this.pos - 4);
      case 0xd3:
        this.need(8);
        this.pos += 8;
        return safeNumber(buf.readBigInt64BE(this.pos - 8));
      case 0xd4:
        return this.ext(1);
      case 0xd5:
        return this.ext(2);
      case 0xd6:
        return this.ext(4);
      case 0xd7:
        return this.ext(8);
      case 0xd8:
        return this.ext(16);
      case 0xd9:
        this.need(1);
        return this.str(buf[this.pos++]!);
      case 0xda:
        this.need(2);
        n = buf.readUInt16BE(this.pos);
        this.pos += 2;
        return this.str(n);
      case 0xdb:
        this.need(4);
        n = buf.readUInt32BE(this.pos);
        this.pos += 4;
        return this.str(this.length(n));
      case 0xdc:
        this.need(2);
        n = buf.readUInt16BE(this.pos);
        this.pos += 2;
        return this.array(n);
      case 0xdd:
        this.need(4);
        n = buf.readUInt32BE(this.pos);
        this.pos += 4;
        return this.array(this.length(n));
      case 0xde:
        this.need(2);
        n = buf.readUInt16BE(this.pos);
        this.pos += 2;
        return this.map(n);
      case 0xdf:
        this.need(4);
        n = buf.readUInt32BE(this.pos);
        this.pos += 4;
        return this.map(this.length(n));
    }
    throw new MsgpackError(`invalid msgpack type byte 0x${byte.toString(16)}`);
  }

  bin(length: number): Buffer {
    this.need(length);
    const start = this.pos;
    this.pos += length;
    // A view, not a copy. Buffer.from(arrayBuffer, ...) is notably cheaper than subarray (no
    // species lookup), which matters for the many 8-byte ids of small packets.
    return Buffer.from(this.buf.buffer, this.buf.byteOffset + start, length);
  }

  str(length: number): string {
    this.need(length);
    const start = this.pos;
    this.pos += length;
    return this.buf.toString('utf8', start, this.pos);
  }

  ext(length: number): unknown {
    this.need(length + 1);
    const type = this.buf.readInt8(this.pos);
    const start = this.pos + 1;
    this.pos = start + length;
    return this.extDecoder(type, this.buf.subarray(start, this.pos));
  }

  array(length: number): unknown[] {
    // Each element takes at least one byte: refuse impossible lengths before allocating.
    this.need(length);
    if (++this.depth > MAX_DEPTH) throw new MsgpackError('msgpack nesting too deep');
    const items = new Array<unknown>(length);
    for (let i = 0; i < length; i++) items[i] = this.value();
    this.depth--;
    return items;
  }

  map(length: number): Map<unknown, unknown> {
    this.need(length * 2);
    if (++this.depth > MAX_DEPTH) throw new MsgpackError('msgpack nesting too deep');
    const map = new Map<unknown, unknown>();
    for (let i = 0; i < length; i++) {
      const key = this.value();
      if (key instanceof Map || Array.isArray(key)) {
        throw new MsgpackError('unhashable map key (array or map)');
      }
      map.set(key, this.value());
    }
    this.depth--;
    return map;
  }
}

function safeNumber(value: bigint): number | bigint {
  return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER)
    ? Number(value)
    : value;
}

/** Decodes exactly one value from `bytes` (trailing bytes are an error). */
export function decode(bytes: Buffer, extDecoder: ExtDecoder = defaultExtDecoder): unknown {
  const reader = new Reader(extDecoder, MAX_ITEM_BYTES);
  reader.buf = bytes;
  reader.end = bytes.length;
  let value: unknown;
  try {
    value = reader.value();
  } catch (error) {
    if (error === INCOMPLETE) throw new MsgpackError('truncated msgpack input');
    throw error;
  }
  if (reader.pos !== bytes.length) throw new MsgpackError('trailing bytes after msgpack value');
  return value;
}

/**
 * Cuts a byte stream, arriving in chunks of any size, into msgpack values. Each value is
 * decoded once it is complete; a value larger than `maxItemBytes` is refused as soon as its
 * header says so, without buffering it.
 */
export class StreamDecoder {
  private readonly reader: Reader;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  /** Bytes the buffered input must reach before decoding can make progress. */
  private neededBytes = 0;

  constructor(extDecoder: ExtDecoder = defaultExtDecoder, maxItemBytes = MAX_ITEM_BYTES) {
    this.reader = new Reader(extDecoder, maxItemBytes);
  }

  /** Bytes received but not yet part of a decoded value. */
  get bufferedBytes(): number {
    return this.pendingBytes;
  }

  /**
   * Adds input and calls `onValue(value, size)` for every value it completes, `size` being its
   * encoded length. Throws MsgpackError on invalid input (the stream is then unusable).
   * `onValue` returning false stops decoding (what remains stays buffered).
   */
  push(chunk: Buffer, onValue: (value: unknown, size: number) => boolean | void): void {
    if (chunk.length === 0) return;
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    if (this.pendingBytes < this.neededBytes) return;
    this.drain(onValue);
  }

  /** Decodes what is already buffered (after a push was stopped by onValue). */
  drain(onValue: (value: unknown, size: number) => boolean | void): void {
    if (this.pendingBytes === 0) return;
    const reader = this.reader;
    reader.buf = this.pending.length === 1 ? this.pending[0]! : Buffer.concat(this.pending);
    reader.end = reader.buf.length;
    reader.pos = 0;
    this.neededBytes = 0;
    let stopped = false;
    try {
      while (reader.pos < reader.end && !stopped) {
        const start = reader.pos;
        reader.depth = 0;
        let value: unknown;
        try {
          value = reader.value();
        } catch (error) {
          if (error !== INCOMPLETE) throw error;
          reader.pos = start;
          this.neededBytes = INCOMPLETE.needed;
          if (this.neededBytes - start > reader.maxItemBytes) {
            throw new MsgpackError(`item of over ${reader.maxItemBytes} bytes`);
          }
          break;
        }
        const size = reader.pos - start;
        if (size > reader.maxItemBytes) {
          throw new MsgpackError(`item of ${size} bytes exceeds the limit of ${reader.maxItemBytes}`);
        }
        stopped = onValue(value, size) === false;
      }
    } finally {
      this.keepRest();
    }
  }

  private keepRest(): void {
    const reader = this.reader;
    const rest = reader.pos === 0 ? reader.buf : reader.buf.subarray(reader.pos);
    this.pending = rest.length > 0 ? [rest] : [];
    this.pendingBytes = rest.length;
    this.neededBytes = Math.max(0, this.neededBytes - reader.pos);
    reader.buf = EMPTY;
  }
}

const EMPTY = Buffer.alloc(0);
