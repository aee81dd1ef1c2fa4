// ZODB's TransactionalUndoStorage scenarios (zodb-tests.md §8), on raw records (no object layer:
// the DB-level scenarios are listed as not ported).

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { POSKeyError, UndoError } from '../../src/index.js';
import type { NeoStorage, TransactionMeta } from '../../src/index.js';
import { collect, dostore, idSet, loadValue, MAX_TID, minpo, startCluster, undo, ZERO_TID } from './harness.js';
import type { ConformanceCluster } from './harness.js';

describe('ZODB TransactionalUndoStorage', () => {
  let cluster: ConformanceCluster;
  let storage: NeoStorage;
  before(async () => {
    cluster = await startCluster();
    storage = await cluster.open();
  });
  after(() => cluster?.destroy());

  const iterateAll = () => collect(storage.iterator());

  /** One transaction storing several objects: [oid, serial, value][]. */
  async function storeMany(items: [Buffer, Buffer, number][]): Promise<Buffer> {
    const t: TransactionMeta = {};
    await storage.tpcBegin(t);
    for (const [oid, serial, value] of items) await storage.store(oid, serial, minpo(value), t);
    await storage.tpcVote(t);
    return storage.tpcFinish(t);
  }

  async function undoFails(id: Buffer): Promise<void> {
    const t: TransactionMeta = {};
    await storage.tpcBegin(t);
    try {
      await assert.rejects(async () => {
        await storage.undo(id, t);
        await storage.tpcVote(t);
      }, UndoError);
    } finally {
      await storage.tpcAbort(t);
    }
  }

  it('testSimpleTransactionalUndo', async () => {
    const oid = await storage.newOid();
    let { tid } = await dostore(storage, { oid, data: 23 });
    ({ tid } = await dostore(storage, { oid, revid: tid, data: 24 }));
    ({ tid } = await dostore(storage, { oid, revid: tid, data: 25 }));
    let info = await storage.undoInfo();
    assert.deepEqual(idSet((await undo(storage, info[0]!.id)).oids), idSet([oid]));
    assert.equal(await loadValue(storage, oid), 24);
    info = await storage.undoInfo();
    assert.deepEqual(idSet((await undo(storage, info[2]!.id)).oids), idSet([oid]));
    assert.equal(await loadValue(storage, oid), 23);
    info = await storage.undoInfo();
    assert.deepEqual(idSet((await undo(storage, info[4]!.id)).oids), idSet([oid]));
    await assert.rejects(storage.load(oid), POSKeyError);
    info = await storage.undoInfo();
    assert.deepEqual(idSet((await undo(storage, info[0]!.id)).oids), idSet([oid]));
    assert.equal(await loadValue(storage, oid), 23);
    await iterateAll();
  });

  it('testCreationUndoneGetTid', async () => {
    const { oid, tid } = await dostore(storage, { data: 1 });
    await undo(storage, tid);
    await assert.rejects(storage.getTid(oid), POSKeyError);
  });

  it('testUndoCreationBranch1', async () => {
    const oid = await storage.newOid();
    const { tid: t1 } = await dostore(storage, { oid, data: 11 });
    const { tid: t2 } = await dostore(storage, { oid, revid: t1, data: 12 });
    await undo(storage, t2);
    assert.equal(await loadValue(storage, oid), 11);
    await undo(storage, t1);
    await assert.rejects(storage.load(oid), POSKeyError);
    await assert.rejects(storage.loadBefore(oid, MAX_TID), POSKeyError);
    await iterateAll();
  });

  it('testUndoCreationBranch2', async () => {
    const oid = await storage.newOid();
    const { tid: t1 } = await dostore(storage, { oid, data: 11 });
    const { tid: t2 } = await dostore(storage, { oid, revid: t1, data: 12 });
    const { tid: u1 } = await undo(storage, t2);
    assert.equal(await loadValue(storage, oid), 11);
    await undo(storage, u1);
    assert.equal(await loadValue(storage, oid), 12);
    await iterateAll();
  });

  it('testTwoObjectUndo', async () => {
    const oid1 = await storage.newOid();
    const oid2 = await storage.newOid();
    const r1 = await storeMany([[oid1, ZERO_TID, 31], [oid2, ZERO_TID, 51]]);
    const r2 = await storeMany([[oid1, r1, 32], [oid2, r1, 52]]);
    assert.deepEqual(idSet((await undo(storage, r2)).oids), idSet([oid1, oid2]));
    assert.equal(await loadValue(storage, oid1), 31);
    assert.equal(await loadValue(storage, oid2), 51);
    await iterateAll();
  });

  it('testTwoObjectUndoAtOnce', async () => {
    const oid1 = await storage.newOid();
    const oid2 = await storage.newOid();
    const r1 = await storeMany([[oid1, ZERO_TID, 30], [oid2, ZERO_TID, 50]]);
    const r2 = await storeMany([[oid1, r1, 31], [oid2, r1, 51]]);
    const r3 = await storeMany([[oid1, r2, 32], [oid2, r2, 52]]);
    const both = await undo(storage, r3, r2);
    assert.deepEqual(idSet(both.oids), idSet([oid1, oid2]));
    assert.equal(await loadValue(storage, oid1), 30);
    assert.equal(await loadValue(storage, oid2), 50);
    await undo(storage, both.tid);
    assert.equal(await loadValue(storage, oid1), 32);
    assert.equal(await loadValue(storage, oid2), 52);
    await iterateAll();
  });

  it('testTwoObjectUndoAgain', async () => {
    const oid1 = await storage.newOid();
    const oid2 = await storage.newOid();
    const a = (await dostore(storage, { oid: oid1, data: 31 })).tid;
    const b = (await dostore(storage, { oid: oid2, data: 51 })).tid;
    const r2 = await storeMany([[oid1, a, 32], [oid2, b, 52]]);
    await undo(storage, r2);
    assert.equal(await loadValue(storage, oid1), 31);
    assert.equal(await loadValue(storage, oid2), 51);
    const r3 = await storeMany([[oid1, await storage.getTid(oid1), 33], [oid2, await storage.getTid(oid2), 53]]);
    const r4 = (await dostore(storage, { oid: oid1, revid: r3, data: 34 })).tid;
    await dostore(storage, { oid: oid2, revid: r3, data: 54 });
    const info = await storage.undoInfo();
    assert.deepEqual(info[1]!.id, r4);
    await undo(storage, info[1]!.id);
    assert.equal(await loadValue(storage, oid1), 33);
    assert.equal(await loadValue(storage, oid2), 54);
    await iterateAll();
  });

  it('testNotUndoable', async () => {
    const oid = await storage.newOid();
    const r51 = (await dostore(storage, { oid, data: 51 })).tid;
    const r52 = (await dostore(storage, { oid, revid: r51, data: 52 })).tid;
    const r53 = (await dostore(storage, { oid, revid: r52, data: 53 })).tid;
    await undoFails(r52);
    const oid2 = await storage.newOid();
    const r81 = await storeMany([[oid, r53, 81], [oid2, ZERO_TID, 91]]);
    await dostore(storage, { oid: oid2, revid: r81, data: 92 });
    await undoFails(r81);
    await iterateAll();
  });

  it('testTransactionalUndoAfterPack', { todo: 'NEO marks it an expected failure: undoInfo still lists the transactions before the pack time (their trans rows are kept)' }, async () => {
    const oid = await storage.newOid();
    let tid = (await dostore(storage, { oid, data: 50 })).tid;
    tid = (await dostore(storage, { oid, revid: tid, data: 51 })).tid;
    const packTime = Date.now() / 1000;
    await new Promise((r) => setTimeout(r, 20));
    tid = (await dostore(storage, { oid, revid: tid, data: 52 })).tid;
    tid = (await dostore(storage, { oid, revid: tid, data: 53 })).tid;
    const before = (await storage.undoInfo()).length;
    await storage.pack(packTime);
    assert.equal((await storage.undoInfo()).length, before - 2);
    assert.deepEqual(idSet((await undo(storage, (await storage.undoInfo())[0]!.id)).oids), idSet([oid]));
    assert.equal(await loadValue(storage, oid), 52);
  });

  it('testIndicesInUndoInfo / testIndicesInUndoLog', async () => {
    for (let i = 0; i < 26; i++) await dostore(storage, { data: i });
    for (const log of [(f?: number, l?: number) => storage.undoInfo(f, l), (f?: number, l?: number) => storage.undoLog(f, l)]) {
      const all = await log(0, 100000);
      assert.ok(all.length >= 27);
      assert.equal((await log(0, -1000000)).length, all.length);
      const ids = (entries: { id: Buffer }[]) => entries.map((e) => e.id.toString('hex'));
      assert.deepEqual(ids(await log()), ids(all.slice(0, 20)));
      assert.deepEqual(ids(await log(0, 1)), ids(all.slice(0, 1)));
      assert.deepEqual(ids(await log(0, -1)), ids(all.slice(0, 1)));
      assert.deepEqual(ids(await log(11, 17)), ids(all.slice(11, 17)));
      assert.deepEqual(ids(await log(11, -6)), ids(all.slice(11, 17)));
    }
  });

  it('testUndoLogMetadata', async () => {
    const oid = await storage.newOid();
    await dostore(storage, { oid, description: 't1', user: 'p3 u3', extension: { k2: 'this is some extended text' } });
    const [entry] = await storage.undoLog();
    assert.equal(entry!.description.toString(), 't1');
    assert.equal(entry!.user.toString(), 'p3 u3');
    assert.equal(entry!.extension.k2, 'this is some extended text');
  });

  it('testTransactionalUndoIterator', async () => {
    // Explicit consecutive tids (ZODB: 1..4) after the last one; 4 batches of 4 new objects.
    const base = await storage.lastTransaction();
    const batches: { tid: Buffer; oids: Buffer[] }[] = [];
    for (let b = 1; b <= 4; b++) {
      const oids = [await storage.newOid(), await storage.newOid(), await storage.newOid(), await storage.newOid()];
      const t: TransactionMeta = {};
      const tid = Buffer.alloc(8);
      tid.writeBigUInt64BE(base.readBigUInt64BE() + BigInt(b));
      await storage.tpcBegin(t, tid);
      for (const oid of oids) await storage.store(oid, ZERO_TID, minpo(b), t);
      await storage.tpcVote(t);
      assert.deepEqual(await storage.tpcFinish(t), tid);
      batches.push({ tid, oids });
    }
    const updates: Buffer[] = [];
    for (const { tid, oids } of batches) for (const oid of oids) updates.push((await dostore(storage, { oid, revid: tid, data: 100 })).tid);
    const undos: Buffer[] = [];
    for (let b = 3; b >= 0; b--) undos.push((await undo(storage, ...updates.slice(4 * b, 4 * b + 4))).tid);
    const txns = await collect(storage.iterator(batches[0]!.tid));
    assert.equal(txns.length, 4 + 16 + 4);
    for (const txn of txns.slice(0, 20)) for (const r of txn.records) assert.equal(r.dataTxn, null);
    txns.slice(20).forEach((txn, i) => {
      assert.equal(txn.records.length, 4);
      for (const r of txn.records) assert.deepEqual(r.dataTxn, batches[3 - i]!.tid);
    });
  });

  for (const name of ['testTransactionalUndoAfterPackWithObjectUnlinkFromRoot', 'testPackAfterUndoDeletion',
    'testPackAfterUndoManyTimes', 'testUndoMultipleConflictResolution', 'testUndoMultipleConflictResolutionReversed']) {
    it(name, { skip: 'needs the ZODB object layer (DB, Connection, persistent classes), not in NEO/TS yet' }, () => {});
  }
});
