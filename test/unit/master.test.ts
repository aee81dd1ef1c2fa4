import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Env } from '../../src/core/env.js';
import { PartitionTable } from '../../src/core/partition-table.js';
import { MasterApp } from '../../src/master/app.js';
import type { MasterOptions } from '../../src/master/app.js';
import { tweak } from '../../src/master/pt.js';
import { Connection } from '../../src/net/connection.js';
import type { Handler } from '../../src/net/connection.js';
import { memoryNetwork } from '../../src/net/memory.js';
import type { MemoryNetwork } from '../../src/net/memory.js';
import { CellStates, ClusterStates, ErrorCodes, NodeStates, NodeTypes } from '../../src/protocol/enums.js';
import type { ClusterState, NodeType } from '../../src/protocol/enums.js';
import { MAX_TID, ZERO_TID, compareIds, makeNid, p64, partitionOf, u64 } from '../../src/protocol/ids.js';
import type { ArgsOf, PacketName } from '../../src/protocol/packets.js';
import { recordingLogger } from '../helpers/logger.js';
import { readTranscripts } from '../helpers/spec.js';

const CLUSTER = 'test';
const NP = 4;

interface Received {
  name: string;
  args: unknown[];
  msgId: number;
}

/** A scripted peer: records every packet it gets and answers the master's requests. */
class FakePeer {
  readonly received: Received[] = [];
  readonly conn: Connection;
  closed = false;
  /** Requests to answer: packet name → reply (returns nothing to leave the request pending). */
  readonly replies = new Map<string, (conn: Connection, ...args: any[]) => void>();

  constructor(network: MemoryNetwork, master: MasterApp) {
    const received = this.received;
    const replies = this.replies;
    const handler = new Proxy({} as Handler, {
      get: (_target, name: string) => {
        if (name === 'connectionClosed') return () => void (this.closed = true);
        if (name === 'connectionCompleted') return undefined;
        return (conn: Connection, ...args: unknown[]) => {
          received.push({ name, args, msgId: conn.peerMsgId });
          replies.get(name)?.(conn, ...args);
        };
      },
    });
    this.conn = new Connection({
      stream: network.transport().connect(master.address), handler, logger: recordingLogger(), label: 'fake',
    });
  }

  names(): string[] {
    return this.received.map((packet) => packet.name);
  }

  last(name: string): Received | undefined {
    return this.received.filter((packet) => packet.name === name).at(-1);
  }

  identify(
    type: NodeType, nid: number | null, port: number | null, cluster = CLUSTER, extra = new Map<string, unknown>(),
  ): Promise<unknown[]> {
    const address = port === null ? null : { host: '127.0.0.1', port };
    return this.conn.request('RequestIdentification', [type, nid, address, cluster, null, extra]);
  }
}

/** A storage of an empty database that does what a NEO storage does during start-up. */
function fakeStorage(network: MemoryNetwork, master: MasterApp): FakePeer {
  const peer = new FakePeer(network, master);
  peer.replies.set('AskRecovery', (conn) => conn.answer('AnswerRecovery', [null, null, null]));
  peer.replies.set('AskLockedTransactions', (conn) => conn.answer('AnswerLockedTransactions', [new Map()]));
  peer.replies.set('AskLastIDs', (conn) => {
    conn.notify('NotifyPackCompleted', [ZERO_TID]);
    conn.answer('AnswerLastIDs', [null, null, MAX_TID]);
  });
  peer.replies.set('AskPackOrders', (conn) => conn.answer('AnswerPackOrders', [[]]));
  peer.replies.set('StartOperation', (conn) => conn.notify('NotifyReady', []));
  peer.replies.set('AskLockInformation', (conn, ttid: Buffer) => conn.answer('AnswerInformationLocked', [ttid]));
  return peer;
}

async function until(condition: () => boolean, what = 'condition'): Promise<void> {
  for (let i = 0; i < 10_000; i++) {
    if (condition()) return;
    await new Promise((resolve) => setImmediate(resolve));
  }
  assert.fail(`timed out waiting for ${what}`);
}

async function startMaster(options: Partial<MasterOptions> = {}) {
  const network = memoryNetwork({ schedule: setImmediate });
  const logger = recordingLogger();
  let now = 1_800_000_000;
  const env: Env = {
    clock: { now: () => (now += 0.0001), monotonicMs: () => now * 1000 },
    timers: {
      after: (ms, fn) => { const t = setTimeout(fn, ms); return { cancel: () => clearTimeout(t) }; },
      every: (ms, fn) => { const t = setInterval(fn, ms); return { cancel: () => clearInterval(t) }; },
      soon: (fn) => void setImmediate(fn),
    },
    random: { next: () => 0.5, int: () => 0, bytes: (n) => Buffer.alloc(n) },
    transport: network.transport(),
    logger,
  };
  const master = new MasterApp(env, {
    cluster: CLUSTER, bind: { host: '127.0.0.1', port: 0 }, masters: [], partitions: NP, replicas: 1,
    autostart: undefined, nid: undefined, ...options,
  });
  await master.start();
  return { master, network, logger };
}

/** A RUNNING cluster of two storages, an admin, and the admin's `neoctl start`. */
async function runningCluster() {
  const { master, network, logger } = await startMaster();
  const s1 = fakeStorage(network, master);
  const s2 = fakeStorage(network, master);
  await s1.identify(NodeTypes.STORAGE, null, 20001);
  await s2.identify(NodeTypes.STORAGE, null, 20002);
  const admin = new FakePeer(network, master);
  await admin.identify(NodeTypes.ADMIN, null, 20100);
  await until(() => s1.names().includes('AskRecovery') && s2.names().includes('AskRecovery'));
  await until(() => s1.conn.pendingRequests === 0 && master.nodes.storages().every((n) => n.connection?.pendingRequests === 0));
  await admin.conn.request('SetClusterState', [ClusterStates.VERIFYING]);
  await until(() => master.clusterState === ClusterStates.RUNNING, 'RUNNING');
  await until(() => s1.names().includes('StartOperation') && s2.names().includes('StartOperation'));
  await new Promise((resolve) => setImmediate(resolve));
  return { master, network, logger, s1, s2, admin };
}

async function client(network: MemoryNetwork, master: MasterApp): Promise<FakePeer> {
  const peer = new FakePeer(network, master);
  await peer.identify(NodeTypes.CLIENT, null, null);
  return peer;
}

describe('master: identification', () => {
  it('logs the address it listens on', async () => {
    const { master, logger } = await startMaster();
    assert(logger.lines.includes(`info listening on 127.0.0.1:${master.address.port}`));
    master.stop();
  });

  it('refuses a wrong cluster name with a protocol error and closes', async () => {
    const { master, network } = await startMaster();
    const peer = new FakePeer(network, master);
    await assert.rejects(peer.identify(NodeTypes.STORAGE, null, 20001, 'other'), (error: any) =>
      error.code === ErrorCodes.PROTOCOL_ERROR && /invalid cluster name/.test(error.message));
    await until(() => peer.closed, 'close');
    master.stop();
  });

  it('refuses clients with NOT_READY before the cluster runs', async () => {
    const { master, network } = await startMaster();
    const peer = new FakePeer(network, master);
    await assert.rejects(peer.identify(NodeTypes.CLIENT, null, null), (error: any) => error.code === ErrorCodes.NOT_READY);
    await until(() => peer.closed, 'close');
    master.stop();
  });

  it('refuses an id already connected, and the own address of the master', async () => {
    const { master, network } = await startMaster();
    const s1 = fakeStorage(network, master);
    await s1.identify(NodeTypes.STORAGE, null, 20001);
    const clone = new FakePeer(network, master);
    await assert.rejects(clone.identify(NodeTypes.STORAGE, 1, 20009), /already connected/);
    const loop = new FakePeer(network, master);
    await assert.rejects(loop.identify(NodeTypes.STORAGE, null, master.address.port), /address conflict/);
    master.stop();
  });

  it('accepts, then sends the node list with the new node first and strictly increasing timestamps', async () => {
    const { master, network } = await startMaster();
    const s1 = fakeStorage(network, master);
    const [type, masterNid, yourNid] = await s1.identify(NodeTypes.STORAGE, null, 20001);
    assert.equal(type, NodeTypes.MASTER);
    assert.equal(masterNid, makeNid(NodeTypes.MASTER.value, 1));
    assert.equal(yourNid, 1);
    const s2 = fakeStorage(network, master);
    await s2.identify(NodeTypes.STORAGE, null, 20002);
    await until(() => s2.names().includes('AskRecovery') && s1.received.filter((p) => p.name === 'NotifyNodeInformation').length === 2);
    const [ts1, list1] = s1.received.find((p) => p.name === 'NotifyNodeInformation')!.args as ArgsOf<'NotifyNodeInformation'>;
    assert.deepEqual(list1[0]!.slice(0, 4), [NodeTypes.STORAGE, { host: '127.0.0.1', port: 20001 }, 1, NodeStates.PENDING]);
    assert(typeof list1[0]![4] === 'number' && list1[0]![4] < ts1);
    const [ts2, list2] = s1.last('NotifyNodeInformation')!.args as ArgsOf<'NotifyNodeInformation'>;
    assert(ts2 > ts1);
    assert.deepEqual(list2.map((n) => n[2]), [2]);
    assert.deepEqual(s1.names().slice(0, 3), ['NotifyNodeInformation', 'AskRecovery', 'NotifyNodeInformation']);
    master.stop();
  });

  it('gives clients the smallest free id of their namespace', async () => {
    const { master, network } = await runningCluster();
    const c1 = await client(network, master);
    const c2 = await client(network, master);
    const firstClient = makeNid(NodeTypes.CLIENT.value, 1);
    assert.deepEqual(master.nodes.ofType(NodeTypes.CLIENT).map((n) => n.nid), [firstClient, firstClient + 1]);
    c1.conn.close();
    await until(() => master.nodes.ofType(NodeTypes.CLIENT).length === 1, 'client forgotten');
    const c3 = new FakePeer(network, master);
    const [, , nid] = await c3.identify(NodeTypes.CLIENT, null, null);
    assert.equal(nid, firstClient);
    void c2;
    master.stop();
  });
});

describe('master: cluster states', () => {
  it('goes from RECOVERING through VERIFYING to RUNNING on neoctl start', async () => {
    const { master, s1, s2, admin } = await runningCluster();
    for (const storage of [s1, s2]) {
      const names = storage.names().filter((name) => name !== 'NotifyNodeInformation');
      assert.deepEqual(names, [
        'AskRecovery', 'NotifyClusterInformation', 'SendPartitionTable', 'AskLockedTransactions',
        'AskLastIDs', 'AskPackOrders', 'NotifyClusterInformation', 'StartOperation',
      ]);
      assert.equal(storage.last('NotifyClusterInformation')!.args[0], ClusterStates.RUNNING);
      assert.deepEqual(storage.last('AskPackOrders')!.args, [p64(1n)]);
    }
    const [ptid, nr, rows] = s1.last('SendPartitionTable')!.args as ArgsOf<'SendPartitionTable'>;
    assert.equal(ptid, 1);
    assert.equal(nr, 1);
    assert.deepEqual(rows, Array.from({ length: NP }, () => [[1, CellStates.UP_TO_DATE], [2, CellStates.UP_TO_DATE]]));
    // The admin saw the empty table first, then the new one.
    const tables = admin.received.filter((p) => p.name === 'SendPartitionTable').map((p) => p.args[0]);
    assert.deepEqual(tables, [null, 1]);
    assert.deepEqual(await admin.conn.request('AskClusterState', []), [ClusterStates.RUNNING]);
    assert.deepEqual(await admin.conn.request('AskLastTransaction', []), [ZERO_TID]);
    master.stop();
  });

  it('sends the storages and the admin the packets a Python master sends (transcript 00)', async () => {
    const { master, s1, s2, admin } = await runningCluster();
    const lines = readTranscripts().find((t) => t.file === '00-cluster-start.jsonl')!.lines;
    const sent = (to: string) => lines.filter((l) => l.from === 'master0' && l.to === to && l.name !== 'Handshake');
    for (const [peer, name] of [[s1, 'storage0'], [s2, 'storage1']] as const) {
      // The first packet, AcceptIdentification, is an answer: the fake peer sees it as a promise.
      assert.deepEqual(['AcceptIdentification', ...peer.names()], sent(name).map((l) => l.name));
    }
    // The admin's own requests (AskClusterState, AskLastTransaction) are not replayed here.
    const adminNotifications = sent('admin0').map((l) => l.name)
      .filter((n) => !['AcceptIdentification', 'AnswerClusterState', 'Error', 'AnswerLastTransaction'].includes(n));
    assert.deepEqual(admin.names(), adminNotifications);
    master.stop();
  });

  it('starts by itself with --autostart once enough storages are pending', async () => {
    const { master, network } = await startMaster({ autostart: 2 });
    const s1 = fakeStorage(network, master);
    await s1.identify(NodeTypes.STORAGE, null, 20001);
    await new Promise((resolve) => setTimeout(resolve, 10));
    assert.equal(master.clusterState, ClusterStates.RECOVERING);
    const s2 = fakeStorage(network, master);
    await s2.identify(NodeTypes.STORAGE, null, 20002);
    await until(() => master.clusterState === ClusterStates.RUNNING, 'RUNNING');
    master.stop();
  });

  it('outdates the cells of a lost storage, and stops when asked', async () => {
    const { master, s1, s2, admin } = await runningCluster();
    s2.conn.close();
    await until(() => s1.names().includes('NotifyPartitionChanges'), 'partition changes');
    const [ptid, , changes] = s1.last('NotifyPartitionChanges')!.args as ArgsOf<'NotifyPartitionChanges'>;
    assert.equal(ptid, 2);
    assert.deepEqual(changes, [0, 1, 2, 3].map((p) => [p, 2, CellStates.OUT_OF_DATE]));
    assert.equal(master.clusterState, ClusterStates.RUNNING);
    await admin.conn.request('SetClusterState', [ClusterStates.STOPPING]);
    await master.stopped;
    const [, down] = s1.last('NotifyNodeInformation')!.args as ArgsOf<'NotifyNodeInformation'>;
    assert.deepEqual(down, [[NodeTypes.STORAGE, { host: '127.0.0.1', port: 20001 }, 1, NodeStates.DOWN, null]]);
    assert.equal(s1.last('NotifyClusterInformation')!.args[0], ClusterStates.STOPPING);
  });
});

describe('master: transactions', () => {
  it('allocates consecutive oids', async () => {
    const { master, network } = await runningCluster();
    const c = await client(network, master);
    const [first] = await c.conn.request('AskNewOIDs', [3]);
    const [second] = await c.conn.request('AskNewOIDs', [2]);
    assert.deepEqual([...(first as Buffer[]), ...(second as Buffer[])], [1n, 2n, 3n, 4n, 5n].map(p64));
    master.stop();
  });

  it('commits in TID order and invalidates the other clients', async () => {
    const { master, network, s1, s2 } = await runningCluster();
    // Storages hold their lock answers until told.
    const held: (() => void)[] = [];
    for (const storage of [s1, s2]) {
      storage.replies.set('AskLockInformation', (conn, ttid: Buffer) => {
        const msgId = conn.peerMsgId;
        held.push(() => conn.answerTo(msgId, 'AnswerInformationLocked', [ttid]));
      });
    }
    const a = await client(network, master);
    const b = await client(network, master);
    const [ttidA] = (await a.conn.request('AskBeginTransaction', [null])) as [Buffer];
    const [ttidB] = (await b.conn.request('AskBeginTransaction', [null])) as [Buffer];
    assert(compareIds(ttidB, ttidA) > 0);
    const oid = p64(7n);
    const finishedA = a.conn.request('AskFinishTransaction', [ttidA, [oid], [], [], null]);
    await until(() => held.length === 2, 'locks of A');
    const finishedB = b.conn.request('AskFinishTransaction', [ttidB, [p64(8n)], [], [], null]);
    await until(() => held.length === 4, 'locks of B');
    const [tidA] = s1.received.filter((p) => p.name === 'AskLockInformation').map((p) => p.args[1] as Buffer);
    const tidB = s1.last('AskLockInformation')!.args[1] as Buffer;
    assert(compareIds(tidB, tidA!) > 0);
    assert.equal(partitionOf(tidA!, NP), partitionOf(ttidA, NP));
    // B locked first: it must still wait for A.
    held[2]!();
    held[3]!();
    await new Promise((resolve) => setTimeout(resolve, 5));
    assert.equal(s1.names().includes('NotifyUnlockInformation'), false);
    held[0]!();
    held[1]!();
    assert.deepEqual(await finishedA, [ttidA, tidA]);
    assert.deepEqual(await finishedB, [ttidB, tidB]);
    await until(() => s1.received.filter((p) => p.name === 'NotifyUnlockInformation').length === 2);
    assert.deepEqual(s1.received.filter((p) => p.name === 'NotifyUnlockInformation').map((p) => p.args[0]), [ttidA, ttidB]);
    await until(() => b.names().includes('InvalidateObjects') && a.names().includes('InvalidateObjects'));
    assert.deepEqual(b.last('InvalidateObjects')!.args, [tidA, [oid]]);
    assert.deepEqual(a.last('InvalidateObjects')!.args, [tidB, [p64(8n)]]);
    assert.deepEqual(await a.conn.request('AskLastTransaction', []), [tidB]);
    master.stop();
  });

  it('outdates a storage that missed writes before asking the locks (transactions.md §10.1)', async () => {
    // Seen in the faults test: a write to S2 failed, S2 was only disconnected later; S1 (which
    // locked) was lost meanwhile, so S1's cells were outdated and S2, missing the write, kept the
    // last readable ones: verification skipped S1 and replication copied S2's partition.
    const { master, network, s1, s2 } = await runningCluster();
    s1.replies.set('AskLockInformation', () => {}); // the lock stays pending
    const nid2 = master.nodes.storages().find((n) => n.address?.port === 20002)!.nid!;
    const a = await client(network, master);
    const [ttid] = (await a.conn.request('AskBeginTransaction', [null])) as [Buffer];
    await a.conn.request('FailedVote', [ttid, [nid2]]);
    void a.conn.request('AskFinishTransaction', [ttid, [p64(7n)], [], [], null]).catch(() => {});
    await until(() => s1.names().includes('AskLockInformation'), 'lock asked');
    const names = s1.names();
    const outdating = names.findIndex((name, i) => name === 'NotifyPartitionChanges'
      && (s1.received[i]!.args[2] as ArgsOf<'NotifyPartitionChanges'>[2]).some(([, nid, state]) => nid === nid2 && state === CellStates.OUT_OF_DATE));
    assert(outdating >= 0 && outdating < names.indexOf('AskLockInformation'), `S2 outdated before the lock: ${names.join(', ')}`);
    assert.equal(s2.names().includes('AskLockInformation'), false);
    // Losing S1 now leaves its cells readable (the only ones with the transaction) and stops.
    s1.conn.close();
    await until(() => master.clusterState === ClusterStates.RECOVERING, 'RECOVERING');
    for (let p = 0; p < NP; p++) {
      assert.deepEqual(master.pt.readableCells(p).map((cell) => cell.nid), [master.nodes.storages().find((n) => n.address?.port === 20001)!.nid]);
    }
    master.stop();
  });

  it('aborts a transaction on the storages and answers AskFinalTID', async () => {
    const { master, network, s1 } = await runningCluster();
    const a = await client(network, master);
    const [ttid] = (await a.conn.request('AskBeginTransaction', [null])) as [Buffer];
    a.conn.notify('AbortTransaction', [ttid, [1]]);
    await until(() => s1.names().includes('AbortTransaction'));
    assert.deepEqual(s1.last('AbortTransaction')!.args, [ttid, []]);
    assert.deepEqual(await a.conn.request('AskFinalTID', [ttid]), [null]);
    assert.deepEqual(await a.conn.request('Ping', []), []);
    master.stop();
  });
});

describe('master: partition table', () => {
  it('adds a pending storage, tweaks the table and marks replicated cells UP_TO_DATE', async () => {
    const { master, network, s1, admin } = await runningCluster();
    const s3 = fakeStorage(network, master);
    await s3.identify(NodeTypes.STORAGE, null, 20003);
    await until(() => s3.names().includes('SendPartitionTable'));
    assert.equal(s3.names().includes('StartOperation'), false);
    // neoctl add all lists running nodes too: only the pending one is added.
    assert.deepEqual(await admin.conn.request('AddPendingNodes', [[1, 2, 3]]), [ErrorCodes.ACK.value, 'Nodes added: S3']);
    assert.deepEqual(await admin.conn.request('AddPendingNodes', [[3]]), [ErrorCodes.ACK.value, 'No node added']);
    await until(() => s3.names().includes('StartOperation'));
    const [changed, rows] = (await admin.conn.request('TweakPartitionTable', [false, []])) as ArgsOf<'AnswerTweakPartitionTable'>;
    assert.equal(changed, true);
    const cellsOf3 = rows.flatMap((row, partition) => row.filter(([nid]) => nid === 3).map(() => partition));
    assert.equal(cellsOf3.length, 2);
    await until(() => s1.names().includes('NotifyPartitionChanges'));
    const partition = cellsOf3[0]!;
    const [lastTid] = (await s3.conn.request('AskUnfinishedTransactions', [[partition]])) as [Buffer];
    assert.deepEqual(lastTid, ZERO_TID);
    s3.conn.notify('NotifyReplicationDone', [partition, ZERO_TID]);
    await until(() => master.pt.cell(partition, 3)?.state === CellStates.UP_TO_DATE, 'replicated');
    assert.deepEqual(master.pt.cells(partition).map((c) => c.state), [CellStates.UP_TO_DATE, CellStates.UP_TO_DATE]);
    master.stop();
  });

  it('restarts a known storage as RUNNING and tells it to start', async () => {
    const { master, network, s2 } = await runningCluster();
    s2.conn.close();
    await until(() => master.nodes.byNid(2)?.state === NodeStates.DOWN, 'S2 down');
    const again = fakeStorage(network, master);
    await again.identify(NodeTypes.STORAGE, 2, 20002);
    await until(() => again.names().includes('StartOperation'));
    assert.deepEqual(again.names().slice(0, 3), ['NotifyNodeInformation', 'SendPartitionTable', 'StartOperation']);
    assert.equal(master.nodes.byNid(2)?.state, NodeStates.RUNNING);
    master.stop();
  });

  it('tweak spreads a new storage evenly and keeps moved cells FEEDING', () => {
    const pt = new PartitionTable(4, 1, 6);
    for (let p = 0; p < 4; p++) {
      pt.setCell(p, 1, CellStates.UP_TO_DATE);
      pt.setCell(p, 2, CellStates.UP_TO_DATE);
    }
    const changes = tweak(pt, [1, 2, 3]);
    const states = (nid: number, state: (typeof CellStates)[keyof typeof CellStates]) =>
      pt.rows.flat().filter((c) => c.nid === nid && c.state === state).length;
    assert.equal(states(3, CellStates.OUT_OF_DATE), 2);
    assert.equal(states(1, CellStates.FEEDING) + states(2, CellStates.FEEDING), 2);
    assert(pt.rows.every((row) => new Set(row.map((c) => c.nid)).size === row.length));
    assert.equal(changes.length, 4);
    // Tweaking again changes nothing.
    assert.deepEqual(tweak(pt, [1, 2, 3]), []);
  });

  it('spreads the replicas of a new table over the hosts its storages announce in devpath', async () => {
    const { master, network, logger } = await startMaster();
    const hosts = ['a', 'a', 'b', 'b'];
    const storages = hosts.map(() => fakeStorage(network, master));
    for (const [i, storage] of storages.entries()) {
      const devpath = [Buffer.from(hosts[i]!), Buffer.from(String(i))];
      await storage.identify(NodeTypes.STORAGE, null, 20001 + i, CLUSTER, new Map([['devpath', devpath]]));
    }
    // A devpath that is not a list of strings is ignored, as NEO does not check it either.
    const odd = fakeStorage(network, master);
    await odd.identify(NodeTypes.STORAGE, null, 20009, CLUSTER, new Map([['devpath', 42]]));
    assert(logger.lines.some((line) => /S5 .*devpath .*ignored/.test(line)));
    odd.conn.close();
    await until(() => master.nodes.byNid(5)?.connection === null, 'S5 lost');
    const admin = new FakePeer(network, master);
    await admin.identify(NodeTypes.ADMIN, null, 20100);
    await until(() => storages.every((s) => s.names().includes('AskRecovery') && s.conn.pendingRequests === 0));
    await until(() => master.nodes.storages().every((n) => (n.connection?.pendingRequests ?? 0) === 0));
    await admin.conn.request('SetClusterState', [ClusterStates.VERIFYING]);
    await until(() => master.clusterState === ClusterStates.RUNNING, 'RUNNING');
    // Without topology the first partition would go to S1 and S2, both on host a.
    for (const row of master.pt.rows) assert.deepEqual(row.map((cell) => hosts[cell.nid - 1]).sort(), ['a', 'b']);
    assert(!logger.lines.some((line) => line.includes("Can't maximize resiliency")));
    master.stop();
  });
});

/** Commits a transaction storing `oid` through the fake client; returns its TID. */
async function commit(c: FakePeer, oid: Buffer): Promise<Buffer> {
  const [ttid] = (await c.conn.request('AskBeginTransaction', [null])) as [Buffer];
  const [, tid] = (await c.conn.request('AskFinishTransaction', [ttid, [oid], [], [], null])) as [Buffer, Buffer];
  return tid;
}

/**
 * Makes a fake storage behave as storage.md §7 says: it records the TID of Truncate, reports it
 * in AnswerRecovery, and truncates when asked its last ids. `ignoreFirst` drops the first
 * Truncate, as a storage that missed it.
 */
function truncatingStorage(storage: FakePeer, master: MasterApp, firstTid: () => Buffer, ignoreFirst = false) {
  const state = { recorded: null as Buffer | null, truncatedAt: null as Buffer | null, ignore: ignoreFirst };
  storage.replies.set('Truncate', (_conn, tid: Buffer) => {
    if (state.ignore) state.ignore = false;
    else state.recorded = tid;
  });
  storage.replies.set('AskRecovery', (conn) => conn.answer('AnswerRecovery', [master.pt.ptid, null, state.recorded]));
  storage.replies.set('AskLastIDs', (conn) => {
    if (state.recorded !== null) [state.truncatedAt, state.recorded] = [state.recorded, null];
    conn.notify('NotifyPackCompleted', [ZERO_TID]);
    conn.answer('AnswerLastIDs', [state.truncatedAt, p64(3n), firstTid()]);
  });
  return state;
}

describe('master: truncate', () => {
  it('refuses a truncation outside RUNNING, after the last or before the first transaction', async () => {
    const { master, network, admin } = await runningCluster();
    const c = await client(network, master);
    const tid1 = await commit(c, p64(1n));
    const tid2 = await commit(c, p64(2n));
    await assert.rejects(admin.conn.request('Truncate', [tid2]), (error: any) =>
      error.code === ErrorCodes.DENIED && error.message === 'Truncating after last transaction does nothing');
    await assert.rejects(admin.conn.request('Truncate', [p64(u64(tid1) - 1n)]), (error: any) =>
      error.code === ErrorCodes.DENIED
      && error.message === 'Truncating before first transaction is probably not what you intended to do');
    assert.equal(master.clusterState, ClusterStates.RUNNING);
    master.stop();
    const recovering = await startMaster();
    const lone = new FakePeer(recovering.network, recovering.master);
    await lone.identify(NodeTypes.ADMIN, null, 20100);
    await assert.rejects(lone.conn.request('Truncate', [tid1]), (error: any) =>
      error.code === ErrorCodes.DENIED && error.message === 'truncate RPC can not be used in RECOVERING state');
    recovering.master.stop();
  });

  it('goes back through recovery, where storages truncate, and serves the truncated database', async () => {
    const { master, network, s1, s2, admin } = await runningCluster();
    const c = await client(network, master);
    const tids: Buffer[] = [];
    for (let i = 1n; i <= 3n; i++) tids.push(await commit(c, p64(i)));
    const [tid1, tid2] = tids as [Buffer, Buffer];
    const first = () => tid1;
    const state1 = truncatingStorage(s1, master, first);
    // S2 misses the first Truncate: recovery must tell it again before going on.
    const state2 = truncatingStorage(s2, master, first, true);
    const before = s1.received.length;
    assert.deepEqual(await admin.conn.request('Truncate', [tid2]), [ErrorCodes.ACK.value, '']);
    await until(() => c.closed, 'client disconnected');
    await until(() => master.clusterState === ClusterStates.RUNNING && s1.received.length > before + 5, 'RUNNING again');
    await until(() => s1.received.slice(before).some((p) => p.name === 'StartOperation'), 'StartOperation');
    const names = s1.received.slice(before).map((p) => p.name).filter((name) => name !== 'NotifyNodeInformation');
    const after = names.slice(names.indexOf('StopOperation'));
    assert.deepEqual(after.slice(0, 4), ['StopOperation', 'Truncate', 'NotifyClusterInformation', 'AskRecovery']);
    assert.deepEqual(s1.last('Truncate')!.args, [tid2]);
    const truncates2 = s2.received.filter((p) => p.name === 'Truncate');
    assert.equal(truncates2.length, 2);
    assert.equal(s2.received.filter((p) => p.name === 'AskRecovery').length, 3);
    assert.deepEqual([state1.truncatedAt, state2.truncatedAt], [tid2, tid2]);
    assert(after.indexOf('AskLastIDs') > after.indexOf('NotifyClusterInformation'));
    assert.deepEqual(await admin.conn.request('AskLastTransaction', []), [tid2]);
    const again = await client(network, master);
    assert.deepEqual(await again.conn.request('AskLastTransaction', []), [tid2]);
    // New transactions commit after the truncation point.
    const tid4 = await commit(again, p64(4n));
    assert(compareIds(tid4, tid2) > 0);
    master.stop();
  });

  it('waits for every node of the partition table before truncating', async () => {
    const { master, network, s1, s2, admin } = await runningCluster();
    const c = await client(network, master);
    const tid1 = await commit(c, p64(1n));
    await commit(c, p64(2n));
    s2.conn.close();
    await until(() => master.nodes.byNid(2)?.state === NodeStates.DOWN, 'S2 down');
    truncatingStorage(s1, master, () => tid1);
    await admin.conn.request('Truncate', [tid1]);
    await until(() => master.clusterState === ClusterStates.RECOVERING, 'RECOVERING');
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(master.clusterState, ClusterStates.RECOVERING, 'S2 must truncate too');
    const back = fakeStorage(network, master);
    const state2 = truncatingStorage(back, master, () => tid1);
    await back.identify(NodeTypes.STORAGE, 2, 20002);
    await until(() => master.clusterState === ClusterStates.RUNNING, 'RUNNING');
    assert.deepEqual(back.last('Truncate')!.args, [tid1]);
    assert.deepEqual(state2.truncatedAt, tid1);
    assert.deepEqual(await admin.conn.request('AskLastTransaction', []), [tid1]);
    master.stop();
  });
});

describe('master: neoctl requests', () => {
  it('answers SetClusterState with the messages of NEO', async () => {
    const { master, network, admin } = await runningCluster();
    const denied = async (state: ClusterState, message: string) =>
      assert.rejects(admin.conn.request('SetClusterState', [state]), (error: any) =>
        error.code === ErrorCodes.DENIED && error.message === message);
    await denied(ClusterStates.RUNNING, 'Invalid state requested');
    await denied(ClusterStates.RECOVERING, 'Invalid state requested');
    await denied(ClusterStates.VERIFYING, 'Can not switch to this state');
    await denied(ClusterStates.STOPPING_BACKUP, 'Can not switch to this state');
    await denied(ClusterStates.STARTING_BACKUP, 'No upstream cluster to backup defined in configuration');
    await client(network, master);
    await denied(ClusterStates.STARTING_BACKUP,
      'Can not switch to STARTING_BACKUP state with pending transactions or connected clients');
    assert.deepEqual(await admin.conn.request('SetNumReplicas', [0]), [ErrorCodes.ACK.value, '']);
    master.stop();
    const { master: fresh, network: net2 } = await startMaster();
    const admin2 = new FakePeer(net2, fresh);
    await admin2.identify(NodeTypes.ADMIN, null, 20100);
    await assert.rejects(admin2.conn.request('SetClusterState', [ClusterStates.VERIFYING]), (error: any) =>
      error.message === 'Cannot exit recovery without any storage node');
    await assert.rejects(admin2.conn.request('AddPendingNodes', [[1]]), (error: any) =>
      error.message === 'addPendingNodes RPC can not be used in RECOVERING state');
    fresh.stop();
  });

  it('forwards prune_orphan to identified storages only', async () => {
    const { master, s1, s2, admin } = await runningCluster();
    await assert.rejects(admin.conn.request('Repair', [[1, 9], false]), (error: any) =>
      error.code === ErrorCodes.DENIED && error.message === 'invalid storage node S9');
    assert.deepEqual(await admin.conn.request('Repair', [[1, 2], true]), [ErrorCodes.ACK.value, '']);
    await until(() => s1.names().includes('NotifyRepair') && s2.names().includes('NotifyRepair'));
    assert.equal(s1.received.filter((p) => p.name === 'NotifyRepair').length, 1);
    assert.deepEqual(s2.last('NotifyRepair')!.args, [true]);
    master.stop();
  });

  it('sends one CheckPartition per partition to a node that checks the other replicas', async () => {
    const { master, network, logger, s1, s2, admin } = await runningCluster();
    const c = await client(network, master);
    const tid = await commit(c, p64(1n));
    await assert.rejects(admin.conn.request('CheckReplicas', [new Map([[NP, null]]), ZERO_TID, null]), (error: any) =>
      error.code === ErrorCodes.DENIED && error.message === `invalid partition ${NP}`);
    const partitions = new Map<number, number | null>([[0, null], [1, 1], [3, null]]);
    assert.deepEqual(await admin.conn.request('CheckReplicas', [partitions, ZERO_TID, null]), [ErrorCodes.ACK.value, '']);
    await until(() => s2.received.filter((p) => p.name === 'CheckPartition').length === 3, 'CheckPartition');
    assert.equal(s1.names().includes('CheckPartition'), false);
    const s1Address = { host: '127.0.0.1', port: 20001 };
    assert.deepEqual(s2.received.filter((p) => p.name === 'CheckPartition').map((p) => p.args), [
      [0, ['', null], ZERO_TID, tid], [1, ['', s1Address], ZERO_TID, tid], [3, ['', null], ZERO_TID, tid],
    ]);
    // Nothing to check when min_tid > max_tid.
    assert.deepEqual(await admin.conn.request('CheckReplicas', [new Map([[2, null]]), p64(9n), p64(8n)]), [ErrorCodes.ACK.value, '']);
    s2.conn.notify('NotifyPartitionCorrupted', [1, [1]]);
    await until(() => logger.lines.includes('error Partition 1 corrupted in: S1'), 'corruption logged');
    assert.equal(s2.received.filter((p) => p.name === 'CheckPartition').length, 3);
    assert.deepEqual(master.pt.cells(1).map((cell) => cell.state), [CellStates.UP_TO_DATE, CellStates.UP_TO_DATE]);
    master.stop();
  });
});
