// Replica checks (storage.md §6), in-process: a real master, real storage nodes on memory
// backends and a real client on an in-memory network; `neoctl check` is sent as an admin would.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { NeoStorage } from '../../src/client/storage.js';
import type { Env } from '../../src/core/env.js';
import { MasterApp } from '../../src/master/app.js';
import { Connection } from '../../src/net/connection.js';
import type { Handler } from '../../src/net/connection.js';
import { memoryNetwork } from '../../src/net/memory.js';
import { ClusterStates, ErrorCodes, NodeTypes } from '../../src/protocol/enums.js';
import { ZERO_OID, ZERO_TID, p64, partitionOf } from '../../src/protocol/ids.js';
import type { ArgsOf } from '../../src/protocol/packets.js';
import { StorageApp } from '../../src/storage/app.js';
import { MemoryBackend, MemoryDatabase } from '../../src/storage/backends/memory.js';
import { inProcessEnv, until } from '../helpers/inprocess.js';
import { recordingLogger } from '../helpers/logger.js';

const CLUSTER = 'check';
const NP = 4;
const LOCAL = '127.0.0.1';

class Cluster {
  readonly network = memoryNetwork({ schedule: setImmediate });
  readonly lines: string[] = [];
  readonly storages: StorageApp[] = [];
  /** NotifyPartitionCorrupted received by the master: [partition, nids]. */
  readonly corrupted: [number, number[]][] = [];
  master!: MasterApp;
  client!: NeoStorage;

  env(name: string): Env {
    return inProcessEnv(this.network, name, this.lines);
  }

  static async start(count: number): Promise<Cluster> {
    const cluster = new Cluster();
    const master = cluster.master = new MasterApp(cluster.env('master'), {
      cluster: CLUSTER, bind: { host: LOCAL, port: 0 }, masters: [], partitions: NP, replicas: count - 1, autostart: count, nid: undefined,
    });
    const partitionCorrupted = master.partitionCorrupted.bind(master);
    master.partitionCorrupted = (partition: number, nids: number[]) => {
      cluster.corrupted.push([partition, nids]);
      partitionCorrupted(partition, nids);
    };
    await master.start();
    for (let i = 0; i < count; i++) {
      const app = new StorageApp(cluster.env(`storage${i}`), {
        cluster: CLUSTER, masters: [master.address], bind: { host: LOCAL, port: 0 }, adapter: 'Memory', database: '',
      }, { backend: new MemoryBackend(new MemoryDatabase()) });
      await app.start();
      cluster.storages.push(app);
    }
    await until(() => master.clusterState === ClusterStates.RUNNING, 'cluster running');
    await until(() => cluster.storages.every((s) => s.operational), 'storages operational');
    cluster.client = new NeoStorage({ env: cluster.env('client'), clusterName: CLUSTER, masterNodes: [master.address] });
    await cluster.client.open();
    return cluster;
  }

  /** One transaction per object, objects spread over every partition; waits until all are unlocked. */
  async fill(count: number): Promise<{ oid: Buffer; tid: Buffer }[]> {
    const written: { oid: Buffer; tid: Buffer }[] = [];
    for (let i = 0; i < count; i++) {
      const oid = await this.client.newOid();
      const txn = {};
      await this.client.tpcBegin(txn);
      await this.client.store(oid, ZERO_TID, Buffer.from(`object ${i}`), txn);
      await this.client.tpcVote(txn);
      written.push({ oid, tid: await this.client.tpcFinish(txn) });
    }
    const last = written.at(-1)!;
    await until(() => this.storages.every((s) => s.backend.fetchObject(last.oid, last.tid) !== null), 'unlocked');
    return written;
  }

  /** `neoctl check`, through an admin connection to the master. */
  async check(partitions: [number, number | null][]): Promise<void> {
    const admin = new Connection({
      stream: this.network.transport(LOCAL).connect(this.master.address), handler: IGNORE_NOTIFICATIONS,
      logger: recordingLogger('admin: ', this.lines), label: 'admin→master',
    });
    try {
      await admin.request('RequestIdentification', [NodeTypes.ADMIN, null, { host: LOCAL, port: 30000 }, CLUSTER, null, new Map()]);
      const [code, message] = await admin.request('CheckReplicas', [new Map(partitions), ZERO_TID, null]) as ArgsOf<'Error'>;
      assert.equal(code, ErrorCodes.ACK.value, message);
    } finally {
      admin.close();
    }
  }

  checked(partition: number): boolean {
    return this.lines.some((l) => l.includes(`partition ${partition}: replicas identical up to`));
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

const ALL = [0, 1, 2, 3];

/** What the admin connection gets besides answers (node, cluster and table notifications) is ignored. */
const IGNORE_NOTIFICATIONS: Handler = new Proxy({}, {
  get: (_target, name) => (typeof name === 'string' && /^(Notify|Send)/.test(name) ? () => undefined : undefined),
});

describe('storage: replica checks', () => {
  it('identical replicas: every partition checked, nothing reported', async () => {
    const cluster = await Cluster.start(2);
    try {
      await cluster.fill(12);
      await cluster.check(ALL.map((p) => [p, null]));
      await until(() => ALL.every((p) => cluster.checked(p)), 'every partition checked');
      assert.deepEqual(cluster.corrupted, []);
      assert.ok(cluster.lines.some((l) => /^info storage\d: partition 0: replicas identical up to [0-9a-f]{16}$/.test(l)));
    } catch (error) {
      console.log(cluster.dumpLog());
      throw error;
    } finally {
      cluster.stop();
    }
  });

  it('a replica missing an object record is reported (the node differing from the reference)', async () => {
    const cluster = await Cluster.start(2);
    try {
      const written = await cluster.fill(8);
      const [s0, s1] = cluster.storages as [StorageApp, StorageApp];
      const victim = written[5]!;
      const p = partitionOf(victim.oid, NP);
      s1.backend.deleteObject(victim.oid, victim.tid);
      s1.backend.commit();
      // Against the intact replica: only the damaged one is reported.
      await cluster.check([[p, s0.nid]]);
      await until(() => cluster.corrupted.length > 0, 'NotifyPartitionCorrupted');
      assert.deepEqual(cluster.corrupted, [[p, [s1.nid]]]);
      // Without reference, every participant is reported.
      cluster.corrupted.length = 0;
      await cluster.check([[p, null]]);
      await until(() => cluster.corrupted.length > 0, 'NotifyPartitionCorrupted');
      assert.deepEqual(cluster.corrupted.map(([partition, nids]) => [partition, [...nids].sort()]), [[p, [s0.nid, s1.nid].sort()]]);
      // The other partitions are still identical.
      const others = ALL.filter((q) => q !== p);
      await cluster.check(others.map((q) => [q, s1.nid]));
      await until(() => others.every((q) => cluster.checked(q)), 'other partitions checked');
      assert.equal(cluster.corrupted.length, 1);
    } catch (error) {
      console.log(cluster.dumpLog());
      throw error;
    } finally {
      cluster.stop();
    }
  });

  it('a replica missing a transaction is reported during the TID phase', async () => {
    const cluster = await Cluster.start(2);
    try {
      const written = await cluster.fill(8);
      const [s0, s1] = cluster.storages as [StorageApp, StorageApp];
      const { tid } = written[3]!;
      const p = partitionOf(tid, NP);
      s0.backend.deleteTransaction(tid);
      s0.backend.commit();
      await cluster.check([[p, s1.nid]]);
      await until(() => cluster.corrupted.length > 0, 'NotifyPartitionCorrupted');
      assert.deepEqual(cluster.corrupted, [[p, [s0.nid]]]);
      // The records are still identical: the serial phase alone would not see it.
      assert.deepEqual(s0.backend.checkSerialRange(p, null, ZERO_TID, p64(2n ** 62n), ZERO_OID),
        s1.backend.checkSerialRange(p, null, ZERO_TID, p64(2n ** 62n), ZERO_OID));
    } catch (error) {
      console.log(cluster.dumpLog());
      throw error;
    } finally {
      cluster.stop();
    }
  });
});
