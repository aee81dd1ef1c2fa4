// Identifiers of the NEO protocol: TIDs, OIDs, partitions and node ids
// (protocol.md §3.1, §3.2, §3.4-§3.6; transactions.md §1-2).
//
// Pure code: nothing here reads a clock. Callers pass times in as numbers of
// seconds since the UNIX epoch, so the master can run on a simulated clock.
// TIDs and OIDs are 8-byte big-endian Buffers, compared as unsigned integers.

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';

// ---------------------------------------------------------------------------
// Constants (§3.1)
//
// These Buffers are shared: they must never be mutated (Buffers cannot be
// frozen). Functions of this module always return fresh Buffers, so a caller
// that needs a mutable id should copy a constant with Buffer.from(...).

export const ID_LENGTH_BYTES = 8;
export const ZERO_TID: Buffer = Buffer.alloc(ID_LENGTH_BYTES, 0x00);
export const ZERO_OID: Buffer = ZERO_TID;
export const INVALID_TID: Buffer = Buffer.alloc(ID_LENGTH_BYTES, 0xff);
export const INVALID_OID: Buffer = INVALID_TID;
// The largest value a signed 64-bit SQL column can hold.
export const MAX_TID: Buffer = Buffer.from('7fffffffffffffff', 'hex');
export const ZERO_HASH: Buffer = Buffer.alloc(20, 0x00);
export const INVALID_PARTITION = 0xffffffff;

const U32_OVERFLOW = 0x1_0000_0000; // 2^32, as a number
const U64_LIMIT = 1n << 64n;
const TID_LOW_MAX = U32_OVERFLOW - 1;
// Seconds per unit of the low 32 bits. 60 / 2^32 is exact in binary, so
// dividing by it rounds exactly as ZODB's TimeStamp does.
const SECONDS_PER_LOW_UNIT = 60 / U32_OVERFLOW;

function assertId(id: Buffer, what = 'id'): void {
  assert(Buffer.isBuffer(id) && id.length === ID_LENGTH_BYTES,
    `${what} must be an ${ID_LENGTH_BYTES}-byte Buffer`);
}

// ---------------------------------------------------------------------------
// 64-bit conversions

export function p64(n: bigint): Buffer {
  if (n < 0n || n >= U64_LIMIT) throw new RangeError(`p64: ${n} is not an unsigned 64-bit value`);
  const b = Buffer.allocUnsafe(ID_LENGTH_BYTES);
  b.writeBigUInt64BE(n, 0);
  return b;
}

export function u64(b: Buffer): bigint {
  assertId(b);
  return b.readBigUInt64BE(0);
}

/** 16 lower-case hex digits, like NEO's `dump`. */
export function tidToHex(tid: Buffer): string {
  assertId(tid, 'tid');
  return tid.toString('hex');
}

export function oidToHex(oid: Buffer): string {
  assertId(oid, 'oid');
  return oid.toString('hex');
}

/** Inverse of tidToHex (also for OIDs): exactly 16 hex digits, any case. */
export function hexToTid(hex: string): Buffer {
  if (!/^[0-9a-fA-F]{16}$/.test(hex)) throw new Error(`invalid TID/OID hex: ${JSON.stringify(hex)}`);
  return Buffer.from(hex, 'hex');
}

/** Unsigned comparison of two ids: negative, 0 or positive. */
export function compareIds(a: Buffer, b: Buffer): number {
  assertId(a);
  assertId(b);
  return Buffer.compare(a, b);
}

// ---------------------------------------------------------------------------
// Partitions (§3.5)

// Above this, (hi % n) * (2^32 % n) may exceed 2^53 and lose precision.
const MAX_FAST_PARTITIONS = 0x4000000; // 2^26

export function partitionOf(id: Buffer, numPartitions: number): number {
  assertId(id);
  assert(Number.isInteger(numPartitions) && numPartitions >= 1 && numPartitions <= TID_LOW_MAX,
    `invalid number of partitions: ${numPartitions}`);
  if (numPartitions > MAX_FAST_PARTITIONS) {
    return Number(id.readBigUInt64BE(0) % BigInt(numPartitions));
  }
  const n = numPartitions;
  const hi = id.readUInt32BE(0);
  const lo = id.readUInt32BE(4);
  // u64 = hi * 2^32 + lo, reduced modulo n term by term to stay below 2^53.
  return ((hi % n) * (U32_OVERFLOW % n) + (lo % n)) % n;
}

// ---------------------------------------------------------------------------
// Calendar arithmetic (proleptic Gregorian, UTC), on day numbers relative to
// 1970-01-01. Done by hand because this module must not use Date.

/** Days since 1970-01-01 of year-month-day; day may overflow the month. */
function daysFromCivil(year: number, month: number, day: number): number {
  // Count years from March so that the leap day ends the year.
  const y = month <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yearOfEra = y - era * 400;
  const monthFromMarch = (month + 9) % 12;
  const dayOfYear = Math.floor((153 * monthFromMarch + 2) / 5) + day - 1;
  const dayOfEra = yearOfEra * 365 + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100) + dayOfYear;
  return era * 146097 + dayOfEra - 719468;
}

function civilFromDays(days: number): { year: number; month: number; day: number } {
  const z = days + 719468;
  const era = Math.floor(z / 146097);
  const dayOfEra = z - era * 146097;
  const yearOfEra = Math.floor(
    (dayOfEra - Math.floor(dayOfEra / 1460) + Math.floor(dayOfEra / 36524) - Math.floor(dayOfEra / 146096)) / 365);
  const dayOfYear = dayOfEra - (365 * yearOfEra + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100));
  const monthFromMarch = Math.floor((5 * dayOfYear + 2) / 153);
  const day = dayOfYear - Math.floor((153 * monthFromMarch + 2) / 5) + 1;
  const month = monthFromMarch < 10 ? monthFromMarch + 3 : monthFromMarch - 9;
  return { year: yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day };
}

// ---------------------------------------------------------------------------
// TID <-> time (§3.4, ZODB TimeStamp)

const MINUTES_PER_DAY = 24 * 60;
const MINUTES_PER_TID_MONTH = 31 * MINUTES_PER_DAY; // TimeStamp's 31-day months
const MINUTES_PER_TID_YEAR = 12 * MINUTES_PER_TID_MONTH;
const TID_BASE_YEAR = 1900;

interface TidMinute {
  year: number;
  month: number; // 1-12
  day: number; // 1-31 (31 even for short months in a malformed TID)
  hour: number;
  minute: number;
}

function unpackHigh(high: number): TidMinute {
  return {
    year: Math.floor(high / MINUTES_PER_TID_YEAR) + TID_BASE_YEAR,
    month: Math.floor((high % MINUTES_PER_TID_YEAR) / MINUTES_PER_TID_MONTH) + 1,
    day: Math.floor((high % MINUTES_PER_TID_MONTH) / MINUTES_PER_DAY) + 1,
    hour: Math.floor((high % MINUTES_PER_DAY) / 60),
    minute: high % 60,
  };
}

function packTid(m: TidMinute, low: number): Buffer {
  const high = ((((m.year - TID_BASE_YEAR) * 12 + (m.month - 1)) * 31 + (m.day - 1)) * 24 + m.hour) * 60 + m.minute;
  if (!(high >= 0 && high <= TID_LOW_MAX)) {
    throw new RangeError(`date ${m.year}-${m.month}-${m.day} cannot be represented in a TID`);
  }
  assert(Number.isInteger(low) && low >= 0 && low <= TID_LOW_MAX);
  const b = Buffer.allocUnsafe(ID_LENGTH_BYTES);
  b.writeUInt32BE(high, 0);
  b.writeUInt32BE(low, 4);
  return b;
}

/** Real calendar minute (minutes since the epoch) of a TID's high 32 bits. */
function epochMinuteOf(m: TidMinute): number {
  return daysFromCivil(m.year, m.month, m.day) * MINUTES_PER_DAY + m.hour * 60 + m.minute;
}

function tidMinuteFromEpochMinute(epochMinute: number): TidMinute {
  const days = Math.floor(epochMinute / MINUTES_PER_DAY);
  const minuteOfDay = epochMinute - days * MINUTES_PER_DAY;
  const { year, month, day } = civilFromDays(days);
  return { year, month, day, hour: Math.floor(minuteOfDay / 60), minute: minuteOfDay % 60 };
}

/**
 * TID of a UNIX time, as ZODB's TimeStamp(*gmtime(t)[:5], sec + frac):
 * the low 32 bits are the seconds within the minute divided by 60 / 2^32,
 * truncated (and clamped to 2^32 - 1).
 */
export function tidFromTime(seconds: number): Buffer {
  if (!Number.isFinite(seconds)) throw new RangeError(`tidFromTime: invalid time ${seconds}`);
  const whole = Math.floor(seconds);
  const fraction = seconds - whole; // exact: the fraction of a double is representable
  const epochMinute = Math.floor(whole / 60);
  const secondOfMinute = whole - epochMinute * 60;
  const low = Math.min(TID_LOW_MAX, Math.trunc((secondOfMinute + fraction) / SECONDS_PER_LOW_UNIT));
  return packTid(tidMinuteFromEpochMinute(epochMinute), low);
}

// Seconds between 1901-01-01 (the base of TimeStamp's C arithmetic) and the
// epoch. timeFromTid adds in the same order as that C code so that the float
// result is bit-identical to what a ZODB client computes.
const SECONDS_1901_TO_EPOCH = -daysFromCivil(1901, 1, 1) * 86400;

/** UNIX time of a TID, bit-identical to ZODB's TimeStamp(tid).timeTime(). */
export function timeFromTid(tid: Buffer): number {
  assertId(tid, 'tid');
  const m = unpackHigh(tid.readUInt32BE(0));
  const secondsInMinute = tid.readUInt32BE(4) * SECONDS_PER_LOW_UNIT; // exact product
  // Day overflow (a malformed "Feb 31") is counted linearly, as TimeStamp does.
  const days1901 = daysFromCivil(m.year, m.month, 1) + (m.day - 1) - daysFromCivil(1901, 1, 1);
  const whole1901 = days1901 * 86400 + (m.hour * 60 + m.minute) * 60;
  return (whole1901 + secondsInMinute) - SECONDS_1901_TO_EPOCH;
}

function pad(n: number, width: number): string {
  return String(n).padStart(width, '0');
}

/**
 * Human form of a TID, as neoctl prints it (str() of a Python datetime, UTC):
 * "YYYY-MM-DD HH:MM:SS" followed by ".ffffff" unless the microseconds are 0.
 */
export function tidToDate(tid: Buffer): string {
  assertId(tid, 'tid');
  const m = unpackHigh(tid.readUInt32BE(0));
  const scaled = tid.readUInt32BE(4) * 60; // < 2^38, exact
  const second = Math.floor(scaled / U32_OVERFLOW);
  const remainder = scaled - second * U32_OVERFLOW;
  // remainder * 1e6 / 2^32 == remainder * 15625 / 2^26, exact below 2^53.
  const microsecond = Math.floor((remainder * 15625) / 0x4000000);
  const text = `${pad(m.year, 4)}-${pad(m.month, 2)}-${pad(m.day, 2)} `
    + `${pad(m.hour, 2)}:${pad(m.minute, 2)}:${pad(second, 2)}`;
  return microsecond === 0 ? text : `${text}.${pad(microsecond, 6)}`;
}

/**
 * addTID of §3.4: n (possibly negative) is added to the low 32 bits and the
 * carry or borrow moves the date by that many real calendar minutes.
 */
export function addTid(tid: Buffer, n: number): Buffer {
  assertId(tid, 'tid');
  assert(Number.isSafeInteger(n), `addTid: ${n} is not an integer`);
  const sum = tid.readUInt32BE(4) + n;
  assert(Number.isSafeInteger(sum), `addTid: offset ${n} too large`);
  const carryMinutes = Math.floor(sum / U32_OVERFLOW);
  const low = sum - carryMinutes * U32_OVERFLOW;
  const high = unpackHigh(tid.readUInt32BE(0));
  if (carryMinutes === 0) return packTid(high, low);
  return packTid(tidMinuteFromEpochMinute(epochMinuteOf(high) + carryMinutes), low);
}

/** Master rule for a new TTID: the candidate, unless it is not above `last`. */
export function nextTid(candidate: Buffer, last: Buffer): Buffer {
  return compareIds(candidate, last) <= 0 ? addTid(last, 1) : Buffer.from(candidate);
}

// A calendar carry (month end) can shift u64 by more than the offset, which
// breaks the congruence; forward-only corrections restore it. After one such
// carry the low part is tiny, so a second one cannot happen: 3 is plenty.
const MAX_PARTITION_FIXUPS = 3;

/**
 * Final TID of a transaction (§3.4, transactions.md §1.3): strictly greater
 * than `lastTid` (or the TTID itself when it is the last TID) and in the same
 * partition as `ttid`. `nowTid` is tidFromTime(now).
 */
export function finalTid(nowTid: Buffer, ttid: Buffer, lastTid: Buffer, numPartitions: number): Buffer {
  let tid: Buffer = Buffer.from(nowTid);
  if (compareIds(tid, lastTid) <= 0) {
    if (compareIds(ttid, lastTid) === 0) return Buffer.from(ttid);
    tid = addTid(lastTid, 1);
  }
  const remainder = partitionOf(ttid, numPartitions);
  // Prefer moving back a little over drifting into the future.
  const delta = remainder - partitionOf(tid, numPartitions);
  if (delta !== 0) {
    tid = addTid(tid, delta);
    if (compareIds(tid, lastTid) <= 0) tid = addTid(tid, numPartitions);
  }
  for (let i = 0; i < MAX_PARTITION_FIXUPS && partitionOf(tid, numPartitions) !== remainder; i++) {
    tid = addTid(tid, (remainder - partitionOf(tid, numPartitions) + numPartitions) % numPartitions);
  }
  assert(partitionOf(tid, numPartitions) === remainder, 'final TID not in the partition of the TTID');
  assert(compareIds(tid, lastTid) > 0, 'final TID not above the last TID');
  return tid;
}

// ---------------------------------------------------------------------------
// Node ids (§3.2)

// Same values as NodeTypes (§2.5); kept local so this module stands alone.
const NODE_TYPE = { MASTER: 0, STORAGE: 1, CLIENT: 2, ADMIN: 3 } as const;

// Namespace byte (top byte of the signed 32-bit id) and log letter per type.
const NAMESPACES: ReadonlyArray<{ type: number; ns: number; letter: string }> = [
  { type: NODE_TYPE.STORAGE, ns: 0x00, letter: 'S' },
  { type: NODE_TYPE.MASTER, ns: -0x10, letter: 'M' },
  { type: NODE_TYPE.CLIENT, ns: -0x20, letter: 'C' },
  { type: NODE_TYPE.ADMIN, ns: -0x30, letter: 'A' },
];

const NID_MAX_K = 0xffffff; // printed form only shows the low 24 bits

function namespaceOfType(type: number): { type: number; ns: number; letter: string } {
  const entry = NAMESPACES.find((e) => e.type === type);
  if (entry === undefined) throw new Error(`unknown node type: ${type}`);
  return entry;
}

export function nidNamespace(type: number): number {
  return namespaceOfType(type).ns;
}

/** Node id number k (1 ≤ k ≤ 0xffffff) of a node type: (ns << 24) + k. */
export function makeNid(type: number, k: number): number {
  assert(Number.isInteger(k) && k >= 1 && k <= NID_MAX_K, `invalid node number: ${k}`);
  return (namespaceOfType(type).ns << 24) + k;
}

/** Node type of a node id, or null when its namespace is unknown (or nid is 0). */
export function nidType(nid: number): number | null {
  if (nid === 0) return null;
  return NAMESPACES.find((e) => e.ns === nid >> 24)?.type ?? null;
}

/** 'S1', 'M1', ... as in NEO's logs and neoctl; 'None' for no id. */
export function nidToString(nid: number | null | undefined): string {
  if (nid === null || nid === undefined) return 'None';
  const entry = nid === 0 ? undefined : NAMESPACES.find((e) => e.ns === nid >> 24);
  // NEO prints 0 as '0'; an id outside every namespace is shown raw.
  if (entry === undefined) return String(nid);
  return entry.letter + String(nid & NID_MAX_K);
}

/** Inverse of nidToString: 'S1' → 1, 'M1' → -268435455 (letters are case-sensitive). */
export function parseNid(text: string): number {
  const match = /^([SMCA])(\d{1,8})$/.exec(text);
  const letter = match?.[1];
  const digits = match?.[2];
  if (letter === undefined || digits === undefined) {
    throw new Error(`invalid node id ${JSON.stringify(text)}: expected S, M, C or A followed by a number`);
  }
  const k = Number(digits);
  if (k > NID_MAX_K) throw new Error(`invalid node id ${JSON.stringify(text)}: number above ${NID_MAX_K}`);
  const entry = NAMESPACES.find((e) => e.letter === letter);
  assert(entry !== undefined);
  return (entry.ns << 24) + k;
}

// ---------------------------------------------------------------------------
// Replica-check checksums (§3.6)

/**
 * SHA-1 of the ids' unsigned decimal values joined by ',', in the order given
 * (callers pass them in the order of the replica-check query), or ZERO_HASH
 * (a fresh copy) for no ids, as NEO's storages answer for an empty range.
 */
export function checksumOfIds(ids: readonly Buffer[]): Buffer {
  if (ids.length === 0) return Buffer.from(ZERO_HASH);
  const text = ids.map((id) => u64(id).toString(10)).join(',');
  return createHash('sha1').update(text, 'latin1').digest();
}
