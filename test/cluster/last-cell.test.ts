// Losing the last readable cell of a partition stops the service: clients are refused with a
// clear error while it lasts, and served again, with nothing lost, once the storage is back.

import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { openStorage } from '../../src/index.js';
import { TestCluster, waitClusterState } from '../helpers/cluster.js';

describe('losing the last readable cell of a partition', () => {
  const cluster = new TestCluster();
  after(() => cluster.destroy());

  it('refuses clients while the storage is down, then serves them again with every object', async () => {
    // replicas 0: each partition has a single cell.
    const master = await cluster.startMaster({ partitions: 4, replicas: 0, autostart: 2 });
    await cluster.startStorage(0, master.address);
    const storage1 = await cluster.startStorage(1, master.address);
    const admin = await cluster.startAdmin(master.address);
    await waitClusterState(admin.address, 'RUNNING');
    const uri = `neo://${cluster.name}@127.0.0.1:${master.address.port}`;
    const client = await openStorage(uri, { cacheSizeBytes: 0 });
    const written = new Map<string, Buffer>();
    try {
      for (let i = 0; i < 8; i++) {
        const txn = { user: '', description: `object ${i}`, extension: {} };
        const oid = await client.newOid();
        const data = Buffer.from(`value ${i}`);
        await client.tpcBegin(txn);
        await client.store(oid, null, data, txn);
        await client.tpcVote(txn);
        await client.tpcFinish(txn);
        written.set(oid.toString('hex'), data);
      }
    } finally {
      await client.close();
    }

    await cluster.kill(storage1);
    await waitClusterState(admin.address, 'RECOVERING');
    await assert.rejects(openStorage(uri, { openTimeoutMs: 1500 }), (error: Error) => {
      assert.match(error.message, /not ready \(not RUNNING yet\)/);
      return true;
    });

    await cluster.startStorage(1, master.address);
    await waitClusterState(admin.address, 'RUNNING');
    const again = await openStorage(uri, { cacheSizeBytes: 0 });
    try {
      for (const [oidHex, data] of written) {
        assert.ok((await again.load(Buffer.from(oidHex, 'hex'))).data.equals(data), oidHex);
      }
    } finally {
      await again.close();
    }
  });
});
