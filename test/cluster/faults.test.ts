// Faults with real processes: 2 masters (a primary and a spare), 3 SQLite storages (replicas 1, 6
// partitions) and an admin run with the transport's cut hook on (NEOTS_FAULTS), while 3 clients
// move money between 20 accounts and the test kills -9 storages and the primary master and
// restarts them (a restarted master comes back as a secondary). Afterwards: every transaction whose
// tpcFinish returned is there with its exact data, the total of the balances is the same in every
// snapshot, every cell is UP_TO_DATE again and the replicas of each partition hold the same rows.
//
// One seed drives everything the test decides (accounts, amounts, kill times, victims, the cut
// generators' seeds); NEOTS_FAULT_SEED=N replays a run's decisions (the timing of real processes,
// and so what the cuts hit, still varies). The verdict never depends on timing: waits are only for
// readiness, each bounded.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { ConflictError, openStorage } from '../../src/index.js';
import type { NeoStorage, TransactionMeta } from '../../src/index.js';
import { formatAddress } from '../../src/core/address.js';
import type { Address } from '../../src/core/env.js';
import { createLogger } from '../../src/core/realenv.js';
import { createRealEnv } from '../../src/cli/env.js';
import { AdminClient } from '../../src/ctl/client.js';
import { FAULTS_VARIABLE, FaultInjector, xorshift32 } from '../../src/net/faults.js';
import { tcpTransport } from '../../src/net/tcp.js';
import { CellStates, NodeStates, NodeTypes } from '../../src/protocol/enums.js';
import { nidToString, p64, tidToHex, u64 } from '../../src/protocol/ids.js';
import { TestCluster, freePorts, waitClusterState, bounded as boundedBy, primaryMasterAddress } from '../helpers/cluster.js';
import { PROJECT_ROOT } from '../helpers/spec.js';
import type { NodeProcess } from '../helpers/cluster.js';
import { recordingLogger } from '../helpers/logger.js';

const SEED = process.env['NEOTS_FAULT_SEED'] === undefined ? 0xfa0175 : Number(process.env['NEOTS_FAULT_SEED']);
const PARTITIONS = 6;
const REPLICAS = 1;
const STORAGES = 3;
/** Every master is given every master's address; the first started becomes the primary. */
const MASTERS = 2;
const ACCOUNTS = 20;
const INITIAL_BALANCE = 1000;
const CLIENTS = 3;
/** Probability that a chunk received by a daemon cuts its connection. */
const DAEMON_CUT_PROBABILITY = 0.001;
/** The same for the clients of the test (they receive fewer, larger chunks). */
const CLIENT_CUT_PROBABILITY = 0.002;
/** Kill -9 and restart rounds during the workload. */
const KILL_ROUNDS = 4;
/** Probability that a round kills the primary master rather than a storage (one round always does). */
const MASTER_KILL_PROBABILITY = 0.3;
/** Each client stops after this many transfers, or when the kill rounds are over. */
const MAX_TRANSFERS_PER_CLIENT = 2000;
/** Attempts of one transfer before the client gives it up (conflicts, lost connections). */
const MAX_ATTEMPTS = 30;
/** A client operation still running after this long is a hang: the test fails. */
const OPERATION_BOUND_MS = 30_000;
/** The whole workload (with its kill rounds) must end within this. */
const WORKLOAD_BOUND_MS = 90_000;
/** How long the cells may take to be all UP_TO_DATE again after a restart or the workload. */
const CONVERGENCE_BOUND_MS = 30_000;
/** Snapshots whose balances are summed, besides the last one. */
const SNAPSHOTS = 12;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

const bounded = <T>(what: string, promise: Promise<T>, ms = OPERATION_BOUND_MS): Promise<T> =>
  boundedBy(`${what} (seed ${SEED})`, promise, ms);

const balanceData = (balance: number): Buffer => Buffer.from(String(balance));
function balanceOf(data: Buffer): number {
  const text = data.toString();
  assert.match(text, /^-?\d+$/, `account data ${JSON.stringify(text)}`);
  return Number(text);
}
const afterTid = (tid: Buffer): Buffer => p64(u64(tid) + 1n);

/** A transaction whose tpcFinish returned: the balances it wrote. */
interface Committed {
  tid: Buffer;
  client: number;
  /** Per account written: the serial and balance the transfer read. */
  reads: Map<number, { serial: Buffer; balance: number }>;
  writes: Map<number, number>;
}

class FaultyCluster {
  readonly cluster = new TestCluster();
  readonly random = xorshift32(SEED);
  masterAddresses: Address[] = [];
  readonly masters: NodeProcess[] = [];
  admin!: NodeProcess;
  readonly storages: NodeProcess[] = [];
  /** What the clients of the test logged (info and above), for the post-mortem. */
  readonly clientLogs: string[] = [];
  readonly clientFaults: FaultInjector[] = [];
  /** The committed transfers, one line each, for the post-mortem. */
  readonly history: string[] = [];
  /** Distinct cut seeds for every daemon started, derived from the test's seed. */
  #daemonSeeds = 0;

  /** Starts a daemon with the cut hook on: the child inherits NEOTS_FAULTS at spawn. */
  #withFaults(start: () => Promise<NodeProcess>): Promise<NodeProcess> {
    const saved = process.env[FAULTS_VARIABLE];
    process.env[FAULTS_VARIABLE] = `cut=${DAEMON_CUT_PROBABILITY},seed=${SEED + 1000 + this.#daemonSeeds++}`;
    try {
      return start(); // spawns synchronously
    } finally {
      if (saved === undefined) delete process.env[FAULTS_VARIABLE];
      else process.env[FAULTS_VARIABLE] = saved;
    }
  }

  async start(): Promise<void> {
    this.masterAddresses = await freePorts(MASTERS);
    for (let i = 0; i < MASTERS; i++) this.masters.push(await this.startMaster(i));
    for (let i = 0; i < STORAGES; i++) this.storages.push(await this.startStorage(i));
    this.admin = await this.#withFaults(() => this.cluster.startAdmin(this.masterAddresses));
    await waitClusterState(this.admin.address, 'RUNNING');
    await waitMastersRunning(this.admin.address, 'at start');
  }

  startMaster(index: number): Promise<NodeProcess> {
    return this.#withFaults(() => this.cluster.startMaster({
      name: `master${index}`, bind: this.masterAddresses[index]!, masters: this.masterAddresses,
      partitions: PARTITIONS, replicas: REPLICAS, autostart: STORAGES,
    }));
  }

  startStorage(index: number): Promise<NodeProcess> {
    return this.#withFaults(() => this.cluster.startStorage(index, this.masterAddresses));
  }

  async open(client: number): Promise<NeoStorage> {
    // The clients' own transport, with its own cut generator.
    const logger = createLogger({ level: 'info', name: `client${client}`, sink: { write: (line: string) => this.clientLogs.push(line) } });
    const faults = new FaultInjector({ cutProbability: CLIENT_CUT_PROBABILITY, seed: SEED + 2000 + client }, logger);
    this.clientFaults.push(faults);
    const env = createRealEnv({ logger, peerTimeoutMs: 10_000, transport: tcpTransport({ logger, faults }) });
    const uri = `neo://${this.cluster.name}@${this.masterAddresses.map(formatAddress).join(',')}`;
    return bounded('open', openStorage(uri, { env, openTimeoutMs: OPERATION_BOUND_MS }));
  }

  /** Connections the daemons cut so far (killed ones included), from their logs. */
  cuts(): number {
    return this.cluster.nodes.reduce((sum, node) => sum + (node.log().match(/fault injection: cutting/g)?.length ?? 0), 0);
  }
}

/** The partition table as the admin sees it, and the storage nodes' states; null if unreachable. */
async function adminView(admin: Address): Promise<{ rows: [number, string][][]; storages: Map<number, string> } | null> {
  const client = new AdminClient(tcpTransport({ faults: null }), admin, recordingLogger());
  try {
    const pt = await client.ask('AskPartitionList', [0, 0, null]);
    const nodes = await client.ask('AskNodeList', [NodeTypes.STORAGE]);
    if (pt.name !== 'AnswerPartitionList' || nodes.name !== 'AnswerNodeList') return null;
    const [, , rows] = pt.args as [unknown, number, [number, { name: string }][][]];
    const [nodeList] = nodes.args as [[unknown, unknown, number | null, { name: string }, unknown][]];
    return {
      rows: rows.map((row) => row.map(([nid, state]) => [nid, state.name])),
      storages: new Map(nodeList.flatMap(([, , nid, state]) => (nid === null ? [] : [[nid, state.name] as [number, string]]))),
    };
  } catch {
    return null;
  } finally {
    client.close();
  }
}

/** The index of the primary master among ours, as the admin knows it; null if it does not tell. */
async function primaryMaster(admin: Address, masterAddresses: readonly Address[]): Promise<number | null> {
  const address = await primaryMasterAddress(admin);
  const index = address === null ? -1 : masterAddresses.findIndex((known) => formatAddress(known) === formatAddress(address));
  return index < 0 ? null : index;
}

/** Waits until the admin lists every master RUNNING (a restarted one joined the primary). */
async function waitMastersRunning(admin: Address, why: string): Promise<void> {
  const deadline = Date.now() + CONVERGENCE_BOUND_MS;
  let last = 'no answer';
  while (Date.now() < deadline) {
    const client = new AdminClient(tcpTransport({ faults: null }), admin, recordingLogger());
    try {
      const nodes = await client.ask('AskNodeList', [NodeTypes.MASTER]);
      if (nodes.name === 'AnswerNodeList') {
        const [list] = nodes.args as [[unknown, Address | null, number | null, { name: string }, unknown][]];
        const running = list.filter(([, , , state]) => state.name === NodeStates.RUNNING.name).length;
        if (running === MASTERS) return;
        last = JSON.stringify(list.map(([, address, nid, state]) => [address === null ? null : formatAddress(address), nid, state.name]));
      }
    } catch (error) {
      last = (error as Error).message;
    } finally {
      client.close();
    }
    await sleep(100);
  }
  throw new Error(`${why}: masters not all RUNNING after ${CONVERGENCE_BOUND_MS} ms (seed ${SEED}); last list: ${last}`);
}

/** Waits until every cell is UP_TO_DATE and every storage RUNNING; returns the cells' nids. */
async function waitUpToDate(admin: Address, why: string): Promise<number[][]> {
  const deadline = Date.now() + CONVERGENCE_BOUND_MS;
  let last = 'no answer';
  while (Date.now() < deadline) {
    const view = await adminView(admin);
    if (view !== null) {
      const cells = view.rows.flat();
      const running = [...view.storages.values()].filter((state) => state === NodeStates.RUNNING.name).length;
      const upToDate = cells.every(([, state]) => state === CellStates.UP_TO_DATE.name);
      if (upToDate && running === STORAGES && cells.length === PARTITIONS * (REPLICAS + 1)) {
        return view.rows.map((row) => row.map(([nid]) => nid));
      }
      last = JSON.stringify(view.rows) + ' ' + JSON.stringify([...view.storages]);
    }
    await sleep(100);
  }
  throw new Error(`${why}: cells not all UP_TO_DATE after ${CONVERGENCE_BOUND_MS} ms (seed ${SEED}); last view: ${last}`);
}

/** The accounts' creation; retried like any transaction. */
async function createAccounts(storage: NeoStorage): Promise<{ oids: Buffer[]; tid: Buffer }> {
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    const txn: TransactionMeta = { user: 'faults', description: 'accounts', extension: {} };
    try {
      await bounded('tpcBegin', storage.tpcBegin(txn));
      const oids: Buffer[] = [];
      for (let i = 0; i < ACCOUNTS; i++) oids.push(await bounded('newOid', storage.newOid()));
      for (const oid of oids) await bounded('store', storage.store(oid, null, balanceData(INITIAL_BALANCE), txn));
      await bounded('tpcVote', storage.tpcVote(txn));
      return { oids, tid: await bounded('tpcFinish', storage.tpcFinish(txn)) };
    } catch (error) {
      if (/no outcome after/.test((error as Error).message)) throw error;
      await storage.tpcAbort(txn).catch(() => undefined);
    }
  }
  throw new Error(`could not create the accounts in ${MAX_ATTEMPTS} attempts`);
}

interface Outcomes {
  committed: Committed[];
  /** tpcFinish failed: the transaction may or may not have committed. */
  unknown: number;
  conflicts: number;
  otherErrors: Map<string, number>;
  givenUp: number;
}

/** One client's transfers until `stopped()` or its maximum. */
async function transfers(
  storage: NeoStorage,
  client: number,
  oids: Buffer[],
  stopped: () => boolean,
  outcomes: Outcomes,
): Promise<void> {
  const random = xorshift32(SEED + 3000 + client);
  for (let n = 0; n < MAX_TRANSFERS_PER_CLIENT && !stopped(); n++) {
    const from = Math.floor(random() * ACCOUNTS);
    const to = (from + 1 + Math.floor(random() * (ACCOUNTS - 1))) % ACCOUNTS;
    const amount = 1 + Math.floor(random() * 50);
    let done = false;
    for (let attempt = 0; attempt < MAX_ATTEMPTS && !done; attempt++) {
      const txn: TransactionMeta = { user: `client ${client}`, description: `transfer ${n}`, extension: {} };
      let finishing = false;
      try {
        await bounded('tpcBegin', storage.tpcBegin(txn));
        const a = await bounded('load', storage.load(oids[from]!));
        const b = await bounded('load', storage.load(oids[to]!));
        const writes = new Map([[from, balanceOf(a.data) - amount], [to, balanceOf(b.data) + amount]]);
        await bounded('store', storage.store(oids[from]!, a.serial, balanceData(writes.get(from)!), txn));
        await bounded('store', storage.store(oids[to]!, b.serial, balanceData(writes.get(to)!), txn));
        await bounded('tpcVote', storage.tpcVote(txn));
        finishing = true;
        const tid = await bounded('tpcFinish', storage.tpcFinish(txn));
        const reads = new Map([[from, { serial: a.serial, balance: balanceOf(a.data) }], [to, { serial: b.serial, balance: balanceOf(b.data) }]]);
        outcomes.committed.push({ tid, client, reads, writes });
        done = true;
      } catch (error) {
        if (/no outcome after/.test((error as Error).message)) throw error;
        if (finishing) outcomes.unknown++;
        else if (error instanceof ConflictError) outcomes.conflicts++;
        else {
          const key = `${(error as Error).name}: ${(error as Error).message.replace(/[0-9a-f]{16}|\d+/g, 'N')}`;
          outcomes.otherErrors.set(key, (outcomes.otherErrors.get(key) ?? 0) + 1);
        }
        await storage.tpcAbort(txn).catch(() => undefined);
        await sleep(5 + Math.floor(random() * 45));
      }
    }
    if (!done) outcomes.givenUp++;
  }
}

type Victim = { kind: 'storage'; index: number } | { kind: 'primary master' };

/** The victims of the kill rounds, drawn from the seed: one round at least kills the primary master. */
function drawVictims(random: () => number): Victim[] {
  const masterRound = Math.floor(random() * KILL_ROUNDS);
  return Array.from({ length: KILL_ROUNDS }, (_, round): Victim => {
    const master = random() < MASTER_KILL_PROBABILITY;
    const index = Math.floor(random() * STORAGES);
    return round === masterRound || master ? { kind: 'primary master' } : { kind: 'storage', index };
  });
}

/** Kills -9 the primary master (found through the admin); returns a restart of the same master. */
async function killPrimary(faulty: FaultyCluster, round: number): Promise<() => Promise<void>> {
  const deadline = Date.now() + CONVERGENCE_BOUND_MS;
  let index: number | null = null;
  while (index === null && Date.now() < deadline) {
    index = await primaryMaster(faulty.admin.address, faulty.masterAddresses);
    if (index === null) await sleep(100);
  }
  if (index === null) throw new Error(`round ${round}: no primary master known to the admin (seed ${SEED})`);
  const primary = index;
  await faulty.cluster.kill(faulty.masters[primary]!);
  console.log(`# ${new Date().toISOString()} master${primary} (the primary) killed`);
  return async () => {
    faulty.masters[primary] = await faulty.startMaster(primary);
    console.log(`# ${new Date().toISOString()} master${primary} restarted`);
    await waitMastersRunning(faulty.admin.address, `round ${round}, master${primary} restarted`);
  };
}

/** Kills -9 a storage; returns its restart. */
async function killStorage(faulty: FaultyCluster, index: number): Promise<() => Promise<void>> {
  await faulty.cluster.kill(faulty.storages[index]!);
  console.log(`# ${new Date().toISOString()} storage${index} killed`);
  return async () => {
    faulty.storages[index] = await faulty.startStorage(index);
    console.log(`# ${new Date().toISOString()} storage${index} restarted`);
  };
}

/**
 * Kills -9 a storage or the primary master, restarts it after a while, waits for the cells to
 * catch up; a few times.
 */
async function killRounds(faulty: FaultyCluster): Promise<string[]> {
  const story: string[] = [];
  const victims = drawVictims(faulty.random);
  for (const [round, victim] of victims.entries()) {
    const before = 1000 + Math.floor(faulty.random() * 3000);
    const down = 500 + Math.floor(faulty.random() * 2500);
    const name = victim.kind === 'storage' ? `storage${victim.index}` : 'the primary master';
    story.push(`after ${before} ms kill -9 ${name} for ${down} ms`);
    console.log(`# round ${round}: ${story.at(-1)}`);
    await sleep(before);
    const restart = victim.kind === 'storage' ? await killStorage(faulty, victim.index) : await killPrimary(faulty, round);
    await sleep(down);
    await restart();
    await waitUpToDate(faulty.admin.address, `round ${round}, ${name} restarted`);
  }
  return story;
}

interface StorageRows {
  nid: number;
  /** Per partition: its obj and trans rows, one line each, in key order. */
  partitions: Map<number, string[]>;
}

/** Reads a stopped storage's database: every object and transaction row, by partition. */
function readStorageRows(path: string): StorageRows {
  const db = new Database(path, { readonly: true });
  try {
    const nid = Number((db.prepare("SELECT value FROM config WHERE name='nid'").get() as { value: string }).value);
    const partitions = new Map<number, string[]>();
    const add = (partition: number, line: string) => {
      if (!partitions.has(partition)) partitions.set(partition, []);
      partitions.get(partition)!.push(line);
    };
    const objects = db.prepare(
      'SELECT partition, oid, tid, hex(hash) AS hash, compression, value_tid FROM obj LEFT JOIN data ON obj.data_id = data.id'
      + ' ORDER BY partition, oid, tid',
    ).all() as Record<string, unknown>[];
    for (const row of objects) add(Number(row['partition']), `obj ${row['oid']} ${row['tid']} ${row['hash']} ${row['compression']} ${row['value_tid']}`);
    const transactions = db.prepare(
      'SELECT partition, tid, packed, hex(oids) AS oids, hex(user) AS user, hex(description) AS description, hex(ext) AS ext'
      + ' FROM trans ORDER BY partition, tid',
    ).all() as Record<string, unknown>[];
    for (const row of transactions) {
      add(Number(row['partition']), `trans ${row['tid']} ${row['packed']} ${row['oids']} ${row['user']} ${row['description']} ${row['ext']}`);
    }
    return { nid, partitions };
  } finally {
    db.close();
  }
}

/** What the steps of the scenario pass on to the next ones. */
interface Run {
  accounts: { oids: Buffer[]; tid: Buffer };
  outcomes: Outcomes;
  story: string[];
  /** The nids of each partition's cells, once all UP_TO_DATE again. */
  cells: number[][];
}

/** The workload: 3 clients transfer while nodes are killed and restarted, and links cut. */
async function workload(faulty: FaultyCluster): Promise<Omit<Run, 'cells'>> {
  await faulty.start();
  const clients: NeoStorage[] = [];
  for (let client = 0; client < CLIENTS; client++) clients.push(await faulty.open(client));
  const outcomes: Outcomes = { committed: [], unknown: 0, conflicts: 0, otherErrors: new Map(), givenUp: 0 };
  try {
    const accounts = await createAccounts(clients[0]!);
    let stop = false;
    const chaos = killRounds(faulty).finally(() => {
      stop = true;
    });
    const workers = clients.map((storage, client) => transfers(storage, client, accounts.oids, () => stop, outcomes));
    const [story] = await bounded('workload', Promise.all([chaos, Promise.all(workers)]), WORKLOAD_BOUND_MS);
    return { accounts, outcomes, story };
  } finally {
    for (const storage of clients) storage.close();
    const others = [...outcomes.otherErrors].map(([error, count]) => `${count}× ${error}`).join('; ');
    console.log(`# ${outcomes.committed.length} transfers committed, ${outcomes.unknown} with unknown outcome,`
      + ` ${outcomes.conflicts} conflicts, ${outcomes.givenUp} given up, ${faulty.cuts()} connections cut by daemons,`
      + ` ${faulty.clientFaults.reduce((sum, faults) => sum + faults.cuts, 0)} by clients`);
    if (others !== '') console.log(`# other errors: ${others}`);
    for (const { tid, client, reads, writes } of outcomes.committed) {
      const line = [...reads].map(([account, read]) => `account ${account}: ${tidToHex(read.serial)} ${read.balance} -> ${writes.get(account)}`);
      faulty.history.push(`${tidToHex(tid)} client ${client}: ${line.join(', ')}`);
    }
  }
}

/** Every transaction whose tpcFinish returned: its exact balances, with its tid as serial. */
async function checkCommitted(reader: NeoStorage, run: Run): Promise<void> {
  for (const { tid, client, writes } of run.outcomes.committed) {
    for (const [account, balance] of writes) {
      const loaded = await bounded('loadBefore', reader.loadBefore(run.accounts.oids[account]!, afterTid(tid)));
      const where = `account ${account} at ${tidToHex(tid)} (client ${client}, seed ${SEED})`;
      assert.ok(loaded !== null, where);
      assert.ok(loaded.serial.equals(tid), `serial of ${where}`);
      assert.equal(balanceOf(loaded.data), balance, where);
    }
  }
}

/** No lost update (each transfer read the revision just before its own), and a constant total. */
async function checkIsolation(reader: NeoStorage, run: Run): Promise<void> {
  const { accounts, outcomes, cells } = run;
  for (const { tid, client, reads } of outcomes.committed) {
    for (const [account, read] of reads) {
      const previous = await bounded('loadBefore', reader.loadBefore(accounts.oids[account]!, tid));
      const partition = Number(u64(accounts.oids[account]!) % BigInt(PARTITIONS));
      const where = `transfer ${tidToHex(tid)} of client ${client} read account ${account} (partition ${partition},`
        + ` cells on nodes ${cells[partition]!.map((nid) => nidToString(nid)).join(' ')}) at ${tidToHex(read.serial)}`;
      assert.ok(previous !== null, where);
      assert.equal(tidToHex(previous.serial), tidToHex(read.serial), `${where}, but the revision before it is another: a lost update (seed ${SEED})`);
      assert.equal(balanceOf(previous.data), read.balance, where);
    }
  }
  const total = ACCOUNTS * INITIAL_BALANCE;
  const tids = outcomes.committed.map(({ tid }) => tid).sort(Buffer.compare);
  const snapshots = [accounts.tid, ...Array.from({ length: SNAPSHOTS }, (_, i) => tids[Math.floor((i * tids.length) / SNAPSHOTS)]!), tids.at(-1)!];
  for (const tid of snapshots) {
    let sum = 0;
    for (const oid of accounts.oids) sum += balanceOf((await bounded('loadBefore', reader.loadBefore(oid, afterTid(tid))))!.data);
    assert.equal(sum, total, `total at ${tidToHex(tid)} (seed ${SEED})`);
  }
  let sum = 0;
  for (const oid of accounts.oids) sum += balanceOf((await bounded('load', reader.load(oid))).data);
  assert.equal(sum, total, `total now (seed ${SEED})`);
}

/**
 * Stops everything cleanly (the storages commit what they deferred), then compares the rows of
 * each partition in the databases of its cells.
 */
/** Check rounds: a check that a cut interrupts is asked again, a bounded number of times. */
const CHECK_ROUNDS = 5;
const CHECK_WAIT_MS = 15_000;

/**
 * `neoctl check` of every partition; each one must be reported identical by its checking storage,
 * and no storage may report a difference.
 */
async function neoctlCheck(faulty: FaultyCluster): Promise<void> {
  const neoctl = join(PROJECT_ROOT, 'dist', 'src', 'cli', 'neoctl.js');
  const logs = () => faulty.cluster.nodes.map((node) => node.log()).join('\n');
  const identical = () => new Set([...logs().matchAll(/partition (\d+): replicas identical/g)].map((m) => Number(m[1])));
  for (let round = 0; round < CHECK_ROUNDS && identical().size < PARTITIONS; round++) {
    const missing = Array.from({ length: PARTITIONS }, (_, p) => p).filter((p) => !identical().has(p));
    try {
      await promisify(execFile)(process.execPath, [neoctl, '-a', formatAddress(faulty.admin.address), 'check', ...missing.map((p) => `${p}:`)], { timeout: 10_000 });
    } catch {
      continue; // the connection to the admin was cut: ask again
    }
    const deadline = Date.now() + CHECK_WAIT_MS;
    while (Date.now() < deadline && missing.some((p) => !identical().has(p))) await new Promise((r) => setTimeout(r, 100));
  }
  assert.deepEqual([...identical()].sort((a, b) => a - b), Array.from({ length: PARTITIONS }, (_, p) => p),
    `every partition checked identical (seed ${SEED})`);
  assert.doesNotMatch(logs(), /partition \d+ differs in/, `no replica differs (seed ${SEED})`);
}

async function checkReplicas(faulty: FaultyCluster, cells: number[][]): Promise<void> {
  const nodes = [faulty.admin, ...faulty.masters, ...faulty.storages];
  for (const node of nodes) node.child.kill('SIGTERM');
  await bounded('clean stop', Promise.all(nodes.map((node) => node.exited)));
  const databases = Array.from({ length: STORAGES }, (_, i) => readStorageRows(join(faulty.cluster.dir, `storage${i}.sqlite`)));
  const byNid = new Map(databases.map((rows) => [rows.nid, rows]));
  for (const [partition, nids] of cells.entries()) {
    const [first, ...others] = nids.map((nid) => byNid.get(nid)!.partitions.get(partition) ?? []);
    assert.ok(first!.length > 0, `partition ${partition} holds rows`);
    for (const [i, rows] of others.entries()) {
      assert.deepEqual(rows, first, `partition ${partition}: node ${nidToString(nids[i + 1]!)} has the rows of node ${nidToString(nids[0]!)} (seed ${SEED})`);
    }
  }
}

describe(`faults: kill -9 and cut connections during transfers (seed ${SEED})`, () => {
  const faulty = new FaultyCluster();
  let run: Run | null = null;
  after(() => faulty.cluster.destroy());

  /** Keeps the nodes' logs of a failed run (the cluster's folder goes with destroy()). */
  const keepLogs = () => {
    const dir = join(tmpdir(), `neots-faults-${SEED}-${process.pid}`);
    mkdirSync(dir, { recursive: true });
    for (const [i, node] of faulty.cluster.nodes.entries()) writeFileSync(join(dir, `${i}-${node.name}.log`), node.log());
    writeFileSync(join(dir, 'clients.log'), faulty.clientLogs.join(''));
    writeFileSync(join(dir, 'committed.txt'), faulty.history.join('\n'));
    console.log(`# the nodes' logs and the committed transfers are in ${dir}`);
  };

  /** Runs a step; if it fails, keeps the logs. */
  const step = (body: (run: Run) => Promise<void>) => async () => {
    assert.ok(run !== null, 'the workload ran');
    try {
      await body(run);
    } catch (error) {
      keepLogs();
      throw error;
    }
  };

  it('transfers commit while storages and the primary master are killed -9 and restarted and connections are cut; cells catch up', async () => {
    console.log(`# seed ${SEED} (replay the test's decisions: NEOTS_FAULT_SEED=${SEED})`);
    let done;
    try {
      done = await workload(faulty);
    } catch (error) {
      keepLogs();
      throw error;
    }
    run = { ...done, cells: [] };
    await step(async (current) => {
      assert.ok(current.outcomes.committed.length > 0, 'some transfers committed');
      current.cells = await waitUpToDate(faulty.admin.address, 'after the workload');
      console.log(`# ${current.story.join('; ')}`);
    })();
  });

  it('every transfer whose tpcFinish returned is there with its exact balances', step(async (current) => {
    const reader = await faulty.open(CLIENTS);
    try {
      await checkCommitted(reader, current);
    } finally {
      reader.close();
    }
  }));

  it('no lost update, and the total is the same in every snapshot', step(async (current) => {
    const reader = await faulty.open(CLIENTS + 1);
    try {
      await checkIsolation(reader, current);
    } finally {
      reader.close();
    }
  }));

  it('neoctl check finds the replicas of every partition identical', step(() => neoctlCheck(faulty)));

  it('the replicas of every partition hold the same rows', step((current) => checkReplicas(faulty, current.cells)));
});
