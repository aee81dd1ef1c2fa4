// Commits and loads against a cluster of real processes (1 master, 2 storages with replicas 1,
// SQLite), through the client library. Clients run in this process, each with its own
// connections.

import { openStorage } from '../src/index.js';
import type { NeoStorage } from '../src/index.js';
import { TestCluster, waitClusterState } from '../test/helpers/cluster.js';

export interface ClusterResult {
  commitsPerSec1: number;
  commitsPerSec4: number;
  coldLoadsPerSec1: number;
  coldLoadsPerSec4: number;
}

const OBJECT_BYTES = 100;
const LOAD_OBJECTS = 200;

function elapsedMs(start: bigint): number {
  return Number(process.hrtime.bigint() - start) / 1e6;
}

async function commitLoop(storage: NeoStorage, durationMs: number, oids: Buffer[]): Promise<number> {
  const data = Buffer.alloc(OBJECT_BYTES, 0x61);
  const start = process.hrtime.bigint();
  let count = 0;
  while (elapsedMs(start) < durationMs) {
    const txn = { user: 'bench', description: '', extension: {} };
    const oid = await storage.newOid();
    await storage.tpcBegin(txn);
    await storage.store(oid, null, data, txn);
    await storage.tpcVote(txn);
    await storage.tpcFinish(txn);
    oids.push(oid);
    count++;
  }
  return count;
}

async function rate(clients: NeoStorage[], durationMs: number, work: (s: NeoStorage) => Promise<number>): Promise<number> {
  const start = process.hrtime.bigint();
  const counts = await Promise.all(clients.map(work));
  return counts.reduce((a, b) => a + b, 0) / (elapsedMs(start) / 1000);
}

export async function benchCluster(durationMs: number): Promise<ClusterResult> {
  const cluster = new TestCluster('bench');
  try {
    const master = await cluster.startMaster({ partitions: 12, replicas: 1, autostart: 2 });
    await cluster.startStorage(0, master.address);
    await cluster.startStorage(1, master.address);
    const admin = await cluster.startAdmin(master.address);
    await waitClusterState(admin.address, 'RUNNING');
    const uri = `neo://${cluster.name}@127.0.0.1:${master.address.port}`;
    const clients = await Promise.all([0, 1, 2, 3].map(() => openStorage(uri, { cacheSizeBytes: 0 })));
    const oids: Buffer[] = [];
    try {
      const commitsPerSec1 = await rate(clients.slice(0, 1), durationMs, (s) => commitLoop(s, durationMs, oids));
      const commitsPerSec4 = await rate(clients, durationMs, (s) => commitLoop(s, durationMs, oids));
      const loadLoop = async (storage: NeoStorage) => {
        const start = process.hrtime.bigint();
        let count = 0;
        while (elapsedMs(start) < durationMs) {
          await storage.load(oids[(count * 7919) % Math.min(oids.length, LOAD_OBJECTS * 10)]!);
          count++;
        }
        return count;
      };
      const coldLoadsPerSec1 = await rate(clients.slice(0, 1), durationMs, loadLoop);
      const coldLoadsPerSec4 = await rate(clients, durationMs, loadLoop);
      return { commitsPerSec1, commitsPerSec4, coldLoadsPerSec1, coldLoadsPerSec4 };
    } finally {
      await Promise.all(clients.map((c) => c.close()));
    }
  } finally {
    await cluster.destroy();
  }
}
