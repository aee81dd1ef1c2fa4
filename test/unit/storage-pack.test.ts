// Background pack on storage nodes (transactions.md §17.3), in-process: a real master, real
// storage nodes on memory backends and a real client, on an in-memory network.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { NeoStorage } from '../../src/client/storage.js';
import type { Env } from '../../src/core/env.js';
import { MasterApp } from '../../src/master/app.js';
import type { Connection } from '../../src/net/connection.js';
import { memoryNetwork } from '../../src/net/memory.js';
import { ClusterStates } from '../../src/protocol/enums.js';
import { ZERO_TID, compareIds } from '../../src/protocol/ids.js';
import { StorageApp } from '../../src/storage/app.js';
import { MemoryBackend, MemoryDatabase } from '../../src/storage/backends/memory.js';
import { inProcessEnv, until } from '../helpers/inprocess.js';

const CLUSTER = 'pack';
const NP = 4;
const LOCAL = '127.0.0.1';

class Cluster {
  readonly network = memoryNetwork({ schedule: setImmediate });
  readonly lines: string[] = [];
  readonly storages: StorageApp[] = [];
  /** NotifyPackCompleted received by the master: [storage nid, pack id]. */
  readonly packCompleted: [number, Buffer][] = [];
  master!: MasterApp;
  client!: NeoStorage;

  env(name: string): Env {
    return inProcessEnv(this.network, name, this.lines);
  }

  static async start(count: number, replicas: number, options: { disablePack?: boolean } = {}): Promise<Cluster> {
    const cluster = new Cluster();
    const master = cluster.master = new MasterApp(cluster.env('master'), {
      cluster: CLUSTER, bind: { host: LOCAL, port: 0 }, masters: [], partitions: NP, replicas, autostart: count, nid: undefined,
    });
    const packCompleted = master.packCompleted.bind(master);
    master.packCompleted = (conn: Connection, packId: Buffer) => {
      cluster.packCompleted.push([(conn.peer as { nid: number }).nid, packId]);
      packCompleted(conn, packId);
    };
    await master.start();
    for (let i = 0; i < count; i++) {
      const app = new StorageApp(cluster.env(`storage${i}`), {
        cluster: CLUSTER, masters: [master.address], bind: { host: LOCAL, port: 0 }, adapter: 'Memory', database: '',
        disablePack: options.disablePack === true,
      }, { backend: new MemoryBackend(new MemoryDatabase()) });
      await app.start();
      cluster.storages.push(app);
    }
    await until(() => master.clusterState === ClusterStates.RUNNING, 'cluster running');
    await until(() => cluster.storages.every((s) => s.operational), 'storages operational');
    cluster.client = new NeoStorage({ env: cluster.env('client'), clusterName: CLUSTER, masterNodes: [master.address], cacheSizeBytes: 0 });
    await cluster.client.open();
    return cluster;
  }

  async store(oid: Buffer, serial: Buffer, data: string): Promise<Buffer> {
    const txn = {};
    await this.client.tpcBegin(txn);
    await this.client.store(oid, serial, Buffer.from(data), txn);
    await this.client.tpcVote(txn);
    return this.client.tpcFinish(txn);
  }

  /** An object with `count` revisions; returns its OID and their serials. */
  async revisions(count: number): Promise<{ oid: Buffer; serials: Buffer[] }> {
    const oid = await this.client.newOid();
    const serials: Buffer[] = [];
    for (let i = 0; i < count; i++) serials.push(await this.store(oid, serials.at(-1) ?? ZERO_TID, `${oid.toString('hex')} v${i}`));
    return { oid, serials };
  }

  /** Whether every storage holding the OID has the revision. */
  has(oid: Buffer, serial: Buffer): boolean[] {
    return this.storages.filter((s) => s.backend.isReadable(Number(oid.readBigUInt64BE() % BigInt(NP))))
      .map((s) => s.backend.fetchObject(oid, serial) !== null);
  }

  stop(): void {
    this.client?.close();
    for (const s of this.storages) s.stop();
    this.master.stop();
  }

  dumpLog(): string {
    return this.lines.filter((l) => !l.startsWith('debug')).join('\n');
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('storage: background pack', () => {
  it('removes old revisions up to the pack TID on every replica, keeps current ones, reports completion', async () => {
    const cluster = await Cluster.start(2, 1);
    try {
      const a = await cluster.revisions(3);
      const b = await cluster.revisions(1);
      const others = await Promise.all(Array.from({ length: 20 }, () => cluster.revisions(2)));
      await sleep(5);
      await cluster.client.pack(Date.now() / 1000);
      const after = await cluster.store(a.oid, a.serials[2]!, 'after the pack');
      await until(() => cluster.has(a.oid, a.serials[0]!).every((x) => !x) && cluster.has(a.oid, a.serials[1]!).every((x) => !x),
        'old revisions removed');
      // The storages learn of the last commit's end after the client does.
      await until(() => cluster.has(a.oid, after).every((x) => x), 'commit after the pack unlocked');
      assert.deepEqual(cluster.has(a.oid, a.serials[2]!), [true, true]);
      assert.deepEqual(cluster.has(b.oid, b.serials[0]!), [true, true]);
      for (const { oid, serials: [old, current] } of others) {
        await until(() => cluster.has(oid, old!).every((x) => !x), 'old revisions of other objects removed');
        assert.deepEqual(cluster.has(oid, current!), [true, true]);
      }
      // Each storage packed all its cells and reported the pack id.
      await until(() => cluster.storages.every((s) => cluster.packCompleted.some(([nid, id]) => nid === s.nid && !id.equals(ZERO_TID))),
        'NotifyPackCompleted from every storage');
      const [, packId] = cluster.packCompleted.find(([, id]) => !id.equals(ZERO_TID))!;
      for (const s of cluster.storages) {
        assert.deepEqual([...s.backend.getPackedIDs(false).values()].map((id) => id.toString('hex')),
          Array(NP).fill(packId.toString('hex')));
      }
      assert.ok(compareIds(packId, a.serials[2]!) > 0);
      // The client reads what remains.
      assert.equal((await cluster.client.load(a.oid)).data.toString(), 'after the pack');
      assert.equal((await cluster.client.loadSerial(a.oid, a.serials[2]!)).toString(), `${a.oid.toString('hex')} v2`);
      assert.ok(cluster.lines.some((l) => /^info storage0: \d partition\(s\) processed for pack/.test(l)), cluster.dumpLog());
    } catch (error) {
      console.log(cluster.dumpLog());
      throw error;
    } finally {
      cluster.stop();
    }
  });

  it('a second pack order is processed after the first one', async () => {
    const cluster = await Cluster.start(1, 0);
    try {
      const a = await cluster.revisions(2);
      await sleep(5);
      await cluster.client.pack(Date.now() / 1000);
      await until(() => !cluster.has(a.oid, a.serials[0]!)[0], 'first pack');
      const next = await cluster.store(a.oid, a.serials[1]!, 'v2');
      await until(() => cluster.has(a.oid, next)[0]!, 'unlocked');
      await sleep(5);
      await cluster.client.pack(Date.now() / 1000);
      await until(() => !cluster.has(a.oid, a.serials[1]!)[0], 'second pack');
      assert.deepEqual(cluster.has(a.oid, next), [true]);
      await until(() => cluster.packCompleted.filter(([, id]) => !id.equals(ZERO_TID)).length === 2, 'two completions');
    } catch (error) {
      console.log(cluster.dumpLog());
      throw error;
    } finally {
      cluster.stop();
    }
  });

  it('--disable-pack: nothing is removed, the newest approved id is reported as completed', async () => {
    const cluster = await Cluster.start(1, 0, { disablePack: true });
    try {
      const a = await cluster.revisions(2);
      await sleep(5);
      await cluster.client.pack(Date.now() / 1000);
      await until(() => cluster.packCompleted.some(([, id]) => !id.equals(ZERO_TID)), 'NotifyPackCompleted');
      await sleep(50);
      assert.deepEqual(cluster.has(a.oid, a.serials[0]!), [true]);
      assert.equal(cluster.storages[0]!.packer, null);
    } finally {
      cluster.stop();
    }
  });
});
