// Bad input against a cluster of real processes: wrong cluster names, another protocol version,
// a cluster not running yet, a database of another cluster, missing objects, malformed oids and
// bad neoctl/neomaster command lines. Each is refused clearly and in bounded time, and the
// cluster keeps serving.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { connect } from 'node:net';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { POSKeyError, StorageError, openStorage, p64 } from '../../src/index.js';
import type { NeoStorage } from '../../src/index.js';
import { formatAddress } from '../../src/core/address.js';
import type { Address } from '../../src/core/env.js';
import { TestCluster, waitClusterState, bounded as boundedBy } from '../helpers/cluster.js';
import type { NodeProcess } from '../helpers/cluster.js';
import { PROJECT_ROOT } from '../helpers/spec.js';

const CLI = resolve(PROJECT_ROOT, 'dist', 'src', 'cli');
/** Bound for anything that should end quickly; a hang fails the test instead of the run. */
const BOUND_MS = 15_000;

interface Exit {
  status: number | string;
  stdout: string;
  stderr: string;
}

/** Runs one of our programs to its end (killed after BOUND_MS: the test then fails). */
function run(program: string, args: string[]): Promise<Exit> {
  const child = spawn(process.execPath, [join(CLI, `${program}.js`), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
  const timer = setTimeout(() => child.kill('SIGKILL'), BOUND_MS);
  return new Promise((resolveExit) => {
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolveExit({ status: signal ?? code ?? -1, stdout, stderr });
    });
  });
}

const bounded = <T>(what: string, promise: Promise<T>, ms = BOUND_MS): Promise<T> => boundedBy(what, promise, ms);

function uri(clusterName: string, master: Address): string {
  return `neo://${clusterName}@${formatAddress(master)}`;
}

async function commitOne(storage: NeoStorage, oid: Buffer, data: Buffer, serial: Buffer | null = null): Promise<Buffer> {
  const txn = { user: 'test', description: 'bad input', extension: {} };
  await storage.tpcBegin(txn);
  await storage.store(oid, serial ?? Buffer.alloc(8), data, txn);
  await storage.tpcVote(txn);
  return storage.tpcFinish(txn);
}

describe('bad input against a cluster of real processes', () => {
  const cluster = new TestCluster();
  // A second cluster, started without storages: not RUNNING until the test gives it one.
  const idle = new TestCluster();
  let master: NodeProcess;
  let admin: NodeProcess;
  let client: NeoStorage;
  // What the idle cluster committed once running (checked after another cluster's storage failed).
  let idleCommit: { oid: Buffer; tid: Buffer } | null = null;

  before(async () => {
    master = await cluster.startMaster({ partitions: 4, replicas: 0, autostart: 1 });
    await cluster.startStorage(0, master.address);
    admin = await cluster.startAdmin(master.address);
    await waitClusterState(admin.address, 'RUNNING');
    client = await bounded('open', openStorage(uri(cluster.name, master.address)));
  });
  after(async () => {
    client?.close();
    await cluster.destroy();
    await idle.destroy();
  });

  it('refuses a client with a wrong cluster name with a clear error', async () => {
    const error = await bounded('open with a wrong name', openStorage(uri('not_this_cluster', master.address)).then(
      (storage) => {
        storage.close();
        return null;
      },
      (e: unknown) => e,
    ));
    assert.ok(error instanceof StorageError, `rejected with a StorageError, got ${String(error)}`);
    assert.match(error.message, /cluster name/i);
    assert.match(error.message, /not_this_cluster/);
  });

  it('closes a connection speaking another protocol version and keeps serving', async () => {
    const socket = connect(master.address.port, master.address.host);
    socket.on('connect', () => socket.write(Buffer.from('92a34e454f04', 'hex')));
    const received: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => received.push(chunk));
    await bounded('close by the master', new Promise<void>((resolveClose) => socket.on('close', () => resolveClose())));
    // Whatever it sent before closing, the master sent no packet after its own handshake.
    assert.ok(Buffer.concat(received).length <= 6, 'nothing but a handshake before the close');
    const [oid] = [await client.newOid()];
    await commitOne(client, oid!, Buffer.from('after a bad handshake'));
  });

  it('refuses clients until the cluster is RUNNING, then serves them (NEO waits)', async () => {
    const idleMaster = await idle.startMaster({ partitions: 2, replicas: 0, autostart: 1 });
    const address = idleMaster.address;
    // With a bound, the client gives up with a message saying why.
    const error = await bounded('open with a bound', openStorage(uri(idle.name, address), { openTimeoutMs: 1500 }).then(
      (storage) => {
        storage.close();
        return null;
      },
      (e: unknown) => e,
    ));
    assert.ok(error instanceof StorageError, `rejected with a StorageError, got ${String(error)}`);
    assert.match(error.message, /not ready|not running/i);
    // Without one it waits, as NEO's client does, and is served once the cluster runs.
    const waiting = openStorage(uri(idle.name, address));
    await idle.startStorage(0, address);
    const storage = await bounded('open once running', waiting, 30_000);
    try {
      const oid = await storage.newOid();
      const tid = await commitOne(storage, oid, Buffer.from('in the idle cluster'));
      assert.ok((await storage.load(oid)).serial.equals(tid));
      idleCommit = { oid, tid };
    } finally {
      storage.close();
    }
  });

  it('a storage refuses a database of another cluster and leaves it untouched', async () => {
    const storageB = idle.nodes.find((node) => node.name === 'storage0');
    assert.ok(storageB !== undefined && idleCommit !== null, 'the previous test committed in the other cluster');
    const { oid, tid } = idleCommit;
    await idle.kill(storageB);
    const database = join(idle.dir, 'storage0.sqlite');
    const exit = await run('neostorage', [
      '--cluster', cluster.name,
      '--bind', '127.0.0.1:0',
      '--masters', formatAddress(master.address),
      '--adapter', 'SQLite',
      '--database', database,
    ]);
    assert.equal(exit.status, 1, `exit status 1; output:\n${exit.stderr}${exit.stdout}`);
    const output = exit.stderr + exit.stdout;
    assert.ok(output.includes(cluster.name), `names the configured cluster:\n${output}`);
    assert.ok(output.includes(idle.name), `names the database's cluster:\n${output}`);
    // The database still belongs to the other cluster and still has its data.
    const idleMaster = idle.nodes.find((node) => node.name === 'master')!;
    await idle.startStorage(0, idleMaster.address);
    const storage = await bounded('open the other cluster', openStorage(uri(idle.name, idleMaster.address)), 30_000);
    try {
      assert.ok((await storage.lastTransaction()).equals(tid), 'the other cluster kept its last transaction');
      const loaded = await storage.load(oid);
      assert.ok(loaded.serial.equals(tid));
      assert.equal(loaded.data.toString(), 'in the idle cluster');
    } finally {
      storage.close();
    }
  });

  it('load of a missing oid is a POSKeyError', async () => {
    await assert.rejects(client.load(p64(0x7fff_ffffn)), POSKeyError);
  });

  it('loadBefore a tid before the creation of the object is null', async () => {
    const oid = await client.newOid();
    const tid = await commitOne(client, oid, Buffer.from('created'));
    assert.equal(await client.loadBefore(oid, tid), null);
    const after = await client.loadBefore(oid, p64(BigInt(`0x${tid.toString('hex')}`) + 1n));
    assert.ok(after !== null && after.serial.equals(tid));
  });

  it('a store of a 7-byte oid is refused by the client before anything is sent', async () => {
    const lastBefore = await client.lastTransaction();
    const txn = { user: 'test', description: 'bad oid', extension: {} };
    await client.tpcBegin(txn);
    try {
      await assert.rejects(client.store(Buffer.alloc(7, 1), Buffer.alloc(8), Buffer.from('x'), txn), /oid.*8 bytes/);
      await assert.rejects(client.store(Buffer.alloc(8, 1), Buffer.alloc(7), Buffer.from('x'), txn), /serial.*8 bytes/);
    } finally {
      await client.tpcAbort(txn);
    }
    await assert.rejects(client.load(Buffer.alloc(8, 1)), POSKeyError);
    assert.ok((await client.lastTransaction()).equals(lastBefore), 'nothing committed');
  });

  it('neoctl with bad arguments: NEO messages and exit statuses', async () => {
    const address = formatAddress(admin.address);
    const replicas = await run('neoctl', ['-a', address, 'set', 'replicas', 'x']);
    assert.equal(replicas.status, 1);
    assert.equal(replicas.stdout, '');
    assert.match(replicas.stderr, /'x'/);
    const unknown = await run('neoctl', ['-a', address, 'frobnicate']);
    assert.deepEqual(unknown, { status: 1, stdout: '', stderr: 'invalid command: frobnicate\n' });
    const nobody = await run('neoctl', ['-a', '127.0.0.1:1', 'print', 'node']);
    assert.deepEqual(nobody, { status: 1, stdout: '', stderr: 'ERROR: not connected\n' });
    const replicasNow = await run('neoctl', ['-a', address, 'print', 'pt', '0', '1']);
    assert.equal(replicasNow.status, 0);
    assert.match(replicasNow.stdout, /replicas: 0/);
  });

  it('neomaster with an unknown option or without --cluster: exit 2 and one line', async () => {
    const unknown = await run('neomaster', ['--cluster', 'x', '--bind', '127.0.0.1:0', '--frobnicate']);
    assert.equal(unknown.status, 2);
    assert.equal(unknown.stdout, '');
    assert.match(unknown.stderr, /^neomaster: error: .*frobnicate.*\n$/);
    const noCluster = await run('neomaster', ['--bind', '127.0.0.1:0']);
    assert.equal(noCluster.status, 2);
    assert.match(noCluster.stderr, /^neomaster: error: .*cluster.*\n$/);
  });

  it('the master survived all of that: a last commit works from a new client', async () => {
    assert.equal(master.child.exitCode, null, 'the master is still running');
    const storage = await bounded('open', openStorage(uri(cluster.name, master.address)));
    try {
      const oid = await storage.newOid();
      const tid = await commitOne(storage, oid, Buffer.from('last'));
      const loaded = await storage.load(oid);
      assert.ok(loaded.serial.equals(tid));
      assert.equal(loaded.data.toString(), 'last');
    } finally {
      storage.close();
    }
  });
});
