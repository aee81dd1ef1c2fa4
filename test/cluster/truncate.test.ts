// A cluster of real processes truncated with `neoctl truncate`: the transactions after the
// given TID are gone for a new client, those before are intact, and commits go on.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import { after, describe, it } from 'node:test';
import { POSKeyError, openStorage } from '../../src/index.js';
import type { NeoStorage } from '../../src/index.js';
import { formatAddress } from '../../src/core/address.js';
import { u64 } from '../../src/protocol/ids.js';
import { TestCluster, waitClusterState } from '../helpers/cluster.js';
import { PROJECT_ROOT } from '../helpers/spec.js';

const NEOCTL = resolve(PROJECT_ROOT, 'dist', 'src', 'cli', 'neoctl.js');
const TRANSACTIONS = 5;
const KEPT = 3;

async function commit(storage: NeoStorage, i: number, writes: [Buffer, Buffer | null, Buffer][]): Promise<Buffer> {
  const txn = { user: 'test', description: `transaction ${i}`, extension: {} };
  await storage.tpcBegin(txn);
  for (const [oid, serial, data] of writes) await storage.store(oid, serial, data, txn);
  await storage.tpcVote(txn);
  return storage.tpcFinish(txn);
}

describe('neoctl truncate on a cluster of real processes', () => {
  const cluster = new TestCluster();
  after(() => cluster.destroy());

  it('drops the transactions after the TID and keeps the others', async () => {
    const master = await cluster.startMaster({ partitions: 4, replicas: 1, autostart: 2 });
    await cluster.startStorage(0, master.address);
    await cluster.startStorage(1, master.address);
    const admin = await cluster.startAdmin(master.address);
    await waitClusterState(admin.address, 'RUNNING');
    const uri = `neo://${cluster.name}@${formatAddress(master.address)}`;

    // Transaction i creates object i; transaction 4 also modifies object 1.
    const oids: Buffer[] = [];
    const tids: Buffer[] = [];
    const writer = await openStorage(uri);
    try {
      for (let i = 1; i <= TRANSACTIONS; i++) {
        const oid = await writer.newOid();
        oids.push(oid);
        const writes: [Buffer, Buffer | null, Buffer][] = [[oid, null, Buffer.from(`object ${i}`)]];
        if (i === 4) writes.push([oids[0]!, tids[0]!, Buffer.from('object 1, modified by 4')]);
        tids.push(await commit(writer, i, writes));
      }
    } finally {
      await writer.close();
    }
    const truncateTid = tids[KEPT - 1]!;

    const { stdout } = await promisify(execFile)(process.execPath, [
      NEOCTL, '-a', formatAddress(admin.address), 'truncate', `tid:${u64(truncateTid)}`,
    ]);
    assert.equal(stdout, '');
    await waitClusterState(admin.address, 'RUNNING');
    assert.match(master.log(), /truncating the database after/);
    assert.match(master.log(), /database truncated after/);

    const reader = await openStorage(uri);
    try {
      assert.deepEqual(await reader.lastTransaction(), truncateTid);
      for (let i = 1; i <= KEPT; i++) {
        const loaded = await reader.load(oids[i - 1]!);
        assert.equal(loaded.data.toString(), `object ${i}`, `object ${i} as committed by transaction ${i}`);
        assert.deepEqual(loaded.serial, tids[i - 1]);
      }
      for (let i = KEPT + 1; i <= TRANSACTIONS; i++) {
        await assert.rejects(reader.load(oids[i - 1]!), POSKeyError, `object ${i} is gone`);
      }
      // Commits go on after the truncation point.
      const tid = await commit(reader, 6, [[oids[0]!, tids[0]!, Buffer.from('object 1, modified by 6')]]);
      assert(u64(tid) > u64(truncateTid));
      assert.equal((await reader.load(oids[0]!)).data.toString(), 'object 1, modified by 6');
    } finally {
      await reader.close();
    }
  });
});
