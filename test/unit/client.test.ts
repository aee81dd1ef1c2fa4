import assert from 'node:assert/strict';
import { inflateSync } from 'node:zlib';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { NeoStorage } from '../../src/client/storage.js';
import type { NeoStorageOptions, TransactionMeta } from '../../src/client/storage.js';
import { ConflictError, POSKeyError, ReadConflictError, StorageConfigError, StorageTransactionError } from '../../src/client/errors.js';
import { parseNeoUri } from '../../src/client/uri.js';
import { Connection } from '../../src/net/connection.js';
import { NodeTypes } from '../../src/protocol/enums.js';
import { openStorage } from '../../src/index.js';
import { recordingLogger } from '../helpers/logger.js';
import { ZERO_TID, p64 } from '../../src/protocol/ids.js';
import { readTranscripts, fromTranscriptJson } from '../helpers/spec.js';
import { CLUSTER, FakeCluster, MASTER_ADDRESS } from './client-fake-cluster.js';

const ROOT = ZERO_TID;

function open(cluster: FakeCluster, options: Partial<NeoStorageOptions> = {}): Promise<NeoStorage> {
  return new NeoStorage({ env: cluster.env(), clusterName: CLUSTER, masterNodes: [MASTER_ADDRESS], ...options }).open();
}

async function commit(storage: NeoStorage, stores: [Buffer, Buffer, Buffer][], txn: TransactionMeta = {}): Promise<Buffer> {
  await storage.tpcBegin(txn);
  for (const [oid, serial, data] of stores) await storage.store(oid, serial, data, txn);
  await storage.tpcVote(txn);
  return storage.tpcFinish(txn);
}

/** The first transcript packet matching `pred`, with its args decoded. */
function transcriptPacket(file: string, pred: (line: { from: string; name: string }) => boolean): unknown[] {
  const step = readTranscripts().find((t) => t.file === file)!;
  const line = step.lines.find((l) => pred(l as never))!;
  return fromTranscriptJson(line.args) as unknown[];
}

describe('client storage', () => {
  let cluster: FakeCluster;
  const opened: NeoStorage[] = [];
  beforeEach(async () => {
    cluster = await FakeCluster.start();
  });
  afterEach(() => {
    for (const s of opened.splice(0)) s.close();
    cluster.stop();
  });
  const openTracked = async (options: Partial<NeoStorageOptions> = {}) => {
    const storage = await open(cluster, options);
    opened.push(storage);
    return storage;
  };

  it('opens: identifies as a client, gets the table and the last TID (transcript 02)', async () => {
    const storage = await openTracked();
    const [ident] = cluster.packets('RequestIdentification', 'master');
    assert.deepEqual(ident!.args, [NodeTypes.CLIENT, null, null, CLUSTER, null, new Map()]);
    const recorded = transcriptPacket('02-client-open.jsonl', (l) => l.from === 'client0' && l.name === 'RequestIdentification');
    // The transcript shows the cluster name as the bin it travels as.
    assert.deepEqual(ident!.args, [...recorded.slice(0, 3), (recorded[3] as Buffer).toString(), ...recorded.slice(4)]);
    assert.equal(cluster.packets('AskLastTransaction').length, 1);
    assert.deepEqual(await storage.lastTransaction(), ZERO_TID);
    assert.equal(storage.nodeId, -536870911);
  });

  it('raises POSKeyError for a missing object and identifies to storages with its id timestamp', async () => {
    const storage = await openTracked();
    await assert.rejects(storage.load(ROOT), POSKeyError);
    const [ident] = cluster.received.filter((r) => r.node.startsWith('storage') && r.name === 'RequestIdentification');
    assert.deepEqual(ident!.args, [NodeTypes.CLIENT, -536870911, null, CLUSTER, 1795309530.5 - 536870911, new Map()]);
    const [ask] = cluster.packets('AskObject');
    assert.deepEqual(ask!.args, [ROOT, null, p64(1n)]);
  });

  it('commits the root object as in transcript 02, byte for byte in the store', async () => {
    const storage = await openTracked();
    const recorded = transcriptPacket('02-client-open.jsonl', (l) => l.from === 'client0' && l.name === 'AskStoreObject');
    const rootData = inflateSync(recorded[4] as Buffer);
    const txn: TransactionMeta = { description: 'initial database creation' };
    await storage.tpcBegin(txn);
    await storage.store(ROOT, ZERO_TID, rootData, txn);
    assert.deepEqual(await storage.tpcVote(txn), []);
    let seen: Buffer | null = null;
    const tid = await storage.tpcFinish(txn, (t) => (seen = t));
    assert.deepEqual(seen, tid);
    assert.deepEqual(await storage.lastTransaction(), tid);

    const names = cluster.received.filter((r) => r.name !== 'RequestIdentification' && r.name !== 'AskObject').map((r) => `${r.node} ${r.name}`);
    assert.deepEqual(names, [
      'master AskLastTransaction',
      'master AskBeginTransaction',
      'storage1 AskStoreObject',
      'storage2 AskStoreObject',
      'storage1 AskStoreTransaction',
      'storage2 AskStoreTransaction',
      'master AskFinishTransaction',
    ]);
    const [store] = cluster.packets('AskStoreObject', 'storage1');
    const ttid = cluster.packets('AskFinishTransaction')[0]!.args[0] as Buffer;
    // Same oid, serial, compression, checksum and compressed bytes as NEO's Python client.
    assert.deepEqual(store!.args.slice(0, 6), recorded.slice(0, 6));
    assert.deepEqual(store!.args[6], ttid);
    const [meta] = cluster.packets('AskStoreTransaction', 'storage1');
    const recordedMeta = transcriptPacket('02-client-open.jsonl', (l) => l.from === 'client0' && l.name === 'AskStoreTransaction');
    assert.deepEqual(meta!.args.slice(1), recordedMeta.slice(1));
    assert.deepEqual(cluster.packets('AskFinishTransaction')[0]!.args, [ttid, [ROOT], [], [], null]);

    // Read back: from the cache, then from a storage by another client.
    assert.deepEqual(await storage.load(ROOT), { data: rootData, serial: tid });
    const other = await openTracked();
    assert.deepEqual(await other.load(ROOT), { data: rootData, serial: tid });
    assert.deepEqual(await other.loadSerial(ROOT, tid), rootData);
    assert.equal(await other.loadBefore(ROOT, tid), null);
  });

  it('sends the extension pickled as ZODB does (transcript 03) and allocates oids by 100', async () => {
    const storage = await openTracked();
    const oid = await storage.newOid();
    assert.deepEqual(oid, p64(1n));
    assert.deepEqual(await storage.newOid(), p64(2n));
    assert.deepEqual(cluster.packets('AskNewOIDs').map((r) => r.args), [[100]]);
    await commit(storage, [[oid, ZERO_TID, Buffer.from('small')]], { user: '/app alice', description: 'create objects', extension: { step: 3 } });
    const [meta] = cluster.packets('AskStoreTransaction', 'storage1');
    const recorded = transcriptPacket('03-create-objects.jsonl', (l) => l.from === 'client0' && l.name === 'AskStoreTransaction');
    assert.deepEqual(meta!.args.slice(1, 4), recorded.slice(1, 4));
    // Data not made smaller by zlib travels raw.
    assert.equal(cluster.packets('AskStoreObject')[0]!.args[2], 0);
  });

  it('raises ConflictError at vote and aborts on storages and master (transcript 06)', async () => {
    const a = await openTracked();
    const b = await openTracked();
    const first = await commit(a, [[ROOT, ZERO_TID, Buffer.from('v1')]]);
    await commit(a, [[ROOT, first, Buffer.from('v2')]]);
    const txn: TransactionMeta = {};
    await b.tpcBegin(txn);
    await b.store(ROOT, first, Buffer.from('v2 by b'), txn);
    const error = await b.tpcVote(txn).then(() => null, (e: unknown) => e);
    assert.ok(error instanceof ConflictError, String(error));
    assert.deepEqual(error.oid, ROOT);
    assert.deepEqual(error.oldSerial, first);
    await b.tpcAbort(txn);
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setImmediate(r));
    const aborts = cluster.packets('AbortTransaction');
    assert.deepEqual(aborts.map((r) => r.node).sort(), ['master', 'storage1', 'storage2']);
    assert.deepEqual(aborts.find((r) => r.node === 'master')!.args[1], [1, 2]);
    assert.deepEqual(aborts.find((r) => r.node === 'storage1')!.args[1], []);
  });

  it('resolves a conflict with the hook and stores the merged data against the new serial (transcript 05)', async () => {
    const add = (oid: Buffer, old: Buffer, committed: Buffer, mine: Buffer) => {
      assert.deepEqual(oid, ROOT);
      const n = Number(committed) + Number(mine) - Number(old);
      return Buffer.from(String(n));
    };
    const a = await openTracked();
    const b = await openTracked({ resolveConflict: add });
    const base = await commit(a, [[ROOT, ZERO_TID, Buffer.from('10')]]);
    const tidA = await commit(a, [[ROOT, base, Buffer.from('11')]]);
    const txn: TransactionMeta = {};
    await b.tpcBegin(txn);
    await b.store(ROOT, base, Buffer.from('12'), txn);
    assert.deepEqual(await b.tpcVote(txn), [ROOT]);
    const tidB = await b.tpcFinish(txn);
    assert.deepEqual(await b.load(ROOT), { data: Buffer.from('13'), serial: tidB });
    const restores = cluster.packets('AskStoreObject').filter((r) => r.from === b.nodeId);
    assert.deepEqual(restores.map((r) => r.args[1]), [base, base, tidA, tidA]);
  });

  it('raises ReadConflictError when a readCurrent object changed', async () => {
    const a = await openTracked();
    const first = await commit(a, [[ROOT, ZERO_TID, Buffer.from('x')]]);
    await commit(a, [[ROOT, first, Buffer.from('y')]]);
    const txn: TransactionMeta = {};
    await a.tpcBegin(txn);
    await a.checkCurrentSerialInTransaction(ROOT, first, txn);
    await assert.rejects(a.tpcVote(txn), ReadConflictError);
    await a.tpcAbort(txn);
  });

  it('delivers invalidations in commit order, before lastTransaction moves past them', async () => {
    const a = await openTracked();
    const b = await openTracked();
    const seen: string[] = [];
    b.onInvalidate((tid, oids) => seen.push(`${tid.toString('hex')}:${oids.map((o) => o.toString('hex')).join(',')}`));
    const iterator = b.invalidations();
    const t1 = await commit(a, [[ROOT, ZERO_TID, Buffer.from('1')]]);
    // b cached nothing yet; load the first revision to fill its cache.
    await b.sync();
    assert.deepEqual(await b.lastTransaction(), t1);
    assert.deepEqual((await b.load(ROOT)).data, Buffer.from('1'));
    const t2 = await commit(a, [[ROOT, t1, Buffer.from('2')]]);
    await b.sync();
    assert.deepEqual(seen, [`${t1.toString('hex')}:${ROOT.toString('hex')}`, `${t2.toString('hex')}:${ROOT.toString('hex')}`]);
    assert.deepEqual(await b.lastTransaction(), t2);
    // The cached revision was invalidated: the load goes to a storage and sees the new data.
    assert.deepEqual(await b.load(ROOT), { data: Buffer.from('2'), serial: t2 });
    assert.deepEqual((await b.loadBefore(ROOT, t2))!, { data: Buffer.from('1'), serial: t1, nextSerial: t2 });
    assert.deepEqual((await iterator.next()).value!.tid, t1);
    assert.deepEqual((await iterator.next()).value!.tid, t2);
    await iterator.return!();
  });

  it('refuses store outside a transaction and a second tpcBegin of the same one', async () => {
    const a = await openTracked();
    await assert.rejects(a.store(ROOT, ZERO_TID, Buffer.from('x'), {}), StorageTransactionError);
    const txn = {};
    await a.tpcBegin(txn);
    await assert.rejects(a.tpcBegin(txn), StorageTransactionError);
    await a.tpcAbort(txn);
  });

  it('lists history and iterates over transactions with their records', async () => {
    const a = await openTracked();
    const t1 = await commit(a, [[ROOT, ZERO_TID, Buffer.from('1')]], { description: 'one', extension: { n: 1 } });
    const t2 = await commit(a, [[ROOT, t1, Buffer.from('2')]], { description: 'two' });
    const history = await a.history(ROOT, 10);
    assert.deepEqual(history.map((h) => [h.tid, h.description.toString()]), [[t2, 'two'], [t1, 'one']]);
    assert.deepEqual(history[1]!.extension, { n: 1 });
    const records = [];
    for await (const txn of a.iterator()) records.push([txn.tid, txn.records.map((r) => r.data!.toString())]);
    assert.deepEqual(records, [[t1, ['1']], [t2, ['2']]]);
    await assert.rejects(a.history(p64(99n)), POSKeyError);
  });

  it('opens through openStorage with a neo:// URI', async () => {
    const storage = await openStorage('neo://golden@127.0.0.1:21000?cache-size=1MB', { env: cluster.env() });
    opened.push(storage);
    assert.equal(storage.cache.maxSizeBytes, 1024 * 1024);
    assert.deepEqual(await storage.lastTransaction(), ZERO_TID);
  });

  it('follows NotPrimaryMaster from a secondary master to the primary', async () => {
    const secondary = { host: '127.0.0.1', port: 21001 };
    const listener = await cluster.transport.listen(secondary, (stream) => {
      const conn = new Connection({ stream, handler: {
        RequestIdentification: (c) => {
          c.notify('NotPrimaryMaster', [1, [secondary, MASTER_ADDRESS]]);
          c.abort();
        },
      }, logger: recordingLogger(), label: 'secondary' });
      void conn;
    });
    try {
      const storage = await new NeoStorage({ env: cluster.env(), clusterName: CLUSTER, masterNodes: [secondary] }).open();
      opened.push(storage);
      assert.deepEqual(await storage.lastTransaction(), ZERO_TID);
    } finally {
      listener.close();
    }
  });

  it('reconnects to the master after losing it and forgets current cache entries', async () => {
    const a = await openTracked();
    const b = await openTracked();
    const t1 = await commit(a, [[ROOT, ZERO_TID, Buffer.from('1')]]);
    await b.sync();
    assert.deepEqual((await b.load(ROOT)).data, Buffer.from('1'));
    let flushed = 0;
    b.onInvalidateCache(() => flushed++);
    cluster.clients.get(b.nodeId!)!.close();
    await new Promise((r) => setImmediate(r));
    // Committed while b was away: b gets no invalidation for it.
    await commit(a, [[ROOT, t1, Buffer.from('2')]]);
    assert.deepEqual((await b.load(ROOT)).data, Buffer.from('2'));
    assert.equal(flushed, 1);
  });

  it('gives a lock back when a storage reports a deadlock (transcript 08)', async () => {
    const a = await openTracked();
    const t1 = await commit(a, [[ROOT, ZERO_TID, Buffer.from('1')]]);
    const txn: TransactionMeta = {};
    await a.tpcBegin(txn);
    await a.store(ROOT, t1, Buffer.from('mine'), txn);
    // store() resolves once sent: let the storages receive it.
    for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
    const ttid = cluster.packets('AskStoreObject').at(-1)!.args[6] as Buffer;
    const storage1 = cluster.storages[0]!;
    const relocks: unknown[][] = [];
    const conn = storage1.connections.at(-1)!;
    conn.handler = { ...conn.handler, AskRelockObject: (c, ...args) => {
      relocks.push(args);
      c.answer('AnswerRelockObject', [null]);
    } };
    conn.notify('NotifyDeadlock', [ttid, ROOT]);
    for (let i = 0; i < 20 && relocks.length === 0; i++) await new Promise((r) => setImmediate(r));
    await a.tpcVote(txn);
    // Once voting started, a deadlock report is ignored (the older transaction waits).
    conn.notify('NotifyDeadlock', [ttid, ROOT]);
    const tid = await a.tpcFinish(txn);
    assert.deepEqual(relocks, [[ttid, ROOT]]);
    assert.deepEqual(await a.load(ROOT), { data: Buffer.from('mine'), serial: tid });
  });

  it('commits concurrently from two clients and each sees the other', async () => {
    const a = await openTracked();
    const b = await openTracked();
    const [oidA, oidB] = [await a.newOid(), await b.newOid()];
    assert.notDeepEqual(oidA, oidB);
    const [ta, tb] = await Promise.all([
      commit(a, [[oidA, ZERO_TID, Buffer.from('a')]]),
      commit(b, [[oidB, ZERO_TID, Buffer.from('b')]]),
    ]);
    await a.sync();
    await b.sync();
    assert.deepEqual(await a.load(oidB), { data: Buffer.from('b'), serial: tb });
    assert.deepEqual(await b.load(oidA), { data: Buffer.from('a'), serial: ta });
  });
});

describe('client URI', () => {
  it('parses neo:// with several masters and options', () => {
    const parsed = parseNeoUri('neo://golden@127.0.0.1:21000,[::1]:21001?compress=false&cache-size=10MB&read_only=true&database_name=x');
    assert.equal(parsed.clusterName, 'golden');
    assert.deepEqual(parsed.masterNodes, [{ host: '127.0.0.1', port: 21000 }, { host: '::1', port: 21001 }]);
    assert.equal(parsed.compress, false);
    assert.equal(parsed.cacheSizeBytes, 10 * 1024 * 1024);
    assert.equal(parsed.readOnly, true);
    assert.equal(parsed.tls, null);
    assert.deepEqual(parsed.otherOptions, { database_name: 'x' });
  });

  it('takes TLS files for neos:// from the query or the environment', () => {
    const parsed = parseNeoUri('neos://c@127.0.0.1:1?ca=/ca.pem', { NEO_CERT: '/c.pem', NEO_KEY: '/k.pem' });
    assert.deepEqual(parsed.tls, { ca: '/ca.pem', cert: '/c.pem', key: '/k.pem' });
  });

  for (const [uri, why] of [
    ['zeo://c@127.0.0.1:1', 'scheme'],
    ['neo://127.0.0.1:1', 'no cluster'],
    ['neo://c@', 'no master'],
    ['neo://c@127.0.0.1', 'no port'],
    ['neo://c@example.com:1', 'host name'],
    ['neo://c@127.0.0.1:1/path', 'path'],
    ['neo://c@127.0.0.1:1?compress=maybe', 'bad boolean'],
    ['neo://c@127.0.0.1:1?cache-size=lots', 'bad size'],
    ['neo://c@127.0.0.1:1?ca=/x', 'TLS option on neo://'],
    ['neos://c@127.0.0.1:1', 'TLS files missing'],
  ]) {
    it(`refuses ${uri} (${why})`, () => {
      assert.throws(() => parseNeoUri(uri!, {}), StorageConfigError);
    });
  }
});
