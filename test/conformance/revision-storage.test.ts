// ZODB's RevisionStorage scenarios (zodb-tests.md §4): loadSerial and loadBefore.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { POSKeyError, p64, u64 } from '../../src/index.js';
import type { NeoStorage, TransactionMeta } from '../../src/index.js';
import { addTid, dostore, minpo, minpoValue, startCluster, undo, ZERO_TID } from './harness.js';
import type { ConformanceCluster } from './harness.js';

describe('ZODB RevisionStorage', () => {
  let cluster: ConformanceCluster;
  let storage: NeoStorage;
  before(async () => {
    cluster = await startCluster();
    storage = await cluster.open();
  });
  after(() => cluster?.destroy());

  it('testLoadSerial', async () => {
    const oid = await storage.newOid();
    let revid = ZERO_TID;
    const revisions = new Map<Buffer, number>();
    for (let value = 31; value < 38; value++) {
      ({ tid: revid } = await dostore(storage, { oid, revid, data: value }));
      revisions.set(revid, value);
    }
    for (const [serial, value] of revisions) assert.equal(minpoValue(await storage.loadSerial(oid, serial)), value);
  });

  it('testLoadBefore', async () => {
    const oid = await storage.newOid();
    let revid = ZERO_TID;
    const revs: { tid: Buffer; value: number }[] = [];
    for (let value = 0; value < 10; value++) {
      // Two tid units at least between commits, so that a midpoint exists.
      ({ tid: revid } = await dostore(storage, { oid, revid, data: value }));
      revs.push({ tid: revid, value });
    }
    for (let i = 0; i + 1 < revs.length; i++) {
      const older = revs[i]!;
      const newer = revs[i + 1]!;
      const gap = u64(newer.tid) - u64(older.tid);
      assert.ok(gap >= 2n);
      const mid = p64(u64(older.tid) + gap / 2n);
      const result = await storage.loadBefore(oid, mid);
      assert.ok(result !== null);
      assert.equal(minpoValue(result.data), older.value);
      assert.deepEqual(result.serial, older.tid);
      assert.deepEqual(result.nextSerial, newer.tid);
    }
  });

  it('testLoadBeforeEdges', async () => {
    const oid = await storage.newOid();
    await assert.rejects(storage.loadBefore(oid, p64(0n)), POSKeyError);
    const { tid: r1 } = await dostore(storage, { oid, data: 1 });
    assert.equal(await storage.loadBefore(oid, p64(0n)), null);
    assert.equal(await storage.loadBefore(oid, r1), null);
    let result = await storage.loadBefore(oid, addTid(r1, 1));
    assert.deepEqual(result, { data: minpo(1), serial: r1, nextSerial: null });
    const { tid: r2 } = await dostore(storage, { oid, revid: r1, data: 2 });
    result = await storage.loadBefore(oid, addTid(r1, 1));
    assert.deepEqual(result, { data: minpo(1), serial: r1, nextSerial: r2 });
  });

  it('testLoadBeforeOld', async () => {
    const oid = await storage.newOid();
    let revid = ZERO_TID;
    const revs: Buffer[] = [];
    for (let value = 0; value < 50; value++) {
      ({ tid: revid } = await dostore(storage, { oid, revid, data: value }));
      revs.push(revid);
    }
    const result = await storage.loadBefore(oid, revs[12]!);
    assert.ok(result !== null);
    assert.equal(minpoValue(result.data), 11);
    assert.deepEqual(result.serial, revs[11]);
    assert.deepEqual(result.nextSerial, revs[12]);
  });

  it('testLoadBeforeUndo', async () => {
    const oid = await storage.newOid();
    let revid = ZERO_TID;
    for (let value = 0; value < 5; value++) ({ tid: revid } = await dostore(storage, { oid, revid, data: value }));
    const current: { tid: Buffer; value: number }[] = [];
    for (let i = 0; i < 4; i++) {
      const [latest] = await storage.undoLog(0, -1);
      const { tid } = await undo(storage, latest!.id);
      current.push({ tid, value: minpoValue((await storage.load(oid)).data) as number });
    }
    assert.deepEqual(current.map((c) => c.value), [3, 4, 3, 4]);
    current.forEach(({ tid, value }, i) => {
      if (i > 0) assert.ok(u64(tid) > u64(current[i - 1]!.tid), 'tids increase');
      void value;
    });
    for (let i = 0; i < current.length; i++) {
      const { tid, value } = current[i]!;
      const result = await storage.loadBefore(oid, addTid(tid, 1));
      assert.ok(result !== null);
      assert.equal(minpoValue(result.data), value);
      assert.deepEqual(result.serial, tid);
      assert.deepEqual(result.nextSerial, current[i + 1]?.tid ?? null);
    }
  });

  it('testLoadBeforeConsecutiveTids', async () => {
    // ZODB commits tids 1, 2, 3 in an empty storage; here: the three tids after the last one.
    const oid = await storage.newOid();
    const base = await storage.lastTransaction();
    let revid = ZERO_TID;
    for (let i = 1; i <= 3; i++) {
      const t: TransactionMeta = {};
      await storage.tpcBegin(t, addTid(base, i));
      await storage.store(oid, revid, minpo(i), t);
      await storage.tpcVote(t);
      revid = await storage.tpcFinish(t);
      assert.deepEqual(revid, addTid(base, i));
    }
    const result = await storage.loadBefore(oid, addTid(base, 2));
    assert.deepEqual(result, { data: minpo(1), serial: addTid(base, 1), nextSerial: addTid(base, 2) });
  });

  it('testLoadBeforeCreation', async () => {
    const oid1 = await storage.newOid();
    const oid2 = await storage.newOid();
    await dostore(storage, { oid: oid1 });
    const { tid } = await dostore(storage, { oid: oid2 });
    assert.equal(await storage.loadBefore(oid2, tid), null);
  });
});
