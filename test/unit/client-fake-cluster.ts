// A fake NEO cluster for the client's unit tests: one master and storage nodes built from
// Connection, answering as the transcripts show, over the in-memory network. It keeps objects in
// memory, checks serials at store time (conflicts), and records every packet it receives.

import { createHash } from 'node:crypto';
import type { Address, Env, Transport } from '../../src/core/env.js';
import { Connection } from '../../src/net/connection.js';
import type { Handler } from '../../src/net/connection.js';
import { memoryNetwork } from '../../src/net/memory.js';
import type { MemoryNetwork } from '../../src/net/memory.js';
import { CellStates, ErrorCodes, NodeStates, NodeTypes } from '../../src/protocol/enums.js';
import { NeoError } from '../../src/protocol/errors.js';
import { ZERO_TID, addTid, compareIds, p64 } from '../../src/protocol/ids.js';
import type { ArgsOf } from '../../src/protocol/packets.js';
import { recordingLogger } from '../helpers/logger.js';
import { seededRandom } from '../helpers/spec.js';

export const CLUSTER = 'golden';
export const MASTER_ADDRESS: Address = { host: '127.0.0.1', port: 21000 };
export const MASTER_NID = -268435455; // M1
const FIRST_CLIENT_NID = -536870911; // C1
const BASE_TID = Buffer.from('040d2d2181000000', 'hex');
const NUM_PARTITIONS = 4;

export interface Received {
  /** 'master' or 'storageN'. */
  node: string;
  /** The client's nid. */
  from: number | null;
  name: string;
  args: unknown[];
}

interface Revision {
  serial: Buffer;
  compression: number;
  checksum: Buffer;
  data: Buffer;
}

interface PendingTxn {
  stores: Map<string, { oid: Buffer } & Revision>;
  meta: ArgsOf<'AskStoreTransaction'> | null;
}

export function testEnv(network: MemoryNetwork, host = '127.0.0.1'): Env {
  const random = seededRandom(7);
  let clock = 1_795_309_530;
  return {
    clock: { now: () => (clock += 0.001), monotonicMs: () => clock * 1000 },
    timers: {
      after: (ms, fn) => {
        const t = setTimeout(fn, ms);
        return { cancel: () => clearTimeout(t) };
      },
      every: (ms, fn) => {
        const t = setInterval(fn, ms);
        return { cancel: () => clearInterval(t) };
      },
      soon: (fn) => void setImmediate(fn),
    },
    random: {
      next: random,
      int: (n) => Math.floor(random() * n),
      bytes: (n) => Buffer.from(Array.from({ length: n }, () => Math.floor(random() * 256))),
    },
    transport: network.transport(host),
    logger: recordingLogger(),
  };
}

export class FakeStorage {
  readonly objects = new Map<string, Revision[]>();
  readonly pending = new Map<string, PendingTxn>();
  readonly transactions = new Map<string, ArgsOf<'AskStoreTransaction'>>();
  readonly connections: Connection[] = [];
  readonly cluster: FakeCluster;
  readonly nid: number;
  readonly address: Address;
  constructor(cluster: FakeCluster, nid: number, address: Address) {
    this.cluster = cluster;
    this.nid = nid;
    this.address = address;
  }

  get name(): string {
    return `storage${this.nid}`;
  }

  handler(): Handler {
    let client: number | null = null;
    const record = (name: string, args: unknown[]) => this.cluster.received.push({ node: this.name, from: client, name, args });
    return {
      RequestIdentification: (conn, ...args) => {
        record('RequestIdentification', args);
        client = args[1];
        conn.answer('AcceptIdentification', [NodeTypes.STORAGE, this.nid, args[1]]);
      },
      AskObject: (conn, oid, at, before) => {
        record('AskObject', [oid, at, before]);
        const revisions = this.objects.get(oid.toString('hex'));
        if (revisions === undefined) throw new NeoError(ErrorCodes.OID_DOES_NOT_EXIST, oid.toString('hex'));
        let index = revisions.length - 1;
        if (at !== null) index = revisions.findIndex((r) => r.serial.equals(at));
        else if (before !== null) {
          while (index >= 0 && compareIds(revisions[index]!.serial, before) >= 0) index--;
        }
        const r = revisions[index];
        if (r === undefined) throw new NeoError(ErrorCodes.OID_NOT_FOUND, oid.toString('hex'));
        const next = revisions[index + 1]?.serial ?? null;
        conn.answer('AnswerObject', [oid, r.serial, next, r.compression, r.checksum, r.data, null]);
      },
      AskStoreObject: (conn, oid, serial, compression, checksum, data, dataSerial, ttid) => {
        record('AskStoreObject', [oid, serial, compression, checksum, data, dataSerial, ttid]);
        if (!createHash('sha1').update(data).digest().equals(checksum)) throw new NeoError(ErrorCodes.PROTOCOL_ERROR, 'invalid checksum');
        const last = this.objects.get(oid.toString('hex'))?.at(-1)?.serial ?? ZERO_TID;
        if (!last.equals(serial)) return conn.answer('AnswerStoreObject', [last]);
        this.txn(ttid!).stores.set(oid.toString('hex'), { oid, serial, compression, checksum, data });
        conn.answer('AnswerStoreObject', [null]);
      },
      AskCheckCurrentSerial: (conn, ttid, oid, serial) => {
        record('AskCheckCurrentSerial', [ttid, oid, serial]);
        const last = this.objects.get(oid.toString('hex'))?.at(-1)?.serial ?? ZERO_TID;
        this.txn(ttid);
        conn.answer('AnswerCheckCurrentSerial', [last.equals(serial) ? null : last]);
      },
      AskStoreTransaction: (conn, ...args) => {
        record('AskStoreTransaction', args);
        this.txn(args[0]).meta = args;
        conn.answer('AnswerStoreTransaction', []);
      },
      AskVoteTransaction: (conn, ttid) => {
        record('AskVoteTransaction', [ttid]);
        conn.answer('AnswerVoteTransaction', []);
      },
      AbortTransaction: (_conn, ttid, nids) => {
        record('AbortTransaction', [ttid, nids]);
        this.pending.delete(ttid.toString('hex'));
      },
      AskTransactionInformation: (conn, tid) => {
        record('AskTransactionInformation', [tid]);
        const meta = this.transactions.get(tid.toString('hex'));
        if (meta === undefined) throw new NeoError(ErrorCodes.TID_NOT_FOUND, tid.toString('hex'));
        conn.answer('AnswerTransactionInformation', [tid, meta[1], meta[2], meta[3], false, meta[4]]);
      },
      AskObjectHistory: (conn, oid, first, last) => {
        record('AskObjectHistory', [oid, first, last]);
        const revisions = this.objects.get(oid.toString('hex'));
        if (revisions === undefined) throw new NeoError(ErrorCodes.OID_NOT_FOUND, oid.toString('hex'));
        const history = [...revisions].reverse().slice(first, last).map((r): [Buffer, number] => [r.serial, r.data.length]);
        conn.answer('AnswerObjectHistory', [oid, history]);
      },
      AskTIDsFrom: (conn, min, max, length, partition) => {
        record('AskTIDsFrom', [min, max, length, partition]);
        const tids = [...this.transactions.values()].map((m) => m[0])
          .filter((tid) => Number(tid.readBigUInt64BE(0) % BigInt(NUM_PARTITIONS)) === partition
            && compareIds(tid, min) >= 0 && compareIds(tid, max) <= 0)
          .sort(compareIds).slice(0, length);
        conn.answer('AnswerTIDsFrom', [tids]);
      },
      Ping: (conn) => conn.answer('Pong', []),
    };
  }

  private txn(ttid: Buffer): PendingTxn {
    const key = ttid.toString('hex');
    let txn = this.pending.get(key);
    if (txn === undefined) this.pending.set(key, (txn = { stores: new Map(), meta: null }));
    return txn;
  }

  /** Lock + unlock at once: the transaction becomes visible under `tid`. */
  commit(ttid: Buffer, tid: Buffer): void {
    const txn = this.pending.get(ttid.toString('hex'));
    if (txn === undefined) return;
    this.pending.delete(ttid.toString('hex'));
    for (const store of txn.stores.values()) {
      const key = store.oid.toString('hex');
      let revisions = this.objects.get(key);
      if (revisions === undefined) this.objects.set(key, (revisions = []));
      revisions.push({ serial: tid, compression: store.compression, checksum: store.checksum, data: store.data });
    }
    if (txn.meta !== null) this.transactions.set(tid.toString('hex'), [tid, ...txn.meta.slice(1)] as ArgsOf<'AskStoreTransaction'>);
  }
}

export class FakeCluster {
  readonly network = memoryNetwork({ schedule: setImmediate });
  readonly received: Received[] = [];
  readonly storages: FakeStorage[] = [];
  readonly clients = new Map<number, Connection>();
  /** tid hex of committed transactions (their metadata is keyed by tid in FakeStorage). */
  readonly tidOf = new Map<string, Buffer>();
  lastTid: Buffer = ZERO_TID;
  lastOid = 0n;
  private nextClient = FIRST_CLIENT_NID;
  private ttids = 0;
  private readonly listeners: { close(): void }[] = [];
  /** When set, AskFinishTransaction is not answered (to test invalidation ordering). */
  holdFinish: ((deliver: () => void) => void) | null = null;

  static async start(storageCount = 2): Promise<FakeCluster> {
    const cluster = new FakeCluster();
    const transport = cluster.network.transport('127.0.0.1');
    for (let i = 1; i <= storageCount; i++) {
      const storage = new FakeStorage(cluster, i, { host: '127.0.0.1', port: 21009 + i });
      cluster.storages.push(storage);
      cluster.listeners.push(await transport.listen(storage.address, (stream) => {
        storage.connections.push(new Connection({ stream, handler: storage.handler(), logger: recordingLogger(), label: storage.name }));
      }));
    }
    cluster.listeners.push(await transport.listen(MASTER_ADDRESS, (stream) => {
      new Connection({ stream, handler: cluster.masterHandler(), logger: recordingLogger(), label: 'master' });
    }));
    return cluster;
  }

  env(host = '127.0.0.1'): Env {
    return testEnv(this.network, host);
  }

  get transport(): Transport {
    return this.network.transport();
  }

  private masterHandler(): Handler {
    let client: number | null = null;
    const record = (name: string, args: unknown[]) => this.received.push({ node: 'master', from: client, name, args });
    return {
      RequestIdentification: (conn, ...args) => {
        record('RequestIdentification', args);
        if (args[3] !== CLUSTER) throw new NeoError(ErrorCodes.PROTOCOL_ERROR, 'wrong cluster name');
        client = this.nextClient++;
        this.clients.set(client, conn);
        conn.handler.connectionClosed = () => void this.clients.delete(client!);
        conn.answer('AcceptIdentification', [NodeTypes.MASTER, MASTER_NID, client]);
        const idTimestamp = 1795309530.5 + client;
        conn.notify('NotifyNodeInformation', [1795309530.6, [
          [NodeTypes.CLIENT, null, client, NodeStates.RUNNING, idTimestamp],
          ...this.storages.map((s): ArgsOf<'NotifyNodeInformation'>[1][number] =>
            [NodeTypes.STORAGE, s.address, s.nid, NodeStates.RUNNING, 1795309525.0 + s.nid]),
        ]]);
        const row = this.storages.map((s): [number, typeof CellStates.UP_TO_DATE] => [s.nid, CellStates.UP_TO_DATE]);
        conn.notify('SendPartitionTable', [1, this.storages.length - 1, Array.from({ length: NUM_PARTITIONS }, () => row)]);
      },
      AskLastTransaction: (conn) => {
        record('AskLastTransaction', []);
        conn.answer('AnswerLastTransaction', [this.lastTid]);
      },
      Ping: (conn) => {
        record('Ping', []);
        conn.answer('Pong', []);
      },
      AskBeginTransaction: (conn, tid) => {
        record('AskBeginTransaction', [tid]);
        this.ttids += 1;
        conn.answer('AnswerBeginTransaction', [addTid(BASE_TID, this.ttids * 4096)]);
      },
      AskNewOIDs: (conn, count) => {
        record('AskNewOIDs', [count]);
        const oids = Array.from({ length: count }, () => p64(++this.lastOid));
        conn.answer('AnswerNewOIDs', [oids]);
      },
      AbortTransaction: (_conn, ttid, nids) => record('AbortTransaction', [ttid, nids]),
      AskFinishTransaction: (conn, ttid, oids, deleted, checked, pack) => {
        record('AskFinishTransaction', [ttid, oids, deleted, checked, pack]);
        const msgId = conn.peerMsgId;
        const finish = (): void => {
          // Same partition as the TTID, above the last TID (transactions.md §1.3).
          let tid = addTid(this.lastTid.equals(ZERO_TID) ? ttid : this.lastTid, 1);
          while (tid.readBigUInt64BE(0) % BigInt(NUM_PARTITIONS) !== ttid.readBigUInt64BE(0) % BigInt(NUM_PARTITIONS)) tid = addTid(tid, 1);
          if (compareIds(tid, ttid) < 0) tid = Buffer.from(ttid);
          for (const storage of this.storages) storage.commit(ttid, tid);
          this.tidOf.set(ttid.toString('hex'), tid);
          this.lastTid = tid;
          for (const [nid, other] of this.clients) {
            if (other === conn) other.answerTo(msgId, 'AnswerTransactionFinished', [ttid, tid]);
            else other.notify('InvalidateObjects', [tid, oids]);
            void nid;
          }
        };
        if (this.holdFinish !== null) this.holdFinish(finish);
        else finish();
      },
    };
  }

  /** Packets of `name` received by the cluster, in order. */
  packets(name: string, node?: string): Received[] {
    return this.received.filter((r) => r.name === name && (node === undefined || r.node === node));
  }

  stop(): void {
    for (const listener of this.listeners) listener.close();
    for (const conn of this.clients.values()) conn.close();
    for (const storage of this.storages) for (const conn of storage.connections) conn.close();
  }
}
