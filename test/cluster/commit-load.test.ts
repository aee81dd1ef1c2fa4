// A cluster of real processes on 127.0.0.1: commits through the client library, loads them
// back, and loses nothing committed when every node is killed -9 and restarted.

import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { openStorage } from '../../src/index.js';
import { TestCluster, waitClusterState } from '../helpers/cluster.js';
import type { NodeProcess } from '../helpers/cluster.js';

const TRANSACTIONS = 20;

async function startCluster(cluster: TestCluster, fresh: boolean): Promise<{ master: NodeProcess; admin: NodeProcess }> {
  const master = await cluster.startMaster({ partitions: 4, replicas: 1, ...(fresh ? { autostart: 2 } : {}) });
  await cluster.startStorage(0, master.address);
  await cluster.startStorage(1, master.address);
  const admin = await cluster.startAdmin(master.address);
  await waitClusterState(admin.address, 'RUNNING');
  return { master, admin };
}

describe('a cluster of real processes', () => {
  const cluster = new TestCluster();
  after(() => cluster.destroy());
  const committed = new Map<string, { serial: Buffer; data: Buffer }>();

  it('commits transactions and loads every object back', async () => {
    const { master } = await startCluster(cluster, true);
    const storage = await openStorage(`neo://${cluster.name}@127.0.0.1:${master.address.port}`);
    try {
      for (let i = 0; i < TRANSACTIONS; i++) {
        const txn = { user: 'test', description: `transaction ${i}`, extension: { i } };
        const oid = await storage.newOid();
        const data = Buffer.from(`object ${i} `.repeat(1 + i));
        await storage.tpcBegin(txn);
        await storage.store(oid, Buffer.alloc(8), data, txn);
        await storage.tpcVote(txn);
        const tid = await storage.tpcFinish(txn);
        committed.set(oid.toString('hex'), { serial: tid, data });
      }
      for (const [oidHex, { serial, data }] of committed) {
        const loaded = await storage.load(Buffer.from(oidHex, 'hex'));
        assert.ok(loaded.data.equals(data), `data of ${oidHex}`);
        assert.ok(loaded.serial.equals(serial), `serial of ${oidHex}`);
      }
    } finally {
      await storage.close();
    }
  });

  it('loses nothing committed when every node is killed -9 and restarted', async () => {
    for (const node of [...cluster.nodes]) await cluster.kill(node);
    const { master } = await startCluster(cluster, false);
    const storage = await openStorage(`neo://${cluster.name}@127.0.0.1:${master.address.port}`);
    try {
      for (const [oidHex, { serial, data }] of committed) {
        const loaded = await storage.load(Buffer.from(oidHex, 'hex'));
        assert.ok(loaded.data.equals(data), `data of ${oidHex} after restart`);
        assert.ok(loaded.serial.equals(serial), `serial of ${oidHex} after restart`);
      }
    } finally {
      await storage.close();
    }
  });
});
