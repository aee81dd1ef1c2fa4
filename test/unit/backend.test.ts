// One behavioural suite run against every storage backend, plus SQLite-only checks of the file
// layout (storage.md §2.7.2), the `file:` URI pragmas, the exclusive lock and crash durability.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { CellStates, ErrorCodes } from '../../src/protocol/enums.js';
import { MAX_TID, ZERO_HASH, ZERO_OID, ZERO_TID, p64 } from '../../src/protocol/ids.js';
import {
  ClusterNameMismatchError, DatabaseFailure, DatabaseLockedError, NonReadableCellError, UndoPackError,
} from '../../src/storage/backends/backend.js';
import type { Backend, CellChange, ObjectRecord, ObjectValue, PackOrderInfo } from '../../src/storage/backends/backend.js';
import { MemoryBackend, MemoryDatabase } from '../../src/storage/backends/memory.js';
import { SQLiteBackend, parseDatabaseLocation } from '../../src/storage/backends/sqlite.js';

const CLUSTER = 'neots-test';
const ME = 1;
const OTHER = 2;
const DATA_ID_PARTITION_SHIFT = 48n;

const id = (n: number | bigint): Buffer => p64(BigInt(n));
const sha1 = (data: Buffer | string): Buffer => createHash('sha1').update(data).digest();

function value(text: string): ObjectValue {
  const data = Buffer.from(text);
  return { compression: 0, checksum: sha1(data), data };
}

// --- Harnesses: a way to open (and reopen) the same database ---------------------------------

interface Harness {
  open(options?: { dedup?: boolean }): Backend;
}

interface Flavour {
  readonly name: string;
  harness(): Harness;
}

let tempRoot = '';
let tempCount = 0;

function tempFile(): string {
  tempCount += 1;
  return path.join(tempRoot, `db${tempCount}.sqlite`);
}

const FLAVOURS: Flavour[] = [
  {
    name: 'SQLiteBackend',
    harness() {
      const file = tempFile();
      return { open: () => new SQLiteBackend(file) };
    },
  },
  {
    name: 'MemoryBackend',
    harness() {
      const database = new MemoryDatabase();
      return { open: () => new MemoryBackend(database) };
    },
  },
];

before(() => {
  tempRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'neots-backend-'));
});

after(() => {
  fs.rmSync(tempRoot, { recursive: true, force: true });
});

// --- Scenario helpers --------------------------------------------------------------------------

function cells(numPartitions: number, nid = ME, state = CellStates.UP_TO_DATE): CellChange[] {
  return Array.from({ length: numPartitions }, (_, partition) => ({ partition, nid, state }));
}

/** First start of a node holding every partition, readable. */
function startNode(backend: Backend, numPartitions = 1, table = cells(numPartitions), dedup = false): Backend {
  backend.setup({ clusterName: CLUSTER, dedup });
  backend.setNid(ME);
  backend.changePartitionTable({ ptid: 1, numReplicas: 0, cells: table, reset: true, lastPackId: ZERO_TID });
  backend.commit();
  return backend;
}

/** A store: data null deletes the object; dataSerial makes it an undo record. */
interface Store {
  readonly oid: number;
  readonly data: string | null;
  readonly dataSerial?: number;
}

function metadata(ttid: number, oids: readonly number[], description = ''): {
  oids: Buffer[]; user: Buffer; description: Buffer; ext: Buffer; packed: boolean; ttid: Buffer;
} {
  return {
    oids: oids.map(id), user: Buffer.from('user'), description: Buffer.from(description), ext: Buffer.alloc(0),
    packed: false, ttid: id(ttid),
  };
}

/** Stores and votes (committed), as AskStoreObject × n + AskStoreTransaction do. */
function vote(backend: Backend, ttid: number, stores: readonly Store[], pack?: PackOrderInfo): void {
  const objects = stores.map((s) => {
    const dataSerial = s.dataSerial === undefined ? null : id(s.dataSerial);
    return { oid: id(s.oid), dataId: backend.holdData(id(s.oid), s.data === null ? null : value(s.data), dataSerial), dataSerial };
  });
  backend.storeTransaction(id(ttid), objects, metadata(ttid, stores.map((s) => s.oid)));
  if (pack !== undefined) backend.storePackOrder(id(ttid), pack);
  backend.commit();
}

/** A whole commit with TTID = TID (allowed when the TTID is above the last TID). */
function commitTransaction(backend: Backend, tid: number, stores: readonly Store[], pack?: PackOrderInfo): void {
  vote(backend, tid, stores, pack);
  backend.lockTransaction(id(tid), id(tid), pack !== undefined);
  backend.commit();
  backend.unlockTransaction(id(tid), id(tid));
  backend.commit();
}

function record(result: ObjectRecord | string): ObjectRecord {
  assert.equal(typeof result, 'object', `expected a record, got ${String(result)}`);
  return result as ObjectRecord;
}

function dataOf(result: ObjectRecord | string): string {
  return record(result).data.toString();
}

function orphans(backend: Backend): number {
  return backend.pruneOrphans(true).found;
}

// --- The shared suite --------------------------------------------------------------------------

for (const flavour of FLAVOURS) {
  describe(`${flavour.name}: schema and cluster name`, () => {
    it('stores the cluster name on first start and refuses another cluster afterwards', () => {
      const h = flavour.harness();
      const first = h.open();
      first.setup({ clusterName: CLUSTER });
      assert.equal(first.getName(), CLUSTER);
      first.close();
      const second = h.open();
      assert.throws(() => second.setup({ clusterName: 'other' }), (e: unknown) =>
        e instanceof ClusterNameMismatchError && /does not match/.test(e.message));
      second.close();
      const third = h.open();
      third.setup({ clusterName: CLUSTER });
      assert.equal(third.getName(), CLUSTER);
      third.close();
    });

    it('erase forgets everything, cluster name included', () => {
      const h = flavour.harness();
      const backend = startNode(h.open());
      commitTransaction(backend, 0x10, [{ oid: 1, data: 'a' }]);
      backend.erase();
      backend.setup({ clusterName: 'another' });
      assert.equal(backend.getName(), 'another');
      assert.deepEqual(backend.getPartitionTable(), []);
      assert.equal(backend.getNid(), null);
      backend.close();
    });

    it('refuses a second opener of the same database until the first closes', () => {
      const h = flavour.harness();
      const first = h.open();
      assert.throws(() => h.open(), (e: unknown) =>
        e instanceof DatabaseLockedError && e.message === 'error: database is locked');
      first.close();
      h.open().close();
    });
  });

  describe(`${flavour.name}: commit path and loads`, () => {
    it('makes a transaction visible only at unlock, with loadBefore and loadSerial next serials', () => {
      const backend = startNode(flavour.harness().open());
      vote(backend, 0x0f, [{ oid: 1, data: 'v1' }, { oid: 2, data: 'a' }]);
      assert.equal(backend.getObject(id(1), null, null), 'oidDoesNotExist');
      assert.deepEqual(backend.getUnfinishedTIDs(), [{ ttid: id(0x0f), tid: null }]);
      backend.lockTransaction(id(0x0f), id(0x10), false);
      backend.commit();
      assert.deepEqual(backend.getUnfinishedTIDs(), [{ ttid: id(0x0f), tid: id(0x10) }]);
      backend.unlockTransaction(id(0x0f), id(0x10));
      backend.commit();
      assert.deepEqual(backend.getUnfinishedTIDs(), []);
      assert.deepEqual(backend.getFinalTID(id(0x0f)), id(0x10));
      assert.equal(backend.getFinalTID(id(0x0e)), null);
      commitTransaction(backend, 0x20, [{ oid: 1, data: 'v2' }]);

      assert.deepEqual(backend.getObject(id(1), null, null), {
        serial: id(0x20), nextSerial: null, compression: 0, checksum: sha1('v2'), data: Buffer.from('v2'), dataSerial: null,
      });
      const before = record(backend.getObject(id(1), null, id(0x20)));
      assert.deepEqual([before.serial, before.nextSerial, before.data.toString()], [id(0x10), id(0x20), 'v1']);
      const exact = record(backend.getObject(id(1), id(0x10), null));
      assert.deepEqual([exact.serial, exact.nextSerial], [id(0x10), id(0x20)]);
      assert.equal(backend.getObject(id(1), null, id(0x10)), 'oidNotFound');
      assert.equal(backend.getObject(id(1), id(0x15), null), 'oidNotFound');
      assert.equal(backend.getObject(id(9), null, id(0x20)), 'oidDoesNotExist');
      assert.deepEqual(backend.getLastObjectTID(id(1)), id(0x20));
      assert.equal(backend.getLastObjectTID(id(9)), null);
      assert.deepEqual(backend.getLastIDs(), { lastTid: id(0x20), lastOid: id(2), firstTid: id(0x10) });
      backend.close();
    });

    it('keeps the transaction metadata as sent', () => {
      const backend = startNode(flavour.harness().open());
      commitTransaction(backend, 0x10, [{ oid: 2, data: 'x' }, { oid: 1, data: 'y' }]);
      assert.deepEqual(backend.getTransaction(id(0x10)), {
        ...metadata(0x10, [2, 1]), pack: null,
      });
      assert.equal(backend.getTransaction(id(0x11)), null);
      backend.close();
    });

    it('answers a deletion as no data, and lists history newest first with stored sizes', () => {
      const backend = startNode(flavour.harness().open());
      commitTransaction(backend, 0x10, [{ oid: 2, data: 'abc' }]);
      commitTransaction(backend, 0x20, [{ oid: 2, data: 'defgh' }]);
      commitTransaction(backend, 0x30, [{ oid: 2, data: null }]);
      assert.deepEqual(backend.getObject(id(2), null, null), {
        serial: id(0x30), nextSerial: null, compression: null, checksum: ZERO_HASH, data: Buffer.alloc(0), dataSerial: null,
      });
      const sizes = (offset: number, length: number) =>
        backend.getObjectHistory(id(2), offset, length)?.map((h) => [h.serial.toString('hex'), h.size]);
      assert.deepEqual(sizes(0, 10), [[id(0x30).toString('hex'), 0], [id(0x20).toString('hex'), 5], [id(0x10).toString('hex'), 3]]);
      assert.deepEqual(sizes(1, 1), [[id(0x20).toString('hex'), 5]]);
      assert.equal(backend.getObjectHistory(id(2), 3, 1), null);
      assert.equal(backend.getObjectHistory(id(3), 0, 10), null);
      backend.close();
    });

    it('allocates data ids in the range of the object partition', () => {
      const h = flavour.harness();
      const backend = startNode(h.open(), 2);
      const base = 1n << DATA_ID_PARTITION_SHIFT;
      assert.equal(backend.holdData(id(0), value('p0'), null), 0n);
      assert.equal(backend.holdData(id(1), value('p1'), null), base);
      assert.equal(backend.holdData(id(3), value('p1 again'), null), base + 1n);
      assert.equal(backend.holdData(id(5), null, null), null);
      backend.storeTransaction(id(0x10), [{ oid: id(1), dataId: base, dataSerial: null },
        { oid: id(3), dataId: base + 1n, dataSerial: null }], null);
      backend.commit();
      backend.close();
      const reopened = h.open();
      reopened.setup({ clusterName: CLUSTER });
      assert.equal(reopened.holdData(id(7), value('next'), null), base + 2n);
      reopened.close();
    });

    it('refuses reads of partitions it cannot read', () => {
      const backend = startNode(flavour.harness().open(), 2,
        [...cells(1), { partition: 1, nid: ME, state: CellStates.OUT_OF_DATE }]);
      assert.throws(() => backend.getObject(id(1), null, null), (e: unknown) =>
        e instanceof NonReadableCellError && e.code === ErrorCodes.NON_READABLE_CELL);
      assert.throws(() => backend.getTransaction(id(3)), NonReadableCellError);
      assert.throws(() => backend.getTIDList(0, 10, [0, 1]), NonReadableCellError);
      assert.throws(() => backend.getOIDsFrom(1, 10, ZERO_OID, MAX_TID), NonReadableCellError);
      assert.equal(backend.withReplicated(1, () => backend.getObject(id(1), null, null)), 'oidDoesNotExist');
      assert.throws(() => backend.getObject(id(1), null, null), NonReadableCellError);
      backend.close();
    });
  });

  describe(`${flavour.name}: abort and pruning`, () => {
    it('abort deletes the temporary rows and prunes the data of the transaction', () => {
      const backend = startNode(flavour.harness().open());
      commitTransaction(backend, 0x10, [{ oid: 1, data: 'kept' }]);
      const held = backend.holdData(id(1), value('aborted'), null);
      backend.storeTransaction(id(0x20), [{ oid: id(1), dataId: held, dataSerial: null }], metadata(0x20, [1]));
      backend.storePackOrder(id(0x20), { approved: null, partial: false, oids: null, packTid: id(0x10) });
      backend.commit();
      backend.abortTransaction(id(0x20), [held]);
      backend.commit();
      assert.deepEqual(backend.getUnfinishedTIDs(), []);
      assert.equal(orphans(backend), 0);
      assert.deepEqual(backend.getPackOrders(ZERO_TID), []);
      assert.equal(dataOf(backend.getObject(id(1), null, null)), 'kept');
      backend.close();
    });

    it('prune_orphan spares data held by an unfinished store and deletes the rest', () => {
      const backend = startNode(flavour.harness().open());
      const held = backend.holdData(id(1), value('in flight'), null);
      const lost = backend.storeData(id(2), value('orphan'), null);
      assert.deepEqual(backend.pruneOrphans(true), { found: 2, deleted: 0 });
      assert.deepEqual(backend.pruneOrphans(false), { found: 2, deleted: 1 });
      assert.deepEqual(backend.loadData(held ?? -1n), value('in flight'));
      assert.notEqual(lost, null);
      backend.releaseData([held], true);
      assert.equal(orphans(backend), 0);
      backend.close();
    });

    it('start of operation drops unfinished transactions and their data', () => {
      const backend = startNode(flavour.harness().open());
      vote(backend, 0x10, [{ oid: 1, data: 'voted' }], { approved: null, partial: false, oids: null, packTid: id(1) });
      vote(backend, 0x20, [{ oid: 2, data: 'locked' }]);
      backend.lockTransaction(id(0x20), id(0x21), false);
      backend.dropUnfinishedData();
      backend.commit();
      assert.deepEqual(backend.getUnfinishedTIDs(), []);
      assert.equal(orphans(backend), 0);
      assert.deepEqual(backend.getPackOrders(ZERO_TID), []);
      backend.close();
    });

    it('discarding a partition drops its temporary rows only', () => {
      const backend = startNode(flavour.harness().open(), 2);
      const data0 = backend.holdData(id(0), value('zero'), null);
      const data1 = backend.holdData(id(1), value('one'), null);
      backend.storeTransaction(id(0x10), [{ oid: id(0), dataId: data0, dataSerial: null },
        { oid: id(1), dataId: data1, dataSerial: null }], metadata(0x10, [0, 1]));
      backend.commit();
      backend.dropPartitionsTemporary([1]);
      backend.releaseData([data1], true);
      backend.lockTransaction(id(0x10), id(0x10), false);
      backend.unlockTransaction(id(0x10), id(0x10));
      backend.commit();
      assert.equal(dataOf(backend.getObject(id(0), null, null)), 'zero');
      assert.equal(backend.getObject(id(1), null, null), 'oidDoesNotExist');
      assert.equal(orphans(backend), 0);
      backend.close();
    });

    it('deduplicates identical data only when created with --dedup', () => {
      const plain = startNode(flavour.harness().open());
      assert.notEqual(plain.holdData(id(1), value('same'), null), plain.holdData(id(2), value('same'), null));
      plain.close();
      const dedup = startNode(flavour.harness().open(), 1, cells(1), true);
      const first = dedup.holdData(id(1), value('same'), null);
      assert.equal(dedup.holdData(id(2), value('same'), null), first);
      dedup.releaseData([first], true);
      assert.deepEqual(dedup.loadData(first ?? -1n), value('same'));
      dedup.releaseData([first], true);
      assert.equal(orphans(dedup), 0);
      dedup.close();
    });
  });

  describe(`${flavour.name}: undo`, () => {
    it('finds undo serials, following later copies of the same data', () => {
      const backend = startNode(flavour.harness().open());
      commitTransaction(backend, 0x10, [{ oid: 1, data: 'a' }]);
      commitTransaction(backend, 0x20, [{ oid: 1, data: 'b' }]);
      const undo = (ltid: number, undone: number, current: number | null = null) =>
        backend.findUndoTID(id(1), id(ltid), id(undone), current === null ? null : id(current));
      assert.deepEqual(undo(0x21, 0x20), { currentSerial: id(0x20), undoSerial: id(0x10), isCurrent: true });
      assert.deepEqual(undo(0x21, 0x10), { currentSerial: id(0x20), undoSerial: null, isCurrent: false });
      assert.equal(undo(0x15, 0x20), 'oidNotFound');
      assert.equal(undo(0x21, 0x15), null);
      assert.equal(backend.findUndoTID(id(2), id(0x21), id(0x20), null), null);
      assert.deepEqual(undo(0x21, 0x20, 0x30), { currentSerial: id(0x30), undoSerial: id(0x10), isCurrent: false });

      // Undo 0x20 (back to 'a'), then undo that undo (back to 'b').
      commitTransaction(backend, 0x30, [{ oid: 1, data: 'a', dataSerial: 0x10 }]);
      const undone = record(backend.getObject(id(1), null, null));
      assert.deepEqual([undone.data.toString(), undone.dataSerial], ['a', id(0x10)]);
      assert.deepEqual(undo(0x31, 0x30), { currentSerial: id(0x30), undoSerial: id(0x20), isCurrent: true });
      commitTransaction(backend, 0x40, [{ oid: 1, data: 'b', dataSerial: 0x20 }]);
      assert.deepEqual(undo(0x41, 0x20), { currentSerial: id(0x40), undoSerial: id(0x30), isCurrent: true });
      backend.close();
    });

    it('refuses to undo from a revision a pack removed, except on out-of-date cells', () => {
      const backend = startNode(flavour.harness().open(), 2,
        [...cells(1), { partition: 1, nid: ME, state: CellStates.OUT_OF_DATE }]);
      assert.throws(() => backend.holdData(id(2), value('z'), id(0x10)), (e: unknown) =>
        e instanceof UndoPackError && e.code === ErrorCodes.UNDO_PACK_ERROR);
      const sent = backend.holdData(id(1), value('sent along'), id(0x10));
      assert.deepEqual(backend.loadData(sent ?? -1n), value('sent along'));
      backend.close();
    });
  });

  describe(`${flavour.name}: listing transactions and objects`, () => {
    function threePartitions(): Backend {
      const backend = startNode(flavour.harness().open(), 3);
      for (const tid of [3, 4, 5, 6, 7]) commitTransaction(backend, tid, [{ oid: tid, data: `o${tid}` }]);
      return backend;
    }

    it('lists TIDs newest first across partitions, with offsets', () => {
      const backend = threePartitions();
      assert.deepEqual(backend.getTIDList(0, 10, [0, 1, 2]), [7, 6, 5, 4, 3].map(id));
      assert.deepEqual(backend.getTIDList(1, 2, [0, 1, 2]), [6, 5].map(id));
      assert.deepEqual(backend.getTIDList(0, 10, [0]), [6, 3].map(id));
      assert.deepEqual(backend.getTIDList(0, 10, []), []);
      backend.close();
    });

    it('lists TIDs of one partition from a TID, ascending', () => {
      const backend = threePartitions();
      assert.deepEqual(backend.getReplicationTIDList(ZERO_TID, MAX_TID, null, 1), [4, 7].map(id));
      assert.deepEqual(backend.getReplicationTIDList(id(5), id(7), 1, 0), [id(6)]);
      assert.deepEqual(backend.getReplicationTIDList(id(8), MAX_TID, 10, 0), []);
      backend.close();
    });

    it('lists the OIDs existing at a TID, skipping deleted ones, in chunks', () => {
      const backend = startNode(flavour.harness().open(), 2);
      commitTransaction(backend, 0x10, [0, 2, 4, 6].map((oid) => ({ oid, data: `d${oid}` })));
      commitTransaction(backend, 0x12, [{ oid: 2, data: null }]);
      assert.deepEqual(backend.getOIDsFrom(0, 10, ZERO_OID, id(0x12)), { nextOid: null, oids: [0, 4, 6].map(id) });
      assert.deepEqual(backend.getOIDsFrom(0, 10, ZERO_OID, id(0x11)).oids, [0, 2, 4, 6].map(id));
      assert.deepEqual(backend.getOIDsFrom(0, 2, ZERO_OID, id(0x12)), { nextOid: id(4), oids: [id(0)] });
      assert.deepEqual(backend.getOIDsFrom(0, 2, id(4), id(0x12)), { nextOid: id(8), oids: [4, 6].map(id) });
      assert.deepEqual(backend.getOIDsFrom(0, 2, id(8), id(0x12)), { nextOid: null, oids: [] });
      assert.deepEqual(backend.getOIDsFrom(1, 10, ZERO_OID, id(0x12)), { nextOid: null, oids: [] });
      backend.close();
    });
  });

  describe(`${flavour.name}: replica checks`, () => {
    it('digests TID and serial ranges as protocol.md §3.6 says', () => {
      const backend = startNode(flavour.harness().open());
      commitTransaction(backend, 0x10, [{ oid: 1, data: 'a' }, { oid: 2, data: 'b' }]);
      commitTransaction(backend, 0x20, [{ oid: 1, data: 'c' }]);
      commitTransaction(backend, 0x30, [{ oid: 3, data: null }]);
      assert.deepEqual(backend.checkTIDRange(0, null, ZERO_TID, MAX_TID),
        { count: 3, tidChecksum: sha1('16,32,48'), maxTid: id(0x30) });
      assert.deepEqual(backend.checkTIDRange(0, 2, ZERO_TID, MAX_TID),
        { count: 2, tidChecksum: sha1('16,32'), maxTid: id(0x20) });
      assert.deepEqual(backend.checkTIDRange(0, 10, id(0x31), MAX_TID),
        { count: 0, tidChecksum: ZERO_HASH, maxTid: ZERO_TID });
      assert.deepEqual(backend.checkSerialRange(0, 10, id(0x10), MAX_TID, id(2)), {
        count: 3, tidChecksum: sha1('16,32,48'), maxTid: id(0x30), oidChecksum: sha1('2,1,3'), maxOid: id(3),
      });
      assert.deepEqual(backend.checkSerialRange(0, 2, ZERO_TID, id(0x20), ZERO_OID), {
        count: 2, tidChecksum: sha1('16,16'), maxTid: id(0x10), oidChecksum: sha1('1,2'), maxOid: id(2),
      });
      assert.deepEqual(backend.checkSerialRange(0, 10, id(0x31), MAX_TID, ZERO_OID), {
        count: 0, tidChecksum: ZERO_HASH, maxTid: ZERO_TID, oidChecksum: ZERO_HASH, maxOid: ZERO_OID,
      });
      backend.close();
    });
  });

  describe(`${flavour.name}: replication`, () => {
    it('adds replicated transactions and records, accepting a record written twice', () => {
      const backend = startNode(flavour.harness().open(), 2,
        [...cells(1), { partition: 1, nid: ME, state: CellStates.OUT_OF_DATE }]);
      backend.addTransaction(id(0x11), metadata(0x0f, [1, 3]));
      const data = backend.storeData(id(1), value('r1'), null);
      backend.addObject(id(1), id(0x11), data, null);
      backend.addObject(id(1), id(0x11), data, null);
      assert.throws(() => backend.addObject(id(1), id(0x11), null, null), DatabaseFailure);
      backend.addObject(id(3), id(0x11), backend.storeData(id(3), null, null), null);
      backend.addTransaction(id(0x13), metadata(0x13, [1]));
      const reused = backend.storeData(id(1), value('r1'), id(0x11));
      assert.equal(reused, data);
      backend.addObject(id(1), id(0x13), reused, id(0x11));
      backend.updateCellTID(1, id(0x13));
      backend.commit();

      const keys = (minTid: number, length: number, minOid: number) =>
        backend.getReplicationObjectList(id(minTid), MAX_TID, length, 1, id(minOid)).map((k) => [k.serial, k.oid]);
      assert.deepEqual(keys(0, 10, 0), [[id(0x11), id(1)], [id(0x11), id(3)], [id(0x13), id(1)]]);
      assert.deepEqual(keys(0x11, 10, 2), [[id(0x11), id(3)], [id(0x13), id(1)]]);
      assert.deepEqual(keys(0, 1, 0), [[id(0x11), id(1)]]);
      assert.deepEqual(backend.getReplicationTIDList(ZERO_TID, MAX_TID, null, 1), [0x11, 0x13].map(id));
      backend.withReplicated(1, () => {
        assert.deepEqual(backend.fetchObject(id(1), id(0x13)), {
          serial: id(0x13), compression: 0, checksum: sha1('r1'), data: Buffer.from('r1'), dataSerial: id(0x11),
        });
        assert.equal(backend.fetchObject(id(3), id(0x11))?.compression, null);
        assert.equal(backend.fetchObject(id(3), id(0x13)), null);
        assert.deepEqual(backend.getTransaction(id(0x11))?.ttid, id(0x0f));
      });
      backend.close();
    });

    it('deletes what the source does not have, pruning data no longer used', () => {
      const backend = startNode(flavour.harness().open());
      commitTransaction(backend, 0x10, [{ oid: 1, data: 'a' }]);
      commitTransaction(backend, 0x20, [{ oid: 1, data: 'a', dataSerial: 0x10 }, { oid: 2, data: 'b' }]);
      backend.deleteObject(id(1), id(0x10));
      assert.equal(dataOf(backend.getObject(id(1), null, null)), 'a');
      backend.deleteObject(id(1), null);
      backend.deleteObject(id(2), id(0x20));
      backend.deleteTransaction(id(0x10));
      backend.commit();
      assert.equal(backend.getObject(id(1), null, null), 'oidDoesNotExist');
      assert.equal(backend.getTransaction(id(0x10)), null);
      assert.notEqual(backend.getTransaction(id(0x20)), null);
      assert.equal(orphans(backend), 0);
      backend.close();
    });
  });

  describe(`${flavour.name}: partition table`, () => {
    it('stores cells with the tid encoding of storage.md §2.2 and returns partitions to drop', () => {
      const backend = flavour.harness().open();
      backend.setup({ clusterName: CLUSTER });
      backend.setNid(ME);
      const drop = backend.changePartitionTable({
        ptid: 1, numReplicas: 1, reset: true, lastPackId: ZERO_TID, cells: [
          { partition: 0, nid: ME, state: CellStates.UP_TO_DATE }, { partition: 0, nid: OTHER, state: CellStates.UP_TO_DATE },
          { partition: 1, nid: ME, state: CellStates.OUT_OF_DATE }, { partition: 1, nid: OTHER, state: CellStates.UP_TO_DATE },
          { partition: 2, nid: OTHER, state: CellStates.CORRUPTED }, { partition: 3, nid: ME, state: CellStates.FEEDING },
        ],
      });
      assert.deepEqual(drop, [2]);
      // A cell created out of date after a pack starts from the newest approved pack id.
      backend.changePartitionTable({ ptid: 2, numReplicas: 1, reset: false, lastPackId: id(0x05),
        cells: [{ partition: 2, nid: ME, state: CellStates.OUT_OF_DATE }] });
      backend.commit();
      assert.deepEqual(backend.getPartitionTable(), [
        { partition: 0, nid: ME, tid: -1n, pack: ZERO_TID }, { partition: 0, nid: OTHER, tid: -1n, pack: null },
        { partition: 1, nid: ME, tid: 0n, pack: ZERO_TID }, { partition: 1, nid: OTHER, tid: -1n, pack: null },
        { partition: 2, nid: ME, tid: 0n, pack: id(0x05) }, { partition: 2, nid: OTHER, tid: -3n, pack: null },
        { partition: 3, nid: ME, tid: -2n, pack: ZERO_TID },
      ]);
      assert.deepEqual([backend.getNumPartitions(), backend.getPtid(), backend.getNumReplicas()], [4, 2, 1]);
      assert.deepEqual(backend.getReadablePartitions(), [0, 3]);
      assert.deepEqual(backend.getPackedIDs(true), new Map([[0, ZERO_TID]]));
      assert.deepEqual(backend.getPackedIDs(false), new Map([[0, ZERO_TID], [1, ZERO_TID], [2, id(5)], [3, ZERO_TID]]));
      backend.close();
    });

    it('keeps the replication resume point of cells going out of date', () => {
      const backend = startNode(flavour.harness().open(), 4);
      commitTransaction(backend, 0x13, [{ oid: 7, data: 'p3' }]);
      const drop = backend.changePartitionTable({
        ptid: 2, numReplicas: 0, reset: false, lastPackId: ZERO_TID, cells: [
          { partition: 0, nid: ME, state: CellStates.DISCARDED }, { partition: 3, nid: ME, state: CellStates.OUT_OF_DATE },
        ],
      });
      assert.deepEqual(drop, [0]);
      assert.deepEqual(backend.getReadablePartitions(), [1, 2]);
      assert.deepEqual(backend.getPartitionTable().map((r) => [r.partition, r.tid]), [[1, -1n], [2, -1n], [3, 0x13n]]);
      assert.deepEqual(backend.getCellNextTIDs(), [
        { partition: 1, next: null }, { partition: 2, next: null },
        { partition: 3, next: { trans: id(0x14), obj: id(0x14) } },
      ]);
      backend.updateCellTID(3, id(0x20));
      assert.deepEqual(backend.getCellNextTIDs()[2]?.next?.obj, id(0x21));
      backend.setNid(5);
      assert.deepEqual(backend.getPartitionTable().map((r) => r.nid), [5, 5, 5]);
      assert.deepEqual(backend.getReadablePartitions(), [1, 2]);
      backend.close();
    });

    it('resumes backup replication after the last transaction and at the last record', () => {
      const backend = startNode(flavour.harness().open());
      commitTransaction(backend, 0x10, [{ oid: 1, data: 'a' }]);
      backend.setBackupTid(id(0x08));
      assert.deepEqual(backend.getCellNextTIDs(), [{ partition: 0, next: { trans: id(0x11), obj: id(0x10) } }]);
      backend.setBackupTid(id(0x20));
      assert.deepEqual(backend.getCellNextTIDs(), [{ partition: 0, next: { trans: id(0x21), obj: id(0x21) } }]);
      backend.close();
    });
  });

  describe(`${flavour.name}: truncation, drop and pack`, () => {
    it('truncates every own partition after the TID and lowers resume points', () => {
      const backend = startNode(flavour.harness().open(), 2,
        [...cells(1), { partition: 1, nid: ME, state: CellStates.OUT_OF_DATE }]);
      commitTransaction(backend, 0x10, [{ oid: 0, data: 'a' }, { oid: 1, data: 'b' }]);
      commitTransaction(backend, 0x20, [{ oid: 0, data: 'c' }],
        { approved: null, partial: false, oids: null, packTid: id(0x10) });
      commitTransaction(backend, 0x30, [{ oid: 0, data: 'd' }, { oid: 1, data: 'e' }]);
      backend.updateCellTID(1, id(0x35));
      backend.setTruncateTid(id(0x10));
      backend.commit();
      backend.truncate();
      backend.commit();
      assert.equal(backend.getTruncateTid(), null);
      assert.deepEqual(backend.getLastIDs(), { lastTid: id(0x10), lastOid: id(0), firstTid: id(0x10) });
      assert.equal(dataOf(backend.getObject(id(0), null, null)), 'a');
      assert.deepEqual(backend.getReplicationObjectList(ZERO_TID, MAX_TID, 10, 1, ZERO_OID), [{ serial: id(0x10), oid: id(1) }]);
      assert.deepEqual(backend.getPartitionTable().map((r) => r.tid), [-1n, 0x10n]);
      assert.deepEqual(backend.getPackOrders(ZERO_TID), []);
      assert.equal(orphans(backend), 0);
      backend.close();
    });

    it('drops a discarded partition in chunks', () => {
      const backend = startNode(flavour.harness().open(), 2);
      commitTransaction(backend, 0x11, [{ oid: 1, data: 'a' }, { oid: 3, data: 'b' }]);
      commitTransaction(backend, 0x13, [{ oid: 1, data: 'c' }]);
      commitTransaction(backend, 0x14, [{ oid: 0, data: 'kept' }]);
      const drop = backend.changePartitionTable({ ptid: 2, numReplicas: 0, reset: false, lastPackId: ZERO_TID,
        cells: [{ partition: 1, nid: ME, state: CellStates.DISCARDED }] });
      assert.deepEqual(drop, [1]);
      const rounds: boolean[] = [];
      for (let done = false; !done;) {
        done = backend.dropPartition(1, 2);
        rounds.push(done);
      }
      backend.commit();
      assert.deepEqual(rounds, [false, false, true]);
      assert.deepEqual(backend.getReplicationObjectList(ZERO_TID, MAX_TID, 10, 1, ZERO_OID), []);
      assert.deepEqual(backend.getReplicationTIDList(ZERO_TID, MAX_TID, null, 1), []);
      assert.equal(dataOf(backend.getObject(id(0), null, null)), 'kept');
      assert.equal(orphans(backend), 0);
      backend.close();
    });

    it('packs old revisions, and deleted objects entirely, leaving metadata alone', () => {
      const backend = startNode(flavour.harness().open());
      commitTransaction(backend, 0x10, [{ oid: 1, data: 'a' }, { oid: 2, data: 'x' }, { oid: 3, data: 'single' }]);
      commitTransaction(backend, 0x20, [{ oid: 1, data: 'b' }, { oid: 2, data: null }]);
      commitTransaction(backend, 0x30, [{ oid: 1, data: 'c' }]);
      const chunks: (string | null)[] = [];
      let next = ZERO_OID;
      for (;;) {
        const last = backend.packPartition(0, id(0x25), next, 2);
        chunks.push(last === null ? null : last.toString('hex'));
        if (last === null) break;
        next = id(BigInt(`0x${last.toString('hex')}`) + 1n);
      }
      backend.setPartitionPacked(0, id(0x40));
      backend.commit();
      assert.deepEqual(chunks, [id(2).toString('hex'), id(3).toString('hex'), null]);
      assert.equal(backend.getObject(id(1), id(0x10), null), 'oidNotFound');
      assert.deepEqual(backend.getObjectHistory(id(1), 0, 10)?.map((h) => h.serial), [id(0x30), id(0x20)]);
      assert.equal(backend.getObject(id(2), null, null), 'oidDoesNotExist');
      assert.equal(dataOf(backend.getObject(id(3), null, null)), 'single');
      assert.deepEqual(backend.getTransaction(id(0x10))?.oids, [1, 2, 3].map(id));
      assert.deepEqual(backend.getPackedIDs(false).get(0), id(0x40));
      assert.equal(orphans(backend), 0);
      backend.close();
    });

    it('packs only the listed OIDs of a partial pack', () => {
      const backend = startNode(flavour.harness().open());
      commitTransaction(backend, 0x10, [{ oid: 1, data: 'a' }, { oid: 2, data: 'x' }]);
      commitTransaction(backend, 0x20, [{ oid: 1, data: 'b' }, { oid: 2, data: 'y' }]);
      backend.packOids(0, id(0x20), [id(2), id(9)]);
      backend.commit();
      assert.equal(dataOf(backend.getObject(id(1), id(0x10), null)), 'a');
      assert.equal(backend.getObject(id(2), id(0x10), null), 'oidNotFound');
      backend.close();
    });

    it('keeps pack orders: stored at vote, approved at lock, re-keyed at unlock, then signed', () => {
      const backend = startNode(flavour.harness().open());
      const order = { approved: null, partial: true, oids: [id(1), id(2)], packTid: id(0x05) };
      vote(backend, 0x10, [], order);
      backend.lockTransaction(id(0x10), id(0x11), true);
      backend.unlockTransaction(id(0x10), id(0x11));
      backend.commit();
      const signedOrder = { ...order, approved: true };
      assert.deepEqual(backend.getPackOrders(ZERO_TID), [{ id: id(0x11), ...signedOrder }]);
      assert.deepEqual(backend.getTransaction(id(0x11))?.pack, signedOrder);
      assert.deepEqual(backend.getPackOrders(id(0x12)), []);
      assert.deepEqual(backend.signPackOrders([id(0x99), id(0x11)], [id(0x98)]),
        { changed: true, pendingApproved: [id(0x99)], pendingRejected: [id(0x98)] });
      assert.deepEqual(backend.signPackOrders([], [id(0x11)]).changed, true);
      assert.equal(backend.getPackOrders(ZERO_TID)[0]?.approved, false);
      assert.deepEqual(backend.signPackOrders([id(0x50)], []), { changed: false, pendingApproved: [id(0x50)], pendingRejected: [] });
      backend.close();
    });
  });

  describe(`${flavour.name}: durability across reopen`, () => {
    it('keeps everything committed and nothing written after the last commit', () => {
      const h = flavour.harness();
      const backend = startNode(h.open());
      commitTransaction(backend, 0x10, [{ oid: 1, data: 'committed' }]);
      vote(backend, 0x20, [{ oid: 1, data: 'voted' }]);
      backend.lockTransaction(id(0x20), id(0x21), false);
      backend.holdData(id(2), value('stored, never voted'), null);
      backend.setBackupTid(id(0x20));
      backend.close();

      const reopened = h.open();
      reopened.setup({ clusterName: CLUSTER });
      assert.equal(dataOf(reopened.getObject(id(1), null, null)), 'committed');
      assert.deepEqual(reopened.getUnfinishedTIDs(), [{ ttid: id(0x20), tid: null }]);
      assert.equal(reopened.getBackupTid(), null);
      assert.equal(orphans(reopened), 1); // the voted data, held by its tobj row
      assert.deepEqual(reopened.pruneOrphans(false).deleted, 0);
      reopened.close();
    });

    it('commits a deferred unlock when closing', () => {
      const h = flavour.harness();
      const backend = startNode(h.open());
      vote(backend, 0x10, [{ oid: 1, data: 'unlocked' }]);
      backend.lockTransaction(id(0x10), id(0x10), false);
      backend.commit();
      backend.unlockTransaction(id(0x10), id(0x10));
      backend.deferCommit();
      backend.close();
      const reopened = h.open();
      reopened.setup({ clusterName: CLUSTER });
      assert.equal(dataOf(reopened.getObject(id(1), null, null)), 'unlocked');
      reopened.close();
    });

    it('after a crash between lock and unlock, replays the unlock from the locked TID', () => {
      const h = flavour.harness();
      const backend = startNode(h.open());
      vote(backend, 0x10, [{ oid: 1, data: 'a' }, { oid: 2, data: 'b' }]);
      backend.lockTransaction(id(0x10), id(0x12), false);
      backend.commit();
      backend.unlockTransaction(id(0x10), id(0x12));
      backend.deferCommit();
      backend.commitDeferred();
      backend.storeData(id(3), value('lost'), null);
      backend.close();
      // The deferred commit made the unlock durable; the later write is gone.
      const again = h.open();
      again.setup({ clusterName: CLUSTER });
      assert.deepEqual(again.getUnfinishedTIDs(), []);
      assert.equal(orphans(again), 0);
      vote(again, 0x20, [{ oid: 1, data: 'c' }]);
      again.lockTransaction(id(0x20), id(0x22), false);
      again.commit();
      again.close();

      const restarted = h.open();
      restarted.setup({ clusterName: CLUSTER });
      assert.deepEqual(restarted.getUnfinishedTIDs(), [{ ttid: id(0x20), tid: id(0x22) }]);
      restarted.unlockTransaction(id(0x20), id(0x22));
      restarted.commit();
      assert.equal(dataOf(restarted.getObject(id(1), null, null)), 'c');
      assert.equal(orphans(restarted), 0);
      restarted.close();
    });
  });
}

// --- SQLite only -------------------------------------------------------------------------------

/** Opens a database file directly, to look at it as an operator would. */
function inspect<T>(file: string, look: (db: Database.Database) => T): T {
  const db = new Database(file, { readonly: true });
  try {
    return look(db);
  } finally {
    db.close();
  }
}

describe('SQLiteBackend: the file as a NEO operator sees it', () => {
  function populatedFile(dedup: boolean): string {
    const file = tempFile();
    const backend = startNode(new SQLiteBackend(file), 2, cells(2), dedup);
    commitTransaction(backend, 0x10, [{ oid: 1, data: 'a' }, { oid: 2, data: null }]);
    backend.setBackupTid(id(0x040d2d82b1111111n));
    backend.commit();
    backend.close();
    return file;
  }

  it('has exactly NEO\'s tables, keys, WITHOUT ROWID choices and indexes', () => {
    const file = populatedFile(false);
    inspect(file, (db) => {
      const tables = db.prepare("SELECT name, wr FROM pragma_table_list WHERE schema='main' AND name NOT LIKE 'sqlite_%'"
        + ' ORDER BY name').all();
      assert.deepEqual(tables, [
        { name: 'config', wr: 1 }, { name: 'data', wr: 0 }, { name: 'obj', wr: 1 }, { name: 'pack', wr: 0 },
        { name: 'pt', wr: 1 }, { name: 'tobj', wr: 1 }, { name: 'trans', wr: 1 }, { name: 'ttrans', wr: 0 },
      ]);
      const columns = (table: string) => db.prepare(`SELECT name, type, "notnull", pk FROM pragma_table_xinfo('${table}')`)
        .all().map((c) => Object.values(c as Record<string, unknown>).join(' '));
      assert.deepEqual(columns('pt'), ['partition INTEGER 1 1', 'nid INTEGER 1 2', 'tid INTEGER 1 0', 'pack INTEGER 0 0']);
      assert.deepEqual(columns('pack'), ['tid INTEGER 0 1', 'approved BOOLEAN 0 0', 'partial BOOLEAN 1 0',
        'oids BLOB 0 0', 'pack_tid INTEGER 0 0']);
      assert.deepEqual(columns('trans'), ['partition INTEGER 1 1', 'tid INTEGER 1 2', 'packed BOOLEAN 1 0',
        'oids BLOB 1 0', 'user BLOB 1 0', 'description BLOB 1 0', 'ext BLOB 1 0', 'ttid INTEGER 1 0']);
      assert.deepEqual(columns('ttrans'), ['partition INTEGER 1 0', 'tid INTEGER 0 0', 'packed BOOLEAN 1 0',
        'oids BLOB 1 0', 'user BLOB 1 0', 'description BLOB 1 0', 'ext BLOB 1 0', 'ttid INTEGER 1 0']);
      assert.deepEqual(columns('obj'), ['partition INTEGER 1 1', 'oid INTEGER 1 2', 'tid INTEGER 1 3',
        'data_id INTEGER 0 0', 'value_tid INTEGER 0 0']);
      assert.deepEqual(columns('tobj'), ['partition INTEGER 1 0', 'oid INTEGER 1 2', 'tid INTEGER 1 1',
        'data_id INTEGER 0 0', 'value_tid INTEGER 0 0']);
      assert.deepEqual(columns('data'), ['id INTEGER 0 1', 'hash BLOB 1 0', 'compression INTEGER 1 0', 'value BLOB 1 0']);
      assert.deepEqual(columns('config'), ['name TEXT 1 1', 'value TEXT 0 0']);
      const indexes = (table: string) =>
        db.prepare(`SELECT name, "unique", origin FROM pragma_index_list('${table}') ORDER BY name`).all()
          .map((i) => Object.values(i as Record<string, unknown>).join(' '));
      assert.deepEqual(indexes('obj'), ['_obj_i1 0 c', '_obj_i2 0 c', 'sqlite_autoindex_obj_1 1 pk']);
      for (const table of ['config', 'pt', 'trans', 'tobj']) assert.deepEqual(indexes(table), [`sqlite_autoindex_${table}_1 1 pk`]);
      for (const table of ['pack', 'data', 'ttrans']) assert.deepEqual(indexes(table), []);
      const indexColumns = (index: string) => db.prepare(`SELECT name FROM pragma_index_info('${index}')`).pluck().all();
      assert.deepEqual(indexColumns('_obj_i1'), ['partition', 'tid', 'oid']);
      assert.deepEqual(indexColumns('_obj_i2'), ['data_id']);
    });
  });

  it('stores ids as integers and config values as text', () => {
    const file = populatedFile(false);
    inspect(file, (db) => {
      db.defaultSafeIntegers(true);
      const config = Object.fromEntries(db.prepare('SELECT name, value FROM config').raw().all() as [string, string][]);
      assert.deepEqual(config, {
        backup_tid: '040d2d82b1111111', name: CLUSTER, nid: '1', ptid: '1', replicas: '0', version: '4',
      });
      assert.deepEqual(db.prepare('SELECT * FROM pt').raw().all(), [[0n, 1n, -1n, 0n], [1n, 1n, -1n, 0n]]);
      assert.deepEqual(db.prepare('SELECT typeof(partition), typeof(oid), typeof(tid), typeof(data_id) FROM obj')
        .raw().all(), [['integer', 'integer', 'integer', 'null'], ['integer', 'integer', 'integer', 'integer']]);
      assert.deepEqual(db.prepare('SELECT * FROM obj').raw().all(),
        [[0n, 2n, 0x10n, null, null], [1n, 1n, 0x10n, 1n << DATA_ID_PARTITION_SHIFT, null]]);
      assert.deepEqual(db.prepare('SELECT partition, tid, packed, oids, user, description, ext, ttid FROM trans').raw().all(),
        [[0n, 0x10n, 0n, Buffer.concat([id(1), id(2)]), Buffer.from('user'), Buffer.alloc(0), Buffer.alloc(0), 0x10n]]);
      assert.deepEqual(db.prepare('SELECT id, hash, compression, value FROM data').raw().all(),
        [[1n << DATA_ID_PARTITION_SHIFT, sha1('a'), 0n, Buffer.from('a')]]);
    });
  });

  it('creates the unique data index only with --dedup', () => {
    const file = populatedFile(true);
    inspect(file, (db) => {
      const sql = db.prepare("SELECT sql FROM sqlite_master WHERE name='_data_i1'").pluck().get();
      assert.match(String(sql), /CREATE UNIQUE INDEX _data_i1 ON data\(hash, compression\)/);
    });
  });

  it('uses WAL with full synchronisation by default, and URI pragmas instead when given', () => {
    const plain = populatedFile(false);
    inspect(plain, (db) => assert.equal(db.pragma('journal_mode', { simple: true }), 'wal'));
    const file = tempFile();
    startNode(new SQLiteBackend(`file:${file}?journal_mode=DELETE&synchronous=NORMAL&cache_size=-4000`)).close();
    inspect(file, (db) => assert.equal(db.pragma('journal_mode', { simple: true }), 'delete'));
  });
});

describe('SQLiteBackend: the database option', () => {
  it('parses paths and file: URIs as NEO does', () => {
    assert.deepEqual(parseDatabaseLocation('/var/lib/neo/db.sqlite'), { path: '/var/lib/neo/db.sqlite', pragmas: [] });
    assert.deepEqual(parseDatabaseLocation('~/neo.sqlite'), { path: path.join(os.homedir(), 'neo.sqlite'), pragmas: [] });
    assert.deepEqual(parseDatabaseLocation('file:/tmp/x.db?journal_mode=WAL&synchronous=NORMAL&cache_size=-65536'), {
      path: '/tmp/x.db', pragmas: [['journal_mode', 'WAL'], ['synchronous', 'NORMAL'], ['cache_size', '-65536']],
    });
    assert.deepEqual(parseDatabaseLocation('file:///tmp/x.db?cksumvfs=0'), { path: '/tmp/x.db', pragmas: [] });
    assert.deepEqual(parseDatabaseLocation('file:rel.db'), { path: 'rel.db', pragmas: [] });
  });

  it('rejects unsupported, duplicate and malformed query keys', () => {
    const fails = (uri: string, message: string) =>
      assert.throws(() => parseDatabaseLocation(uri), (e: unknown) => e instanceof DatabaseFailure && e.message === message);
    fails('file:x.db?foo=1', 'unsupported pragma: foo');
    fails('file:x.db?locking_mode=NORMAL', 'unsupported pragma: locking_mode');
    fails('file:x.db?cache_size=1&cache_size=2', 'duplicate pragma: cache_size');
    fails('file:x.db?cksumvfs=2', 'invalid or duplicate cksumvfs value');
    fails('file:x.db?cksumvfs=0&cksumvfs=0', 'invalid or duplicate cksumvfs value');
    fails('file:x.db?synchronous', 'bad query field: "synchronous"');
    assert.throws(() => new SQLiteBackend(`file:${tempFile()}?bogus=1`), /unsupported pragma: bogus/);
  });
});

// --- SQLite across processes ---------------------------------------------------------------------

const SQLITE_MODULE = new URL('../../src/storage/backends/sqlite.js', import.meta.url).href;
const IDS_MODULE = new URL('../../src/protocol/ids.js', import.meta.url).href;

function runNode(script: string): ReturnType<typeof spawnSync> {
  const source = `import { SQLiteBackend } from '${SQLITE_MODULE}';\nimport { p64 } from '${IDS_MODULE}';\n${script}`;
  return spawnSync(process.execPath, ['--input-type=module', '-e', source], { encoding: 'utf8' });
}

describe('SQLiteBackend: one process per database', () => {
  it('refuses a database held by another process', () => {
    const file = tempFile();
    const holder = startNode(new SQLiteBackend(file));
    const child = runNode(`try { new SQLiteBackend(${JSON.stringify(file)}); console.log('opened'); }`
      + ' catch (e) { console.log(e.message); }');
    assert.equal(String(child.stdout).trim(), 'error: database is locked');
    holder.close();
    const retry = runNode(`new SQLiteBackend(${JSON.stringify(file)}).close(); console.log('opened');`);
    assert.equal(String(retry.stdout).trim(), 'opened');
  });

  it('a process killed with -9 loses nothing committed and nothing else survives', () => {
    const file = tempFile();
    startNode(new SQLiteBackend(file)).close();
    const child = runNode(`
      const b = new SQLiteBackend(${JSON.stringify(file)});
      b.setup({ clusterName: ${JSON.stringify(CLUSTER)} });
      const value = (text) => ({ compression: 0, checksum: Buffer.alloc(20, 1), data: Buffer.from(text) });
      const meta = (n) => ({ oids: [p64(1n)], user: Buffer.alloc(0), description: Buffer.alloc(0),
        ext: Buffer.alloc(0), packed: false, ttid: p64(n) });
      const store = (n, text) => b.storeTransaction(p64(n), [{ oid: p64(1n), dataId: b.holdData(p64(1n), value(text), null),
        dataSerial: null }], meta(n));
      store(16n, 'durable'); b.commit();
      b.lockTransaction(p64(16n), p64(16n), false); b.commit();
      b.unlockTransaction(p64(16n), p64(16n)); b.commit();
      store(32n, 'never committed');
      process.kill(process.pid, 'SIGKILL');`);
    assert.equal(child.signal, 'SIGKILL', String(child.stderr));
    const backend = new SQLiteBackend(file);
    backend.setup({ clusterName: CLUSTER });
    assert.equal(dataOf(backend.getObject(id(1), null, null)), 'durable');
    assert.deepEqual(backend.getUnfinishedTIDs(), []);
    assert.equal(orphans(backend), 0);
    backend.close();
  });
});
