// A small pickle codec for transaction extensions (zodb-api.md §3): ZODB pickles the extension
// dict with protocol 3, and NEO stores those bytes verbatim. `dumps` writes what CPython's
// pickler writes for plain data (dicts, lists, str, bytes, int, float, bool, None), memo
// included, so that our commits are byte-identical to a Python client's; `loads` reads any
// protocol (0 to 5) as long as the pickle only builds such plain values.

/** A value that can travel in an extension dict. Python tuples come back as arrays. */
export type PickleValue =
  | null
  | boolean
  | number
  | bigint
  | string
  | Buffer
  | PickleValue[]
  | PickleDict;
export interface PickleDict {
  [key: string]: PickleValue;
}

export class PickleError extends Error {
  override readonly name = 'PickleError';
}

const PROTOCOL = 3;
/** CPython writes APPENDS/SETITEMS in batches of this many items. */
const BATCH_SIZE = 1000;

const OP = {
  MARK: 0x28, // (
  STOP: 0x2e, // .
  POP: 0x30, // 0
  POP_MARK: 0x31, // 1
  DUP: 0x32, // 2
  FLOAT: 0x46, // F
  INT: 0x49, // I
  BININT: 0x4a, // J
  BININT1: 0x4b, // K
  LONG: 0x4c, // L
  BININT2: 0x4d, // M
  NONE: 0x4e, // N
  UNICODE: 0x56, // V
  BINUNICODE: 0x58, // X
  APPEND: 0x61, // a
  DICT: 0x64, // d
  EMPTY_DICT: 0x7d, // }
  APPENDS: 0x65, // e
  GET: 0x67, // g
  BINGET: 0x68, // h
  LIST: 0x6c, // l
  EMPTY_LIST: 0x5d, // ]
  LONG_BINGET: 0x6a, // j
  PUT: 0x70, // p
  BINPUT: 0x71, // q
  LONG_BINPUT: 0x72, // r
  SETITEM: 0x73, // s
  TUPLE: 0x74, // t
  EMPTY_TUPLE: 0x29, // )
  SETITEMS: 0x75, // u
  BINFLOAT: 0x47, // G
  STRING: 0x53, // S
  BINSTRING: 0x54, // T
  SHORT_BINSTRING: 0x55, // U
  PROTO: 0x80,
  TUPLE1: 0x85,
  TUPLE2: 0x86,
  TUPLE3: 0x87,
  NEWTRUE: 0x88,
  NEWFALSE: 0x89,
  LONG1: 0x8a,
  LONG4: 0x8b,
  BINBYTES: 0x42, // B
  SHORT_BINBYTES: 0x43, // C
  SHORT_BINUNICODE: 0x8c,
  BINUNICODE8: 0x8d,
  BINBYTES8: 0x8e,
  EMPTY_SET: 0x8f,
  ADDITEMS: 0x90,
  FROZENSET: 0x91,
  MEMOIZE: 0x94,
  FRAME: 0x95,
  BYTEARRAY8: 0x96,
} as const;

// --- dumps -------------------------------------------------------------------------------------

class Writer {
  private readonly chunks: Buffer[] = [];
  /** Python memoizes by object identity; equal strings are the same object in typical dicts. */
  private readonly memo = new Map<unknown, number>();

  byte(b: number): void {
    this.chunks.push(Buffer.from([b]));
  }

  bytes(b: Buffer): void {
    this.chunks.push(b);
  }

  u32le(n: number): void {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(n, 0);
    this.chunks.push(b);
  }

  put(key: unknown): void {
    const index = this.memo.size;
    this.memo.set(key, index);
    if (index < 256) this.chunks.push(Buffer.from([OP.BINPUT, index]));
    else {
      this.byte(OP.LONG_BINPUT);
      this.u32le(index);
    }
  }

  /** Writes a BINGET for an already pickled object; false if it is not in the memo. */
  get(key: unknown): boolean {
    const index = this.memo.get(key);
    if (index === undefined) return false;
    if (index < 256) this.chunks.push(Buffer.from([OP.BINGET, index]));
    else {
      this.byte(OP.LONG_BINGET);
      this.u32le(index);
    }
    return true;
  }

  result(): Buffer {
    return Buffer.concat(this.chunks);
  }
}

function writeInt(w: Writer, n: bigint): void {
  if (n >= 0n && n < 0x100n) {
    w.bytes(Buffer.from([OP.BININT1, Number(n)]));
  } else if (n >= 0n && n < 0x10000n) {
    const b = Buffer.from([OP.BININT2, 0, 0]);
    b.writeUInt16LE(Number(n), 1);
    w.bytes(b);
  } else if (n >= -0x80000000n && n <= 0x7fffffffn) {
    const b = Buffer.alloc(5);
    b[0] = OP.BININT;
    b.writeInt32LE(Number(n), 1);
    w.bytes(b);
  } else {
    const encoded = encodeLong(n);
    if (encoded.length < 256) w.bytes(Buffer.from([OP.LONG1, encoded.length]));
    else {
      w.byte(OP.LONG4);
      w.u32le(encoded.length);
    }
    w.bytes(encoded);
  }
}

/** Two's complement little-endian, as short as possible (Python's encode_long). */
function encodeLong(n: bigint): Buffer {
  const bytes: number[] = [];
  let x = n;
  for (;;) {
    bytes.push(Number(x & 0xffn));
    x >>= 8n;
    const top = bytes[bytes.length - 1]!;
    if ((x === 0n && top < 0x80) || (x === -1n && top >= 0x80)) break;
  }
  return Buffer.from(bytes);
}

function writeValue(w: Writer, value: PickleValue): void {
  if (value === null) w.byte(OP.NONE);
  else if (value === true) w.byte(OP.NEWTRUE);
  else if (value === false) w.byte(OP.NEWFALSE);
  else if (typeof value === 'bigint') writeInt(w, value);
  else if (typeof value === 'number') {
    if (Number.isInteger(value) && !Object.is(value, -0)) writeInt(w, BigInt(value));
    else {
      const b = Buffer.alloc(9);
      b[0] = OP.BINFLOAT;
      b.writeDoubleBE(value, 1);
      w.bytes(b);
    }
  } else if (typeof value === 'string') {
    if (w.get(value)) return;
    const encoded = Buffer.from(value, 'utf8');
    w.byte(OP.BINUNICODE);
    w.u32le(encoded.length);
    w.bytes(encoded);
    w.put(value);
  } else if (Buffer.isBuffer(value)) {
    if (w.get(value)) return;
    if (value.length < 256) w.bytes(Buffer.from([OP.SHORT_BINBYTES, value.length]));
    else {
      w.byte(OP.BINBYTES);
      w.u32le(value.length);
    }
    w.bytes(value);
    w.put(value);
  } else if (Array.isArray(value)) {
    if (w.get(value)) return;
    w.byte(OP.EMPTY_LIST);
    w.put(value);
    writeBatches(w, value, OP.APPEND, OP.APPENDS, (item) => writeValue(w, item));
  } else if (typeof value === 'object') {
    if (w.get(value)) return;
    w.byte(OP.EMPTY_DICT);
    w.put(value);
    writeBatches(w, Object.entries(value), OP.SETITEM, OP.SETITEMS, ([k, v]) => {
      writeValue(w, k);
      writeValue(w, v);
    });
  } else {
    throw new PickleError(`cannot pickle a ${typeof value}`);
  }
}

/** CPython's _batch_appends/_batch_setitems: one item alone, else MARK ... APPENDS/SETITEMS. */
function writeBatches<T>(w: Writer, items: readonly T[], single: number, many: number, write: (item: T) => void): void {
  for (let start = 0; start < items.length; start += BATCH_SIZE) {
    const batch = items.slice(start, start + BATCH_SIZE);
    if (batch.length === 1) {
      write(batch[0]!);
      w.byte(single);
    } else {
      w.byte(OP.MARK);
      for (const item of batch) write(item);
      w.byte(many);
    }
  }
}

/** Pickles `value` with protocol 3, as CPython's `pickle.dumps(value, 3)`. */
export function dumps(value: PickleValue): Buffer {
  const w = new Writer();
  w.bytes(Buffer.from([OP.PROTO, PROTOCOL]));
  writeValue(w, value);
  w.byte(OP.STOP);
  return w.result();
}

/** The extension bytes of a transaction: empty for an empty dict, as ZODB does. */
export function dumpsExtension(extension: PickleDict): Buffer {
  return Object.keys(extension).length === 0 ? Buffer.alloc(0) : dumps(extension);
}

/** The extension dict of stored bytes: {} for empty bytes. */
export function loadsExtension(bytes: Buffer): PickleDict {
  if (bytes.length === 0) return {};
  const value = loads(bytes);
  if (value === null || typeof value !== 'object' || Array.isArray(value) || Buffer.isBuffer(value)) {
    throw new PickleError('the extension is not a dict');
  }
  return value;
}

// --- loads -------------------------------------------------------------------------------------

const MARK = Symbol('mark');
type StackItem = PickleValue | typeof MARK;

/** A dict read from a pickle: string keys become properties; other keys are refused. */
function dictKey(key: unknown): string {
  if (typeof key === 'string') return key;
  if (Buffer.isBuffer(key)) return key.toString('latin1');
  if (typeof key === 'number' || typeof key === 'bigint') return String(key);
  throw new PickleError('dict keys must be strings');
}

class Reader {
  pos = 0;
  readonly data: Buffer;
  constructor(data: Buffer) {
    this.data = data;
  }

  need(n: number): void {
    if (this.pos + n > this.data.length) throw new PickleError('truncated pickle');
  }

  u8(): number {
    this.need(1);
    return this.data[this.pos++]!;
  }

  take(n: number): Buffer {
    this.need(n);
    const b = this.data.subarray(this.pos, this.pos + n);
    this.pos += n;
    return Buffer.from(b);
  }

  u16(): number {
    const v = this.take(2).readUInt16LE(0);
    return v;
  }

  u32(): number {
    return this.take(4).readUInt32LE(0);
  }

  u64(): number {
    const v = this.take(8).readBigUInt64LE(0);
    if (v > BigInt(this.data.length)) throw new PickleError('truncated pickle');
    return Number(v);
  }

  line(): string {
    const end = this.data.indexOf(0x0a, this.pos);
    if (end < 0) throw new PickleError('truncated pickle');
    const text = this.data.subarray(this.pos, end).toString('latin1');
    this.pos = end + 1;
    return text;
  }
}

function decodeLong(b: Buffer): bigint | number {
  if (b.length === 0) return 0;
  let n = 0n;
  for (let i = b.length - 1; i >= 0; i--) n = (n << 8n) | BigInt(b[i]!);
  if (b[b.length - 1]! >= 0x80) n -= 1n << BigInt(8 * b.length);
  return smallest(n);
}

function smallest(n: bigint): bigint | number {
  return n >= BigInt(Number.MIN_SAFE_INTEGER) && n <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(n) : n;
}

/** Unpickles plain data (any protocol). Classes, globals and reduce are refused. */
export function loads(data: Buffer): PickleValue {
  const r = new Reader(data);
  const stack: StackItem[] = [];
  const memo = new Map<number, PickleValue>();
  const pop = (): PickleValue => {
    const v = stack.pop();
    if (v === undefined || v === MARK) throw new PickleError('stack underflow');
    return v as PickleValue;
  };
  const top = (): PickleValue => {
    const v = stack[stack.length - 1];
    if (v === undefined || v === MARK) throw new PickleError('stack underflow');
    return v as PickleValue;
  };
  const popMark = (): PickleValue[] => {
    const index = stack.lastIndexOf(MARK);
    if (index < 0) throw new PickleError('mark not found');
    const items = stack.splice(index) as PickleValue[];
    items.shift();
    return items;
  };
  const setItems = (dict: PickleValue, items: PickleValue[]): void => {
    if (dict === null || typeof dict !== 'object' || Array.isArray(dict) || Buffer.isBuffer(dict)) {
      throw new PickleError('SETITEM on a non-dict');
    }
    for (let i = 0; i + 1 < items.length; i += 2) dict[dictKey(items[i])] = items[i + 1]!;
  };
  const appendItems = (list: PickleValue, items: PickleValue[]): void => {
    if (!Array.isArray(list)) throw new PickleError('APPEND on a non-list');
    list.push(...items);
  };
  for (;;) {
    const op = r.u8();
    switch (op) {
      case OP.PROTO: r.u8(); break;
      case OP.FRAME: r.take(8); break;
      case OP.STOP: {
        const v = pop();
        if (r.pos !== data.length) throw new PickleError('data after STOP');
        return v;
      }
      case OP.MARK: stack.push(MARK); break;
      case OP.POP: pop(); break;
      case OP.POP_MARK: popMark(); break;
      case OP.DUP: stack.push(top()); break;
      case OP.NONE: stack.push(null); break;
      case OP.NEWTRUE: stack.push(true); break;
      case OP.NEWFALSE: stack.push(false); break;
      case OP.BININT1: stack.push(r.u8()); break;
      case OP.BININT2: stack.push(r.u16()); break;
      case OP.BININT: stack.push(r.take(4).readInt32LE(0)); break;
      case OP.LONG1: stack.push(decodeLong(r.take(r.u8()))); break;
      case OP.LONG4: stack.push(decodeLong(r.take(r.u32()))); break;
      case OP.INT: {
        const text = r.line();
        if (text === '01') stack.push(true);
        else if (text === '00') stack.push(false);
        else stack.push(smallest(BigInt(text)));
        break;
      }
      case OP.LONG: stack.push(smallest(BigInt(r.line().replace(/L$/, '')))); break;
      case OP.BINFLOAT: stack.push(r.take(8).readDoubleBE(0)); break;
      case OP.FLOAT: stack.push(Number(r.line())); break;
      case OP.BINUNICODE: stack.push(r.take(r.u32()).toString('utf8')); break;
      case OP.SHORT_BINUNICODE: stack.push(r.take(r.u8()).toString('utf8')); break;
      case OP.BINUNICODE8: stack.push(r.take(r.u64()).toString('utf8')); break;
      case OP.UNICODE: stack.push(unescapeRawUnicode(r.line())); break;
      // Python 2 str: its bytes, kept as text (ZODB 4 clients pickled extension keys that way).
      case OP.SHORT_BINSTRING: stack.push(r.take(r.u8()).toString('latin1')); break;
      case OP.BINSTRING: stack.push(r.take(r.u32()).toString('latin1')); break;
      case OP.STRING: stack.push(unquotePython2(r.line())); break;
      case OP.SHORT_BINBYTES: stack.push(r.take(r.u8())); break;
      case OP.BINBYTES: stack.push(r.take(r.u32())); break;
      case OP.BINBYTES8: stack.push(r.take(r.u64())); break;
      case OP.BYTEARRAY8: stack.push(r.take(r.u64())); break;
      case OP.EMPTY_DICT: stack.push({}); break;
      case OP.EMPTY_LIST: stack.push([]); break;
      case OP.EMPTY_TUPLE: stack.push([]); break;
      case OP.EMPTY_SET: stack.push([]); break;
      case OP.DICT: {
        const d: PickleDict = {};
        setItems(d, popMark());
        stack.push(d);
        break;
      }
      case OP.LIST: stack.push(popMark()); break;
      case OP.TUPLE: stack.push(popMark()); break;
      case OP.FROZENSET: stack.push(popMark()); break;
      case OP.TUPLE1: stack.push([pop()]); break;
      case OP.TUPLE2: { const b = pop(); const a = pop(); stack.push([a, b]); break; }
      case OP.TUPLE3: { const c = pop(); const b = pop(); const a = pop(); stack.push([a, b, c]); break; }
      case OP.APPEND: { const v = pop(); appendItems(top(), [v]); break; }
      case OP.APPENDS: case OP.ADDITEMS: { const items = popMark(); appendItems(top(), items); break; }
      case OP.SETITEM: { const v = pop(); const k = pop(); setItems(top(), [k, v]); break; }
      case OP.SETITEMS: { const items = popMark(); setItems(top(), items); break; }
      case OP.BINPUT: memo.set(r.u8(), top()); break;
      case OP.LONG_BINPUT: memo.set(r.u32(), top()); break;
      case OP.PUT: memo.set(Number(r.line()), top()); break;
      case OP.MEMOIZE: memo.set(memo.size, top()); break;
      case OP.BINGET: stack.push(memoGet(memo, r.u8())); break;
      case OP.LONG_BINGET: stack.push(memoGet(memo, r.u32())); break;
      case OP.GET: stack.push(memoGet(memo, Number(r.line()))); break;
      default:
        throw new PickleError(`unsupported pickle opcode 0x${op.toString(16)} at ${r.pos - 1}`);
    }
  }
}

function memoGet(memo: Map<number, PickleValue>, index: number): PickleValue {
  const v = memo.get(index);
  if (v === undefined) throw new PickleError(`memo key ${index} missing`);
  return v;
}

function unescapeRawUnicode(text: string): string {
  return text.replace(/\\u([0-9a-fA-F]{4})|\\U([0-9a-fA-F]{8})/g, (_m, u4?: string, u8?: string) =>
    String.fromCodePoint(parseInt((u4 ?? u8)!, 16)));
}

function unquotePython2(text: string): string {
  const quote = text[0];
  if ((quote !== "'" && quote !== '"') || text[text.length - 1] !== quote) throw new PickleError('bad STRING');
  return text.slice(1, -1).replace(/\\x([0-9a-fA-F]{2})|\\(.)/g, (_m, hex?: string, ch?: string) => {
    if (hex !== undefined) return String.fromCharCode(parseInt(hex, 16));
    return ({ n: '\n', t: '\t', r: '\r', '\\': '\\', "'": "'", '"': '"' } as Record<string, string>)[ch!] ?? `\\${ch}`;
  });
}
