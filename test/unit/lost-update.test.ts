// Write locks while a partition has lost one of its two cells (transactions.md §5.2, §9),
// in-process: a real master, two storage nodes on memory backends, two real clients. This simple
// case does NOT reproduce the lost update of the faults test (it passes today); it guards it.

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

describe('no lost update with a partition on one cell', () => {
  it('two clients storing the same oid over the same serial: one commits, the other conflicts', async () => {
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
    try {
      await until(() => master.clusterState === ClusterStates.RUNNING, 'cluster running');
      await until(() => storages.every((s) => s.operational), 'storages operational');
      for (let i = 0; i < 2; i++) {
        const client = new NeoStorage({ env: inProcessEnv(network, `client${i}`, lines), clusterName: CLUSTER, masterNodes: [master.address], cacheSizeBytes: 0 });
        await client.open();
        clients.push(client);
      }
      const [a, b] = clients as [NeoStorage, NeoStorage];
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
        const attempt = async (client: NeoStorage, value: string): Promise<Buffer | null> => {
          const txn = {};
          await client.tpcBegin(txn);
          try {
            await client.store(oid, serial, Buffer.from(value), txn);
            await client.tpcVote(txn);
            return await client.tpcFinish(txn);
          } catch (error) {
            await client.tpcAbort(txn);
            if (error instanceof ConflictError) return null;
            throw error;
          }
        };
        const results = await Promise.all([attempt(a, `a${round}`), attempt(b, `b${round}`)]);
        const committed = results.filter((tid): tid is Buffer => tid !== null);
        assert.equal(committed.length, 1, `round ${round}: committed ${committed.map(tidToHex).join(', ')} over ${tidToHex(serial)}`);
        serial = committed[0]!;
        await until(() => storages[0]!.tm.size === 0, 'unlocked');
      }
    } catch (error) {
      console.log(lines.filter((l) => !l.startsWith('debug')).join('\n'));
      throw error;
    } finally {
      for (const c of clients) c.close();
      for (const s of storages) s.stop();
      master.stop();
    }
  });
});
