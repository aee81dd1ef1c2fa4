// The limits NEO/TS runs against, measured in the same run as the figures they bound: loopback
// round trips between two Node processes, fsync in the data folder, and SQLite commits with the
// storage node's own durability settings (WAL, synchronous=FULL), and SQLite's raw insert rate
// of 1 KiB rows with those settings.

import { fork } from 'node:child_process';
import { closeSync, fdatasyncSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { Connection } from '../src/net/connection.js';
import { tcpTransport } from '../src/net/tcp.js';
import { createLogger } from '../src/core/realenv.js';

export interface Baselines {
  roundTripsPerSec: number;
  roundTripsPerSec16: number;
  fsyncPerSec: number;
  sqliteCommitsPerSec: number;
  /** 1 KiB rows inserted per second, 1,000 per transaction, with the same durability. */
  sqliteInsertsPerSec: number;
}

function elapsedMs(start: bigint): number {
  return Number(process.hrtime.bigint() - start) / 1e6;
}

/** Ping/Pong between this process and a child, over one connection. */
async function roundTrips(durationMs: number, inFlight: number): Promise<number> {
  const child = fork(fileURLToPath(new URL('./pong-server.js', import.meta.url)), [], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  try {
    const port = await new Promise<number>((resolve) => child.once('message', (m) => resolve(m as number)));
    const logger = createLogger({ level: 'error' });
    const connection = new Connection({
      stream: tcpTransport().connect({ host: '127.0.0.1', port }),
      handler: {},
      logger,
      label: 'pong',
    });
    await connection.request('Ping', []);
    let count = 0;
    const start = process.hrtime.bigint();
    const worker = async () => {
      while (elapsedMs(start) < durationMs) {
        await connection.request('Ping', []);
        count++;
      }
    };
    await Promise.all(Array.from({ length: inFlight }, worker));
    const rate = count / (elapsedMs(start) / 1000);
    connection.close();
    return rate;
  } finally {
    child.kill();
  }
}

function fsyncRate(dir: string, durationMs: number): number {
  const fd = openSync(join(dir, 'fsync.bin'), 'w');
  const block = Buffer.alloc(100, 1);
  let count = 0;
  const start = process.hrtime.bigint();
  while (elapsedMs(start) < durationMs) {
    writeSync(fd, block);
    fdatasyncSync(fd);
    count++;
  }
  closeSync(fd);
  return count / (elapsedMs(start) / 1000);
}

/** A table in a new database with the storage node's durability settings, and its insert. */
function benchTable(dir: string, file: string): { db: Database.Database; insert: Database.Statement } {
  const db = new Database(join(dir, file));
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, value BLOB)');
  return { db, insert: db.prepare('INSERT INTO t (value) VALUES (?)') };
}

function sqliteCommitRate(dir: string, durationMs: number): number {
  const { db, insert } = benchTable(dir, 'commits.sqlite');
  const value = Buffer.alloc(100, 2);
  let count = 0;
  const start = process.hrtime.bigint();
  while (elapsedMs(start) < durationMs) {
    db.exec('BEGIN');
    insert.run(value);
    db.exec('COMMIT');
    count++;
  }
  db.close();
  return count / (elapsedMs(start) / 1000);
}

function sqliteInsertRate(dir: string, durationMs: number): number {
  const { db, insert } = benchTable(dir, 'inserts.sqlite');
  const value = Buffer.alloc(1024, 3);
  const rowsPerTransaction = 1000;
  let count = 0;
  const start = process.hrtime.bigint();
  while (elapsedMs(start) < durationMs) {
    db.exec('BEGIN');
    for (let i = 0; i < rowsPerTransaction; i++) insert.run(value);
    db.exec('COMMIT');
    count += rowsPerTransaction;
  }
  db.close();
  return count / (elapsedMs(start) / 1000);
}

export async function measureBaselines(durationMs: number, dataDir?: string): Promise<Baselines> {
  const dir = dataDir ?? mkdtempSync(join(tmpdir(), 'neots-bench-'));
  try {
    return {
      roundTripsPerSec: await roundTrips(durationMs, 1),
      roundTripsPerSec16: await roundTrips(durationMs, 16),
      fsyncPerSec: fsyncRate(dir, durationMs),
      sqliteCommitsPerSec: sqliteCommitRate(dir, durationMs),
      sqliteInsertsPerSec: sqliteInsertRate(dir, durationMs),
    };
  } finally {
    if (dataDir === undefined) rmSync(dir, { recursive: true, force: true });
  }
}
