// The packet table: every packet type of NEO protocol version 5, declared once (code, kind,
// argument names and shapes). Encoding, decoding, validation, handler dispatch and TypeScript
// types all derive from it. spec/packets.json is the same table as data; a test compares them.

import { CellStates, ClusterStates, NodeStates, NodeTypes } from './enums.js';
import {
  AddressSchema,
  NodeId,
  alias,
  any,
  bin,
  bin20,
  bin8,
  bool,
  enumOf,
  float,
  int,
  list,
  map,
  nullable,
  text,
  tuple,
} from './schema.js';
import type { Schema, SchemaType } from './schema.js';

export const PROTOCOL_VERSION = 5;
export const RESPONSE_MASK = 0x8000;
/** The 6 bytes each side sends first: msgpack ["NEO", 5] with "NEO" as a fixstr. */
export const HANDSHAKE = Buffer.from('92a34e454f05', 'hex');
/** The first 5 handshake bytes: a peer matching them but not the 6th speaks another version. */
export const HANDSHAKE_MAGIC = HANDSHAKE.subarray(0, 5);

const oidList = list(bin8);

/**
 * Pack-order oids. A Python storage may send the oids of a partial pack order read back from its
 * database as one concatenated bin (protocol.md §8.1): accept that too, as a list.
 */
const packOrderOids: Schema<Buffer[] | null> = {
  repr: '[bin8]|nil',
  write(w, v) {
    if (v === null) w.nil();
    else oidList.write(w, v);
  },
  read(v) {
    if (v === null) return null;
    if (Buffer.isBuffer(v) && v.length % 8 === 0) {
      const oids: Buffer[] = [];
      for (let i = 0; i < v.length; i += 8) oids.push(v.subarray(i, i + 8));
      return oids;
    }
    return oidList.read(v);
  },
};

export const NodeInfo = alias('NodeInfo', tuple(enumOf(NodeTypes.info), nullable(AddressSchema), nullable(NodeId), enumOf(NodeStates.info), nullable(float)));
export const Cell = alias('Cell', tuple(NodeId, enumOf(CellStates.info)));
export const Row = alias('Row', list(Cell));
export const CellChange = alias('CellChange', tuple(int, NodeId, enumOf(CellStates.info)));
export const PackRequest = alias('PackRequest', tuple(nullable(list(bin8)), bin8));
export const PackOrder = alias('PackOrder', tuple(bin8, nullable(bool), bool, packOrderOids, bin8));
export const TxnPackInfo = alias('TxnPackInfo', tuple(nullable(bool), bool, nullable(list(bin8)), bin8));
export const StoredData = alias('StoredData', tuple(int, bin20, bin));
export const RelockConflict = alias('RelockConflict', tuple(bin8, bin8, nullable(StoredData)));
export const HistoryEntry = alias('HistoryEntry', tuple(bin8, int));
export const UndoSerialInfo = alias('UndoSerialInfo', tuple(bin8, nullable(bin8), bool));
export const CheckSource = alias('CheckSource', tuple(text, nullable(AddressSchema)));

export type PacketKind = 'request' | 'answer' | 'notification' | 'request-error' | 'error';
type Arg = readonly [name: string, schema: Schema<any>];

export interface PacketDef<A extends readonly Arg[] = readonly Arg[]> {
  readonly code: number;
  readonly kind: PacketKind;
  readonly args: A;
  /** For requests: the name of the expected answer ('Error' for request-error packets). */
  readonly answer: string | undefined;
}

function def<const A extends readonly Arg[]>(
  code: number,
  kind: PacketKind,
  args: A,
  answer?: string,
): PacketDef<A> {
  return { code, kind, args, answer };
}

export const PACKETS = {
  Error: def(0x8000, 'error', [['code', int], ['message', text]]),
  RequestIdentification: def(1, 'request', [['node_type', enumOf(NodeTypes.info)], ['nid', nullable(NodeId)], ['address', nullable(AddressSchema)], ['cluster_name', text], ['id_timestamp', nullable(float)], ['extra', map(text, any)]], 'AcceptIdentification'),
  AcceptIdentification: def(0x8001, 'answer', [['node_type', enumOf(NodeTypes.info)], ['nid', nullable(NodeId)], ['your_nid', nullable(NodeId)]]),
  Ping: def(2, 'request', [], 'Pong'),
  Pong: def(0x8002, 'answer', []),
  CloseClient: def(3, 'notification', []),
  AskPrimary: def(4, 'request', [], 'AnswerPrimary'),
  AnswerPrimary: def(0x8004, 'answer', [['primary_nid', NodeId]]),
  NotPrimaryMaster: def(5, 'notification', [['primary', nullable(int)], ['known_masters', list(AddressSchema)]]),
  NotifyNodeInformation: def(6, 'notification', [['timestamp', float], ['nodes', list(NodeInfo)]]),
  AskRecovery: def(7, 'request', [], 'AnswerRecovery'),
  AnswerRecovery: def(0x8007, 'answer', [['ptid', nullable(int)], ['backup_tid', nullable(bin8)], ['truncate_tid', nullable(bin8)]]),
  AskLastIDs: def(8, 'request', [], 'AnswerLastIDs'),
  AnswerLastIDs: def(0x8008, 'answer', [['last_tid', nullable(bin8)], ['last_oid', nullable(bin8)], ['first_tid', bin8]]),
  AskPartitionTable: def(9, 'request', [], 'AnswerPartitionTable'),
  AnswerPartitionTable: def(0x8009, 'answer', [['ptid', int], ['num_replicas', int], ['rows', list(Row)]]),
  SendPartitionTable: def(10, 'notification', [['ptid', nullable(int)], ['num_replicas', int], ['rows', list(Row)]]),
  NotifyPartitionChanges: def(11, 'notification', [['ptid', int], ['num_replicas', int], ['changes', list(CellChange)]]),
  StartOperation: def(12, 'notification', [['backup', bool]]),
  StopOperation: def(13, 'notification', []),
  AskUnfinishedTransactions: def(14, 'request', [['partitions', list(int)]], 'AnswerUnfinishedTransactions'),
  AnswerUnfinishedTransactions: def(0x800e, 'answer', [['last_tid', bin8], ['pending_ttids', list(bin8)]]),
  AskLockedTransactions: def(15, 'request', [], 'AnswerLockedTransactions'),
  AnswerLockedTransactions: def(0x800f, 'answer', [['locked', map(bin8, nullable(bin8))]]),
  AskFinalTID: def(16, 'request', [['ttid', bin8]], 'AnswerFinalTID'),
  AnswerFinalTID: def(0x8010, 'answer', [['tid', nullable(bin8)]]),
  ValidateTransaction: def(17, 'notification', [['ttid', bin8], ['tid', bin8]]),
  AskBeginTransaction: def(18, 'request', [['tid', nullable(bin8)]], 'AnswerBeginTransaction'),
  AnswerBeginTransaction: def(0x8012, 'answer', [['ttid', bin8]]),
  FailedVote: def(19, 'request-error', [['ttid', bin8], ['failed_nids', list(NodeId)]], 'Error'),
  AskFinishTransaction: def(20, 'request', [['ttid', bin8], ['oids', list(bin8)], ['deleted', list(int)], ['checked', list(int)], ['pack', nullable(PackRequest)]], 'AnswerTransactionFinished'),
  AnswerTransactionFinished: def(0x8014, 'answer', [['ttid', bin8], ['tid', bin8]]),
  AskLockInformation: def(21, 'request', [['ttid', bin8], ['tid', bin8], ['pack_approved', bool]], 'AnswerInformationLocked'),
  AnswerInformationLocked: def(0x8015, 'answer', [['ttid', bin8]]),
  InvalidateObjects: def(22, 'notification', [['tid', bin8], ['oids', list(bin8)]]),
  InvalidatePartitions: def(23, 'notification', [['tid', bin8], ['partitions', list(int)]]),
  NotifyUnlockInformation: def(24, 'notification', [['ttid', bin8]]),
  AskNewOIDs: def(25, 'request', [['count', int]], 'AnswerNewOIDs'),
  AnswerNewOIDs: def(0x8019, 'answer', [['oids', list(bin8)]]),
  NotifyDeadlock: def(26, 'notification', [['ttid', bin8], ['oid', bin8]]),
  AskRelockObject: def(27, 'request', [['ttid', bin8], ['oid', bin8]], 'AnswerRelockObject'),
  AnswerRelockObject: def(0x801b, 'answer', [['conflict', nullable(RelockConflict)]]),
  AskStoreObject: def(28, 'request', [['oid', bin8], ['serial', bin8], ['compression', int], ['checksum', bin20], ['data', bin], ['data_serial', nullable(bin8)], ['ttid', nullable(bin8)]], 'AnswerStoreObject'),
  AnswerStoreObject: def(0x801c, 'answer', [['conflict', nullable(bin8)]]),
  AbortTransaction: def(29, 'notification', [['ttid', bin8], ['nids', list(NodeId)]]),
  AskStoreTransaction: def(30, 'request', [['ttid', bin8], ['user', bin], ['description', bin], ['extension', bin], ['oids', list(bin8)], ['pack', nullable(PackRequest)]], 'AnswerStoreTransaction'),
  AnswerStoreTransaction: def(0x801e, 'answer', []),
  AskVoteTransaction: def(31, 'request', [['ttid', bin8]], 'AnswerVoteTransaction'),
  AnswerVoteTransaction: def(0x801f, 'answer', []),
  AskObject: def(32, 'request', [['oid', bin8], ['at', nullable(bin8)], ['before', nullable(bin8)]], 'AnswerObject'),
  AnswerObject: def(0x8020, 'answer', [['oid', bin8], ['serial', bin8], ['next_serial', nullable(bin8)], ['compression', nullable(int)], ['checksum', bin20], ['data', bin], ['data_serial', nullable(bin8)]]),
  AskTIDs: def(33, 'request', [['first', int], ['last', int], ['partition', int]], 'AnswerTIDs'),
  AnswerTIDs: def(0x8021, 'answer', [['tids', list(bin8)]]),
  AskTransactionInformation: def(34, 'request', [['tid', bin8]], 'AnswerTransactionInformation'),
  AnswerTransactionInformation: def(0x8022, 'answer', [['tid', bin8], ['user', bin], ['description', bin], ['extension', bin], ['packed', bool], ['oids', list(bin8)]]),
  AskObjectHistory: def(35, 'request', [['oid', bin8], ['first', int], ['last', int]], 'AnswerObjectHistory'),
  AnswerObjectHistory: def(0x8023, 'answer', [['oid', bin8], ['history', list(HistoryEntry)]]),
  AskPartitionList: def(36, 'request', [['min_offset', int], ['max_offset', int], ['nid', nullable(NodeId)]], 'AnswerPartitionList'),
  AnswerPartitionList: def(0x8024, 'answer', [['ptid', nullable(int)], ['num_replicas', int], ['rows', list(Row)]]),
  AskNodeList: def(37, 'request', [['node_type', nullable(enumOf(NodeTypes.info))]], 'AnswerNodeList'),
  AnswerNodeList: def(0x8025, 'answer', [['nodes', list(NodeInfo)]]),
  SetNodeState: def(38, 'request-error', [['nid', NodeId], ['state', enumOf(NodeStates.info)]], 'Error'),
  AddPendingNodes: def(39, 'request-error', [['nids', list(NodeId)]], 'Error'),
  TweakPartitionTable: def(40, 'request', [['dry_run', bool], ['drop_nids', list(NodeId)]], 'AnswerTweakPartitionTable'),
  AnswerTweakPartitionTable: def(0x8028, 'answer', [['changed', bool], ['rows', list(Row)]]),
  SetNumReplicas: def(41, 'request-error', [['num_replicas', int]], 'Error'),
  SetClusterState: def(42, 'request-error', [['state', enumOf(ClusterStates.info)]], 'Error'),
  Repair: def(43, 'request-error', [['nids', list(NodeId)], ['dry_run', bool]], 'Error'),
  NotifyRepair: def(44, 'notification', [['dry_run', bool]]),
  NotifyClusterInformation: def(45, 'notification', [['state', enumOf(ClusterStates.info)]]),
  AskClusterState: def(46, 'request', [], 'AnswerClusterState'),
  AnswerClusterState: def(0x802e, 'answer', [['state', nullable(enumOf(ClusterStates.info))]]),
  AskObjectUndoSerial: def(47, 'request', [['ttid', bin8], ['ltid', bin8], ['undone_tid', bin8], ['oids', list(bin8)]], 'AnswerObjectUndoSerial'),
  AnswerObjectUndoSerial: def(0x802f, 'answer', [['result', map(bin8, UndoSerialInfo)]]),
  AskTIDsFrom: def(48, 'request', [['min_tid', bin8], ['max_tid', bin8], ['length', int], ['partition', int]], 'AnswerTIDsFrom'),
  AnswerTIDsFrom: def(0x8030, 'answer', [['tids', list(bin8)]]),
  AskOIDsFrom: def(49, 'request', [['partition', int], ['length', int], ['min_oid', bin8], ['tid', bin8]], 'AnswerOIDsFrom'),
  AnswerOIDsFrom: def(0x8031, 'answer', [['next_oid', nullable(bin8)], ['oids', list(bin8)]]),
  WaitForPack: def(50, 'request', [['tid', bin8]], 'WaitedForPack'),
  WaitedForPack: def(0x8032, 'answer', []),
  AskPackOrders: def(51, 'request', [['min_pack_id', bin8]], 'AnswerPackOrders'),
  AnswerPackOrders: def(0x8033, 'answer', [['orders', list(PackOrder)]]),
  NotifyPackSigned: def(52, 'notification', [['approved', list(bin8)], ['rejected', list(bin8)]]),
  NotifyPackCompleted: def(53, 'notification', [['pack_id', bin8]]),
  CheckReplicas: def(54, 'request-error', [['partitions', map(int, nullable(NodeId))], ['min_tid', bin8], ['max_tid', nullable(bin8)]], 'Error'),
  CheckPartition: def(55, 'notification', [['partition', int], ['source', CheckSource], ['min_tid', bin8], ['max_tid', bin8]]),
  AskCheckTIDRange: def(56, 'request', [['partition', int], ['length', int], ['min_tid', bin8], ['max_tid', bin8]], 'AnswerCheckTIDRange'),
  AnswerCheckTIDRange: def(0x8038, 'answer', [['count', int], ['tid_checksum', bin20], ['max_tid', bin8]]),
  AskCheckSerialRange: def(57, 'request', [['partition', int], ['length', int], ['min_tid', bin8], ['max_tid', bin8], ['min_oid', bin8]], 'AnswerCheckSerialRange'),
  AnswerCheckSerialRange: def(0x8039, 'answer', [['count', int], ['tid_checksum', bin20], ['max_tid', bin8], ['oid_checksum', bin20], ['max_oid', bin8]]),
  NotifyPartitionCorrupted: def(58, 'notification', [['partition', int], ['nids', list(NodeId)]]),
  NotifyReady: def(59, 'notification', []),
  AskLastTransaction: def(60, 'request', [], 'AnswerLastTransaction'),
  AnswerLastTransaction: def(0x803c, 'answer', [['tid', bin8]]),
  AskCheckCurrentSerial: def(61, 'request', [['ttid', bin8], ['oid', bin8], ['serial', bin8]], 'AnswerCheckCurrentSerial'),
  AnswerCheckCurrentSerial: def(0x803d, 'answer', [['conflict', nullable(bin8)]]),
  NotifyTransactionFinished: def(62, 'notification', [['ttid', bin8], ['max_tid', bin8]]),
  Replicate: def(63, 'notification', [['tid', bin8], ['upstream_name', text], ['sources', map(int, nullable(AddressSchema))]]),
  NotifyReplicationDone: def(64, 'notification', [['partition', int], ['tid', bin8]]),
  AskFetchTransactions: def(65, 'request', [['partition', int], ['length', int], ['min_tid', bin8], ['max_tid', bin8], ['known_tids', list(bin8)], ['ask_pack_info', bool]], 'AnswerFetchTransactions'),
  AnswerFetchTransactions: def(0x8041, 'answer', [['next_tid', nullable(bin8)], ['to_delete', list(bin8)], ['completed_pack', nullable(bin8)]]),
  AskFetchObjects: def(66, 'request', [['partition', int], ['length', int], ['min_tid', bin8], ['max_tid', bin8], ['min_oid', bin8], ['known', map(bin8, list(bin8))]], 'AnswerFetchObjects'),
  AnswerFetchObjects: def(0x8042, 'answer', [['next_tid', nullable(bin8)], ['next_oid', nullable(bin8)], ['to_delete', map(bin8, list(bin8))]]),
  AddTransaction: def(67, 'notification', [['tid', bin8], ['user', bin], ['description', bin], ['extension', bin], ['packed', bool], ['ttid', bin8], ['oids', list(bin8)], ['pack', nullable(TxnPackInfo)]]),
  AddObject: def(68, 'notification', [['oid', bin8], ['serial', bin8], ['compression', int], ['checksum', bin20], ['data', bin], ['data_serial', nullable(bin8)]]),
  Truncate: def(69, 'request-error', [['tid', bin8]], 'Error'),
  FlushLog: def(70, 'notification', []),
  AskMonitorInformation: def(71, 'request', [], 'AnswerMonitorInformation'),
  AnswerMonitorInformation: def(0x8047, 'answer', [['warnings', list(nullable(text))], ['problems', list(nullable(text))], ['summary', text]]),
  NotifyMonitorInformation: def(72, 'notification', [['info', map(text, any)]]),
  NotifyUpstreamAdmin: def(73, 'notification', [['address', AddressSchema]]),
} as const;

export type PacketName = keyof typeof PACKETS;

/** The decoded arguments of a packet, as a tuple in wire order. */
export type ArgsOf<N extends PacketName> = ArgTypes<(typeof PACKETS)[N]['args']>;
type ArgTypes<A> = {
  -readonly [I in keyof A]: A[I] extends readonly [string, infer S] ? SchemaType<S> : never;
};

export interface PacketInfo {
  readonly name: PacketName;
  readonly code: number;
  readonly kind: PacketKind;
  readonly args: readonly Arg[];
  /** For requests: the info of the expected answer. */
  readonly answer: PacketInfo | undefined;
}

function buildTables(): { byName: Map<PacketName, PacketInfo>; byCode: Map<number, PacketInfo> } {
  const byName = new Map<PacketName, PacketInfo>();
  const byCode = new Map<number, PacketInfo>();
  for (const [name, packet] of Object.entries(PACKETS) as [PacketName, PacketDef][]) {
    const info = { name, code: packet.code, kind: packet.kind, args: packet.args, answer: undefined };
    byName.set(name, info);
    byCode.set(packet.code, info);
  }
  for (const [name, info] of byName) {
    const answerName = PACKETS[name].answer as PacketName | undefined;
    if (answerName !== undefined) {
      (info as { answer: PacketInfo | undefined }).answer = byName.get(answerName);
    }
  }
  return { byName, byCode };
}

const tables = buildTables();

export function packetByName(name: PacketName): PacketInfo {
  return tables.byName.get(name)!;
}

export function packetByCode(code: number): PacketInfo | undefined {
  return tables.byCode.get(code);
}

export const ALL_PACKETS: readonly PacketInfo[] = [...tables.byName.values()];
