// ZODB's IteratorStorage and ExtendedIteratorStorage scenarios (zodb-tests.md §6).

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { dumps } from '../../src/index.js';
import type { NeoStorage, TransactionMeta, TransactionRecord } from '../../src/index.js';
import { addTid, collect, dostore, hex, minpo, minpoValue, startCluster, undo, ZERO_TID } from './harness.js';
import type { ConformanceCluster } from './harness.js';

/** ZODB's iter_verify: transactions in `tids` order, one record of `oid` each, values from `first`. */
function verify(txns: TransactionRecord[], oid: Buffer, tids: Buffer[], first: number): void {
  assert.deepEqual(txns.map((t) => hex(t.tid)), tids.map(hex));
  txns.forEach((txn, i) => {
    assert.equal(txn.records.length, 1);
    const [record] = txn.records;
    assert.deepEqual(record!.oid, oid);
    assert.deepEqual(record!.tid, txn.tid);
    assert.equal(minpoValue(record!.data!), first + i);
  });
}

describe('ZODB IteratorStorage', () => {
  let cluster: ConformanceCluster;
  let storage: NeoStorage;
  before(async () => {
    cluster = await startCluster();
    storage = await cluster.open();
  });
  after(() => cluster?.destroy());

  async function revisions(values: number[]): Promise<{ oid: Buffer; tids: Buffer[] }> {
    const oid = await storage.newOid();
    const tids: Buffer[] = [];
    let revid = ZERO_TID;
    for (const data of values) tids.push(revid = (await dostore(storage, { oid, revid, data })).tid);
    return { oid, tids };
  }

  it('testSimpleIteration', async () => {
    const { oid, tids } = await revisions([11, 12, 13]);
    verify(await collect(storage.iterator(tids[0]!)), oid, tids, 11);
  });

  it('testUndoZombie', async () => {
    const { oid, tid } = await dostore(storage, { data: 94 });
    await undo(storage, tid);
    const txns = await collect(storage.iterator());
    const last = txns[txns.length - 1]!.records;
    const record = last[last.length - 1]!;
    assert.deepEqual(record.oid, oid);
    assert.equal(record.data, null);
  });

  it('testTransactionExtensionFromIterator', async () => {
    const { tid } = await dostore(storage, { extension: { foo: 1 } });
    const txns = await collect(storage.iterator(tid, tid));
    assert.equal(txns.length, 1);
    assert.deepEqual(txns[0]!.extension, { foo: 1 });
    // The stored bytes are returned, not a re-pickle: protocol 3 pickle of {'foo': 1}.
    assert.ok(txns[0]!.extensionBytes.equals(dumps({ foo: 1 })));
  });

  it('testIterationIntraTransaction', async () => {
    const t: TransactionMeta = {};
    await storage.tpcBegin(t);
    await storage.store(await storage.newOid(), ZERO_TID, minpo(1), t);
    await storage.tpcVote(t);
    try {
      await collect(storage.iterator());
    } finally {
      await storage.tpcFinish(t);
    }
  });

  it('testLoad_was_checkLoadEx', async () => {
    const { oid, tid } = await dostore(storage, { data: 42 });
    const txns = await collect(storage.iterator());
    const match = txns.filter((t) => t.tid.equals(tid)).flatMap((t) => t.records).filter((r) => r.oid.equals(oid) && r.tid.equals(tid));
    assert.equal(match.length, 1);
  });

  it('testIterateRepeatedly', async () => {
    const { tid } = await dostore(storage);
    const iterator = storage.iterator(tid, tid);
    assert.equal((await collect(iterator)).length, 1);
    assert.equal((await collect(iterator)).length, 0);
  });

  it('testIterateRecordsRepeatedly', async () => {
    const { tid } = await dostore(storage);
    const [txn] = await collect(storage.iterator(tid, tid));
    assert.equal([...txn!.records].length, 1);
    assert.equal([...txn!.records].length, 1);
  });

  it('testIterateWhileWriting', async () => {
    const { tid } = await dostore(storage);
    const iterator = storage.iterator(tid);
    const first = await iterator.next();
    assert.equal(first.done, false);
    await dostore(storage);
    assert.equal((await iterator.next()).done, true);
  });

  it('testExtendedIteration', async () => {
    const { oid, tids } = await revisions([11, 12, 13, 14]);
    const [r1, r2, r3, r4] = tids as [Buffer, Buffer, Buffer, Buffer];
    const between = (a: Buffer, b: Buffer): Buffer => addTid(a, Number((b.readBigUInt64BE() - a.readBigUInt64BE()) / 2n));
    const range = async (start: Buffer | null, stop: Buffer | null) => collect(storage.iterator(start, stop));
    verify(await range(r1, r4), oid, [r1, r2, r3, r4], 11);
    verify((await range(r3, null)).filter((t) => t.records.some((r) => r.oid.equals(oid))), oid, [r3, r4], 13);
    verify((await range(null, r2)).filter((t) => t.records.some((r) => r.oid.equals(oid))), oid, [r1, r2], 11);
    verify(await range(r2, r3), oid, [r2, r3], 12);
    verify(await range(r2, between(r3, r4)), oid, [r2, r3], 12);
    verify(await range(between(r1, r2), between(r3, r4)), oid, [r2, r3], 12);
    assert.equal((await range(r3, r2)).length, 0);
    verify(await range(r3, r3), oid, [r3], 13);
  });
});
