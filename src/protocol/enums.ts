// NEO's five enums. On the wire each item is a msgpack ext whose type is the enum's ext code and
// whose payload is the msgpack encoding of the item's value (Python: fixext 1, `d4 <code> <value>`).
// Items are singletons, so `state === NodeStates.RUNNING` works on decoded values, and they carry
// their name for logs and neoctl output.

import { Ext, MsgpackError, decode } from './msgpack.js';

export class EnumItem<E extends string = string> extends Ext {
  readonly enumName: E;
  readonly name: string;
  readonly value: number;

  constructor(enumName: E, extCode: number, name: string, value: number) {
    super(extCode, Buffer.from([value]));
    this.enumName = enumName;
    this.name = name;
    this.value = value;
  }

  override toString(): string {
    return this.name;
  }
}

type EnumOf<E extends string, N extends readonly string[]> = { readonly [K in N[number]]: EnumItem<E> };

export interface EnumInfo<E extends string = string> {
  readonly enumName: E;
  readonly extCode: number;
  /** Items indexed by value. */
  readonly items: readonly EnumItem<E>[];
  byName(name: string): EnumItem<E> | undefined;
}

function defineEnum<const E extends string, const N extends readonly string[]>(
  enumName: E,
  extCode: number,
  names: N,
): EnumOf<E, N> & { readonly info: EnumInfo<E> } {
  const items = names.map((name, value) => new EnumItem(enumName, extCode, name, value));
  const result: Record<string, unknown> = {};
  for (const item of items) result[item.name] = item;
  const info: EnumInfo<E> = {
    enumName,
    extCode,
    items,
    byName: (name) => items.find((item) => item.name === name),
  };
  result['info'] = info;
  return result as EnumOf<E, N> & { readonly info: EnumInfo<E> };
}

export const CellStates = defineEnum('CellStates', 0, [
  'OUT_OF_DATE',
  'UP_TO_DATE',
  'FEEDING',
  'CORRUPTED',
  'DISCARDED',
]);
export const ClusterStates = defineEnum('ClusterStates', 1, [
  'RECOVERING',
  'VERIFYING',
  'RUNNING',
  'STOPPING',
  'STARTING_BACKUP',
  'BACKINGUP',
  'STOPPING_BACKUP',
]);
export const ErrorCodes = defineEnum('ErrorCodes', 2, [
  'ACK',
  'DENIED',
  'NOT_READY',
  'OID_NOT_FOUND',
  'TID_NOT_FOUND',
  'OID_DOES_NOT_EXIST',
  'PROTOCOL_ERROR',
  'REPLICATION_ERROR',
  'CHECKING_ERROR',
  'BACKEND_NOT_IMPLEMENTED',
  'NON_READABLE_CELL',
  'READ_ONLY_ACCESS',
  'INCOMPLETE_TRANSACTION',
  'UNDO_PACK_ERROR',
]);
export const NodeStates = defineEnum('NodeStates', 3, ['UNKNOWN', 'DOWN', 'RUNNING', 'PENDING']);
export const NodeTypes = defineEnum('NodeTypes', 4, ['MASTER', 'STORAGE', 'CLIENT', 'ADMIN']);

export type CellState = EnumItem<'CellStates'>;
export type ClusterState = EnumItem<'ClusterStates'>;
export type ErrorCode = EnumItem<'ErrorCodes'>;
export type NodeState = EnumItem<'NodeStates'>;
export type NodeType = EnumItem<'NodeTypes'>;

/** Every enum, indexed by ext code. */
export const ENUMS: readonly EnumInfo[] = [
  CellStates.info,
  ClusterStates.info,
  ErrorCodes.info,
  NodeStates.info,
  NodeTypes.info,
];

/** The protocol's ext decoder: enum items for types 0..4, an error for anything else. */
export function decodeEnumExt(type: number, data: Buffer): EnumItem {
  const info = ENUMS[type];
  if (info === undefined || type < 0) throw new MsgpackError(`unknown msgpack ext type ${type}`);
  // Python unpacks the payload as msgpack, so any int encoding of the value is accepted.
  const value = data.length === 1 && data[0]! < 0x80 ? data[0]! : decode(data);
  const item = typeof value === 'number' ? info.items[value] : undefined;
  if (item === undefined) {
    throw new MsgpackError(`invalid ${info.enumName} value ${String(value)}`);
  }
  return item;
}
