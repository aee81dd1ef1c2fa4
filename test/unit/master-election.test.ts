// Several masters in one process on the memory network: election, secondaries, fail-over
// (cluster.md §6, protocol.md §5.5).

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Address, Env } from '../../src/core/env.js';
import { MasterApp, compareElectionKeys } from '../../src/master/app.js';
import { Connection } from '../../src/net/connection.js';
import type { Handler } from '../../src/net/connection.js';
import { memoryNetwork } from '../../src/net/memory.js';
import type { MemoryNetwork } from '../../src/net/memory.js';
import { ClusterStates, ErrorCodes, NodeStates, NodeTypes } from '../../src/protocol/enums.js';
import { recordingLogger } from '../helpers/logger.js';

const CLUSTER = 'test';
/** Timers run 50 times faster than asked, to keep the 1 s reconnection delays short. */
const TIME_SCALE = 50;

function address(port: number): Address {
  return { host: '127.0.0.1', port };
}

/** One shared clock: a master started later has a later election key. */
function makeEnv(network: MemoryNetwork, clock: { now: number }): Env {
  return {
    clock: { now: () => (clock.now += 0.001), monotonicMs: () => clock.now * 1000 },
    timers: {
      after: (ms, fn) => { const t = setTimeout(fn, ms / TIME_SCALE); return { cancel: () => clearTimeout(t) }; },
      every: (ms, fn) => { const t = setInterval(fn, ms / TIME_SCALE); return { cancel: () => clearInterval(t) }; },
      soon: (fn) => void setImmediate(fn),
    },
    random: { next: () => 0.5, int: () => 0, bytes: (n) => Buffer.alloc(n) },
    transport: network.transport(),
    logger: recordingLogger(),
  };
}

interface Masters {
  network: MemoryNetwork;
  masters: Map<number, MasterApp>;
  start(port: number): Promise<MasterApp>;
  stopAll(): void;
}

/** Masters listening on `ports`, each listing all of them (its own address included). */
function masterGroup(ports: number[]): Masters {
  const network = memoryNetwork({ schedule: setImmediate });
  const clock = { now: 1_800_000_000 };
  const masters = new Map<number, MasterApp>();
  return {
    network,
    masters,
    async start(port) {
      const master = new MasterApp(makeEnv(network, clock), {
        cluster: CLUSTER, bind: address(port), masters: ports.map(address), partitions: 4, replicas: 1,
        autostart: undefined, nid: undefined,
      });
      masters.set(port, master);
      await master.start();
      return master;
    },
    stopAll() {
      for (const master of masters.values()) master.stop();
    },
  };
}

async function until(condition: () => boolean, what: string, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (condition()) return;
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
  assert.fail(`timed out waiting for ${what}`);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Exactly one primary, and every other master is a secondary accepted by it. */
function settled(group: Masters, running: MasterApp[]): boolean {
  const primaries = running.filter((m) => m.role === 'primary');
  if (primaries.length !== 1) return false;
  const primary = primaries[0]!;
  const secondaries = primary.nodes.ofType(NodeTypes.MASTER).filter((n) => n.connection !== null);
  return secondaries.length === running.length - 1 && secondaries.every((n) => n.state === NodeStates.RUNNING);
}

/** A peer connecting to `target` and recording what it receives. */
function peer(network: MemoryNetwork, target: Address) {
  const received: { name: string; args: unknown[] }[] = [];
  let closed = false;
  const handler = new Proxy({} as Handler, {
    get: (_t, name: string) => {
      if (name === 'connectionClosed') return () => void (closed = true);
      if (name === 'connectionCompleted') return undefined;
      return (_conn: Connection, ...args: unknown[]) => void received.push({ name, args });
    },
  });
  const conn = new Connection({ stream: network.transport().connect(target), handler, logger: recordingLogger(), label: 'peer' });
  return { conn, received, isClosed: () => closed };
}

describe('master election', () => {
  it('compares election keys by time, then host bytes, then port', () => {
    assert.ok(compareElectionKeys(1, address(2), 2, address(1)) < 0);
    assert.ok(compareElectionKeys(1, address(1), 1, address(2)) < 0);
    assert.ok(compareElectionKeys(1, { host: '127.0.0.10', port: 1 }, 1, { host: '127.0.0.9', port: 1 }) < 0);
    assert.equal(compareElectionKeys(1, address(1), 1, address(1)), 0);
  });

  for (const order of [[1001, 1002], [1002, 1001]]) {
    it(`two masters started ${order.join(' then ')} elect the first one`, async () => {
      const group = masterGroup([1001, 1002]);
      try {
        const first = await group.start(order[0]!);
        await sleep(5);
        const second = await group.start(order[1]!);
        await until(() => settled(group, [first, second]), 'one primary');
        assert.equal(first.role, 'primary');
        assert.equal(second.role, 'secondary');
        assert.notEqual(second.nid, first.nid, 'the secondary got its own id');
        assert.equal(first.clusterState, ClusterStates.RECOVERING);
      } finally {
        group.stopAll();
      }
    });
  }

  const permutations = [[2001, 2002, 2003], [2003, 2001, 2002], [2002, 2003, 2001], [2003, 2002, 2001]];
  for (const order of permutations) {
    it(`three masters started together (${order.join(', ')}) elect exactly one primary, the oldest key`, async () => {
      const group = masterGroup([2001, 2002, 2003]);
      try {
        // Started without waiting for each other: challenges cross.
        const started = await Promise.all(order.map((port) => group.start(port)));
        await until(() => settled(group, started), 'one primary');
        assert.equal(started[0]!.role, 'primary');
        // Stable: nothing changes afterwards.
        await sleep(100);
        assert.ok(settled(group, started));
        assert.equal(started[0]!.role, 'primary');
      } finally {
        group.stopAll();
      }
    });
  }

  it('a master started against a running cluster becomes secondary whatever its key', async () => {
    const group = masterGroup([3001, 3002]);
    try {
      const primary = await group.start(3002);
      // Makes the primary leave RECOVERING: without storages this needs a trick, a state as RUNNING.
      primary.clusterState = ClusterStates.RUNNING;
      const other = await group.start(3001);
      await until(() => other.role === 'secondary' && primary.nodes.ofType(NodeTypes.MASTER).some((n) => n.connection !== null), 'secondary');
      assert.equal(primary.role, 'primary');
    } finally {
      group.stopAll();
    }
  });
});

describe('secondary masters', () => {
  it('redirect every node to the primary with NotPrimaryMaster, then close', async () => {
    const group = masterGroup([4001, 4002]);
    try {
      const primary = await group.start(4001);
      const secondary = await group.start(4002);
      await until(() => settled(group, [primary, secondary]), 'one primary');
      const storage = peer(group.network, address(4002));
      const answer = storage.conn.request('RequestIdentification',
        [NodeTypes.STORAGE, null, address(4100), CLUSTER, null, new Map()]).catch((error: Error) => error);
      await until(() => storage.isClosed(), 'closed');
      assert.ok((await answer) instanceof Error);
      const redirect = storage.received.find((packet) => packet.name === 'NotPrimaryMaster');
      assert.ok(redirect !== undefined, 'NotPrimaryMaster received');
      const [index, known] = redirect.args as [number, Address[]];
      assert.deepEqual(known[index], address(4001));
      assert.equal(known.length, 2);
      // The wrong cluster name is still refused as by a primary.
      const intruder = peer(group.network, address(4002));
      await assert.rejects(intruder.conn.request('RequestIdentification',
        [NodeTypes.STORAGE, null, address(4101), 'other', null, new Map()]), (error: Error & { code?: unknown }) => error.code === ErrorCodes.PROTOCOL_ERROR);
    } finally {
      group.stopAll();
    }
  });

  it('takes over when the primary is lost: a new election, then RECOVERING as primary', async () => {
    const group = masterGroup([5001, 5002, 5003]);
    try {
      const [a, b, c] = [await group.start(5001), await group.start(5002), await group.start(5003)];
      await until(() => settled(group, [a, b, c]), 'one primary');
      assert.equal(a.role, 'primary');
      a.stop();
      await until(() => settled(group, [b, c]), 'a new primary');
      const primary = [b, c].find((m) => m.role === 'primary')!;
      assert.equal(primary.clusterState, ClusterStates.RECOVERING);
      const old = primary.nodes.byAddress(address(5001));
      assert.equal(old?.state, NodeStates.DOWN);
    } finally {
      group.stopAll();
    }
  });

  it('a secondary killed by neoctl (SetNodeState DOWN) exits', async () => {
    const group = masterGroup([6001, 6002]);
    try {
      const primary = await group.start(6001);
      const secondary = await group.start(6002);
      await until(() => settled(group, [primary, secondary]), 'one primary');
      const admin = peer(group.network, address(6001));
      await admin.conn.request('RequestIdentification', [NodeTypes.ADMIN, null, address(6100), CLUSTER, null, new Map()]);
      await assert.rejects(admin.conn.request('SetNodeState', [primary.nid, NodeStates.DOWN]), /can not kill primary master node/);
      const [, message] = await admin.conn.request('SetNodeState', [secondary.nid, NodeStates.DOWN]);
      assert.equal(message, 'state changed');
      await secondary.stopped;
      await until(() => primary.nodes.byAddress(address(6002))?.connection === null, 'secondary gone');
      assert.equal(primary.nodes.byAddress(address(6002))?.state, NodeStates.DOWN);
    } finally {
      group.stopAll();
    }
  });
});
