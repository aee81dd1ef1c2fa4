// ZODB's HistoryStorage scenario (zodb-tests.md §5).

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { POSKeyError } from '../../src/index.js';
import type { NeoStorage } from '../../src/index.js';
import { dostore, startCluster } from './harness.js';
import type { ConformanceCluster } from './harness.js';

describe('ZODB HistoryStorage', () => {
  let cluster: ConformanceCluster;
  let storage: NeoStorage;
  before(async () => {
    cluster = await startCluster();
    storage = await cluster.open();
  });
  after(() => cluster?.destroy());

  it('testSimpleHistory', async () => {
    // Tids keep only ~14 ns of precision of the clock: compare with a start rounded down.
    const start = Math.floor(Date.now() / 1000) - 1;
    const oid = await storage.newOid();
    await assert.rejects(storage.history(oid), POSKeyError);
    const { tid: revid1 } = await dostore(storage, { oid, data: 11 });
    const { tid: revid2 } = await dostore(storage, { oid, revid: revid1, data: 12 });
    const { tid: revid3 } = await dostore(storage, { oid, revid: revid2, data: 13 });
    const newestFirst = [revid3, revid2, revid1];
    for (let size = 1; size <= 3; size++) {
      const history = await storage.history(oid, size);
      assert.equal(history.length, size);
      history.forEach((entry, i) => {
        assert.deepEqual(entry.tid, newestFirst[i]);
        assert.deepEqual(entry.serial, newestFirst[i]);
        assert.ok(entry.time > start, `time ${entry.time} after the start ${start}`);
        if (i > 0) assert.ok(entry.time < history[i - 1]!.time, 'times strictly decrease');
      });
    }
  });
});
