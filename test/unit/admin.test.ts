// The admin node in process, against a fake primary master on an in-memory network, driven by
// our neoctl client: answers from its own copies, forwarding with message id mapping, NOT_READY
// without a master, reconnection, and shutting down with the cluster.

import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { AdminApp } from '../../src/admin/app.js';
import type { AdminOptions } from '../../src/admin/app.js';
import type { Address, Env, Transport } from '../../src/core/env.js';
import type { WireNodeInfo } from '../../src/core/node-table.js';
import type { WireRow } from '../../src/core/partition-table.js';
import { AdminClient, CtlFailure } from '../../src/ctl/client.js';
import { parseCommand } from '../../src/ctl/commands.js';
import { runCommand } from '../../src/ctl/run.js';
import { Connection } from '../../src/net/connection.js';
import type { Handler } from '../../src/net/connection.js';
import { memoryNetwork } from '../../src/net/memory.js';
import type { Packet } from '../../src/protocol/codec.js';
import { CellStates, ClusterStates, ErrorCodes, NodeStates, NodeTypes } from '../../src/protocol/enums.js';
import type { ClusterState } from '../../src/protocol/enums.js';
import { p64 } from '../../src/protocol/ids.js';
import { recordingLogger } from '../helpers/logger.js';

const HOST = '127.0.0.1';
const MASTER_ADDRESS: Address = { host: HOST, port: 10000 };
const M1 = -268435455;
const A1 = -805306367;
const LAST_TID = Buffer.from('040d2d82bf5eb2dd', 'hex');
const { UP_TO_DATE: U, OUT_OF_DATE: O } = CellStates;

const tick = () => new Promise<void>((resolve) => setImmediate(resolve));

async function until(condition: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 10_000; i++) {
    if (condition()) return;
    await tick();
  }
  assert.fail(`timed out waiting for ${what}`);
}

function testEnv(transport: Transport): Env {
  let ms = 0;
  return {
    clock: { now: () => 1795309525, monotonicMs: () => (ms += 10) },
    // Real timers, the reconnection delay (1 s) shortened: it is not what these tests check.
    // Longer ones (the 60 s monitoring timeout) never fire during a test.
    timers: {
      after: (delayMs, fn) => {
        const timer = setTimeout(fn, delayMs <= 1000 ? Math.min(delayMs, 5) : delayMs).unref();
        return { cancel: () => clearTimeout(timer) };
      },
      every: (periodMs, fn) => {
        const timer = setInterval(fn, periodMs).unref();
        return { cancel: () => clearInterval(timer) };
      },
      soon: (fn) => void setImmediate(fn),
    },
    random: { next: () => 0.5, int: () => 0, bytes: (n) => Buffer.alloc(n) },
    transport,
    logger: recordingLogger(),
  };
}

interface Seen {
  readonly msgId: number;
  readonly name: string;
  readonly args: unknown[];
}

/** A primary master that accepts the admin and answers what the tests need. */
class FakeMaster {
  readonly seen: Seen[] = [];
  readonly connections: Connection[] = [];
  state: ClusterState = ClusterStates.RUNNING;
  nodes: WireNodeInfo[] = [
    [NodeTypes.MASTER, MASTER_ADDRESS, M1, NodeStates.RUNNING, null],
    [NodeTypes.STORAGE, { host: HOST, port: 21010 }, 1, NodeStates.RUNNING, 1795309525.2773912],
    [NodeTypes.STORAGE, { host: HOST, port: 21011 }, 2, NodeStates.RUNNING, 1795309525.2776453],
    [NodeTypes.STORAGE, { host: HOST, port: 21012 }, 3, NodeStates.PENDING, 1795309542.758573],
  ];
  rows: WireRow[] = [[[1, U], [2, U]], [[1, U], [2, U]], [[1, U], [2, U]], [[1, U], [2, U]]];
  readonly logger = recordingLogger('master: ');
  /** Requests left unanswered, to answer later or never. */
  readonly held: { conn: Connection; msgId: number; name: string }[] = [];
  hold = new Set<string>();

  readonly transport: Transport;

  constructor(transport: Transport) {
    this.transport = transport;
  }

  async listen(): Promise<() => void> {
    const listener = await this.transport.listen(MASTER_ADDRESS, (stream) => {
      this.connections.push(new Connection({ stream, handler: this.handler(), logger: this.logger, label: 'admin' }));
    });
    return () => listener.close();
  }

  private handler(): Handler {
    const record = (conn: Connection, name: string, args: unknown[]): boolean => {
      this.seen.push({ msgId: conn.peerMsgId, name, args });
      if (!this.hold.has(name)) return false;
      this.held.push({ conn, msgId: conn.peerMsgId, name });
      return true;
    };
    return {
      RequestIdentification: (conn, ...args) => {
        record(conn, 'RequestIdentification', args);
        conn.answer('AcceptIdentification', [NodeTypes.MASTER, M1, A1]);
        const admin: WireNodeInfo = [NodeTypes.ADMIN, args[2], A1, NodeStates.RUNNING, 1795309525.2916932];
        conn.notify('NotifyNodeInformation', [1795309525.3, [admin, ...this.nodes]]);
        conn.notify('SendPartitionTable', [1, 1, this.rows]);
      },
      AskClusterState: (conn) => {
        if (!record(conn, 'AskClusterState', [])) conn.answer('AnswerClusterState', [this.state]);
      },
      AskLastTransaction: (conn) => {
        if (!record(conn, 'AskLastTransaction', [])) conn.answer('AnswerLastTransaction', [LAST_TID]);
      },
      AskRecovery: (conn) => {
        if (!record(conn, 'AskRecovery', [])) conn.answer('AnswerRecovery', [1, null, null]);
      },
      AskLastIDs: (conn) => {
        if (!record(conn, 'AskLastIDs', [])) conn.answer('AnswerLastIDs', [LAST_TID, p64(0x1db0n), p64(1n)]);
      },
      SetClusterState: (conn, state) => {
        if (record(conn, 'SetClusterState', [state])) return;
        if (state === ClusterStates.RUNNING) {
          conn.answerError(ErrorCodes.DENIED, 'Invalid state requested');
          return;
        }
        conn.answer('Error', [ErrorCodes.ACK.value, 'Cluster state changed']);
        this.state = state;
        conn.notify('NotifyClusterInformation', [state]);
      },
      SetNodeState: (conn, nid, state) => {
        if (!record(conn, 'SetNodeState', [nid, state])) conn.answerError(ErrorCodes.DENIED, 'unknown node');
      },
      CheckReplicas: (conn, ...args) => {
        // As if the master refused the request as malformed.
        if (!record(conn, 'CheckReplicas', args)) conn.answerError(ErrorCodes.PROTOCOL_ERROR, 'bad partition');
      },
      FlushLog: (conn) => void record(conn, 'FlushLog', []),
    };
  }

  dropConnections(): void {
    for (const conn of this.connections) conn.close();
  }
}

interface Setup {
  readonly transport: Transport;
  readonly master: FakeMaster;
  readonly admin: AdminApp;
  readonly closeMaster: () => void;
  ctl(command: string): Promise<string | null>;
}

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0)) cleanup();
});

async function setup(options: { withMaster?: boolean; config?: Partial<AdminOptions> } = {}): Promise<Setup> {
  const transport = memoryNetwork({ schedule: setImmediate }).transport();
  const master = new FakeMaster(transport);
  const closeMaster = options.withMaster === false ? () => {} : await master.listen();
  const admin = new AdminApp(testEnv(transport), {
    cluster: 'golden',
    bind: { host: HOST, port: 0 },
    masters: [MASTER_ADDRESS],
    ...options.config,
  });
  await admin.start();
  cleanups.push(() => admin.stop(), closeMaster);
  const ctl = (command: string) => {
    const client = new AdminClient(transport, admin.address, recordingLogger());
    return runCommand(parseCommand(command === '' ? [] : command.split(' ')), client).finally(() => client.close());
  };
  return { transport, master, admin, closeMaster, ctl };
}

/** A raw neoctl connection, to look at message ids and at the connection itself. */
function rawCtl(transport: Transport, address: Address): { conn: Connection; closed: Promise<void> } {
  let resolveClosed!: () => void;
  const closed = new Promise<void>((resolve) => (resolveClosed = resolve));
  const conn = new Connection({
    stream: transport.connect(address),
    handler: { connectionClosed: () => resolveClosed() },
    logger: recordingLogger(),
    label: 'ctl',
  });
  return { conn, closed };
}

function ask(conn: Connection, ...request: Parameters<Connection['ask']>): Promise<Packet | null> {
  return new Promise((resolve) => conn.ask(request[0], request[1], resolve));
}

async function connected(s: Setup): Promise<void> {
  await until(() => s.admin.masterConn !== null && s.admin.clusterState !== null, 'the admin to join the master');
}

describe('admin node', () => {
  it('logs its listening address and identifies to the master as ADMIN', async () => {
    const s = await setup();
    await connected(s);
    const lines = (s.admin.env.logger as ReturnType<typeof recordingLogger>).lines;
    assert(lines.includes(`info listening on ${HOST}:${s.admin.address.port}`), lines.join('\n'));
    const identification = s.master.seen.find((packet) => packet.name === 'RequestIdentification')!;
    assert.deepEqual(identification.args, [
      NodeTypes.ADMIN, null, s.admin.address, 'golden', null, new Map([['backup', []]]),
    ]);
    assert.equal(s.admin.nid, A1);
    assert.equal(s.admin.primaryNid, M1);
  });

  it('goes to the primary master a secondary one names', async () => {
    const secondary: Address = { host: HOST, port: 10001 };
    const s = await setup({ config: { masters: [secondary] } });
    const listener = await s.transport.listen(secondary, (stream) => {
      const conn = new Connection({ stream, handler: {}, logger: recordingLogger(), label: 'secondary' });
      conn.notify('NotPrimaryMaster', [1, [secondary, MASTER_ADDRESS]]);
      conn.abort();
    });
    cleanups.push(() => listener.close());
    await connected(s);
    assert.equal(await s.ctl('print primary'), 'M1');
  });

  it('answers NOT_READY and closes while it has no master', async () => {
    const s = await setup({ withMaster: false });
    await assert.rejects(s.ctl('print cluster'), new CtlFailure('ERROR: Not connected to a primary master.'));
    await assert.rejects(s.ctl('set cluster STOPPING'), /Not connected to a primary master/);
    const { conn, closed } = rawCtl(s.transport, s.admin.address);
    const answer = await ask(conn, 'AskNodeList', [null], () => {});
    assert.deepEqual(answer?.args, [ErrorCodes.NOT_READY.value, 'Not connected to a primary master.']);
    await closed;
  });

  it('answers from its own copies of the node list, partition table and cluster state', async () => {
    const s = await setup();
    await connected(s);
    assert.equal(await s.ctl('print cluster'), 'RUNNING');
    assert.equal(await s.ctl('print primary'), 'M1');
    assert.equal(await s.ctl('print node'), [
      'A1 | ADMIN   | 127.0.0.1:' + String(s.admin.address.port).padEnd(5) + ' | RUNNING | 2026-11-22 01:05:25.291693',
      'M1 | MASTER  | 127.0.0.1:10000 | RUNNING | None',
      'S1 | STORAGE | 127.0.0.1:21010 | RUNNING | 2026-11-22 01:05:25.277391',
      'S2 | STORAGE | 127.0.0.1:21011 | RUNNING | 2026-11-22 01:05:25.277645',
      'S3 | STORAGE | 127.0.0.1:21012 | PENDING | 2026-11-22 01:05:42.758573',
    ].join('\n'));
    assert.equal(await s.ctl('print node master'), 'M1 | MASTER | 127.0.0.1:10000 | RUNNING | None');
    assert.equal(await s.ctl('print node client'), 'Empty list!');
    assert.equal(await s.ctl('print pt'), '# ptid: 1, replicas: 1\nS1 R UUUU\nS2 R UUUU');
    assert.equal(await s.ctl('print pt 1 3 S1'), [
      '# ptid: 1, replicas: 1',
      '001 | S1 - UP_TO_DATE | S2 - UP_TO_DATE |',
      '002 | S1 - UP_TO_DATE | S2 - UP_TO_DATE |',
    ].join('\n'));
    assert.equal(await s.ctl('print pt 3 1'), '# ptid: 1, replicas: 1\n');
    assert.equal(await s.ctl('print pt 4 0'), '# ptid: 1, replicas: 1\n');
    // Only forwarded requests reach the master.
    assert.deepEqual(s.master.seen.map((packet) => packet.name), [
      'RequestIdentification', 'AskClusterState', 'AskLastTransaction',
    ]);
  });

  it('sends the invalid offset error with a message id of its own, keeping the connection', async () => {
    const s = await setup();
    await connected(s);
    await assert.rejects(
      s.ctl('print pt 2 9'),
      new CtlFailure('ERROR: the admin answered PROTOCOL_ERROR: invalid partition table offset'),
    );
  });

  it('follows the partition table, node and cluster state changes', async () => {
    const s = await setup();
    await connected(s);
    const masterSide = s.master.connections[0]!;
    masterSide.notify('NotifyNodeInformation', [1795309540.6, [
      [NodeTypes.STORAGE, { host: HOST, port: 21011 }, 2, NodeStates.DOWN, 1795309525.2776453],
      [NodeTypes.STORAGE, { host: HOST, port: 21012 }, 3, NodeStates.UNKNOWN, 1795309542.758573],
    ]]);
    masterSide.notify('NotifyPartitionChanges', [2, 1, [[0, 2, O], [1, 2, O], [2, 2, O], [3, 2, O]]]);
    await until(() => s.admin.pt?.ptid === 2, 'the partition changes');
    assert.equal(await s.ctl('print pt'), '# ptid: 2, replicas: 1\nS1 R UUUU\nS2 D OOOO');
    assert.match((await s.ctl('print node storage'))!, /^S1 .*\nS2 \| STORAGE \| 127\.0\.0\.1:21011 \| DOWN    \| /);
    assert.equal(
      await s.ctl('print summary'),
      '# {"problem": [null]}\nRUNNING; OUT_OF_DATE=4, UP_TO_DATE=4; DOWN=1; ltid=040d2d82bf5eb2dd (2026-11-22 02:42:44.852324)',
    );
    masterSide.notify('NotifyClusterInformation', [ClusterStates.VERIFYING]);
    await until(() => s.admin.clusterState === ClusterStates.VERIFYING, 'the cluster state');
    assert.equal(await s.ctl('print summary'), '# {"problem": [null]}\nVERIFYING; OUT_OF_DATE=4, UP_TO_DATE=4; DOWN=1');
  });

  it('reports a healthy cluster with an empty header', async () => {
    const s = await setup();
    await connected(s);
    assert.equal(
      await s.ctl('print summary'),
      '# {}\nRUNNING; UP_TO_DATE=8; ltid=040d2d82bf5eb2dd (2026-11-22 02:42:44.852324)',
    );
  });

  it('forwards requests to the master and relays its replies with the id neoctl used', async () => {
    const s = await setup();
    await connected(s);
    const { conn } = rawCtl(s.transport, s.admin.address);
    // Use a few ids first so that neoctl's and the admin's ids differ.
    for (let i = 0; i < 5; i++) await ask(conn, 'AskClusterState', [], () => {});
    s.master.hold.add('SetClusterState');
    const answered = ask(conn, 'SetClusterState', [ClusterStates.STOPPING], () => {});
    await until(() => s.master.held.length === 1, 'the forwarded request');
    const held = s.master.held[0]!;
    assert.equal(held.msgId, 3, 'the admin sends the request with its own id');
    held.conn.answerTo(held.msgId, 'Error', [ErrorCodes.ACK.value, 'Cluster state changed']);
    const answer = await answered;
    assert.equal(answer?.msgId, 5, 'the reply carries the id of neoctl\'s request');
    assert.deepEqual(answer?.args, [ErrorCodes.ACK.value, 'Cluster state changed']);
    conn.close();
  });

  it('relays answers, refusals and ACK messages through neoctl commands', async () => {
    const s = await setup();
    await connected(s);
    assert.equal(
      await s.ctl('print ids'),
      'last_oid = 0x1db0\nlast_tid = 0x40d2d82bf5eb2dd (2026-11-22 02:42:44.852324)\nlast_ptid = 1',
    );
    await assert.rejects(s.ctl('set cluster running'), new CtlFailure('Invalid state requested'));
    await assert.rejects(s.ctl('kill S9'), new CtlFailure('unknown node'));
    assert.equal(await s.ctl('start'), 'Cluster state changed');
    assert.equal(await s.ctl('flush_log'), null);
    await until(() => s.master.seen.some((packet) => packet.name === 'FlushLog'), 'FlushLog at the master');
    const forwarded = s.master.seen.filter((packet) => !['AskClusterState', 'AskLastTransaction'].includes(packet.name));
    assert.deepEqual(forwarded.map((packet) => packet.name), [
      'RequestIdentification', 'AskRecovery', 'AskLastIDs', 'SetClusterState', 'SetNodeState', 'SetClusterState',
      'FlushLog',
    ]);
  });

  it('aborts the neoctl connection after relaying a PROTOCOL_ERROR of the master', async () => {
    const s = await setup();
    await connected(s);
    const { conn, closed } = rawCtl(s.transport, s.admin.address);
    const answer = await ask(conn, 'CheckReplicas', [new Map([[7, null]]), p64(0n), null], () => {});
    assert.deepEqual(answer?.args, [ErrorCodes.PROTOCOL_ERROR.value, 'bad partition']);
    await closed;
    // The master closed its side after its PROTOCOL_ERROR: the admin joins it again.
    await until(() => s.master.connections.length === 2, 'a new identification');
    await connected(s);
    assert.equal(await s.ctl('print cluster'), 'RUNNING');
  });

  it('fails requests in flight when the master is lost, then joins it again', async () => {
    const s = await setup();
    await connected(s);
    s.master.hold.add('AskLastIDs');
    const pending = s.ctl('print ids');
    await until(() => s.master.held.length === 1, 'the forwarded request');
    s.master.dropConnections();
    await assert.rejects(
      pending,
      new CtlFailure('ERROR: the admin answered PROTOCOL_ERROR: connection to master lost'),
    );
    s.master.hold.clear();
    await until(() => s.master.connections.length === 2 && s.admin.masterConn !== null, 'a new identification');
    await connected(s);
    assert.equal(await s.ctl('print cluster'), 'RUNNING');
  });

  it('stops with the cluster', async () => {
    const s = await setup();
    await connected(s);
    assert.equal(await s.ctl('set cluster STOPPING'), 'Cluster state changed');
    await until(() => s.admin.clusterState === ClusterStates.STOPPING, 'STOPPING');
    s.master.dropConnections();
    await s.admin.stopped;
    await assert.rejects(s.ctl('print cluster'), new CtlFailure('ERROR: not connected'));
  });
});
