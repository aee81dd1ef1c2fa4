// Conflict checks of stores (transactions.md §5.2, §5.3, §9) in-process: a real master, two storage
// nodes on memory backends, two real clients. The first case (a partition that lost one of its two
// cells) guards the faults test's scenario without reproducing its lost update; the second one
// reproduces it: a conflict answered by a cell the client was still connecting to was dropped.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConflictError } from '../../src/client/errors.js';
import { NeoStorage } from '../../src/client/storage.js';
import { MasterApp } from '../../src/master/app.js';
import { memoryNetwork } from '../../src/net/memory.js';
import { ClusterStates, NodeStates } from '../../src/protocol/enums.js';
import { ZERO_TID, tidToHex } from '../../src/protocol/ids.js';
import { StorageApp } from '../../src/storage/app.js';
import { MemoryBackend, MemoryDatabase } from '../../src/storage/backends/memory.js';
import { inProcessEnv, until } from '../helpers/inprocess.js';

const CLUSTER = 'lost';
const NP = 1;
const LOCAL = '127.0.0.1';

/** A master, two storages on memory backends and the means to open clients; logs kept in `lines`. */
async function startCluster() {
  const network = memoryNetwork({ schedule: setImmediate });
  const lines: string[] = [];
  const master = new MasterApp(inProcessEnv(network, 'master', lines), {
    cluster: CLUSTER, bind: { host: LOCAL, port: 0 }, masters: [], partitions: NP, replicas: 1, autostart: 2, nid: undefined,
  });
  await master.start();
  const storages: StorageApp[] = [];
  for (let i = 0; i < 2; i++) {
    const app = new StorageApp(inProcessEnv(network, `storage${i}`, lines), {
      cluster: CLUSTER, masters: [master.address], bind: { host: LOCAL, port: 0 }, adapter: 'Memory', database: '',
    }, { backend: new MemoryBackend(new MemoryDatabase()) });
    await app.start();
    storages.push(app);
  }
  const clients: NeoStorage[] = [];
  const open = async (i: number): Promise<NeoStorage> => {
    const client = new NeoStorage({ env: inProcessEnv(network, `client${i}`, lines), clusterName: CLUSTER, masterNodes: [master.address], cacheSizeBytes: 0 });
    await client.open();
    clients.push(client);
    return client;
  };
  /** Runs the scenario once the cluster is running; prints the logs if it fails; stops everything. */
  const run = async (scenario: () => Promise<void>): Promise<void> => {
    try {
      await until(() => master.clusterState === ClusterStates.RUNNING, 'cluster running');
      await until(() => storages.every((s) => s.operational), 'storages operational');
      await scenario();
    } catch (error) {
      console.log(lines.filter((l) => !l.startsWith('debug')).join('\n'));
      throw error;
    } finally {
      for (const c of clients) c.close();
      for (const s of storages) s.stop();
      master.stop();
    }
  };
  return { master, storages, open, run };
}

/** Stores `value` for `oid` over `serial` and commits; aborts and rethrows on failure. */
async function commitOver(client: NeoStorage, oid: Buffer, serial: Buffer, value: string): Promise<Buffer> {
  const txn = {};
  await client.tpcBegin(txn);
  try {
    await client.store(oid, serial, Buffer.from(value), txn);
    await client.tpcVote(txn);
    return await client.tpcFinish(txn);
  } catch (error) {
    await client.tpcAbort(txn);
    throw error;
  }
}

describe('no lost update with a partition on one cell', () => {
  it('two clients storing the same oid over the same serial: one commits, the other conflicts', async () => {
    const { master, storages, open, run } = await startCluster();
    await run(async () => {
      const a = await open(0);
      const b = await open(1);
      const oid = await a.newOid();
      const txn0 = {};
      await a.tpcBegin(txn0);
      await a.store(oid, ZERO_TID, Buffer.from('0'), txn0);
      await a.tpcVote(txn0);
      let serial = await a.tpcFinish(txn0);
      await until(() => storages.every((s) => s.tm.size === 0), 'unlocked');
      const dead = storages[1]!;
      const deadNid = dead.nid!;
      dead.stop();
      await until(() => master.nodes.byNid(deadNid)?.state === NodeStates.DOWN, 'storage DOWN');
      for (let round = 0; round < 20; round++) {
        const attempt = (client: NeoStorage, value: string): Promise<Buffer | null> =>
          commitOver(client, oid, serial, value).catch((error: unknown) => {
            if (error instanceof ConflictError) return null;
            throw error;
          });
        const results = await Promise.all([attempt(a, `a${round}`), attempt(b, `b${round}`)]);
        const committed = results.filter((tid): tid is Buffer => tid !== null);
        assert.equal(committed.length, 1, `round ${round}: committed ${committed.map(tidToHex).join(', ')} over ${tidToHex(serial)}`);
        serial = committed[0]!;
        await until(() => storages[0]!.tm.size === 0, 'unlocked');
      }
    });
  });

  it('a conflict answered after another cell accepted the store, while connecting to it, is not lost', async () => {
    const { master, storages, open, run } = await startCluster();
    await run(async () => {
      const a = await open(0);
      const oid = await a.newOid();
      const commit = (client: NeoStorage, serial: Buffer, value: string) => commitOver(client, oid, serial, value);
      const base = await commit(a, ZERO_TID, '0');
      // The first cell a client writes to accepts stores without a lock, as an OUT_OF_DATE cell
      // being replicated does (transactions.md §5.3): only the other cell checks conflicts.
      const [first] = master.pt.cells(0);
      const lockless = storages.find((s) => s.nid === first!.nid)!;
      lockless.tm.replicating([0]);
      await commit(a, base, 'a');
      // A new client: its store reaches the lockless cell, which answers at once, while its
      // connection to the other cell is still being set up; that cell then reports the conflict.
      const b = await open(1);
      await assert.rejects(commit(b, base, 'b'), ConflictError, 'a store over a stale serial must conflict');
    });
  });
});
