// ZODB's ReadOnlyStorage scenarios (zodb-tests.md §10): a second client opened read-only.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ReadOnlyError } from '../../src/index.js';
import type { NeoStorage, TransactionMeta } from '../../src/index.js';
import { dostore, minpo, startCluster, ZERO_TID } from './harness.js';
import type { ConformanceCluster } from './harness.js';

describe('ZODB ReadOnlyStorage', () => {
  let cluster: ConformanceCluster;
  let readOnly: NeoStorage;
  const stored: { oid: Buffer; tid: Buffer }[] = [];
  before(async () => {
    cluster = await startCluster();
    const writer = await cluster.open();
    for (let i = 0; i < 10; i++) stored.push(await dostore(writer, { data: i }));
    writer.close();
    readOnly = await cluster.open({ readOnly: true });
  });
  after(() => cluster?.destroy());

  it('testReadMethods', async () => {
    assert.equal(readOnly.isReadOnly(), true);
    for (const { oid, tid } of stored) {
      const { data, serial } = await readOnly.load(oid);
      assert.deepEqual(serial, tid);
      assert.ok((await readOnly.loadSerial(oid, tid)).equals(data));
    }
  });

  it('testWriteMethods', async () => {
    await assert.rejects(readOnly.newOid(), ReadOnlyError);
    const t: TransactionMeta = {};
    await assert.rejects(readOnly.tpcBegin(t), ReadOnlyError);
    await assert.rejects(readOnly.store(ZERO_TID, ZERO_TID, minpo(1), t), ReadOnlyError);
    await assert.rejects(readOnly.undo(stored[0]!.tid, t), ReadOnlyError);
  });
});
