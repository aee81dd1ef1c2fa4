// The SQLite backend: NEO's tables, columns, keys and indexes exactly (storage.md §2.7.2), so a NEO
// operator recognises the file, with ids stored as INTEGER (the unsigned 64-bit value; ids stay
// below 2⁶³). All integers are read as bigint (better-sqlite3's safe integers): ids exceed 2⁵³.
//
// Settings, which differ from NEO's (it keeps SQLite's defaults, §2.7.1):
// - journal_mode = WAL and synchronous = FULL unless the `file:` URI says otherwise: each commit is
//   one fsync'ed append to the WAL instead of a rollback journal's several fsyncs, and is still
//   durable on power loss.
// - Exclusive use of the file: NEO binds an abstract Unix socket, which Node cannot do
//   synchronously. We use `locking_mode = EXCLUSIVE` and take the write lock at once: the kernel
//   keeps it for this connection until it is closed or the process dies (no stale lock file, no pid
//   reuse), and any other opener, in this process or another, gets "error: database is locked".
//   The price: the file cannot be read by another program (e.g. the sqlite3 shell) while the node
//   runs. With exclusive locking, WAL needs no shared-memory file either.
// - Transactions: better-sqlite3 runs in autocommit mode, so a BEGIN is issued before the first
//   write after a commit, and COMMIT only at the durability points (Backend.commit).

import assert from 'node:assert/strict';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { DatabaseFailure, DatabaseLockedError } from './backend.js';
import { DatabaseManager } from './manager.js';
import type { DataRow, ObjectKey, ObjectRead, ObjRow, PackCandidate, PackRow, PtRow, TransRead, TransRow } from './manager.js';

const SUPPORTED_PRAGMAS = ['cache_size', 'journal_mode', 'synchronous'];
const DEFAULT_PRAGMAS: readonly (readonly [string, string])[] = [['journal_mode', 'WAL'], ['synchronous', 'FULL']];
/** LIMIT value meaning "no limit". */
const NO_LIMIT = -1;

// Column order matters: NEO inserts positionally and copies ttrans→trans, tobj→obj by position.
const TABLES: readonly (readonly [string, string])[] = [
  ['config', '(name TEXT NOT NULL PRIMARY KEY, value TEXT) WITHOUT ROWID'],
  ['pt', '(partition INTEGER NOT NULL, nid INTEGER NOT NULL, tid INTEGER NOT NULL, pack INTEGER,'
    + ' PRIMARY KEY (partition, nid)) WITHOUT ROWID'],
  ['pack', '(tid INTEGER PRIMARY KEY, approved BOOLEAN, partial BOOLEAN NOT NULL, oids BLOB, pack_tid INTEGER)'],
  ['trans', '(partition INTEGER NOT NULL, tid INTEGER NOT NULL, packed BOOLEAN NOT NULL, oids BLOB NOT NULL,'
    + ' user BLOB NOT NULL, description BLOB NOT NULL, ext BLOB NOT NULL, ttid INTEGER NOT NULL,'
    + ' PRIMARY KEY (partition, tid)) WITHOUT ROWID'],
  ['obj', '(partition INTEGER NOT NULL, oid INTEGER NOT NULL, tid INTEGER NOT NULL, data_id INTEGER,'
    + ' value_tid INTEGER, PRIMARY KEY (partition, oid, tid)) WITHOUT ROWID'],
  ['data', '(id INTEGER PRIMARY KEY, hash BLOB NOT NULL, compression INTEGER NOT NULL, value BLOB NOT NULL)'],
  ['ttrans', '(partition INTEGER NOT NULL, tid INTEGER, packed BOOLEAN NOT NULL, oids BLOB NOT NULL,'
    + ' user BLOB NOT NULL, description BLOB NOT NULL, ext BLOB NOT NULL, ttid INTEGER NOT NULL)'],
  ['tobj', '(partition INTEGER NOT NULL, oid INTEGER NOT NULL, tid INTEGER NOT NULL, data_id INTEGER,'
    + ' value_tid INTEGER, PRIMARY KEY (tid, oid)) WITHOUT ROWID'],
];
const INDEXES = [
  'CREATE INDEX IF NOT EXISTS _obj_i1 ON obj(partition, tid, oid)',
  'CREATE INDEX IF NOT EXISTS _obj_i2 ON obj(data_id)',
];
const DEDUP_INDEX = 'CREATE UNIQUE INDEX IF NOT EXISTS _data_i1 ON data(hash, compression)';

const OBJECT_SELECT = 'SELECT tid, compression, data.hash, value, value_tid'
  + ' FROM obj LEFT JOIN data ON obj.data_id = data.id WHERE partition=? AND oid=?';

// --- The `database` option ---------------------------------------------------------------------

export interface DatabaseLocation {
  /** The file to open; ':memory:' or '' for a database without a file. */
  readonly path: string;
  /** PRAGMA key/value pairs from a `file:` URI, in URI order. */
  readonly pragmas: readonly (readonly [string, string])[];
}

function decodeQueryPart(text: string): string {
  try {
    return decodeURIComponent(text.replaceAll('+', ' '));
  } catch (e) {
    throw new DatabaseFailure(`bad query field: ${JSON.stringify(text)}`, { cause: e });
  }
}

function expandHome(file: string): string {
  return file === '~' || file.startsWith('~/') ? path.join(os.homedir(), file.slice(1)) : file;
}

/**
 * A path (with `~` expanded) or a `file:` URI whose query gives pragmas (storage.md §2.7.1). Only
 * the URI's path is opened; the query is parsed here, as NEO does.
 */
export function parseDatabaseLocation(database: string): DatabaseLocation {
  if (!database.startsWith('file:')) return { path: expandHome(database), pragmas: [] };
  let rest = database.slice('file:'.length).split('#')[0] ?? '';
  const q = rest.indexOf('?');
  const query = q < 0 ? '' : rest.slice(q + 1);
  rest = q < 0 ? rest : rest.slice(0, q);
  if (rest.startsWith('//')) {
    const slash = rest.indexOf('/', 2);
    rest = slash < 0 ? '' : rest.slice(slash);
  }
  return { path: rest, pragmas: parsePragmas(query) };
}

function parsePragmas(query: string): [string, string][] {
  const pragmas: [string, string][] = [];
  let cksumvfs: string | null = null;
  for (const field of query === '' ? [] : query.split('&')) {
    const eq = field.indexOf('=');
    if (eq < 0) throw new DatabaseFailure(`bad query field: ${JSON.stringify(field)}`);
    const key = decodeQueryPart(field.slice(0, eq));
    const value = decodeQueryPart(field.slice(eq + 1));
    if (key === 'cksumvfs') {
      if (cksumvfs !== null || (value !== '0' && value !== '1')) {
        throw new DatabaseFailure('invalid or duplicate cksumvfs value');
      }
      cksumvfs = value;
      continue;
    }
    if (pragmas.some(([k]) => k === key)) throw new DatabaseFailure(`duplicate pragma: ${key}`);
    if (!SUPPORTED_PRAGMAS.includes(key)) throw new DatabaseFailure(`unsupported pragma: ${key}`);
    pragmas.push([key, value]);
  }
  if (cksumvfs === '1') throw new DatabaseFailure('cksumvfs=1 is not supported (no checksum VFS extension)');
  return pragmas;
}

function hasFile(file: string): boolean {
  return file !== '' && file !== ':memory:';
}

function isBusy(e: unknown): boolean {
  return e instanceof Database.SqliteError && e.code.startsWith('SQLITE_BUSY');
}

function isConstraint(e: unknown, code: string): boolean {
  return e instanceof Database.SqliteError && e.code === code;
}

/** Opens the file, takes the exclusive lock at once, then applies the pragmas. */
function openExclusive({ path: file, pragmas }: DatabaseLocation): Database.Database {
  // No busy timeout: a lock held by someone else must fail now, not in 5 s.
  const db = new Database(file, { timeout: 0 });
  try {
    db.defaultSafeIntegers(true);
    if (hasFile(file)) {
      db.pragma('locking_mode = EXCLUSIVE');
      db.exec('BEGIN EXCLUSIVE');
      db.exec('COMMIT');
    }
    const given = new Set(pragmas.map(([key]) => key));
    for (const [key, value] of [...DEFAULT_PRAGMAS.filter(([key]) => !given.has(key)), ...pragmas]) {
      db.pragma(`${key} = ${value}`);
    }
    return db;
  } catch (e) {
    db.close();
    if (isBusy(e)) throw new DatabaseLockedError({ cause: e });
    throw e;
  }
}

// --- Reading columns (all integers come back as bigint) --------------------------------------

type Row = unknown[];

function int(value: unknown): bigint {
  assert(typeof value === 'bigint', 'INTEGER column expected');
  return value;
}

function intOrNull(value: unknown): bigint | null {
  return value === null ? null : int(value);
}

function num(value: unknown): number {
  return Number(int(value));
}

function blob(value: unknown): Buffer {
  assert(Buffer.isBuffer(value), 'BLOB column expected');
  return value;
}

function col(row: Row, i: number): unknown {
  assert(i < row.length);
  return row[i];
}

/** A BOOLEAN column as bound: SQLite has no boolean type. */
function bool(value: boolean): number {
  return value ? 1 : 0;
}

function transRowOf(row: Row, offset: number): TransRow {
  return {
    partition: num(col(row, offset)),
    tid: intOrNull(col(row, offset + 1)),
    packed: int(col(row, offset + 2)) !== 0n,
    oids: blob(col(row, offset + 3)),
    user: blob(col(row, offset + 4)),
    description: blob(col(row, offset + 5)),
    ext: blob(col(row, offset + 6)),
    ttid: int(col(row, offset + 7)),
  };
}

function packRowOf(row: Row, offset: number): PackRow {
  const approved = intOrNull(col(row, offset + 1));
  const oids = col(row, offset + 3);
  return {
    tid: int(col(row, offset)),
    approved: approved === null ? null : approved !== 0n,
    partial: int(col(row, offset + 2)) !== 0n,
    oids: oids === null ? null : blob(oids),
    packTid: int(col(row, offset + 4)),
  };
}

function objectReadOf(row: Row): ObjectRead {
  const compression = col(row, 1);
  return {
    serial: int(col(row, 0)),
    data: compression === null ? null : { compression: num(compression), hash: blob(col(row, 2)), value: blob(col(row, 3)) },
    valueTid: intOrNull(col(row, 4)),
  };
}

export class SQLiteBackend extends DatabaseManager {
  readonly #db: Database.Database;
  readonly #path: string;
  readonly #statements = new Map<string, Database.Statement>();

  /** `database`: a path or a `file:` URI with pragmas (storage.md §2.7.1). Takes the lock. */
  constructor(database: string) {
    super();
    const location = parseDatabaseLocation(database);
    this.#path = location.path;
    this.#db = openExclusive(location);
  }

  getDevPath(): string | null {
    return hasFile(this.#path) ? this.#path : null;
  }

  // --- Statements --------------------------------------------------------------------------------

  #statement(sql: string): Database.Statement {
    let statement = this.#statements.get(sql);
    if (statement === undefined) {
      statement = this.#db.prepare(sql);
      if (statement.reader) statement.raw(true);
      this.#statements.set(sql, statement);
    }
    return statement;
  }

  #all(sql: string, ...params: unknown[]): Row[] {
    return this.#statement(sql).all(...params) as Row[];
  }

  #get(sql: string, ...params: unknown[]): Row | undefined {
    return this.#statement(sql).get(...params) as Row | undefined;
  }

  /** The first column of each row. */
  #column(sql: string, ...params: unknown[]): unknown[] {
    return this.#all(sql, ...params).map((row) => col(row, 0));
  }

  #value(sql: string, ...params: unknown[]): unknown {
    const row = this.#get(sql, ...params);
    return row === undefined ? undefined : col(row, 0);
  }

  /** Opens the write transaction if needed: everything until the next commit() is one transaction. */
  #begin(): void {
    if (!this.#db.inTransaction) this.#db.exec('BEGIN');
  }

  /** Runs a write; returns the number of rows changed. */
  #run(sql: string, ...params: unknown[]): number {
    this.#begin();
    return this.#statement(sql).run(...params).changes;
  }

  #dataIds(sql: string, ...params: unknown[]): bigint[] {
    return this.#column(sql, ...params).filter((id) => id !== null).map(int);
  }

  // --- Lifecycle ---------------------------------------------------------------------------------

  protected commitWrites(): void {
    if (this.#db.inTransaction) this.#db.exec('COMMIT');
  }

  protected closeDatabase(): void {
    // Closing with a transaction open rolls it back, as a crash would.
    this.#db.close();
  }

  protected hasSchema(): boolean {
    return this.#get("SELECT 1 FROM sqlite_master WHERE type='table' AND name='config'") !== undefined;
  }

  protected createTables(dedup: boolean): void {
    this.#begin();
    for (const [name, columns] of TABLES) this.#db.exec(`CREATE TABLE IF NOT EXISTS ${name} ${columns}`);
    for (const index of dedup ? [...INDEXES, DEDUP_INDEX] : INDEXES) this.#db.exec(index);
  }

  protected dropTables(): void {
    this.#statements.clear();
    this.#begin();
    for (const [name] of TABLES) this.#db.exec(`DROP TABLE IF EXISTS ${name}`);
  }

  protected readConfig(key: string): string | null {
    const value = this.#value('SELECT value FROM config WHERE name=?', key);
    assert(value === undefined || value === null || typeof value === 'string');
    return value ?? null;
  }

  protected writeConfig(key: string, value: string | null): void {
    if (value === null) this.#run('DELETE FROM config WHERE name=?', key);
    else this.#run('REPLACE INTO config VALUES (?,?)', key, value);
  }

  // --- Partition table ---------------------------------------------------------------------------

  protected readPartitionTable(): PtRow[] {
    return this.#all('SELECT partition, nid, tid, pack FROM pt ORDER BY partition, nid').map((row) => ({
      partition: num(col(row, 0)), nid: num(col(row, 1)), tid: int(col(row, 2)), pack: intOrNull(col(row, 3)),
    }));
  }

  protected insertCell({ partition, nid, tid, pack }: PtRow): void {
    this.#run('INSERT INTO pt VALUES (?,?,?,?)', partition, nid, tid, pack);
  }

  protected updateCellTid(partition: number, nid: number, tid: bigint): void {
    this.#run('UPDATE pt SET tid=? WHERE partition=? AND nid=?', tid, partition, nid);
  }

  protected deleteCell(partition: number, nid: number): void {
    this.#run('DELETE FROM pt WHERE partition=? AND nid=?', partition, nid);
  }

  protected writePartitionPacked(partition: number, nid: number, packId: bigint): void {
    this.#run('UPDATE pt SET pack=? WHERE partition=? AND nid=?', packId, partition, nid);
  }

  protected firstTransTid(partition: number): bigint | null {
    return intOrNull(this.#value('SELECT MIN(tid) FROM trans WHERE partition=?', partition));
  }

  protected lastTransTid(partition: number): bigint | null {
    return intOrNull(this.#value('SELECT MAX(tid) FROM trans WHERE partition=?', partition));
  }

  protected lastObjectIds(partition: number): { tid: bigint | null; oid: bigint | null } {
    return {
      tid: intOrNull(this.#value('SELECT MAX(tid) FROM obj WHERE partition=?', partition)),
      oid: intOrNull(this.#value('SELECT MAX(oid) FROM obj WHERE partition=?', partition)),
    };
  }

  // --- Data --------------------------------------------------------------------------------------

  protected maxDataId(low: bigint, high: bigint): bigint | null {
    return intOrNull(this.#value('SELECT MAX(id) FROM data WHERE ? <= id AND id < ?', low, high));
  }

  protected insertData(id: bigint, { hash, compression, value }: DataRow): bigint {
    try {
      this.#run('INSERT INTO data VALUES (?,?,?,?)', id, hash, compression, value);
      return id;
    } catch (e) {
      // Only with --dedup: the same (hash, compression) is already stored.
      if (!isConstraint(e, 'SQLITE_CONSTRAINT_UNIQUE')) throw e;
      const row = this.#get('SELECT id, value FROM data WHERE hash=? AND compression=?', hash, compression);
      assert(row !== undefined);
      if (!blob(col(row, 1)).equals(value)) throw new DatabaseFailure(`SHA-1 collision on data ${hash.toString('hex')}`);
      return int(col(row, 0));
    }
  }

  protected readData(id: bigint): DataRow | null {
    const row = this.#get('SELECT hash, compression, value FROM data WHERE id=?', id);
    return row === undefined ? null : { hash: blob(col(row, 0)), compression: num(col(row, 1)), value: blob(col(row, 2)) };
  }

  protected isDataReferenced(id: bigint): boolean {
    return this.#get('SELECT 1 FROM obj WHERE data_id=? LIMIT 1', id) !== undefined;
  }

  protected deleteData(id: bigint): void {
    this.#run('DELETE FROM data WHERE id=?', id);
  }

  protected orphanDataIds(): bigint[] {
    return this.#column('SELECT id FROM data LEFT JOIN obj ON (id=data_id) WHERE data_id IS NULL').map(int);
  }

  // --- Transactions ------------------------------------------------------------------------------

  protected objectDataId(partition: number, oid: bigint, tid: bigint): { dataId: bigint | null } | null {
    const row = this.#get('SELECT data_id FROM obj WHERE partition=? AND oid=? AND tid=?', partition, oid, tid);
    return row === undefined ? null : { dataId: intOrNull(col(row, 0)) };
  }

  protected insertTemporaryObject({ partition, oid, tid, dataId, valueTid }: ObjRow): void {
    this.#run('INSERT INTO tobj VALUES (?,?,?,?,?)', partition, oid, tid, dataId, valueTid);
  }

  protected insertObject({ partition, oid, tid, dataId, valueTid }: ObjRow): void {
    try {
      this.#run('INSERT INTO obj VALUES (?,?,?,?,?)', partition, oid, tid, dataId, valueTid);
    } catch (e) {
      // An interrupted replication may have written this record already.
      if (!isConstraint(e, 'SQLITE_CONSTRAINT_PRIMARYKEY')) throw e;
      const row = this.#get('SELECT data_id, value_tid FROM obj WHERE partition=? AND oid=? AND tid=?', partition, oid, tid);
      assert(row !== undefined);
      if (intOrNull(col(row, 0)) !== dataId || intOrNull(col(row, 1)) !== valueTid) {
        throw new DatabaseFailure(`object ${oid} at ${tid} already stored with different data`);
      }
    }
  }

  protected insertTransaction(row: TransRow, temporary: boolean): void {
    this.#run(`INSERT INTO ${temporary ? 'ttrans' : 'trans'} VALUES (?,?,?,?,?,?,?,?)`, row.partition, row.tid,
      bool(row.packed), row.oids, row.user, row.description, row.ext, row.ttid);
  }

  protected insertPackOrder({ tid, approved, partial, oids, packTid }: PackRow): void {
    this.#run('INSERT INTO pack VALUES (?,?,?,?,?)', tid, approved === null ? null : bool(approved), bool(partial),
      oids, packTid);
  }

  protected signPackRows(approved: readonly bigint[], rejected: readonly bigint[]): bigint[] {
    const sign = (ids: readonly bigint[], value: number) =>
      ids.filter((id) => this.#run('UPDATE pack SET approved=? WHERE tid=?', value, id) > 0);
    return [...sign(approved, 1), ...sign(rejected, 0)];
  }

  protected setTemporaryTid(ttid: bigint, tid: bigint): void {
    this.#run('UPDATE ttrans SET tid=? WHERE ttid=?', tid, ttid);
  }

  protected approvePackOrder(id: bigint): void {
    this.#run('UPDATE pack SET approved=1 WHERE tid=?', id);
  }

  protected moveTransaction(ttid: bigint, tid: bigint): void {
    const moved = this.#run('INSERT INTO trans SELECT * FROM ttrans WHERE tid=?', tid);
    if (moved > 0 && ttid !== tid) this.#run('UPDATE pack SET tid=? WHERE tid=?', tid, ttid);
    this.#run('DELETE FROM ttrans WHERE tid=?', tid);
  }

  protected moveObjects(ttid: bigint, tid: bigint): bigint[] {
    const dataIds = this.#dataIds('SELECT data_id FROM tobj WHERE tid=?', ttid);
    this.#run('INSERT INTO obj SELECT partition, oid, ?, data_id, value_tid FROM tobj WHERE tid=?', tid, ttid);
    this.#run('DELETE FROM tobj WHERE tid=?', ttid);
    return dataIds;
  }

  protected deleteTemporary(ttid: bigint): void {
    this.#run('DELETE FROM tobj WHERE tid=?', ttid);
    // Before unlock, the pack order of a transaction is keyed by its TTID.
    this.#run('DELETE FROM pack WHERE tid IN (SELECT ttid FROM ttrans WHERE ttid=?)', ttid);
    this.#run('DELETE FROM ttrans WHERE ttid=?', ttid);
  }

  protected unfinishedTransactions(): { ttid: bigint; tid: bigint | null }[] {
    return this.#all('SELECT ttid, tid FROM ttrans').map((row) => ({ ttid: int(col(row, 0)), tid: intOrNull(col(row, 1)) }));
  }

  protected temporaryObjectTtids(): bigint[] {
    return this.#column('SELECT DISTINCT tid FROM tobj').map(int);
  }

  protected unfinishedDataIds(): bigint[] {
    return this.#dataIds('SELECT data_id FROM tobj');
  }

  protected dropTemporary(partitions: readonly number[] | null): void {
    if (partitions === null) {
      this.#run('DELETE FROM tobj');
      this.#run('DELETE FROM pack WHERE tid IN (SELECT ttid FROM ttrans)');
      this.#run('DELETE FROM ttrans');
      return;
    }
    const list = JSON.stringify(partitions);
    // Pack orders of unfinished transactions are keyed by their TTIDs.
    const where = ' WHERE partition IN (SELECT value FROM json_each(?))';
    this.#run('DELETE FROM tobj' + where, list);
    this.#run(`DELETE FROM pack WHERE tid IN (SELECT ttid FROM ttrans${where})`, list);
    this.#run('DELETE FROM ttrans' + where, list);
  }

  protected finalTid(partition: number, ttid: bigint): bigint | null {
    // tid >= ttid lets SQLite use the primary key.
    return intOrNull(this.#value('SELECT tid FROM trans WHERE partition=? AND tid>=? AND ttid=? LIMIT 1',
      partition, ttid, ttid) ?? null);
  }

  protected packOrdersFrom(minId: bigint): PackRow[] {
    return this.#all('SELECT tid, approved, partial, oids, pack_tid FROM pack WHERE tid>=? ORDER BY tid', minId)
      .map((row) => packRowOf(row, 0));
  }

  // --- Reads -------------------------------------------------------------------------------------

  protected readObject(partition: number, oid: bigint, at: bigint | null, before: bigint | null): ObjectRead | null {
    let row: Row | undefined;
    if (at !== null) row = this.#get(OBJECT_SELECT + ' AND tid=?', partition, oid, at);
    else if (before !== null) row = this.#get(OBJECT_SELECT + ' AND tid<? ORDER BY tid DESC LIMIT 1', partition, oid, before);
    else row = this.#get(OBJECT_SELECT + ' ORDER BY tid DESC LIMIT 1', partition, oid);
    return row === undefined ? null : objectReadOf(row);
  }

  protected nextSerial(partition: number, oid: bigint, tid: bigint): bigint | null {
    return intOrNull(this.#value('SELECT tid FROM obj WHERE partition=? AND oid=? AND tid>? ORDER BY tid LIMIT 1',
      partition, oid, tid) ?? null);
  }

  protected lastSerial(partition: number, oid: bigint): bigint | null {
    return intOrNull(this.#value('SELECT tid FROM obj WHERE partition=? AND oid=? ORDER BY tid DESC LIMIT 1',
      partition, oid) ?? null);
  }

  protected objectHistory(partition: number, oid: bigint, offset: number, length: number): { tid: bigint; size: number }[] {
    return this.#all('SELECT tid, LENGTH(value) FROM obj LEFT JOIN data ON obj.data_id = data.id'
      + ' WHERE partition=? AND oid=? ORDER BY tid DESC LIMIT ?,?', partition, oid, offset, length)
      .map((row) => ({ tid: int(col(row, 0)), size: Number(intOrNull(col(row, 1)) ?? 0n) }));
  }

  protected readTransaction(partition: number, tid: bigint): TransRead | null {
    const row = this.#get('SELECT trans.*, pack.* FROM trans LEFT JOIN pack USING (tid)'
      + ' WHERE partition=? AND tid=?', partition, tid);
    if (row === undefined) return null;
    const transColumns = 8;
    return { row: transRowOf(row, 0), pack: col(row, transColumns) === null ? null : packRowOf(row, transColumns) };
  }

  protected tidList(offset: number, length: number, partitions: readonly number[]): bigint[] {
    return this.#column('SELECT tid FROM trans WHERE partition IN (SELECT value FROM json_each(?))'
      + ' ORDER BY tid DESC LIMIT ?,?', JSON.stringify(partitions), offset, length).map(int);
  }

  protected transTidsFrom(partition: number, minTid: bigint, maxTid: bigint, length: number | null): bigint[] {
    return this.#column('SELECT tid FROM trans WHERE partition=? AND ?<=tid AND tid<=? ORDER BY tid LIMIT ?',
      partition, minTid, maxTid, length ?? NO_LIMIT).map(int);
  }

  protected objectKeysFrom(
    partition: number, minTid: bigint, minOid: bigint, maxTid: bigint, length: number | null,
  ): ObjectKey[] {
    if (maxTid < minTid) return [];
    const limit = length ?? NO_LIMIT;
    // Two queries rather than one with OR, so that both follow the (partition, tid, oid) index.
    const keys = this.#all('SELECT tid, oid FROM obj WHERE partition=? AND tid=? AND oid>=? ORDER BY oid LIMIT ?',
      partition, minTid, minOid, limit);
    const left = length === null ? NO_LIMIT : length - keys.length;
    if (left !== 0) {
      keys.push(...this.#all('SELECT tid, oid FROM obj WHERE partition=? AND ?<tid AND tid<=?'
        + ' ORDER BY tid, oid LIMIT ?', partition, minTid, maxTid, left));
    }
    return keys.map((row) => ({ tid: int(col(row, 0)), oid: int(col(row, 1)) }));
  }

  protected override transRecordsFrom(partition: number, minTid: bigint, maxTid: bigint, length: number): { tid: bigint; read: TransRead }[] {
    const transColumns = 8;
    return this.#all('SELECT trans.*, pack.* FROM trans LEFT JOIN pack USING (tid)'
      + ' WHERE partition=? AND ?<=tid AND tid<=? ORDER BY tid LIMIT ?', partition, minTid, maxTid, length)
      .map((row) => {
        const trans = transRowOf(row, 0);
        return { tid: int(col(row, 1)), read: { row: trans, pack: col(row, transColumns) === null ? null : packRowOf(row, transColumns) } };
      });
  }

  protected override objectRecordsFrom(
    partition: number, minTid: bigint, minOid: bigint, maxTid: bigint, length: number,
  ): { oid: bigint; read: ObjectRead }[] {
    if (maxTid < minTid) return [];
    // As objectKeysFrom: two queries, each following the (partition, tid, oid) index.
    const select = 'SELECT tid, compression, data.hash, value, value_tid, oid FROM obj LEFT JOIN data ON obj.data_id = data.id';
    const rows = this.#all(`${select} WHERE partition=? AND tid=? AND oid>=? ORDER BY oid LIMIT ?`,
      partition, minTid, minOid, length);
    if (rows.length < length) {
      rows.push(...this.#all(`${select} WHERE partition=? AND ?<tid AND tid<=? ORDER BY tid, oid LIMIT ?`,
        partition, minTid, maxTid, length - rows.length));
    }
    return rows.map((row) => ({ oid: int(col(row, 5)), read: objectReadOf(row) }));
  }

  protected latestRecordsFrom(partition: number, minOid: bigint, tid: bigint, length: number): { oid: bigint; deleted: boolean }[] {
    return this.#all('SELECT oid, data_id FROM obj JOIN ('
      + 'SELECT partition, oid, MAX(tid) AS tid FROM obj WHERE partition=? AND oid>=? AND tid<=?'
      + ' GROUP BY oid ORDER BY oid LIMIT ?) AS t USING (partition, oid, tid) ORDER BY oid',
    partition, minOid, tid, length).map((row) => ({ oid: int(col(row, 0)), deleted: col(row, 1) === null }));
  }

  protected serialsUpTo(partition: number, oid: bigint, tid: bigint, limit: number): bigint[] {
    return this.#column('SELECT tid FROM obj WHERE partition=? AND oid=? AND tid<=? ORDER BY tid DESC LIMIT ?',
      partition, oid, tid, limit).map(int);
  }

  protected recordsAfter(partition: number, oid: bigint, tid: bigint): { tid: bigint; valueTid: bigint | null }[] {
    return this.#all('SELECT tid, value_tid FROM obj WHERE partition=? AND oid=? AND tid>? ORDER BY tid',
      partition, oid, tid).map((row) => ({ tid: int(col(row, 0)), valueTid: intOrNull(col(row, 1)) }));
  }

  // --- Deletions ---------------------------------------------------------------------------------

  protected deleteTransactionRow(partition: number, tid: bigint): void {
    this.#run('DELETE FROM pack WHERE tid=?', tid);
    this.#run('DELETE FROM trans WHERE partition=? AND tid=?', partition, tid);
  }

  protected deleteObjectRows(partition: number, oid: bigint, serial: bigint | null): bigint[] {
    const where = ' FROM obj WHERE partition=? AND oid=?' + (serial === null ? '' : ' AND tid=?');
    const params = serial === null ? [partition, oid] : [partition, oid, serial];
    const dataIds = this.#dataIds('SELECT DISTINCT data_id' + where, ...params);
    this.#run('DELETE' + where, ...params);
    return dataIds;
  }

  protected deleteAfter(partition: number, minTid: bigint): bigint[] {
    const where = ' WHERE partition=? AND tid>?';
    this.#run(`DELETE FROM pack WHERE tid IN (SELECT tid FROM trans${where})`, partition, minTid);
    this.#run('DELETE FROM trans' + where, partition, minTid);
    const dataIds = this.#dataIds('SELECT DISTINCT data_id FROM obj' + where, partition, minTid);
    this.#run('DELETE FROM obj' + where, partition, minTid);
    return dataIds;
  }

  protected deleteFirstObjects(partition: number, limit: number): { count: number; dataIds: bigint[] } {
    const rows = this.#all('SELECT oid, tid, data_id FROM obj WHERE partition=? ORDER BY tid, oid LIMIT ?', partition, limit);
    for (const row of rows) {
      this.#run('DELETE FROM obj WHERE partition=? AND oid=? AND tid=?', partition, col(row, 0), col(row, 1));
    }
    return { count: rows.length, dataIds: rows.map((row) => col(row, 2)).filter((id) => id !== null).map(int) };
  }

  protected deletePartitionTransactions(partition: number): void {
    this.#run('DELETE FROM pack WHERE tid IN (SELECT tid FROM trans WHERE partition=?)', partition);
    this.#run('DELETE FROM trans WHERE partition=?', partition);
  }

  protected packCandidates(partition: number, packTid: bigint, minOid: bigint, limit: number): PackCandidate[] {
    return this.#all('SELECT oid, COUNT(*), MAX(tid) FROM obj WHERE partition=? AND tid<=? AND oid>=?'
      + ' GROUP BY oid ORDER BY oid LIMIT ?', partition, packTid, minOid, limit)
      .map((row) => ({ oid: int(col(row, 0)), count: num(col(row, 1)), maxTid: int(col(row, 2)) }));
  }

  protected packCandidate(partition: number, oid: bigint, packTid: bigint): PackCandidate | null {
    const row = this.#get('SELECT COUNT(*), MAX(tid) FROM obj WHERE partition=? AND oid=? AND tid<=?',
      partition, oid, packTid);
    assert(row !== undefined);
    const count = num(col(row, 0));
    return count === 0 ? null : { oid, count, maxTid: int(col(row, 1)) };
  }

  protected deleteObjectsBefore(partition: number, oid: bigint, beforeTid: bigint): bigint[] {
    const where = ' FROM obj WHERE partition=? AND oid=? AND tid<?';
    const dataIds = this.#dataIds('SELECT DISTINCT data_id' + where, partition, oid, beforeTid);
    this.#run('DELETE' + where, partition, oid, beforeTid);
    return dataIds;
  }
}
