// The in-memory backend (`--adapter Memory`): the same tables as SQLite, held in Maps, for fast
// tests and the simulator. A MemoryDatabase plays the role of the database file: it outlives the
// backend that uses it, so a node can be "restarted" on it. Writes since the last commit are
// journaled and undone when the backend closes, so a restart loses exactly what a crash of the
// SQLite backend would. Queries scan whole tables: fine for the small databases of tests.

import assert from 'node:assert/strict';
import { DatabaseFailure, DatabaseLockedError } from './backend.js';
import { DatabaseManager } from './manager.js';
import type { DataRow, ObjectKey, ObjectRead, ObjRow, PackCandidate, PackRow, PtRow, TransRead, TransRow } from './manager.js';

/** Undo actions of the writes since the last commit. */
class Journal {
  #undo: (() => void)[] = [];

  record(undo: () => void): void {
    this.#undo.push(undo);
  }

  commit(): void {
    this.#undo = [];
  }

  rollback(): void {
    for (const undo of this.#undo.reverse()) undo();
    this.#undo = [];
  }
}

/** A Map whose writes can be rolled back. */
class JournaledMap<K, V> {
  readonly #map = new Map<K, V>();
  readonly #journal: Journal;

  constructor(journal: Journal) {
    this.#journal = journal;
  }

  get(key: K): V | undefined {
    return this.#map.get(key);
  }

  has(key: K): boolean {
    return this.#map.has(key);
  }

  keys(): K[] {
    return [...this.#map.keys()];
  }

  values(): V[] {
    return [...this.#map.values()];
  }

  entries(): [K, V][] {
    return [...this.#map.entries()];
  }

  set(key: K, value: V): void {
    const map = this.#map;
    const previous = map.get(key);
    this.#journal.record(previous === undefined ? () => map.delete(key) : () => map.set(key, previous));
    map.set(key, value);
  }

  delete(key: K): void {
    const map = this.#map;
    const previous = map.get(key);
    if (previous === undefined) return;
    this.#journal.record(() => map.set(key, previous));
    map.delete(key);
  }
}

interface Tables {
  readonly config: JournaledMap<string, string>;
  readonly pt: JournaledMap<string, PtRow>;
  readonly pack: JournaledMap<bigint, PackRow>;
  /** Keyed by tid (the partition follows from it). */
  readonly trans: JournaledMap<bigint, TransRow>;
  /** Keyed by oid: the object's records sorted by tid. */
  readonly obj: JournaledMap<bigint, readonly ObjRow[]>;
  /** The `_obj_i2` index: number of `obj` rows per data id. */
  readonly objByData: JournaledMap<bigint, number>;
  readonly data: JournaledMap<bigint, DataRow>;
  /** The `_data_i1` unique index on (hash, compression), only with dedup. */
  dataByHash: JournaledMap<string, bigint> | null;
  /** A rowid table without key, like SQLite's. */
  readonly ttrans: JournaledMap<number, TransRow>;
  /** Keyed by TTID: its records sorted by oid. */
  readonly tobj: JournaledMap<bigint, readonly ObjRow[]>;
}

function newTables(journal: Journal): Tables {
  return {
    config: new JournaledMap(journal),
    pt: new JournaledMap(journal),
    pack: new JournaledMap(journal),
    trans: new JournaledMap(journal),
    obj: new JournaledMap(journal),
    objByData: new JournaledMap(journal),
    data: new JournaledMap(journal),
    dataByHash: null,
    ttrans: new JournaledMap(journal),
    tobj: new JournaledMap(journal),
  };
}

/** The "file" of a MemoryBackend: keep it to reopen a backend on the same data. */
export class MemoryDatabase {
  /** @internal null until the schema is created. */
  tables: Tables | null = null;
  /** @internal */
  readonly journal = new Journal();
  /** @internal Held by the open backend, like the SQLite file lock. */
  inUse = false;
}

function compare(a: bigint, b: bigint): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function byTidOid(a: ObjectKey, b: ObjectKey): number {
  return compare(a.tid, b.tid) || compare(a.oid, b.oid);
}

function hashKey(hash: Buffer, compression: number): string {
  return `${hash.toString('hex')}:${compression}`;
}

function limited<T>(rows: T[], length: number | null): T[] {
  return length === null ? rows : rows.slice(0, length);
}

function dataIdsOf(rows: readonly ObjRow[]): bigint[] {
  return [...new Set(rows.flatMap((row) => (row.dataId === null ? [] : [row.dataId])))];
}

export class MemoryBackend extends DatabaseManager {
  readonly #db: MemoryDatabase;

  /** Opens `database` (a new empty one by default); refuses one already open. */
  constructor(database: MemoryDatabase = new MemoryDatabase()) {
    super();
    if (database.inUse) throw new DatabaseLockedError();
    database.inUse = true;
    this.#db = database;
  }

  getDevPath(): string | null {
    return null;
  }

  get #t(): Tables {
    const tables = this.#db.tables;
    assert(tables !== null, 'no such table');
    return tables;
  }

  // --- Lifecycle ---------------------------------------------------------------------------------

  protected commitWrites(): void {
    this.#db.journal.commit();
  }

  protected closeDatabase(): void {
    this.#db.journal.rollback();
    this.#db.inUse = false;
  }

  protected hasSchema(): boolean {
    return this.#db.tables !== null;
  }

  #setTables(tables: Tables | null): void {
    const db = this.#db;
    const previous = db.tables;
    db.journal.record(() => {
      db.tables = previous;
    });
    db.tables = tables;
  }

  protected createTables(dedup: boolean): void {
    if (this.#db.tables === null) this.#setTables(newTables(this.#db.journal));
    const t = this.#t;
    if (!dedup || t.dataByHash !== null) return;
    const index = new JournaledMap<string, bigint>(this.#db.journal);
    for (const [id, row] of t.data.entries()) {
      const key = hashKey(row.hash, row.compression);
      if (index.has(key)) throw new DatabaseFailure('UNIQUE constraint failed: data.hash, data.compression');
      index.set(key, id);
    }
    this.#db.journal.record(() => {
      t.dataByHash = null;
    });
    t.dataByHash = index;
  }

  protected dropTables(): void {
    this.#setTables(null);
  }

  protected readConfig(key: string): string | null {
    return this.#t.config.get(key) ?? null;
  }

  protected writeConfig(key: string, value: string | null): void {
    if (value === null) this.#t.config.delete(key);
    else this.#t.config.set(key, value);
  }

  // --- Partition table ---------------------------------------------------------------------------

  protected readPartitionTable(): PtRow[] {
    return this.#t.pt.values().sort((a, b) => a.partition - b.partition || a.nid - b.nid);
  }

  protected insertCell(row: PtRow): void {
    const key = `${row.partition}:${row.nid}`;
    assert(!this.#t.pt.has(key), 'duplicate cell');
    this.#t.pt.set(key, row);
  }

  #updateCell(partition: number, nid: number, change: Partial<PtRow>): void {
    const key = `${partition}:${nid}`;
    const row = this.#t.pt.get(key);
    if (row !== undefined) this.#t.pt.set(key, { ...row, ...change });
  }

  protected updateCellTid(partition: number, nid: number, tid: bigint): void {
    this.#updateCell(partition, nid, { tid });
  }

  protected deleteCell(partition: number, nid: number): void {
    this.#t.pt.delete(`${partition}:${nid}`);
  }

  protected writePartitionPacked(partition: number, nid: number, packId: bigint): void {
    this.#updateCell(partition, nid, { pack: packId });
  }

  #transOf(partition: number): TransRow[] {
    return this.#t.trans.values().filter((row) => row.partition === partition);
  }

  #transTids(partition: number): bigint[] {
    return this.#transOf(partition).map((row) => row.tid).filter((tid) => tid !== null).sort(compare);
  }

  protected firstTransTid(partition: number): bigint | null {
    return this.#transTids(partition)[0] ?? null;
  }

  protected lastTransTid(partition: number): bigint | null {
    return this.#transTids(partition).at(-1) ?? null;
  }

  #objOf(partition: number): ObjRow[] {
    return this.#t.obj.values().flat().filter((row) => row.partition === partition);
  }

  protected lastObjectIds(partition: number): { tid: bigint | null; oid: bigint | null } {
    const rows = this.#objOf(partition);
    return {
      tid: rows.map((row) => row.tid).sort(compare).at(-1) ?? null,
      oid: rows.map((row) => row.oid).sort(compare).at(-1) ?? null,
    };
  }

  // --- Data --------------------------------------------------------------------------------------

  protected maxDataId(low: bigint, high: bigint): bigint | null {
    return this.#t.data.keys().filter((id) => low <= id && id < high).sort(compare).at(-1) ?? null;
  }

  protected insertData(id: bigint, row: DataRow): bigint {
    const t = this.#t;
    const key = hashKey(row.hash, row.compression);
    const existing = t.dataByHash?.get(key);
    if (existing !== undefined) {
      if (!t.data.get(existing)?.value.equals(row.value)) {
        throw new DatabaseFailure(`SHA-1 collision on data ${row.hash.toString('hex')}`);
      }
      return existing;
    }
    assert(!t.data.has(id), `duplicate data id ${id}`);
    t.data.set(id, row);
    t.dataByHash?.set(key, id);
    return id;
  }

  protected readData(id: bigint): DataRow | null {
    return this.#t.data.get(id) ?? null;
  }

  protected isDataReferenced(id: bigint): boolean {
    return this.#t.objByData.has(id);
  }

  protected deleteData(id: bigint): void {
    const t = this.#t;
    const row = t.data.get(id);
    if (row === undefined) return;
    t.dataByHash?.delete(hashKey(row.hash, row.compression));
    t.data.delete(id);
  }

  protected orphanDataIds(): bigint[] {
    return this.#t.data.keys().filter((id) => !this.#t.objByData.has(id)).sort(compare);
  }

  // --- Object records ----------------------------------------------------------------------------

  #records(partition: number, oid: bigint): readonly ObjRow[] {
    return (this.#t.obj.get(oid) ?? []).filter((row) => row.partition === partition);
  }

  #countDataRef(dataId: bigint | null, delta: number): void {
    if (dataId === null) return;
    const count = (this.#t.objByData.get(dataId) ?? 0) + delta;
    assert(count >= 0);
    if (count === 0) this.#t.objByData.delete(dataId);
    else this.#t.objByData.set(dataId, count);
  }

  #putObject(row: ObjRow): void {
    const rows = this.#t.obj.get(row.oid) ?? [];
    assert(!rows.some((r) => r.tid === row.tid), 'duplicate object record');
    this.#t.obj.set(row.oid, [...rows, row].sort((a, b) => compare(a.tid, b.tid)));
    this.#countDataRef(row.dataId, 1);
  }

  /** Deletes the records of an OID matching `remove`; returns their data ids. */
  #removeObjects(oid: bigint, remove: (row: ObjRow) => boolean): bigint[] {
    const rows = this.#t.obj.get(oid) ?? [];
    const removed = rows.filter(remove);
    if (removed.length === 0) return [];
    const kept = rows.filter((row) => !remove(row));
    if (kept.length === 0) this.#t.obj.delete(oid);
    else this.#t.obj.set(oid, kept);
    for (const row of removed) this.#countDataRef(row.dataId, -1);
    return dataIdsOf(removed);
  }

  protected objectDataId(partition: number, oid: bigint, tid: bigint): { dataId: bigint | null } | null {
    const row = this.#records(partition, oid).find((r) => r.tid === tid);
    return row === undefined ? null : { dataId: row.dataId };
  }

  protected insertObject(row: ObjRow): void {
    const existing = this.#records(row.partition, row.oid).find((r) => r.tid === row.tid);
    if (existing === undefined) {
      this.#putObject(row);
      return;
    }
    // An interrupted replication may have written this record already.
    if (existing.dataId !== row.dataId || existing.valueTid !== row.valueTid) {
      throw new DatabaseFailure(`object ${row.oid} at ${row.tid} already stored with different data`);
    }
  }

  // --- Transactions ------------------------------------------------------------------------------

  protected insertTemporaryObject(row: ObjRow): void {
    const rows = this.#t.tobj.get(row.tid) ?? [];
    assert(!rows.some((r) => r.oid === row.oid), 'object stored twice by a transaction');
    this.#t.tobj.set(row.tid, [...rows, row].sort((a, b) => compare(a.oid, b.oid)));
  }

  #nextRowid(): number {
    return this.#t.ttrans.keys().reduce((max, rowid) => Math.max(max, rowid), 0) + 1;
  }

  protected insertTransaction(row: TransRow, temporary: boolean): void {
    const t = this.#t;
    if (temporary) {
      t.ttrans.set(this.#nextRowid(), row);
      return;
    }
    assert(row.tid !== null && !t.trans.has(row.tid), 'duplicate transaction');
    t.trans.set(row.tid, row);
  }

  protected insertPackOrder(row: PackRow): void {
    assert(!this.#t.pack.has(row.tid), 'duplicate pack order');
    this.#t.pack.set(row.tid, row);
  }

  #setApproved(id: bigint, approved: boolean): boolean {
    const row = this.#t.pack.get(id);
    if (row !== undefined) this.#t.pack.set(id, { ...row, approved });
    return row !== undefined;
  }

  protected signPackRows(approved: readonly bigint[], rejected: readonly bigint[]): bigint[] {
    return [...approved.filter((id) => this.#setApproved(id, true)), ...rejected.filter((id) => this.#setApproved(id, false))];
  }

  #ttransWhere(match: (row: TransRow) => boolean): [number, TransRow][] {
    return this.#t.ttrans.entries().filter(([, row]) => match(row));
  }

  protected setTemporaryTid(ttid: bigint, tid: bigint): void {
    for (const [rowid, row] of this.#ttransWhere((r) => r.ttid === ttid)) this.#t.ttrans.set(rowid, { ...row, tid });
  }

  protected approvePackOrder(id: bigint): void {
    this.#setApproved(id, true);
  }

  protected moveTransaction(ttid: bigint, tid: bigint): void {
    const t = this.#t;
    const moved = this.#ttransWhere((r) => r.tid === tid);
    for (const [rowid, row] of moved) {
      this.insertTransaction(row, false);
      t.ttrans.delete(rowid);
    }
    const pack = t.pack.get(ttid);
    if (moved.length > 0 && ttid !== tid && pack !== undefined) {
      t.pack.delete(ttid);
      this.insertPackOrder({ ...pack, tid });
    }
  }

  protected moveObjects(ttid: bigint, tid: bigint): bigint[] {
    const rows = this.#t.tobj.get(ttid) ?? [];
    for (const row of rows) this.#putObject({ ...row, tid });
    this.#t.tobj.delete(ttid);
    return rows.flatMap((row) => (row.dataId === null ? [] : [row.dataId]));
  }

  /** Deletes `ttrans` rows, with the pack orders keyed by their TTIDs. */
  #deleteTtrans(match: (row: TransRow) => boolean): void {
    for (const [rowid, row] of this.#ttransWhere(match)) {
      this.#t.pack.delete(row.ttid);
      this.#t.ttrans.delete(rowid);
    }
  }

  protected deleteTemporary(ttid: bigint): void {
    this.#t.tobj.delete(ttid);
    this.#deleteTtrans((row) => row.ttid === ttid);
  }

  protected unfinishedTransactions(): { ttid: bigint; tid: bigint | null }[] {
    return this.#t.ttrans.values().map((row) => ({ ttid: row.ttid, tid: row.tid }));
  }

  protected temporaryObjectTtids(): bigint[] {
    return this.#t.tobj.keys();
  }

  protected unfinishedDataIds(): bigint[] {
    return this.#t.tobj.values().flat().flatMap((row) => (row.dataId === null ? [] : [row.dataId]));
  }

  protected dropTemporary(partitions: readonly number[] | null): void {
    const dropped = (row: { partition: number }) => partitions === null || partitions.includes(row.partition);
    for (const [ttid, rows] of this.#t.tobj.entries()) {
      const kept = rows.filter((row) => !dropped(row));
      if (kept.length === 0) this.#t.tobj.delete(ttid);
      else if (kept.length < rows.length) this.#t.tobj.set(ttid, kept);
    }
    this.#deleteTtrans(dropped);
  }

  protected finalTid(partition: number, ttid: bigint): bigint | null {
    return this.#transOf(partition).filter((row) => row.ttid === ttid && row.tid !== null && row.tid >= ttid)
      .flatMap((row) => (row.tid === null ? [] : [row.tid])).sort(compare)[0] ?? null;
  }

  protected packOrdersFrom(minId: bigint): PackRow[] {
    return this.#t.pack.values().filter((row) => row.tid >= minId).sort((a, b) => compare(a.tid, b.tid));
  }

  // --- Reads -------------------------------------------------------------------------------------

  #objectRead(row: ObjRow): ObjectRead {
    const data = row.dataId === null ? null : this.#t.data.get(row.dataId) ?? null;
    return { serial: row.tid, data, valueTid: row.valueTid };
  }

  protected readObject(partition: number, oid: bigint, at: bigint | null, before: bigint | null): ObjectRead | null {
    const rows = this.#records(partition, oid);
    let row: ObjRow | undefined;
    if (at !== null) row = rows.find((r) => r.tid === at);
    else if (before !== null) row = rows.filter((r) => r.tid < before).at(-1);
    else row = rows.at(-1);
    return row === undefined ? null : this.#objectRead(row);
  }

  protected nextSerial(partition: number, oid: bigint, tid: bigint): bigint | null {
    return this.#records(partition, oid).find((r) => r.tid > tid)?.tid ?? null;
  }

  protected lastSerial(partition: number, oid: bigint): bigint | null {
    return this.#records(partition, oid).at(-1)?.tid ?? null;
  }

  protected objectHistory(partition: number, oid: bigint, offset: number, length: number): { tid: bigint; size: number }[] {
    return [...this.#records(partition, oid)].reverse().slice(offset, offset + length)
      .map((row) => ({ tid: row.tid, size: this.#objectRead(row).data?.value.length ?? 0 }));
  }

  protected readTransaction(partition: number, tid: bigint): TransRead | null {
    const row = this.#t.trans.get(tid);
    if (row === undefined || row.partition !== partition) return null;
    return { row, pack: this.#t.pack.get(tid) ?? null };
  }

  protected tidList(offset: number, length: number, partitions: readonly number[]): bigint[] {
    return partitions.flatMap((p) => this.#transTids(p)).sort((a, b) => compare(b, a)).slice(offset, offset + length);
  }

  protected transTidsFrom(partition: number, minTid: bigint, maxTid: bigint, length: number | null): bigint[] {
    return limited(this.#transTids(partition).filter((tid) => minTid <= tid && tid <= maxTid), length);
  }

  protected objectKeysFrom(
    partition: number, minTid: bigint, minOid: bigint, maxTid: bigint, length: number | null,
  ): ObjectKey[] {
    const keys = this.#objOf(partition)
      .filter(({ tid, oid }) => tid <= maxTid && (tid > minTid || (tid === minTid && oid >= minOid)))
      .map(({ tid, oid }) => ({ tid, oid }));
    return limited(keys.sort(byTidOid), length);
  }

  protected latestRecordsFrom(partition: number, minOid: bigint, tid: bigint, length: number): { oid: bigint; deleted: boolean }[] {
    const latest: { oid: bigint; deleted: boolean }[] = [];
    for (const oid of this.#t.obj.keys().filter((o) => o >= minOid).sort(compare)) {
      const row = this.#records(partition, oid).filter((r) => r.tid <= tid).at(-1);
      if (row !== undefined) latest.push({ oid, deleted: row.dataId === null });
      if (latest.length === length) break;
    }
    return latest;
  }

  protected serialsUpTo(partition: number, oid: bigint, tid: bigint, limit: number): bigint[] {
    return this.#records(partition, oid).filter((r) => r.tid <= tid).map((r) => r.tid).reverse().slice(0, limit);
  }

  protected recordsAfter(partition: number, oid: bigint, tid: bigint): { tid: bigint; valueTid: bigint | null }[] {
    return this.#records(partition, oid).filter((r) => r.tid > tid).map((r) => ({ tid: r.tid, valueTid: r.valueTid }));
  }

  // --- Deletions ---------------------------------------------------------------------------------

  protected deleteTransactionRow(partition: number, tid: bigint): void {
    this.#t.pack.delete(tid);
    if (this.#t.trans.get(tid)?.partition === partition) this.#t.trans.delete(tid);
  }

  protected deleteObjectRows(partition: number, oid: bigint, serial: bigint | null): bigint[] {
    return this.#removeObjects(oid, (row) => row.partition === partition && (serial === null || row.tid === serial));
  }

  protected deleteAfter(partition: number, minTid: bigint): bigint[] {
    for (const tid of this.#transTids(partition).filter((t) => t > minTid)) this.deleteTransactionRow(partition, tid);
    const after = (row: ObjRow) => row.partition === partition && row.tid > minTid;
    return [...new Set(this.#t.obj.keys().flatMap((oid) => this.#removeObjects(oid, after)))];
  }

  protected deleteFirstObjects(partition: number, limit: number): { count: number; dataIds: bigint[] } {
    const first = this.#objOf(partition).sort(byTidOid).slice(0, limit);
    for (const { oid, tid } of first) this.#removeObjects(oid, (row) => row.partition === partition && row.tid === tid);
    return { count: first.length, dataIds: dataIdsOf(first) };
  }

  protected deletePartitionTransactions(partition: number): void {
    for (const tid of this.#transTids(partition)) this.deleteTransactionRow(partition, tid);
  }

  protected packCandidate(partition: number, oid: bigint, packTid: bigint): PackCandidate | null {
    const rows = this.#records(partition, oid).filter((r) => r.tid <= packTid);
    const newest = rows.at(-1);
    return newest === undefined ? null : { oid, count: rows.length, maxTid: newest.tid };
  }

  protected packCandidates(partition: number, packTid: bigint, minOid: bigint, limit: number): PackCandidate[] {
    const candidates: PackCandidate[] = [];
    for (const oid of this.#t.obj.keys().filter((o) => o >= minOid).sort(compare)) {
      const candidate = this.packCandidate(partition, oid, packTid);
      if (candidate !== null) candidates.push(candidate);
      if (candidates.length === limit) break;
    }
    return candidates;
  }

  protected deleteObjectsBefore(partition: number, oid: bigint, beforeTid: bigint): bigint[] {
    return this.#removeObjects(oid, (row) => row.partition === partition && row.tid < beforeTid);
  }
}
