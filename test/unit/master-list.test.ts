// The dynamic master list (cluster.md §6.6): reading and atomic rewriting of the file, and nodes
// keeping it up to date as they learn of masters.

import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, it } from 'node:test';
import { AdminApp } from '../../src/admin/app.js';
import type { Address } from '../../src/core/env.js';
import { ConfigError } from '../../src/core/errors.js';
import { DynamicMasterList, followMasters } from '../../src/core/master-list.js';
import { NodeTable } from '../../src/core/node-table.js';
import type { WireNodeInfo } from '../../src/core/node-table.js';
import { MasterApp } from '../../src/master/app.js';
import { memoryNetwork } from '../../src/net/memory.js';
import { NodeStates, NodeTypes } from '../../src/protocol/enums.js';
import { StorageApp } from '../../src/storage/app.js';
import { MemoryBackend, MemoryDatabase } from '../../src/storage/backends/memory.js';
import { inProcessEnv, until } from '../helpers/inprocess.js';
import { recordingLogger } from '../helpers/logger.js';

const LOCAL = '127.0.0.1';
const at = (port: number): Address => ({ host: LOCAL, port });

const folders: string[] = [];
afterEach(() => {
  for (const folder of folders.splice(0)) rmSync(folder, { recursive: true, force: true });
});

function tempFolder(): string {
  const folder = mkdtempSync(join(tmpdir(), 'neots-dml-'));
  folders.push(folder);
  return folder;
}

function readList(path: string): unknown {
  return JSON.parse(readFileSync(path, 'utf8'));
}

describe('dynamic master list file', () => {
  it('a missing file is created empty at once', () => {
    const path = join(tempFolder(), 'masters.json');
    const list = DynamicMasterList.open(path);
    assert.deepEqual(list.loaded, []);
    assert.deepEqual(readList(path), []);
  });

  it('reads [[host, port], ...], without duplicates', () => {
    const path = join(tempFolder(), 'masters.json');
    writeFileSync(path, '[["127.0.0.1", 10000], ["::1", 10001], ["127.0.0.1", 10000]]');
    assert.deepEqual(DynamicMasterList.open(path).loaded, [at(10000), { host: '::1', port: 10001 }]);
  });

  it('a malformed or unreadable file is a configuration error naming the file', () => {
    const folder = tempFolder();
    const path = join(folder, 'masters.json');
    for (const text of ['[["127.0.0.1", 10000]', '{"host": "a"}', '[["a"]]', '[["a", 70000]]', '[["a", "1"]]', '[["", 1]]']) {
      writeFileSync(path, text);
      assert.throws(() => DynamicMasterList.open(path), (error: unknown) => {
        assert(error instanceof ConfigError, String(error));
        assert.equal(error.option, 'dynamic-master-list');
        assert(error.message.includes(path), error.message);
        return true;
      }, text);
    }
    // A folder where the file should be cannot be read.
    assert.throws(() => DynamicMasterList.open(folder), (error: unknown) => error instanceof ConfigError && error.message.includes(folder));
    // Nor can a file be created in a folder that does not exist.
    const nowhere = join(folder, 'missing', 'masters.json');
    assert.throws(() => DynamicMasterList.open(nowhere), (error: unknown) => error instanceof ConfigError && error.message.includes(nowhere));
  });

  it('is rewritten atomically, only when the set of masters changes', () => {
    const folder = tempFolder();
    const path = join(folder, 'masters.json');
    writeFileSync(path, '[["127.0.0.1", 2], ["127.0.0.1", 1]]');
    const list = DynamicMasterList.open(path);
    const logger = recordingLogger();
    // The same set in another order: the file is left as the operator wrote it.
    list.update([at(1), at(2)], logger);
    assert.equal(readFileSync(path, 'utf8'), '[["127.0.0.1", 2], ["127.0.0.1", 1]]');
    list.update([at(3), at(1), at(2)], logger);
    assert.deepEqual(readList(path), [['127.0.0.1', 1], ['127.0.0.1', 2], ['127.0.0.1', 3]]);
    list.update([at(3)], logger);
    assert.deepEqual(readList(path), [['127.0.0.1', 3]]);
    assert.deepEqual(readdirSync(folder), ['masters.json'], 'no temporary file left');
  });

  it('a failed rewrite is logged, leaves no temporary file, and is tried again at the next change', () => {
    const folder = tempFolder();
    const path = join(folder, 'masters.json');
    const list = DynamicMasterList.open(path);
    // A folder in the way: the rename fails.
    rmSync(path);
    mkdirSync(join(path, 'in-the-way'), { recursive: true });
    const lines: string[] = [];
    list.update([at(1)], recordingLogger('', lines));
    assert.match(lines.join('\n'), /cannot save the list of masters/);
    assert.deepEqual(readdirSync(folder), ['masters.json']);
    rmSync(path, { recursive: true });
    list.update([at(1)], recordingLogger());
    assert.deepEqual(readList(path), [['127.0.0.1', 1]]);
  });

  it('follows masters announced by NotifyNodeInformation: added, moved, dropped', () => {
    const table = new NodeTable();
    const known = [at(1)];
    const master = (address: Address, nid: number, state: WireNodeInfo[3] = NodeStates.RUNNING): WireNodeInfo =>
      [NodeTypes.MASTER, address, nid, state, null];
    const storage: WireNodeInfo = [NodeTypes.STORAGE, at(9), 0x00000001, NodeStates.RUNNING, null];
    const notify = (nodes: WireNodeInfo[]) => {
      const changed = followMasters(known, table, nodes);
      for (const info of nodes) table.update(info);
      return changed;
    };
    const M1 = -0x10000000 + 1;
    const M2 = -0x10000000 + 2;
    assert.equal(notify([master(at(1), M1), storage]), false);
    assert.equal(notify([master(at(2), M2)]), true);
    assert.deepEqual(known, [at(1), at(2)]);
    assert.equal(notify([master(at(3), M2)]), true, 'M2 moved');
    assert.deepEqual(known, [at(1), at(3)]);
    assert.equal(notify([master(at(3), M2, NodeStates.DOWN)]), false);
    assert.equal(notify([master(at(3), M2, NodeStates.UNKNOWN)]), true, 'M2 dropped');
    assert.deepEqual(known, [at(1)]);
  });
});

describe('nodes keep their dynamic master list up to date', () => {
  it('a storage, an admin and a master each write both masters once they know them', async () => {
    const folder = tempFolder();
    const network = memoryNetwork({ schedule: setImmediate });
    const lines: string[] = [];
    // The first master knows only itself; it learns the second when that one identifies to it.
    const masterList = DynamicMasterList.open(join(folder, 'master.json'));
    const first = new MasterApp(inProcessEnv(network, 'master1', lines), {
      cluster: 'dml', bind: at(7001), masters: [], partitions: 1, replicas: 0, autostart: 1, nid: undefined,
    }, masterList);
    const second = new MasterApp(inProcessEnv(network, 'master2', lines), {
      cluster: 'dml', bind: at(7003), masters: [at(7001)], partitions: 1, replicas: 0, autostart: 1, nid: undefined,
    });
    const stops: (() => void)[] = [() => first.stop(), () => second.stop()];
    try {
      await first.start();
      assert.deepEqual(readList(masterList.path), [[LOCAL, 7001]], 'own address written at start-up');
      await second.start();
      await until(() => first.role !== second.role, 'a primary and a secondary');
      const primary = first.role === 'primary' ? first : second;
      const secondary = primary === second ? first : second;
      await until(() => readFileSync(masterList.path, 'utf8').includes('7003'), 'the master wrote the other master');
      assert.deepEqual(readList(masterList.path), [[LOCAL, 7001], [LOCAL, 7003]]);

      // A storage given only the primary learns the secondary from the node list.
      const storageList = DynamicMasterList.open(join(folder, 'storage.json'));
      const storage = new StorageApp(inProcessEnv(network, 'storage', lines), {
        cluster: 'dml', masters: [primary.address], bind: at(0), adapter: 'Memory', database: '',
      }, { backend: new MemoryBackend(new MemoryDatabase()), masterList: storageList });
      stops.push(() => storage.stop());
      await storage.start();
      await until(() => (readList(storageList.path) as unknown[]).length === 2, 'the storage wrote the secondary');
      assert.deepEqual(readList(storageList.path), [[LOCAL, 7001], [LOCAL, 7003]]);
      assert.deepEqual(readdirSync(folder).sort(), ['master.json', 'storage.json']);

      // An admin with no --masters but a file naming the secondary finds the primary through it.
      const adminPath = join(folder, 'admin.json');
      writeFileSync(adminPath, JSON.stringify([[LOCAL, secondary.address.port]]));
      const admin = new AdminApp(inProcessEnv(network, 'admin', lines), {
        cluster: 'dml', bind: at(0), masters: [],
      }, DynamicMasterList.open(adminPath));
      stops.push(() => admin.stop());
      await admin.start();
      await until(() => admin.masterConn !== null, 'the admin joined the primary', 15_000);
      assert.deepEqual(readList(adminPath), [[LOCAL, 7001], [LOCAL, 7003]]);
    } catch (error) {
      console.log(lines.join('\n'));
      throw error;
    } finally {
      for (const stop of stops) stop();
    }
  });
});
