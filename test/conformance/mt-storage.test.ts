// ZODB's MTStorage scenarios (zodb-tests.md §3): concurrent "threads" are concurrent async tasks
// sharing one client. There is no object layer yet: a ZODB thread is modelled with raw records,
// a shared root mapping (name → oid, retried on ConflictError) and one mapping per thread.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ConflictError, dumps, loads } from '../../src/index.js';
import type { NeoStorage, PickleDict, TransactionMeta } from '../../src/index.js';
import { collect, minpo, minpoValue, sleep, startCluster, ZERO_TID } from './harness.js';
import type { ConformanceCluster } from './harness.js';

const COMMITS = 10;

describe('ZODB MTStorage', () => {
  let cluster: ConformanceCluster;
  let storage: NeoStorage;
  let root: Buffer;
  before(async () => {
    cluster = await startCluster();
    storage = await cluster.open();
    root = await storage.newOid();
    const t: TransactionMeta = {};
    await storage.tpcBegin(t);
    await storage.store(root, ZERO_TID, dumps({}), t);
    await storage.tpcVote(t);
    await storage.tpcFinish(t);
  });
  after(() => cluster?.destroy());

  /** ZODBClientThread: registers its mapping in the shared root, then makes 10 commits to it. */
  async function zodbThread(name: string): Promise<void> {
    const mine = await storage.newOid();
    for (let attempt = 0; ; attempt++) {
      assert.ok(attempt < 1000, 'too many conflicts');
      const { data, serial } = await storage.load(root);
      const state = loads(data) as PickleDict;
      state[name] = mine.toString('hex');
      const t: TransactionMeta = { description: `${name} joins` };
      await storage.tpcBegin(t);
      try {
        await storage.store(root, serial, dumps(state), t);
        await storage.store(mine, ZERO_TID, dumps({}), t);
        await storage.tpcVote(t);
        await storage.tpcFinish(t);
        break;
      } catch (error) {
        await storage.tpcAbort(t);
        if (!(error instanceof ConflictError)) throw error;
        await storage.sync();
      }
    }
    for (let i = 0; i < COMMITS; i++) {
      const { data, serial } = await storage.load(mine);
      const d = loads(data) as PickleDict;
      d[String(i)] = Date.now() / 1000;
      const t: TransactionMeta = {};
      await storage.tpcBegin(t);
      await storage.store(mine, serial, dumps(d), t);
      await storage.tpcVote(t);
      await storage.tpcFinish(t);
    }
    const d = loads((await storage.load(mine)).data) as PickleDict;
    assert.deepEqual(Object.keys(d).sort(), Array.from({ length: COMMITS }, (_, i) => String(i)).sort());
    const rootState = loads((await storage.load(root)).data) as PickleDict;
    assert.equal(rootState[name], mine.toString('hex'));
  }

  /** StorageClientThread (ext: interleaves random reads as ExtStorageClientThread). */
  async function storageThread(name: string, ext: boolean): Promise<void> {
    const done: { oid: Buffer; tid: Buffer }[] = [];
    const pause = () => sleep(Math.floor(Math.random() * 5));
    for (let i = 0; i < COMMITS; i++) {
      const oid = await storage.newOid();
      const t: TransactionMeta = {};
      await storage.tpcBegin(t);
      await pause();
      await storage.store(oid, null, minpo(`${name}:${i}`), t);
      await pause();
      await storage.tpcVote(t);
      await pause();
      const tid = await storage.tpcFinish(t);
      done.push({ oid, tid });
      if (ext) {
        const pick = done[Math.floor(Math.random() * done.length)]!;
        switch (Math.floor(Math.random() * 4)) {
          case 0: assert.deepEqual((await storage.load(pick.oid)).serial, pick.tid); break;
          case 1: assert.equal(minpoValue(await storage.loadSerial(pick.oid, pick.tid)), `${name}:${done.indexOf(pick)}`); break;
          case 2: await storage.undoLog(0, -20); break;
          default: await collect(storage.iterator()); break;
        }
      }
    }
    for (const [i, { oid, tid }] of done.entries()) {
      const { data, serial } = await storage.load(oid);
      assert.deepEqual(serial, tid);
      assert.equal(minpoValue(data), `${name}:${i}`);
    }
  }

  const run = (n: number, task: (name: string) => Promise<void>) =>
    Promise.all(Array.from({ length: n }, (_, i) => task(`T${i}_${n}`))).then(() => undefined);

  it('test2ZODBThreads', () => run(2, zodbThread));
  it('test7ZODBThreads', () => run(7, zodbThread));
  it('test2StorageThreads', () => run(2, (name) => storageThread(name, false)));
  it('test7StorageThreads', () => run(7, (name) => storageThread(name, false)));
  it('test4ExtStorageThread', () => run(4, (name) => storageThread(`ext${name}`, true)));
});
