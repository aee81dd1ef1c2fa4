// neosimple, the README's first command: starts a whole cluster, reports it RUNNING with the
// addresses to use, stops every process on Ctrl-C, and reopens the same cluster next time.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, describe, it } from 'node:test';
import { openStorage } from '../../src/index.js';
import { PROJECT_ROOT } from '../helpers/spec.js';

const NEOSIMPLE = resolve(PROJECT_ROOT, 'dist', 'src', 'cli', 'neosimple.js');
const BOUND_MS = 60_000;

interface Run {
  output: string;
  exitCode: number | null;
}

/** Runs neosimple until it says RUNNING, calls `whileRunning`, then sends SIGINT. */
async function runNeosimple(dataDir: string, whileRunning: (output: string) => Promise<void>): Promise<Run> {
  const child = spawn(process.execPath, [NEOSIMPLE, '--temp_dir', dataDir, '--partitions', '3'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  const guard = setTimeout(() => child.kill('SIGKILL'), BOUND_MS);
  try {
    while (!/Press Ctrl-C to stop/.test(output)) {
      if (child.exitCode !== null) throw new Error(`neosimple exited early:\n${output}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    await whileRunning(output);
  } finally {
    child.kill('SIGINT');
  }
  const exitCode = await exited;
  clearTimeout(guard);
  return { output, exitCode };
}

describe('neosimple', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'neots-neosimple-'));
  after(() => rmSync(dataDir, { recursive: true, force: true }));
  let oid: Buffer;
  let cluster: string;

  it('starts a RUNNING cluster that a client can use, and stops cleanly on Ctrl-C', async () => {
    const run = await runNeosimple(dataDir, async (output) => {
      const uri = /openStorage\('([^']+)'\)/.exec(output)![1]!;
      cluster = /cluster '([^']+)'/.exec(output)![1]!;
      const storage = await openStorage(uri);
      try {
        oid = await storage.newOid();
        const txn = { user: '', description: 'neosimple test', extension: {} };
        await storage.tpcBegin(txn);
        await storage.store(oid, null, Buffer.from('kept'), txn);
        await storage.tpcVote(txn);
        await storage.tpcFinish(txn);
      } finally {
        await storage.close();
      }
    });
    assert.match(run.output, /is RUNNING: 1 master, 2 storages \(SQLite\), replicas 1/);
    assert.match(run.output, /master: 127\.0\.0\.1:\d+/);
    assert.match(run.output, /admin: {2}127\.0\.0\.1:\d+/);
    assert.match(run.output, /stopped\./);
    assert.equal(run.exitCode, 0);
  });

  it('reopens the same cluster and its data on the next start', async () => {
    const run = await runNeosimple(dataDir, async (output) => {
      assert.match(output, new RegExp(`cluster '${cluster}'`));
      const uri = /openStorage\('([^']+)'\)/.exec(output)![1]!;
      const storage = await openStorage(uri);
      try {
        assert.equal((await storage.load(oid)).data.toString(), 'kept');
      } finally {
        await storage.close();
      }
    });
    assert.equal(run.exitCode, 0);
  });
});
