// The storage node in-process, on the memory network, against a fake master and fake clients.

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import type { Env, TimerHandle } from '../../src/core/env.js';
import { Connection } from '../../src/net/connection.js';
import type { Handler } from '../../src/net/connection.js';
import { memoryNetwork } from '../../src/net/memory.js';
import type { MemoryNetwork } from '../../src/net/memory.js';
import { CellStates, ErrorCodes, NodeStates, NodeTypes } from '../../src/protocol/enums.js';
import { NeoError } from '../../src/protocol/errors.js';
import { MAX_TID, ZERO_HASH, ZERO_TID, p64 } from '../../src/protocol/ids.js';
import type { ArgsOf } from '../../src/protocol/packets.js';
import { StorageApp } from '../../src/storage/app.js';
import { MemoryBackend, MemoryDatabase } from '../../src/storage/backends/memory.js';
import { recordingLogger } from '../helpers/logger.js';
import { fromTranscriptJson, readTranscripts } from '../helpers/spec.js';
import type { Packet } from '../../src/protocol/codec.js';
import type { PacketName } from '../../src/protocol/packets.js';
import type { RecordingLogger } from '../helpers/logger.js';

const CLUSTER = 'test';
const MASTER_ADDRESS = { host: '127.0.0.1', port: 10000 };
const MASTER_NID = -0x10000000 + 1;
const STORAGE_NID = 1;
const CLIENT_NID = -0x20000000 + 1;
const CLIENT2_NID = -0x20000000 + 2;
const NP = 2;

const tick = () => new Promise<void>((resolve) => setImmediate(resolve));

async function until(condition: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 10_000; i++) {
    if (condition()) return;
    await tick();
  }
  assert.fail(`timed out waiting for ${what}`);
}

/** Timers fired only when the test says so: the deferred commit is under control. */
class ManualTimers {
  pending: { delayMs: number; fn: () => void; cancelled: boolean }[] = [];
  after(delayMs: number, fn: () => void): TimerHandle {
    const timer = { delayMs, fn, cancelled: false };
    this.pending.push(timer);
    // Immediate timers (retries, background steps) run on their own.
    if (delayMs === 0) setImmediate(() => this.#run(timer));
    return { cancel: () => void (timer.cancelled = true) };
  }
  every(): TimerHandle {
    throw new Error('not used');
  }
  soon(fn: () => void): void {
    setImmediate(fn);
  }
  #run(timer: { fn: () => void; cancelled: boolean }): void {
    this.pending = this.pending.filter((t) => t !== timer);
    if (!timer.cancelled) timer.fn();
  }
  fireAll(): void {
    for (const timer of [...this.pending]) this.#run(timer);
  }
}

function makeEnv(net: MemoryNetwork, logger: RecordingLogger, timers: ManualTimers, clock: { now: number }): Env {
  return {
    clock: { now: () => clock.now, monotonicMs: () => clock.now * 1000 },
    timers,
    random: { next: () => 0.5, int: (n) => Math.floor(n / 2), bytes: (n) => Buffer.alloc(n) },
    transport: net.transport('127.0.0.1'),
    logger,
  };
}

function sha1(data: Buffer): Buffer {
  return createHash('sha1').update(data).digest();
}

const oid = (n: number) => p64(BigInt(n));
/** TIDs all in partition 0, so that a final TID is in the partition of its TTID, as the master ensures. */
const tid = (n: number) => p64(0x03f0000000000000n + BigInt(n * NP));

/** A fake primary master: accepts the storage and gives the test its connection. */
class FakeMaster {
  conn: Connection | null = null;
  identification: unknown[] | null = null;
  ready = false;
  packCompleted: Buffer[] = [];
  readonly timestamp = { now: 1000 };
  readonly storageTimestamp = 999.5;

  handler(): Handler {
    const master = this;
    return {
      RequestIdentification(conn, ...args) {
        master.identification = args;
        master.conn = conn;
        conn.answer('AcceptIdentification', [NodeTypes.MASTER, MASTER_NID, STORAGE_NID]);
        conn.notify('NotifyNodeInformation', [master.timestamp.now++, [
          [NodeTypes.STORAGE, args[2], STORAGE_NID, NodeStates.PENDING, master.storageTimestamp],
          [NodeTypes.MASTER, MASTER_ADDRESS, MASTER_NID, NodeStates.RUNNING, null],
        ]]);
        conn.ask('AskRecovery', [], () => undefined);
      },
      NotifyReady() {
        master.ready = true;
      },
      NotifyPackCompleted(_conn, packId) {
        master.packCompleted.push(packId);
      },
    };
  }

  get c(): Connection {
    assert(this.conn !== null, 'storage not connected');
    return this.conn;
  }

  /** Announces a client to the storage and returns its id timestamp. */
  async announceClient(nid: number, state = NodeStates.RUNNING): Promise<number> {
    const ts = this.timestamp.now;
    this.c.notify('NotifyNodeInformation', [this.timestamp.now++, [[NodeTypes.CLIENT, null, nid, state, ts]]]);
    await this.c.request('Ping', []);
    return ts;
  }
}

interface Cluster {
  net: MemoryNetwork;
  logger: RecordingLogger;
  timers: ManualTimers;
  master: FakeMaster;
  app: StorageApp;
  database: MemoryDatabase;
  close(): void;
}

async function startStorage(options: { database?: MemoryDatabase; net?: MemoryNetwork; master?: FakeMaster } = {}): Promise<Cluster> {
  const net = options.net ?? memoryNetwork({ schedule: setImmediate });
  const logger = recordingLogger();
  const timers = new ManualTimers();
  const master = options.master ?? new FakeMaster();
  const masterListener = await net.transport('127.0.0.1').listen(MASTER_ADDRESS, (stream) => {
    void new Connection({ stream, handler: master.handler(), logger: logger.child('fake master'), label: 'storage' });
  });
  const database = options.database ?? new MemoryDatabase();
  const env = makeEnv(net, logger, timers, { now: 2000 });
  const app = new StorageApp(env, {
    cluster: CLUSTER, masters: [MASTER_ADDRESS], bind: { host: '127.0.0.1', port: 0 }, adapter: 'Memory', database: '',
  }, { backend: new MemoryBackend(database) });
  await app.start();
  await until(() => app.masterConnection !== null, 'identification');
  return {
    net, logger, timers, master, app, database,
    close: () => {
      app.stop();
      masterListener.close();
    },
  };
}

/** Recovery, verification and start of operation as a master does them for a new cluster. */
async function bringUp(cluster: Cluster): Promise<void> {
  const m = cluster.master.c;
  const rows: ArgsOf<'SendPartitionTable'>[2] = Array.from({ length: NP }, () => [[STORAGE_NID, CellStates.UP_TO_DATE]]);
  m.notify('SendPartitionTable', [1, 0, rows]);
  assert.deepEqual(await m.request('AskLockedTransactions', []), [new Map()]);
  await m.request('AskLastIDs', []);
  await m.request('AskPackOrders', [p64(1n)]);
  m.notify('StartOperation', [false]);
  await until(() => cluster.master.ready, 'NotifyReady');
}

class FakeClient {
  conn!: Connection;
  deadlocks: [Buffer, Buffer][] = [];

  static async connect(cluster: Cluster, nid = CLIENT_NID): Promise<FakeClient> {
    const client = new FakeClient();
    const ts = await cluster.master.announceClient(nid);
    client.conn = new Connection({
      stream: cluster.net.transport('127.0.0.1').connect(cluster.app.address),
      handler: {
        NotifyDeadlock: (_conn, ttid, o) => void client.deadlocks.push([ttid, o]),
      },
      logger: cluster.logger.child(`client ${nid}`),
      label: 'storage',
    });
    const answer = await client.conn.request('RequestIdentification', [NodeTypes.CLIENT, nid, null, CLUSTER, ts, new Map()]);
    assert.deepEqual(answer, [NodeTypes.STORAGE, STORAGE_NID, nid]);
    return client;
  }

  store(ttid: Buffer, o: Buffer, serial: Buffer, data: Buffer): Promise<unknown[]> {
    return this.conn.request('AskStoreObject', [o, serial, 0, sha1(data), data, null, ttid]);
  }
}

/** A full commit: stores, vote with metadata, lock and unlock by the master. */
async function commit(cluster: Cluster, client: FakeClient, ttid: Buffer, final: Buffer, objects: [Buffer, Buffer, Buffer][]) {
  for (const [o, serial, data] of objects) assert.deepEqual(await client.store(ttid, o, serial, data), [null]);
  await client.conn.request('AskStoreTransaction', [ttid, Buffer.from('user'), Buffer.from('desc'), Buffer.alloc(0), objects.map(([o]) => o), null]);
  const m = cluster.master.c;
  assert.deepEqual(await m.request('AskLockInformation', [ttid, final, false]), [ttid]);
  m.notify('NotifyUnlockInformation', [ttid]);
  await m.request('Ping', []);
}

async function expectError(promise: Promise<unknown>, code: (typeof ErrorCodes)['ACK'], message?: string): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert(error instanceof NeoError, String(error));
    assert.equal(error.code, code);
    if (message !== undefined) assert.equal(error.message, message);
    return true;
  });
}

describe('storage node', () => {
  it('start-up: identifies to the master, answers recovery and verification, then becomes ready', async () => {
    const cluster = await startStorage();
    try {
      const [type, nid, address, name, ts, extra] = cluster.master.identification as ArgsOf<'RequestIdentification'>;
      assert.equal(type, NodeTypes.STORAGE);
      assert.equal(nid, null);
      assert.deepEqual(address, cluster.app.address);
      assert.equal(name, CLUSTER);
      assert.equal(ts, null);
      assert.deepEqual([...extra.keys()], ['devpath', 'new_nid']);
      assert.ok(cluster.logger.lines.some((l) => l === `info listening on 127.0.0.1:${cluster.app.address.port}`));
      assert.equal(cluster.app.backend.getNid(), STORAGE_NID);
      const m = cluster.master.c;
      assert.deepEqual(await m.request('AskRecovery', []), [null, null, null]);
      await bringUp(cluster);
      assert.deepEqual(cluster.master.packCompleted, [ZERO_TID]);
      assert.deepEqual(await m.request('AskLastIDs', []), [null, null, MAX_TID]);
      assert.deepEqual(await m.request('AskRecovery', []), [1, null, null]);
      const [ptid, nr, rows] = await m.request('AskPartitionTable', []) as ArgsOf<'AnswerPartitionTable'>;
      assert.equal(ptid, 1);
      assert.equal(nr, 0);
      assert.deepEqual(rows, [[[STORAGE_NID, CellStates.UP_TO_DATE]], [[STORAGE_NID, CellStates.UP_TO_DATE]]]);
      assert.equal(cluster.app.operational, true);
    } finally {
      cluster.close();
    }
  });

  it('refuses a partial partition table and a wrong ptid', async () => {
    const cluster = await startStorage();
    try {
      const m = cluster.master.c;
      m.notify('SendPartitionTable', [1, 0, [[[STORAGE_NID, CellStates.UP_TO_DATE]], []]]);
      await until(() => m.isClosed, 'the master connection closed');
    } finally {
      cluster.close();
    }
  });

  it('commits a transaction, then loads latest, before and exact serials', async () => {
    const cluster = await startStorage();
    try {
      await bringUp(cluster);
      const client = await FakeClient.connect(cluster);
      const o = oid(1);
      await commit(cluster, client, tid(1), tid(2), [[o, ZERO_TID, Buffer.from('first')]]);
      await commit(cluster, client, tid(3), tid(4), [[o, tid(2), Buffer.from('second')]]);
      const c = client.conn;
      assert.deepEqual(await c.request('AskObject', [o, null, null]),
        [o, tid(4), null, 0, sha1(Buffer.from('second')), Buffer.from('second'), null]);
      assert.deepEqual(await c.request('AskObject', [o, null, tid(4)]),
        [o, tid(2), tid(4), 0, sha1(Buffer.from('first')), Buffer.from('first'), null]);
      assert.deepEqual(await c.request('AskObject', [o, tid(2), null]),
        [o, tid(2), tid(4), 0, sha1(Buffer.from('first')), Buffer.from('first'), null]);
      await expectError(c.request('AskObject', [o, null, tid(1)]), ErrorCodes.OID_NOT_FOUND, '0000000000000001');
      await expectError(c.request('AskObject', [oid(3), null, null]), ErrorCodes.OID_DOES_NOT_EXIST, '0000000000000003');
      const [, history] = await c.request('AskObjectHistory', [o, 0, 10]) as ArgsOf<'AnswerObjectHistory'>;
      assert.deepEqual(history, [[tid(4), 6], [tid(2), 5]]);
      assert.deepEqual(await c.request('AskTransactionInformation', [tid(4)]),
        [tid(4), Buffer.from('user'), Buffer.from('desc'), Buffer.alloc(0), false, [o]]);
      await expectError(c.request('AskTransactionInformation', [tid(5)]), ErrorCodes.TID_NOT_FOUND);
      assert.deepEqual(await c.request('AskTIDs', [0, 10, 0xffffffff]), [[tid(4), tid(2)]]);
      assert.deepEqual(await c.request('AskTIDsFrom', [ZERO_TID, MAX_TID, 10, 0]), [[tid(2), tid(4)]]);
      assert.deepEqual(await c.request('AskFinalTID', [tid(3)]), [tid(4)]);
      assert.deepEqual(await c.request('AskOIDsFrom', [1, 1000, ZERO_TID, MAX_TID]), [null, [o]]);
      // The unlock is committed by the deferred timer.
      cluster.timers.fireAll();
      assert.deepEqual(cluster.app.backend.getUnfinishedTIDs(), []);
    } finally {
      cluster.close();
    }
  });

  it('answers a conflict with the newer serial, and refuses a bad checksum', async () => {
    const cluster = await startStorage();
    try {
      await bringUp(cluster);
      const client = await FakeClient.connect(cluster);
      const o = oid(1);
      await commit(cluster, client, tid(1), tid(2), [[o, ZERO_TID, Buffer.from('first')]]);
      assert.deepEqual(await client.store(tid(5), o, ZERO_TID, Buffer.from('late')), [tid(2)]);
      const data = Buffer.from('x');
      await expectError(client.conn.request('AskStoreObject', [o, tid(2), 0, ZERO_HASH, data, null, tid(5)]),
        ErrorCodes.PROTOCOL_ERROR, 'invalid checksum');
    } finally {
      cluster.close();
    }
  });

  it('delays a younger store, notifies a deadlock to a younger holder, and relocks', async () => {
    const cluster = await startStorage();
    try {
      await bringUp(cluster);
      const older = await FakeClient.connect(cluster, CLIENT_NID);
      const younger = await FakeClient.connect(cluster, CLIENT2_NID);
      const o = oid(1);
      // The younger transaction takes the lock first.
      assert.deepEqual(await younger.store(tid(20), o, ZERO_TID, Buffer.from('young')), [null]);
      const olderStore = older.store(tid(10), o, ZERO_TID, Buffer.from('old'));
      await until(() => younger.deadlocks.length === 1, 'NotifyDeadlock');
      assert.deepEqual(younger.deadlocks[0], [tid(20), o]);
      // The younger client gives the lock back: the older store goes first, the relock waits.
      const relock = younger.conn.request('AskRelockObject', [tid(20), o]);
      assert.deepEqual(await olderStore, [null]);
      let relocked = false;
      void relock.then(() => void (relocked = true));
      await older.conn.request('AskStoreTransaction', [tid(10), Buffer.alloc(0), Buffer.alloc(0), Buffer.alloc(0), [o], null]);
      await tick();
      assert.equal(relocked, false);
      const m = cluster.master.c;
      await m.request('AskLockInformation', [tid(10), tid(11), false]);
      m.notify('NotifyUnlockInformation', [tid(10)]);
      // The older transaction committed serial tid(11): the younger store now conflicts.
      assert.deepEqual(await relock, [[ZERO_TID, tid(11), [0, sha1(Buffer.from('young')), Buffer.from('young')]]]);
    } finally {
      cluster.close();
    }
  });

  it('refuses the vote of a transaction that gave its lock back and has not relocked yet', async () => {
    // Regression: a client whose relock answer was lost (connection cut) voted on a new
    // connection, and the storage committed its store over a stale serial (a lost update).
    const cluster = await startStorage();
    try {
      await bringUp(cluster);
      const older = await FakeClient.connect(cluster, CLIENT_NID);
      const younger = await FakeClient.connect(cluster, CLIENT2_NID);
      const o = oid(1);
      assert.deepEqual(await younger.store(tid(20), o, ZERO_TID, Buffer.from('young')), [null]);
      const olderStore = older.store(tid(10), o, ZERO_TID, Buffer.from('old'));
      await until(() => younger.deadlocks.length === 1, 'NotifyDeadlock');
      void younger.conn.request('AskRelockObject', [tid(20), o]).catch(() => {});
      assert.deepEqual(await olderStore, [null]);
      // The younger transaction now holds no lock on `o`: its vote must be refused.
      await assert.rejects(
        younger.conn.request('AskVoteTransaction', [tid(20)]),
        (error: any) => error.code === ErrorCodes.PROTOCOL_ERROR && /without the write lock/.test(error.message),
      );
    } finally {
      cluster.close();
    }
  });

  it('abort releases the locks of a transaction', async () => {
    const cluster = await startStorage();
    try {
      await bringUp(cluster);
      const a = await FakeClient.connect(cluster, CLIENT_NID);
      const b = await FakeClient.connect(cluster, CLIENT2_NID);
      const o = oid(1);
      assert.deepEqual(await a.store(tid(10), o, ZERO_TID, Buffer.from('a')), [null]);
      const waiting = b.store(tid(20), o, ZERO_TID, Buffer.from('b'));
      await tick();
      a.conn.notify('AbortTransaction', [tid(10), []]);
      assert.deepEqual(await waiting, [null]);
    } finally {
      cluster.close();
    }
  });

  it('a lost client: its non-voted transactions are aborted', async () => {
    const cluster = await startStorage();
    try {
      await bringUp(cluster);
      const a = await FakeClient.connect(cluster, CLIENT_NID);
      const b = await FakeClient.connect(cluster, CLIENT2_NID);
      assert.deepEqual(await a.store(tid(10), oid(1), ZERO_TID, Buffer.from('a')), [null]);
      const waiting = b.store(tid(20), oid(1), ZERO_TID, Buffer.from('b'));
      a.conn.close();
      assert.deepEqual(await waiting, [null]);
    } finally {
      cluster.close();
    }
  });

  it('client identification: refusals', async () => {
    const cluster = await startStorage();
    try {
      const identify = async (args: ArgsOf<'RequestIdentification'>) => {
        const conn = new Connection({
          stream: cluster.net.transport('127.0.0.1').connect(cluster.app.address),
          handler: {}, logger: cluster.logger, label: 'storage',
        });
        try {
          return await conn.request('RequestIdentification', args);
        } finally {
          conn.close();
        }
      };
      await expectError(identify([NodeTypes.CLIENT, CLIENT_NID, null, CLUSTER, 1, new Map()]), ErrorCodes.NOT_READY, 'Retry Later');
      await bringUp(cluster);
      await expectError(identify([NodeTypes.CLIENT, CLIENT_NID, null, 'other', 1, new Map()]), ErrorCodes.PROTOCOL_ERROR, 'invalid cluster name');
      await expectError(identify([NodeTypes.CLIENT, null, null, CLUSTER, 1, new Map()]), ErrorCodes.PROTOCOL_ERROR, 'reject anonymous non-storage node');
      await expectError(identify([NodeTypes.STORAGE, STORAGE_NID, null, CLUSTER, 1, new Map()]), ErrorCodes.PROTOCOL_ERROR, 'uuid conflict or loopback connection');
      await expectError(identify([NodeTypes.ADMIN, CLIENT_NID, null, CLUSTER, 1, new Map()]), ErrorCodes.PROTOCOL_ERROR, 'reject non-client-or-storage node');
      // Unknown to the master, with an id timestamp older than the last notification.
      await expectError(identify([NodeTypes.CLIENT, CLIENT_NID, null, CLUSTER, 1, new Map()]), ErrorCodes.NOT_READY, 'unknown by master');
      // Newer than the last notification: held until the master tells about the client.
      const ts = cluster.master.timestamp.now + 5;
      const held = identify([NodeTypes.CLIENT, CLIENT2_NID, null, CLUSTER, ts, new Map()]);
      await tick();
      const m = cluster.master.c;
      m.notify('NotifyNodeInformation', [ts + 1, [[NodeTypes.CLIENT, null, CLIENT2_NID, NodeStates.RUNNING, ts]]]);
      assert.deepEqual(await held, [NodeTypes.STORAGE, STORAGE_NID, CLIENT2_NID]);
    } finally {
      cluster.close();
    }
  });

  it('restart: a transaction locked but not unlocked is reported for verification and replayed', async () => {
    const cluster = await startStorage();
    const database = cluster.database;
    const client = await (async () => {
      await bringUp(cluster);
      return FakeClient.connect(cluster);
    })();
    const o = oid(1);
    assert.deepEqual(await client.store(tid(1), o, ZERO_TID, Buffer.from('kept')), [null]);
    await client.conn.request('AskStoreTransaction', [tid(1), Buffer.alloc(0), Buffer.alloc(0), Buffer.alloc(0), [o], null]);
    await cluster.master.c.request('AskLockInformation', [tid(1), tid(2), false]);
    // Crash before the unlock: only what was committed survives.
    cluster.close();
    const restarted = await startStorage({ database });
    try {
      const [, nid] = restarted.master.identification as ArgsOf<'RequestIdentification'>;
      assert.equal(nid, STORAGE_NID);
      const m = restarted.master.c;
      assert.deepEqual(await m.request('AskRecovery', []), [1, null, null]);
      const [locked] = await m.request('AskLockedTransactions', []) as ArgsOf<'AnswerLockedTransactions'>;
      assert.deepEqual([...locked], [[tid(1), tid(2)]]);
      m.notify('ValidateTransaction', [tid(1), tid(2)]);
      assert.deepEqual(await m.request('AskLastIDs', []), [tid(2), o, tid(2)]);
      m.notify('StartOperation', [false]);
      await until(() => restarted.master.ready, 'NotifyReady');
      const reader = await FakeClient.connect(restarted);
      assert.deepEqual(await reader.conn.request('AskObject', [o, null, null]),
        [o, tid(2), null, 0, sha1(Buffer.from('kept')), Buffer.from('kept'), null]);
    } finally {
      restarted.close();
    }
  });

  it('told it is DOWN by the master, stops', async () => {
    const cluster = await startStorage();
    try {
      const m = cluster.master.c;
      m.notify('NotifyNodeInformation', [5000, [[NodeTypes.STORAGE, cluster.app.address, STORAGE_NID, NodeStates.DOWN, 1]]]);
      assert.equal(await cluster.app.done, 0);
    } finally {
      cluster.close();
    }
  });

  it('transcripts 02-03: client0 opens, creates objects, and the master finishes; same answers as NEO', async () => {
    const cluster = await startStorage();
    try {
      await bringUp(cluster);
      const client = await FakeClient.connect(cluster, CLIENT_NID);
      const pending = new Map<string, Promise<Packet | null>>();
      const send = (conn: Connection, key: string, name: string, args: unknown) => {
        pending.set(key, new Promise((resolve) => conn.ask(name as PacketName, args as never, resolve)));
      };
      const lines = readTranscripts()
        .filter(({ file }) => file.startsWith('02-') || file.startsWith('03-'))
        .flatMap(({ lines }) => lines)
        .filter((line) => line.name !== 'Handshake' && line.name !== 'RequestIdentification'
          && line.name !== 'AcceptIdentification' && line.name !== 'NotifyNodeInformation');
      let compared = 0;
      for (const line of lines) {
        const args = fromTranscriptJson(line.args);
        if (line.from === 'client0' && line.to === 'storage0') {
          send(client.conn, `client:${line.msg_id}`, line.name, args);
        } else if (line.from === 'master0' && line.to === 'storage0') {
          if (line.name === 'AskLockInformation') send(cluster.master.c, `master:${line.msg_id}`, line.name, args);
          else {
            cluster.master.c.notify(line.name as PacketName, args as never);
            await cluster.master.c.request('Ping', []);
          }
        } else if (line.from === 'storage0') {
          const answer = await pending.get(`${line.to === 'client0' ? 'client' : 'master'}:${line.msg_id}`);
          assert(answer !== undefined && answer !== null, `no answer for ${line.name}`);
          assert.equal(answer.info.name, line.name);
          assert.deepEqual(answer.args, args);
          compared++;
        }
      }
      assert.equal(compared, 11);
    } finally {
      cluster.close();
    }
  });
});
