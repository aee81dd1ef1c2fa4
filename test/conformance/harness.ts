// Shared pieces of the ZODB conformance suite (zodb-tests.md §0): one real cluster per test file,
// MinPO records byte-compatible with ZODB's test pickles, and the `_dostore`/`_undo` helpers.

import assert from 'node:assert/strict';
import { openStorage } from '../../src/index.js';
import type { NeoStorage, OpenStorageOptions, TransactionMeta } from '../../src/index.js';
import { loads, p64, u64, ZERO_TID } from '../../src/index.js';
import { TestCluster, waitClusterState } from '../helpers/cluster.js';

export { ZERO_TID };
export const MAX_TID = Buffer.from('7fffffffffffffff', 'hex');

export interface ConformanceCluster {
  readonly cluster: TestCluster;
  readonly uri: string;
  /** A new client of the cluster (closed by `destroy`). */
  open(options?: OpenStorageOptions): Promise<NeoStorage>;
  destroy(): Promise<void>;
}

/** 1 master, `storages` SQLite storages (replicated when 2) and an admin, RUNNING. */
export async function startCluster(options: { storages?: 1 | 2; partitions?: number } = {}): Promise<ConformanceCluster> {
  const storages = options.storages ?? 1;
  const cluster = new TestCluster();
  const clients: NeoStorage[] = [];
  try {
    const master = await cluster.startMaster({ partitions: options.partitions ?? 3, replicas: storages - 1, autostart: storages });
    for (let i = 0; i < storages; i++) await cluster.startStorage(i, master.address);
    const admin = await cluster.startAdmin(master.address);
    await waitClusterState(admin.address, 'RUNNING');
    const uri = `neo://${cluster.name}@127.0.0.1:${master.address.port}`;
    return {
      cluster,
      uri,
      async open(openOptions = {}) {
        const storage = await openStorage(uri, openOptions);
        clients.push(storage);
        return storage;
      },
      async destroy() {
        for (const client of clients) client.close();
        await cluster.destroy();
      },
    };
  } catch (error) {
    await cluster.destroy();
    throw error;
  }
}

// --- MinPO records --------------------------------------------------------------------------

const PROTO3 = Buffer.from([0x80, 0x03]);

function unicode(text: string, memo: number): Buffer {
  const bytes = Buffer.from(text, 'utf8');
  const head = Buffer.alloc(5);
  head[0] = 0x58; // BINUNICODE
  head.writeUInt32LE(bytes.length, 1);
  return Buffer.concat([head, bytes, Buffer.from([0x71, memo])]); // BINPUT
}

/**
 * The class pickle `(('ZODB.tests.MinPO', 'MinPO'), None)` as ZODB's zodb_pickle writes it
 * (protocol 3, memo 0..3); the state pickle follows with the same pickler, so its memo goes on.
 */
const MINPO_CLASS = Buffer.concat([
  PROTO3, unicode('ZODB.tests.MinPO', 0), unicode('MinPO', 1),
  Buffer.from([0x86, 0x71, 2, 0x4e, 0x86, 0x71, 3, 0x2e]), // TUPLE2 BINPUT NONE TUPLE2 BINPUT STOP
]);

function pickleInt(value: number): Buffer {
  if (value >= 0 && value < 256) return Buffer.from([0x4b, value]); // BININT1
  if (value >= 0 && value < 65536) return Buffer.from([0x4d, value & 0xff, value >> 8]); // BININT2
  const b = Buffer.alloc(5);
  b[0] = 0x4a; // BININT
  b.writeInt32LE(value, 1);
  return b;
}

export type MinPOValue = number | string;

/** The data record of `MinPO(value)` (ints and strings: what the scenarios use). */
export function minpo(value: MinPOValue): Buffer {
  const encoded = typeof value === 'number' ? pickleInt(value) : unicode(value, 6);
  return Buffer.concat([
    MINPO_CLASS,
    PROTO3, Buffer.from([0x7d, 0x71, 4]), // EMPTY_DICT BINPUT
    unicode('value', 5), encoded, Buffer.from([0x73, 0x2e]), // SETITEM STOP
  ]);
}

/** The `value` of a MinPO record (zodb_unpickle). */
export function minpoValue(data: Buffer): MinPOValue {
  assert.ok(data.subarray(0, MINPO_CLASS.length).equals(MINPO_CLASS), 'not a MinPO record');
  const state = loads(data.subarray(MINPO_CLASS.length)) as { value: MinPOValue };
  return state.value;
}

// --- one-transaction helpers ------------------------------------------------------------------

export interface DoStore {
  oid?: Buffer;
  revid?: Buffer | null;
  /** A number n means MinPO(n); default MinPO(7). */
  data?: MinPOValue | Buffer;
  user?: string;
  description?: string;
  extension?: TransactionMeta['extension'];
  tid?: Buffer;
}

/** ZODB's `_dostore`: one whole transaction storing one object; returns its oid and the tid. */
export async function dostore(storage: NeoStorage, options: DoStore = {}): Promise<{ oid: Buffer; tid: Buffer }> {
  const oid = options.oid ?? await storage.newOid();
  const data = Buffer.isBuffer(options.data) ? options.data : minpo(options.data ?? 7);
  const txn: TransactionMeta = {
    ...(options.user === undefined ? {} : { user: options.user }),
    ...(options.description === undefined ? {} : { description: options.description }),
    ...(options.extension === undefined ? {} : { extension: options.extension }),
  };
  await storage.tpcBegin(txn, options.tid ?? null);
  try {
    await storage.store(oid, options.revid === undefined ? ZERO_TID : options.revid, data, txn);
    await storage.tpcVote(txn);
    return { oid, tid: await storage.tpcFinish(txn) };
  } catch (error) {
    await storage.tpcAbort(txn);
    throw error;
  }
}

/** ZODB's `_undo`: one transaction undoing each of `ids`; returns its tid and the oids reported. */
export async function undo(storage: NeoStorage, ...ids: Buffer[]): Promise<{ tid: Buffer; oids: Buffer[] }> {
  const txn: TransactionMeta = { description: 'undo' };
  await storage.tpcBegin(txn);
  try {
    const oids: Buffer[] = [];
    for (const id of ids) oids.push(...(await storage.undo(id, txn)).oids);
    oids.push(...await storage.tpcVote(txn));
    return { tid: await storage.tpcFinish(txn), oids };
  } catch (error) {
    await storage.tpcAbort(txn);
    throw error;
  }
}

/** The set of hex ids, for comparisons that ignore order and duplicates. */
export function idSet(ids: Iterable<Buffer>): string[] {
  return [...new Set([...ids].map((id) => id.toString('hex')))].sort();
}

export function hex(id: Buffer): string {
  return id.toString('hex');
}

export function addTid(tid: Buffer, n: number): Buffer {
  return p64(u64(tid) + BigInt(n));
}

/** Loads the current value of a MinPO object. */
export async function loadValue(storage: NeoStorage, oid: Buffer): Promise<MinPOValue> {
  return minpoValue((await storage.load(oid)).data);
}

/** Collects an async iterator. */
export async function collect<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of iterable) out.push(item);
  return out;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
