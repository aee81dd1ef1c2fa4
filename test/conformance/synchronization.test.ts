// ZODB's SynchronizedStorage scenarios (zodb-tests.md §2): the commit state machine.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { StorageTransactionError } from '../../src/index.js';
import type { NeoStorage, TransactionMeta } from '../../src/index.js';
import { minpo, startCluster, ZERO_TID } from './harness.js';
import type { ConformanceCluster } from './harness.js';

// ZODB uses eight NUL bytes as a dummy oid and serial.
const OID = ZERO_TID;
const SERIAL = ZERO_TID;

describe('ZODB SynchronizedStorage', () => {
  let cluster: ConformanceCluster;
  let storage: NeoStorage;
  before(async () => {
    cluster = await startCluster();
    storage = await cluster.open();
  });
  after(() => cluster?.destroy());

  it('testStoreNotCommitting', async () => {
    await assert.rejects(storage.store(OID, SERIAL, minpo(1), {}), StorageTransactionError);
  });

  it('testStoreWrongTrans', async () => {
    const t: TransactionMeta = {};
    await storage.tpcBegin(t);
    await assert.rejects(storage.store(OID, SERIAL, minpo(1), {}), StorageTransactionError);
    await storage.tpcAbort(t);
  });

  it('testAbortNotCommitting', async () => {
    await storage.tpcAbort({});
  });

  it('testAbortWrongTrans', async () => {
    const t: TransactionMeta = {};
    await storage.tpcBegin(t);
    await storage.tpcAbort({});
    // The abort of another transaction was ignored: t is still being committed.
    await storage.store(await storage.newOid(), SERIAL, minpo(1), t);
    await storage.tpcAbort(t);
  });

  it('testFinishNotCommitting', async () => {
    await assert.rejects(storage.tpcFinish({}), StorageTransactionError);
  });

  it('testFinishWrongTrans', async () => {
    const t: TransactionMeta = {};
    await storage.tpcBegin(t);
    await assert.rejects(storage.tpcFinish({}), StorageTransactionError);
    await storage.tpcAbort(t);
  });

  it('testBeginCommitting', async () => {
    const t: TransactionMeta = {};
    await storage.tpcBegin(t);
    await storage.tpcAbort(t);
  });
});
