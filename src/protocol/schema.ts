// Argument shapes of NEO packets. Each Schema knows its textual form (the grammar of
// spec/packets.json), how to write a value with Python's exact encoding, and how to check and
// convert a decoded msgpack value. The packet table is built from these, so encoding, decoding,
// validation and the TypeScript types all come from one declaration.

import { EnumItem } from './enums.js';
import type { EnumInfo } from './enums.js';
import type { Writer } from './msgpack.js';

/** A node's address. `host` is numeric (IPv4 dotted quad or IPv6 text), never a DNS name. */
export interface Address {
  readonly host: string;
  readonly port: number;
}

export interface Schema<T> {
  /** The type in packets.json's grammar, e.g. "(bin8,bin8|nil)". */
  readonly repr: string;
  /** Writes `value`; throws a TypeError if it does not have this shape (a bug of ours). */
  write(writer: Writer, value: T): void;
  /** Checks and converts a decoded value; throws ArgumentError if it is wrong. */
  read(value: unknown): T;
}

export type SchemaType<S> = S extends Schema<infer T> ? T : never;

/**
 * A packet argument that does not have the shape the packet table says (peer's error). Paths
 * are only built on failure, on the way up, so that checking valid input allocates nothing.
 */
export class ArgumentError extends Error {
  override readonly name = 'ArgumentError';
  /** Where in the argument, e.g. "[2][0]". */
  path = '';
  readonly detail: string;
  constructor(detail: string) {
    super(detail);
    this.detail = detail;
  }

  within(step: string): ArgumentError {
    this.path = step + this.path;
    this.message = `${this.path}: ${this.detail}`;
    return this;
  }
}

function fail(expected: string, value: unknown): never {
  throw new ArgumentError(`expected ${expected}, got ${describe(value)}`);
}

/** Runs `read`, adding `step` to the path of an ArgumentError. */
function within<T>(step: string, read: () => T): T {
  try {
    return read();
  } catch (error) {
    if (error instanceof ArgumentError) throw error.within(step);
    throw error;
  }
}

function describe(value: unknown): string {
  if (value === null) return 'nil';
  if (Buffer.isBuffer(value)) return `bin of ${value.length} bytes`;
  if (typeof value === 'string') return 'str';
  if (Array.isArray(value)) return `array of ${value.length}`;
  if (value instanceof Map) return 'map';
  if (value instanceof EnumItem) return `${value.enumName}.${value.name}`;
  return typeof value;
}

function badWrite(repr: string, value: unknown): never {
  throw new TypeError(`cannot send ${describe(value)} as ${repr}`);
}

// --- primitives ------------------------------------------------------------------------------

export const bool: Schema<boolean> = {
  repr: 'bool',
  write(w, v) {
    if (typeof v !== 'boolean') badWrite('bool', v);
    w.bool(v);
  },
  read(v) {
    return typeof v === 'boolean' ? v : fail('bool', v);
  },
};

/** Every int of the protocol fits in [-2^31, 2^32) (protocol.md §0). */
function intIn(repr: string, min: number, max: number): Schema<number> {
  return {
    repr,
    write(w, v) {
      if (!Number.isInteger(v) || v < min || v > max) badWrite(repr, v);
      w.int(v);
    },
    read(v) {
      if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
        return fail(`${repr} in [${min}, ${max}]`, v);
      }
      return v;
    },
  };
}

export const int = intIn('int', -0x80000000, 0xffffffff);

export const float: Schema<number> = {
  repr: 'float',
  write(w, v) {
    if (typeof v !== 'number') badWrite('float', v);
    w.float64(v);
  },
  read(v) {
    return typeof v === 'number' ? v : fail('float', v);
  },
};

function binOf(repr: string, size: number | null): Schema<Buffer> {
  return {
    repr,
    write(w, v) {
      if (!(v instanceof Uint8Array) || (size !== null && v.length !== size)) badWrite(repr, v);
      w.bin(v);
    },
    read(v) {
      if (!Buffer.isBuffer(v) || (size !== null && v.length !== size)) return fail(repr, v);
      return v;
    },
  };
}

export const bin = binOf('bin', null);
export const bin8 = binOf('bin8', 8);
export const bin20 = binOf('bin20', 20);

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/** UTF-8 text carried in a bin, as Python 3 NEO sends str values (never msgpack str). */
export const text: Schema<string> = {
  repr: 'text',
  write(w, v) {
    if (typeof v !== 'string') badWrite('text', v);
    w.bin(Buffer.from(v, 'utf8'));
  },
  read(v) {
    if (!Buffer.isBuffer(v)) return fail('text (bin)', v);
    try {
      return strictUtf8.decode(v);
    } catch {
      return fail('valid UTF-8 text', v);
    }
  },
};

export const any: Schema<unknown> = {
  repr: 'any',
  write(w, v) {
    w.value(v);
  },
  read(v) {
    return v;
  },
};

export function enumOf<E extends string>(info: EnumInfo<E>): Schema<EnumItem<E>> {
  const repr = `enum:${info.enumName}`;
  return {
    repr,
    write(w, v) {
      if (!(v instanceof EnumItem) || v.enumName !== info.enumName) badWrite(repr, v);
      w.ext(v.type, v.data);
    },
    read(v) {
      if (!(v instanceof EnumItem) || v.enumName !== info.enumName) return fail(repr, v);
      return v as EnumItem<E>;
    },
  };
}

// --- combinators -----------------------------------------------------------------------------

export function nullable<T>(item: Schema<T>): Schema<T | null> {
  const repr = `${item.repr}|nil`;
  return {
    repr,
    write(w, v) {
      if (v === null) w.nil();
      else item.write(w, v);
    },
    read(v) {
      return v === null ? null : item.read(v);
    },
  };
}

type TupleOf<S extends readonly Schema<unknown>[]> = {
  -readonly [I in keyof S]: SchemaType<S[I]>;
};

export function tuple<const S extends readonly Schema<any>[]>(...items: S): Schema<TupleOf<S>> {
  const repr = `(${items.map((s) => s.repr).join(',')})`;
  const count = items.length;
  return {
    repr,
    write(w, v) {
      if (!Array.isArray(v) || v.length !== count) badWrite(repr, v);
      w.arrayHeader(count);
      for (let i = 0; i < count; i++) items[i]!.write(w, v[i]);
    },
    read(v) {
      if (!Array.isArray(v) || v.length !== count) return fail(`${count}-tuple ${repr}`, v);
      const out = new Array<unknown>(count);
      let i = 0;
      try {
        for (; i < count; i++) out[i] = items[i]!.read(v[i]);
      } catch (error) {
        if (error instanceof ArgumentError) throw error.within(`[${i}]`);
        throw error;
      }
      return out as TupleOf<S>;
    },
  };
}

export function list<T>(item: Schema<T>): Schema<T[]> {
  const repr = `[${item.repr}]`;
  return {
    repr,
    write(w, v) {
      if (!Array.isArray(v)) badWrite(repr, v);
      w.arrayHeader(v.length);
      for (const element of v) item.write(w, element);
    },
    read(v) {
      if (!Array.isArray(v)) return fail(repr, v);
      const out = new Array<T>(v.length);
      let i = 0;
      try {
        for (; i < v.length; i++) out[i] = item.read(v[i]);
      } catch (error) {
        if (error instanceof ArgumentError) throw error.within(`[${i}]`);
        throw error;
      }
      return out;
    },
  };
}

/** A msgpack map; entries keep the order in which they were received or inserted. */
export function map<K, V>(key: Schema<K>, value: Schema<V>): Schema<Map<K, V>> {
  const repr = `{${key.repr}:${value.repr}}`;
  return {
    repr,
    write(w, v) {
      if (!(v instanceof Map)) badWrite(repr, v);
      w.mapHeader(v.size);
      for (const [k, x] of v) {
        key.write(w, k);
        value.write(w, x);
      }
    },
    read(v) {
      if (!(v instanceof Map)) return fail(repr, v);
      const out = new Map<K, V>();
      for (const [k, x] of v) out.set(within(' key', () => key.read(k)), within(' value', () => value.read(x)));
      return out;
    },
  };
}

/** A named composite type of packets.json ("aliases"): same behaviour, its name as repr. */
export function alias<T>(name: string, definition: Schema<T>): Schema<T> & { definition: Schema<T> } {
  return { repr: name, write: definition.write, read: definition.read, definition };
}

// --- NEO's composite types -------------------------------------------------------------------

const nodeIdDefinition = intIn('int', -0x80000000, 0x7fffffff);

/** Signed 32-bit node identifier (protocol.md §3.2). */
export const NodeId = alias('NodeId', nodeIdDefinition);

const addressTuple = tuple(bin, intIn('int', 0, 0xffff));

/** `(host: bin, port: int)` on the wire; `{host, port}` for us. */
export const AddressSchema = alias<Address>('Address', {
  repr: addressTuple.repr,
  write(w, v) {
    if (v === null || typeof v !== 'object' || typeof v.host !== 'string') badWrite('Address', v);
    addressTuple.write(w, [Buffer.from(v.host, 'latin1'), v.port]);
  },
  read(v) {
    const [host, port] = addressTuple.read(v);
    return { host: host.toString('latin1'), port };
  },
});
