// Replication between storage nodes (storage.md §5, transactions.md §5.3), in-process: a real
// master, real storage nodes on memory backends, and a minimal client speaking the protocol.

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import type { Env } from '../../src/core/env.js';
import { MasterApp } from '../../src/master/app.js';
import { Connection } from '../../src/net/connection.js';
import type { Handler } from '../../src/net/connection.js';
import { memoryNetwork } from '../../src/net/memory.js';
import type { MemoryNetwork } from '../../src/net/memory.js';
import { encodePacket } from '../../src/protocol/codec.js';
import type { Packet } from '../../src/protocol/codec.js';
import { CellStates, ClusterStates, ErrorCodes, NodeStates, NodeTypes } from '../../src/protocol/enums.js';
import { MAX_TID, ZERO_OID, ZERO_TID, p64, partitionOf } from '../../src/protocol/ids.js';
import type { ArgsOf, PacketName } from '../../src/protocol/packets.js';
import { StorageApp } from '../../src/storage/app.js';
import { TransactionManager } from '../../src/storage/transactions.js';
import type { Backend } from '../../src/storage/backends/backend.js';
import { MemoryBackend, MemoryDatabase } from '../../src/storage/backends/memory.js';
import { inProcessEnv, until as untilWithin } from '../helpers/inprocess.js';
import { recordingLogger } from '../helpers/logger.js';
import { fromTranscriptJson, readTranscripts } from '../helpers/spec.js';

/** Replication scenarios take longer: a wider bound. */
const until = (condition: () => boolean, what: string, timeoutMs = 15_000) => untilWithin(condition, what, timeoutMs);

const CLUSTER = 'repl';
const NP = 4;
const LOCAL = '127.0.0.1';

const sha1 = (data: Buffer) => createHash('sha1').update(data).digest();
const oidIn = (partition: number, k: number) => p64(BigInt(k * NP + partition));

/** Records the packets it receives; answers nothing. */
function recordingHandler(received: Packet[], extra: Handler = {}): Handler {
  return new Proxy(extra, {
    get(target, name) {
      if (typeof name === 'string' && name in target) return (target as Record<string, unknown>)[name];
      if (typeof name !== 'string' || !/^[A-Z]/.test(name)) return undefined;
      return (conn: Connection, ...args: unknown[]) => {
        received.push({ msgId: conn.peerMsgId, info: { name } as Packet['info'], args } as Packet);
      };
    },
  });
}

class TestCluster {
  readonly network: MemoryNetwork = memoryNetwork({ schedule: setImmediate });
  readonly lines: string[] = [];
  readonly storages: StorageApp[] = [];
  readonly databases = new Map<StorageApp, MemoryDatabase>();
  #now = 1_800_000_000;
  #started = 0;
  master!: MasterApp;

  env(name: string): Env {
    return inProcessEnv(this.network, name, this.lines, () => (this.#now += 0.0001));
  }

  /** A master and `count` storages started together (autostart), with `replicas` replicas. */
  static async start(count: number, replicas: number): Promise<TestCluster> {
    const cluster = new TestCluster();
    cluster.master = new MasterApp(cluster.env('master'), {
      cluster: CLUSTER, bind: { host: LOCAL, port: 0 }, masters: [], partitions: NP, replicas, autostart: count, nid: undefined,
    });
    await cluster.master.start();
    for (let i = 0; i < count; i++) await cluster.startStorage(new MemoryDatabase());
    await until(() => cluster.master.clusterState === ClusterStates.RUNNING, 'cluster running');
    await until(() => cluster.storages.every((s) => s.operational), 'storages operational');
    return cluster;
  }

  async startStorage(database: MemoryDatabase): Promise<StorageApp> {
    const app = new StorageApp(this.env(`storage${this.#started++}`), {
      cluster: CLUSTER, masters: [this.master.address], bind: { host: LOCAL, port: 0 }, adapter: 'Memory', database: '',
    }, { backend: new MemoryBackend(database) });
    await app.start();
    this.storages.push(app);
    this.databases.set(app, database);
    return app;
  }

  /** A storage that was stopped comes back on the same database. */
  async restart(app: StorageApp): Promise<StorageApp> {
    this.storages.splice(this.storages.indexOf(app), 1);
    const again = await this.startStorage(this.databases.get(app)!);
    await until(() => again.operational, 'restarted storage operational');
    return again;
  }

  cellStates(nid: number): string[] {
    return this.master.pt.cellsOfNode(nid).map(({ cell }) => cell.state.name);
  }

  /** Every cell of the storage is UP_TO_DATE, for the master and for the storage itself. */
  async allUpToDate(app: StorageApp): Promise<void> {
    const nid = app.nid!;
    await until(() => {
      const cells = this.master.pt.cellsOfNode(nid);
      return cells.length > 0 && cells.every(({ partition, cell }) =>
        cell.state === CellStates.UP_TO_DATE && app.backend.isReadable(partition));
    }, `cells of ${nid} UP_TO_DATE (${this.cellStates(nid).join(',')})`);
  }

  stop(): void {
    for (const s of this.storages) s.stop();
    this.master.stop();
  }

  dumpLog(): string {
    return this.lines.filter((l) => !l.startsWith('debug')).join('\n');
  }
}

interface Txn {
  readonly ttid: Buffer;
  readonly oids: Buffer[];
  readonly nodes: Set<number>;
  readonly answers: Map<number, (Buffer | null)[]>;
}

/** A client doing what NEO's client does for a commit, to every writable cell of RUNNING nodes. */
class TestClient {
  readonly received: Packet[] = [];
  readonly timestamps = new Map<number, number | null>();
  readonly #storages = new Map<number, Connection>();
  readonly serials = new Map<string, Buffer>();
  master!: Connection;
  nid!: number;

  readonly cluster: TestCluster;

  constructor(cluster: TestCluster) {
    this.cluster = cluster;
  }

  static async connect(cluster: TestCluster): Promise<TestClient> {
    const client = new TestClient(cluster);
    const handler = recordingHandler(client.received, {
      NotifyNodeInformation: (_conn: Connection, _ts: number, nodes: ArgsOf<'NotifyNodeInformation'>[1]) => {
        for (const [, , nid, , ts] of nodes) if (nid !== null) client.timestamps.set(nid, ts);
      },
    });
    client.master = new Connection({
      stream: cluster.network.transport(LOCAL).connect(cluster.master.address), handler,
      logger: recordingLogger('client: ', cluster.lines), label: 'client→master',
    });
    const [, , nid] = await client.master.request('RequestIdentification',
      [NodeTypes.CLIENT, null, null, CLUSTER, null, new Map()]) as ArgsOf<'AcceptIdentification'>;
    client.nid = nid!;
    await until(() => client.timestamps.has(client.nid), 'client id timestamp');
    return client;
  }

  async #storage(nid: number): Promise<Connection> {
    const existing = this.#storages.get(nid);
    if (existing !== undefined && !existing.isClosed) return existing;
    const node = this.cluster.master.nodes.byNid(nid)!;
    const conn = new Connection({
      stream: this.cluster.network.transport(LOCAL).connect(node.address!), handler: recordingHandler([]),
      logger: recordingLogger('client: ', this.cluster.lines), label: `client→${nid}`,
    });
    await conn.request('RequestIdentification',
      [NodeTypes.CLIENT, this.nid, null, CLUSTER, this.timestamps.get(this.nid)!, new Map()]);
    this.#storages.set(nid, conn);
    return conn;
  }

  #writableNodes(partition: number): number[] {
    const { master } = this.cluster;
    return master.pt.writableCells(partition).map((c) => c.nid).filter((nid) => master.nodes.byNid(nid)?.state === NodeStates.RUNNING);
  }

  async begin(): Promise<Txn> {
    const [ttid] = await this.master.request('AskBeginTransaction', [null]) as ArgsOf<'AnswerBeginTransaction'>;
    return { ttid, oids: [], nodes: new Set(), answers: new Map() };
  }

  async store(txn: Txn, oid: Buffer, data: Buffer): Promise<void> {
    const serial = this.serials.get(oid.toString('hex')) ?? ZERO_TID;
    txn.oids.push(oid);
    for (const nid of this.#writableNodes(partitionOf(oid, NP))) {
      const conn = await this.#storage(nid);
      const [conflict] = await conn.request('AskStoreObject', [oid, serial, 0, sha1(data), data, null, txn.ttid]) as ArgsOf<'AnswerStoreObject'>;
      assert(conflict === null || conflict.equals(ZERO_TID), `conflict on ${oid.toString('hex')}`);
      txn.nodes.add(nid);
      txn.answers.set(nid, [...txn.answers.get(nid) ?? [], conflict]);
    }
  }

  async vote(txn: Txn): Promise<void> {
    const metadata = new Set(this.#writableNodes(partitionOf(txn.ttid, NP)));
    for (const nid of new Set([...txn.nodes, ...metadata])) {
      const conn = await this.#storage(nid);
      if (metadata.has(nid)) {
        await conn.request('AskStoreTransaction', [txn.ttid, Buffer.from('user'), Buffer.from('desc'), Buffer.alloc(0), txn.oids, null]);
      } else {
        await conn.request('AskVoteTransaction', [txn.ttid]);
      }
    }
  }

  async finish(txn: Txn): Promise<Buffer> {
    const [, tid] = await this.master.request('AskFinishTransaction', [txn.ttid, txn.oids, [], [], null]) as ArgsOf<'AnswerTransactionFinished'>;
    for (const oid of txn.oids) this.serials.set(oid.toString('hex'), tid);
    return tid;
  }

  async commit(objects: [Buffer, Buffer][]): Promise<Buffer> {
    const txn = await this.begin();
    for (const [oid, data] of objects) await this.store(txn, oid, data);
    await this.vote(txn);
    return this.finish(txn);
  }

  close(): void {
    this.master.close();
    for (const conn of this.#storages.values()) conn.close();
  }
}

/** An admin node, for AddPendingNodes (neoctl add). */
async function addPendingNode(cluster: TestCluster, nid: number): Promise<void> {
  const admin = new Connection({
    stream: cluster.network.transport(LOCAL).connect(cluster.master.address), handler: recordingHandler([]),
    logger: recordingLogger('admin: ', cluster.lines), label: 'admin→master',
  });
  await admin.request('RequestIdentification', [NodeTypes.ADMIN, null, { host: LOCAL, port: 30000 }, CLUSTER, null, new Map()]);
  const [code] = await admin.request('AddPendingNodes', [[nid]]) as ArgsOf<'Error'>;
  assert.equal(code, ErrorCodes.ACK.value);
  admin.close();
}

/** An anonymous storage connection (what a backup cluster uses): served by the storage handler. */
async function storagePeer(cluster: TestCluster, target: StorageApp, received: Packet[]): Promise<Connection> {
  const conn = new Connection({
    stream: cluster.network.transport(LOCAL).connect(target.address), handler: recordingHandler(received),
    logger: recordingLogger('peer: ', cluster.lines), label: 'peer→storage',
  });
  await conn.request('RequestIdentification', [NodeTypes.STORAGE, null, null, CLUSTER, null, new Map()]);
  return conn;
}

/** Sends a request and collects what comes back under its id: streamed packets, then the answer. */
function askCollecting(conn: Connection, received: Packet[], name: PacketName, args: unknown[]): Promise<Packet[]> {
  return new Promise((resolve) => {
    const msgId = conn.ask(name, args as never, (answer) => {
      assert(answer !== null, 'connection closed');
      resolve([...received.filter((p) => p.msgId === msgId), answer]);
    });
  });
}

/** Everything a readable cell holds for a partition, in a comparable form. */
function partitionContent(backend: Backend, partition: number): unknown {
  const transactions = backend.getReplicationTIDList(ZERO_TID, MAX_TID, null, partition).map((tid) => {
    const t = backend.getTransaction(tid)!;
    return [tid.toString('hex'), t.user.toString(), t.description.toString(), t.ttid.toString('hex'), t.oids.map((o) => o.toString('hex'))];
  });
  const objects = backend.getReplicationObjectList(ZERO_TID, MAX_TID, 1_000_000, partition, ZERO_OID).map(({ serial, oid }) => {
    const o = backend.fetchObject(oid, serial)!;
    return [oid.toString('hex'), serial.toString('hex'), o.compression, o.checksum.toString('hex'), o.data.toString('hex'), o.dataSerial?.toString('hex') ?? null];
  });
  return { transactions, objects };
}

function assertSameData(a: StorageApp, b: StorageApp, partitions: readonly number[]): void {
  for (const p of partitions) {
    const left = partitionContent(a.backend, p);
    const right = partitionContent(b.backend, p);
    assert.deepEqual(left, right, `partition ${p} differs`);
  }
}

/** Counts what a storage stores by replication (spies on its backend). */
function countReplicationWrites(app: StorageApp): { transactions: number; objects: number } {
  const counts = { transactions: 0, objects: 0 };
  const backend = app.backend;
  const addTransaction = backend.addTransaction.bind(backend);
  const addObject = backend.addObject.bind(backend);
  backend.addTransaction = (...args) => { counts.transactions++; addTransaction(...args); };
  backend.addObject = (...args) => { counts.objects++; addObject(...args); };
  return counts;
}

const ALL = [0, 1, 2, 3];

/** Runs `body` against a new cluster and client; prints the cluster's log if it fails; stops both. */
async function withCluster(count: number, replicas: number, body: (cluster: TestCluster, client: TestClient) => Promise<void>): Promise<void> {
  const cluster = await TestCluster.start(count, replicas);
  const client = await TestClient.connect(cluster);
  try {
    await body(cluster, client);
  } catch (error) {
    console.log(cluster.dumpLog());
    throw error;
  } finally {
    client.close();
    cluster.stop();
  }
}

describe('replication', () => {
  it('a storage that was down comes back, fetches only what it missed, and its cells become UP_TO_DATE', async () => {
    await withCluster(2, 1, async (cluster, client) => {
      const [s0, s1] = cluster.storages as [StorageApp, StorageApp];
      for (let i = 0; i < 4; i++) await client.commit([[oidIn(i % NP, i), Buffer.from(`before ${i}`)], [oidIn(1, 10 + i), Buffer.from('x')]]);
      await until(() => s1.tm.size === 0, 'last unlock processed');
      s1.stop();
      await until(() => cluster.master.nodes.byNid(s1.nid!)?.state === NodeStates.DOWN, 'storage DOWN');
      assert(cluster.cellStates(s1.nid!).every((s) => s === 'OUT_OF_DATE'));
      const missed: [Buffer, Buffer][] = [];
      for (let i = 0; i < 6; i++) {
        const objects: [Buffer, Buffer][] = [[oidIn(i % NP, i), Buffer.from(`while down ${i}`)], [oidIn(2, 100 + i), Buffer.from(`new ${i}`)]];
        await client.commit(objects);
        missed.push(...objects);
      }
      const back = await cluster.restart(s1);
      const counts = countReplicationWrites(back);
      await cluster.allUpToDate(back);
      assert.deepEqual(counts, { transactions: 6, objects: missed.length }, 'only the missed data is fetched');
      assertSameData(s0, back, ALL);
      assert(cluster.lines.some((l) => /replicating partition 0 up to/.test(l)));
      if (process.env["REPL_LOG"]) console.log(cluster.dumpLog());
    });
  });
  it('a new storage added by tweak replicates its cells, which become UP_TO_DATE; FEEDING cells go', async () => {
    await withCluster(2, 1, async (cluster, client) => {
      for (let i = 0; i < 8; i++) await client.commit([[oidIn(i % NP, i), Buffer.from(`data ${i}`)], [oidIn((i + 1) % NP, 50 + i), Buffer.from('y')]]);
      const added = await cluster.startStorage(new MemoryDatabase());
      await until(() => added.nid !== null && cluster.master.nodes.byNid(added.nid)?.state === NodeStates.PENDING, 'new storage PENDING');
      await addPendingNode(cluster, added.nid!);
      await until(() => added.operational, 'new storage operational');
      const [changed] = cluster.master.tweakPartitionTable(false, []);
      assert(changed);
      assert(cluster.cellStates(added.nid!).length > 0);
      await cluster.allUpToDate(added);
      await until(() => !cluster.master.pt.rows.some((row) => row.some((c) => c.state === CellStates.FEEDING)), 'no FEEDING cell');
      await until(() => cluster.storages.every((st) => st.backend.getPtid() === cluster.master.pt.ptid), 'tables applied');
      for (const { partition } of cluster.master.pt.cellsOfNode(added.nid!)) {
        const other = cluster.master.pt.readableCells(partition).find((c) => c.nid !== added.nid)!;
        const source = cluster.storages.find((s) => s.nid === other.nid)!;
        assertSameData(source, added, [partition]);
      }
      // Transcript 17: the new node starts from ZERO_TID.
      assert(cluster.lines.some((l) => l.startsWith('info storage2: replicating partition')));
    });
  });

  it('an interrupted replication resumes from the last committed chunk and fetches only the rest', async () => {
    await withCluster(2, 1, async (cluster, client) => {
      const [s0, s1] = cluster.storages as [StorageApp, StorageApp];
      await client.commit([[oidIn(0, 0), Buffer.from('first')]]);
      await until(() => s1.tm.size === 0, 'last unlock processed');
      s1.stop();
      await until(() => cluster.master.nodes.byNid(s1.nid!)?.state === NodeStates.DOWN, 'storage DOWN');
      const PER_TXN = 800;
      for (let t = 0; t < 3; t++) {
        await client.commit(Array.from({ length: PER_TXN }, (_, k): [Buffer, Buffer] => [oidIn(0, 1 + t * PER_TXN + k), Buffer.from(`r${t}.${k}`)]));
      }
      // First attempt: stopped right after the first chunk of objects of partition 0 is committed.
      const first = await cluster.restart(s1);
      const firstCounts = countReplicationWrites(first);
      const updateCellTID = first.backend.updateCellTID.bind(first.backend);
      let interrupted = false;
      first.backend.updateCellTID = (partition, tid) => {
        updateCellTID(partition, tid);
        if (partition === 0 && !interrupted) {
          interrupted = true;
          setImmediate(() => first.stop());
        }
      };
      await until(() => interrupted && cluster.master.nodes.byNid(first.nid!)?.state === NodeStates.DOWN, 'interrupted');
      assert(firstCounts.objects >= 1000);
      const second = await cluster.restart(first);
      const secondCounts = countReplicationWrites(second);
      await cluster.allUpToDate(second);
      assert.equal(secondCounts.objects, 3 * PER_TXN - 1000, 'the first chunk is not fetched again');
      assertSameData(s0, second, ALL);
    });
  });

  it('writes during replication are stored without locks and reach the replica', async () => {
    await withCluster(2, 1, async (cluster, client) => {
      const [s0, s1] = cluster.storages as [StorageApp, StorageApp];
      await client.commit([[oidIn(1, 0), Buffer.from('a0')], [oidIn(2, 0), Buffer.from('b0')]]);
      await until(() => s1.tm.size === 0, 'last unlock processed');
      s1.stop();
      await until(() => cluster.master.nodes.byNid(s1.nid!)?.state === NodeStates.DOWN, 'storage DOWN');
      await client.commit([[oidIn(1, 0), Buffer.from('a1')], [oidIn(3, 0), Buffer.from('c1')]]);
      // A transaction pending when the storage comes back: it asks the master to wait for it.
      const pending = await client.begin();
      await client.store(pending, oidIn(3, 1), Buffer.from('pending'));
      const back = await cluster.restart(s1);
      const replicatedLines = () => cluster.lines.filter((l) => /^info storage2: partition \d replicated up to/.test(l)).length;
      await until(() => replicatedLines() === NP, 'first pass of replication');
      assert(cluster.cellStates(back.nid!).every((s) => s === 'OUT_OF_DATE'), 'waiting for the pending transaction');
      // A transaction begun after that: the replicating node stores it without lock (ZERO_TID).
      const during = await client.begin();
      await client.store(during, oidIn(1, 0), Buffer.from('a2'));
      await client.vote(during);
      await client.finish(during);
      assert.deepEqual(during.answers.get(back.nid!), [ZERO_TID]);
      assert.deepEqual(during.answers.get(s0.nid!), [null]);
      // Another one still pending (voted) when replication ends: its lockless store becomes a lock.
      const late = await client.begin();
      await client.store(late, oidIn(2, 0), Buffer.from('b1'));
      await client.vote(late);
      await client.vote(pending);
      await client.finish(pending);
      await cluster.allUpToDate(back);
      await client.finish(late);
      await until(() => back.tm.size === 0 && s0.tm.size === 0, 'transactions finished');
      assertSameData(s0, back, ALL);
      const object = back.backend.getObject(oidIn(2, 0), null, null);
      assert(typeof object !== 'string' && object.data.equals(Buffer.from('b1')));
    });
  });

  it('when the source goes away, replication is retried from another readable cell', async () => {
    await withCluster(3, 2, async (cluster, client) => {
      const [s0, s1, s2] = cluster.storages as [StorageApp, StorageApp, StorageApp];
      await client.commit([[oidIn(0, 0), Buffer.from('first')]]);
      await until(() => s2.tm.size === 0, 'last unlock processed');
      s2.stop();
      await until(() => cluster.master.nodes.byNid(s2.nid!)?.state === NodeStates.DOWN, 'storage DOWN');
      await client.commit(Array.from({ length: 1500 }, (_, k): [Buffer, Buffer] => [oidIn(0, 1 + k), Buffer.from(`v${k}`)]));
      await until(() => s0.tm.size === 0 && s1.tm.size === 0, 'unlocked everywhere');
      const back = await cluster.restart(s2);
      let killed = false;
      const updateCellTID = back.backend.updateCellTID.bind(back.backend);
      back.backend.updateCellTID = (partition, tid) => {
        updateCellTID(partition, tid);
        if (partition === 0 && !killed) {
          killed = true;
          setImmediate(() => s0.stop());
        }
      };
      await cluster.allUpToDate(back);
      assert(killed);
      assert(cluster.lines.some((l) => /storage3: replication of partition 0 aborted/.test(l)));
      assert(cluster.lines.some((l) => /storage3: replicating partition 0 up to .* from S2/.test(l)));
      assertSameData(s1, back, ALL);
    });
  });

  it('as a source: REPLICATION_ERROR / CHECKING_ERROR for a cell it cannot read, digests and deletions otherwise', async () => {
    await withCluster(2, 0, async (cluster, client) => {
      const s0 = cluster.storages[0]!;
      const mine = cluster.master.pt.cellsOfNode(s0.nid!).map((c) => c.partition);
      const notMine = ALL.find((p) => !mine.includes(p))!;
      const p = mine[0]!;
      for (let i = 0; i < 3; i++) await client.commit([[oidIn(p, i), Buffer.from(`d${i}`)]]);
      await until(() => s0.tm.size === 0, 'unlocked');
      const received: Packet[] = [];
      const peer = await storagePeer(cluster, s0, received);
      await assert.rejects(peer.request('AskFetchTransactions', [notMine, 1000, ZERO_TID, MAX_TID, [], true]),
        (e: any) => e.code === ErrorCodes.REPLICATION_ERROR && e.message === `partition ${notMine} not readable`);
      await assert.rejects(peer.request('AskCheckTIDRange', [notMine, 1000, ZERO_TID, MAX_TID]),
        (e: any) => e.code === ErrorCodes.CHECKING_ERROR);
      const expected = s0.backend.checkTIDRange(p, 1000, ZERO_TID, MAX_TID);
      assert.deepEqual(await peer.request('AskCheckTIDRange', [p, 1000, ZERO_TID, MAX_TID]),
        [expected.count, expected.tidChecksum, expected.maxTid]);
      const serials = s0.backend.checkSerialRange(p, 1000, ZERO_TID, MAX_TID, ZERO_OID);
      assert.equal(serials.count, 3);
      assert.deepEqual(await peer.request('AskCheckSerialRange', [p, 1000, ZERO_TID, MAX_TID, ZERO_OID]),
        [serials.count, serials.tidChecksum, serials.maxTid, serials.oidChecksum, serials.maxOid]);
      // What the fetching node has and the source has not is listed for deletion. Transaction
      // metadata lives in the partition of its TID, not of its objects: commit (a bounded number
      // of times) until one of this node's partitions holds some.
      const tidsOf = (q: number) => s0.backend.getReplicationTIDList(ZERO_TID, MAX_TID, null, q);
      for (let i = 3; i < 40 && !mine.some((q) => tidsOf(q).length > 0); i++) {
        await client.commit([[oidIn(p, i), Buffer.from(`d${i}`)]]);
        await until(() => s0.tm.size === 0, 'unlocked');
      }
      const tp = mine.find((q) => tidsOf(q).length > 0)!;
      const bogusTxnTid = p64(BigInt(NP * 1000 + tp));
      const tids = tidsOf(tp);
      const fetched = await askCollecting(peer, received, 'AskFetchTransactions', [tp, 1000, ZERO_TID, MAX_TID, [bogusTxnTid, tids[0]!], true]);
      assert.deepEqual(fetched.map((x) => x.args[0]), [...tids.slice(1), null]);
      assert.deepEqual(fetched.at(-1)!.args, [null, [bogusTxnTid], ZERO_TID]);
      const bogusTid = p64(BigInt(NP * 1000 + p));
      const objects = s0.backend.getReplicationObjectList(ZERO_TID, MAX_TID, 1000, p, ZERO_OID);
      const first = objects[0]!;
      const known = new Map([[first.serial, [first.oid]], [bogusTid, [oidIn(p, 99)]]]);
      const answer = await askCollecting(peer, received, 'AskFetchObjects', [p, 2, ZERO_TID, MAX_TID, ZERO_OID, known]);
      assert.deepEqual(answer.map((x) => x.info.name), ['AddObject', 'AnswerFetchObjects']);
      assert.deepEqual(answer[0]!.args.slice(0, 2), [objects[1]!.oid, objects[1]!.serial]);
      assert.deepEqual(answer[1]!.args, [objects[2]!.serial, objects[2]!.oid, new Map([[bogusTid, [oidIn(p, 99)]]])]);
      peer.close();
    });
  });

  it('lockless stores of one OID by two transactions postpone NotifyReplicationDone until one ends', () => {
    const backend = new MemoryBackend();
    backend.setup({ clusterName: CLUSTER });
    backend.setNid(1);
    backend.changePartitionTable({
      ptid: 1, numReplicas: 1, reset: true, lastPackId: ZERO_TID,
      cells: [{ partition: 0, nid: 1, state: CellStates.OUT_OF_DATE }, { partition: 0, nid: 2, state: CellStates.UP_TO_DATE }],
    });
    backend.commit();
    const notified: [number, Buffer][] = [];
    const tm = new TransactionManager(backend, {
      notifyDeadlock: () => assert.fail('no deadlock expected'),
      notifyReplicationDone: (partition, tid) => void notified.push([partition, tid]),
    });
    tm.replicating([0]);
    const [t1, t2, done] = [p64(100n), p64(200n), p64(300n)];
    const o = oidIn(0, 1);
    const data = { compression: 0, checksum: sha1(Buffer.from('v')), data: Buffer.from('v') };
    tm.register(t1, null);
    tm.register(t2, null);
    assert.deepEqual(tm.storeObject(t1, ZERO_TID, o, data, null), ZERO_TID);
    assert.deepEqual(tm.storeObject(t2, ZERO_TID, o, data, null), ZERO_TID);
    tm.replicated(0, done);
    assert.deepEqual(notified, [], 'two transactions hold a lockless store of the same OID');
    tm.abort(t2);
    assert.deepEqual(notified, [[0, done]]);
    // The remaining store now holds a real lock: a new transaction waits behind it.
    tm.register(p64(400n), null);
    assert.equal(typeof tm.storeObject(p64(400n), ZERO_TID, o, data, null), 'symbol');
  });

  for (const [file, fetcher] of [['16-storage-restart', 'storage1'], ['17-add-storage', 'storage2']] as const) {
    it(`transcript ${file}: a source answers ${fetcher}'s fetches packet for packet as NEO did`, async () => {
      const lines = readTranscripts().find((t) => t.file === `${file}.jsonl`)!.lines;
      const fetches = lines.filter((l) => l.from === fetcher && /^Ask(FetchTransactions|FetchObjects)$/.test(l.name));
      assert(fetches.length >= 2);
      const cluster = await TestCluster.start(1, 0);
      try {
        const source = cluster.storages[0]!;
        // The source holds exactly what the NEO sources streamed.
        const backend = source.backend;
        for (const line of lines.filter((l) => l.to === fetcher && l.from.startsWith('storage'))) {
          const args = fromTranscriptJson(line.args) as unknown[];
          if (line.name === 'AddTransaction') {
            const [tid, user, description, ext, packed, ttid, oids] = args as ArgsOf<'AddTransaction'>;
            backend.addTransaction(tid, { user, description, ext, packed, ttid, oids });
          } else if (line.name === 'AddObject') {
            const [oid, serial, compression, checksum, data, dataSerial] = args as ArgsOf<'AddObject'>;
            backend.addObject(oid, serial, backend.storeData(oid, { compression, checksum, data }, dataSerial), dataSerial);
          }
        }
        backend.commit();
        for (const conn of new Set(fetches.map((l) => l.conn))) {
          const received: Packet[] = [];
          const peer = await storagePeer(cluster, source, received);
          let compared = 0;
          for (const request of fetches.filter((l) => l.conn === conn)) {
            const expected = lines.filter((l) => l.conn === conn && l.to === fetcher && l.msg_id === request.msg_id);
            const got = await askCollecting(peer, received, request.name as PacketName, fromTranscriptJson(request.args) as unknown[]);
            assert.deepEqual(got.map((p) => p.info.name), expected.map((l) => l.name), `answers to ${request.name} ${request.msg_id}`);
            for (const [i, packet] of got.entries()) {
              const line = expected[i]!;
              assert.deepEqual(packet.args, fromTranscriptJson(line.args));
              // Same bytes as NEO under the same message id: same argument types too.
              const bytes = encodePacket(line.msg_id!, packet.info.name as PacketName, packet.args as never);
              assert.equal(bytes.toString('hex'), line.raw_hex, `${line.name} bytes`);
              compared++;
            }
          }
          assert(compared >= 2);
          peer.close();
        }
      } finally {
        cluster.stop();
      }
    });
  }
});
