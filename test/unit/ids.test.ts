import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  ZERO_TID, ZERO_OID, INVALID_TID, INVALID_OID, MAX_TID, ZERO_HASH, INVALID_PARTITION,
  p64, u64, tidToHex, oidToHex, hexToTid, compareIds, partitionOf,
  tidFromTime, timeFromTid, tidToDate, addTid, nextTid, finalTid,
  nidNamespace, makeNid, nidToString, parseNid, nidType, checksumOfIds,
} from '../../src/protocol/ids.js';

const MASTER = 0;
const STORAGE = 1;
const CLIENT = 2;
const ADMIN = 3;
const LOW_MAX = 0xffffffff;

// A TID built straight from the formula of protocol.md §3.4.
function tidOf(year: number, month: number, day: number, hour: number, minute: number, low: number): Buffer {
  const high = ((((year - 1900) * 12 + (month - 1)) * 31 + (day - 1)) * 24 + hour) * 60 + minute;
  const b = Buffer.alloc(8);
  b.writeUInt32BE(high, 0);
  b.writeUInt32BE(low, 4);
  return b;
}

function utcSeconds(year: number, month: number, day: number, hour = 0, minute = 0, second = 0): number {
  return Date.UTC(year, month - 1, day, hour, minute, second) / 1000;
}

// xorshift64*: a fixed seed makes every run check the same ids.
function makeRandom(seed: bigint): () => bigint {
  let state = seed;
  return () => {
    state ^= state >> 12n;
    state ^= (state << 25n) & 0xffffffffffffffffn;
    state ^= state >> 27n;
    return (state * 0x2545f4914f6cdd1dn) & 0xffffffffffffffffn;
  };
}

describe('constants', () => {
  it('have the values of protocol.md §3.1', () => {
    assert.equal(ZERO_TID.toString('hex'), '0000000000000000');
    assert.equal(ZERO_OID.toString('hex'), '0000000000000000');
    assert.equal(INVALID_TID.toString('hex'), 'ffffffffffffffff');
    assert.equal(INVALID_OID.toString('hex'), 'ffffffffffffffff');
    assert.equal(MAX_TID.toString('hex'), '7fffffffffffffff');
    assert.deepEqual(ZERO_HASH, Buffer.alloc(20));
    assert.equal(INVALID_PARTITION, 0xffffffff);
  });
});

describe('64-bit ids', () => {
  it('p64 and u64 are inverse and big-endian', () => {
    assert.equal(p64(257684787499560686n).toString('hex'), '03937af2eeeeeeee');
    assert.equal(u64(hexToTid('03937af2eeeeeeee')), 257684787499560686n);
    assert.equal(u64(p64(0xffffffffffffffffn)), 0xffffffffffffffffn);
    assert.throws(() => p64(-1n), RangeError);
    assert.throws(() => p64(1n << 64n), RangeError);
  });

  it('dumps as 16 lower-case hex digits and parses back', () => {
    assert.equal(tidToHex(p64(0x1dbn)), '00000000000001db');
    assert.equal(oidToHex(MAX_TID), '7fffffffffffffff');
    assert.deepEqual(hexToTid('03937AF2EEEEEEEE'), p64(257684787499560686n));
    assert.throws(() => hexToTid('1db'), /invalid TID/);
    assert.throws(() => hexToTid('0x00000000000001'), /invalid TID/);
  });

  it('compares as unsigned integers', () => {
    assert.ok(compareIds(MAX_TID, INVALID_TID) < 0);
    assert.ok(compareIds(p64(0x80n << 56n), MAX_TID) > 0);
    assert.equal(compareIds(p64(5n), p64(5n)), 0);
    assert.ok(compareIds(ZERO_TID, p64(1n)) < 0);
  });
});

describe('partitionOf', () => {
  it('matches u64 % n for random ids', () => {
    const random = makeRandom(0x9e3779b97f4a7c15n);
    const counts = [1, 2, 3, 7, 12, 100, 1009, 65536, 0x3ffffff, 0x4000001, 0x7fffffff, 0xffffffff];
    for (let i = 0; i < 2000; i++) {
      const value = random();
      const n = counts[i % counts.length] ?? 1;
      assert.equal(partitionOf(p64(value), n), Number(value % BigInt(n)), `${value} % ${n}`);
    }
  });

  it('puts the extreme ids where u64 % n says', () => {
    assert.equal(partitionOf(INVALID_TID, 12), Number(0xffffffffffffffffn % 12n));
    assert.equal(partitionOf(ZERO_OID, 12), 0);
    assert.throws(() => partitionOf(ZERO_OID, 0));
  });
});

describe('TIDs and time (ZODB TimeStamp)', () => {
  it('gives the worked examples of §3.4', () => {
    assert.equal(tidToHex(tidFromTime(utcSeconds(2024, 1, 1))), '03f58e0000000000');
    const tid = tidFromTime(1325421296.0);
    assert.equal(tidToHex(tid), '03937af2eeeeeeee');
    assert.equal(u64(tid), 257684787499560686n);
  });

  it('counts every month as 31 days in the high 32 bits', () => {
    assert.deepEqual(tidFromTime(utcSeconds(2023, 3, 1, 12, 34)), tidOf(2023, 3, 1, 12, 34, 0));
    assert.deepEqual(tidFromTime(utcSeconds(1900, 1, 1)), ZERO_TID);
    assert.deepEqual(tidFromTime(utcSeconds(1970, 1, 1)), tidOf(1970, 1, 1, 0, 0, 0));
  });

  it('scales the seconds within the minute by 2^32/60 and truncates', () => {
    const tid = tidFromTime(utcSeconds(2024, 6, 30, 23, 59) + 30.5);
    assert.equal(tid.readUInt32BE(4), Math.trunc(30.5 / (60 / 2 ** 32)));
    assert.equal(tidFromTime(utcSeconds(2024, 6, 30, 23, 59) + 59.9999999999).readUInt32BE(4) <= LOW_MAX, true);
  });

  it('converts back to the same time (timeTime)', () => {
    assert.equal(timeFromTid(tidFromTime(1704067200)), 1704067200);
    assert.equal(timeFromTid(ZERO_TID), utcSeconds(1900, 1, 1));
    const random = makeRandom(42n);
    for (let i = 0; i < 1000; i++) {
      // Times from 1970 to about 2106, with a fraction of a second.
      const t = Number(random() % 0x100000000000n) / 1024;
      const back = timeFromTid(tidFromTime(t));
      assert.ok(back <= t + 1e-6 && t - back < 60 / 2 ** 32 + 1e-6, `${t} → ${back}`);
    }
  });

  it('prints a TID as neoctl does', () => {
    assert.equal(tidToDate(hexToTid('040d2d82bf5eb2dd')), '2026-11-22 02:42:44.852324');
    assert.equal(tidToDate(hexToTid('040d2d82b10ef703')), '2026-11-22 02:42:41.498075');
    assert.equal(tidToDate(ZERO_TID), '1900-01-01 00:00:00');
    assert.equal(tidToDate(tidOf(2012, 1, 1, 12, 34, 0xeeeeeeee)), '2012-01-01 12:34:55.999999');
  });
});

describe('addTid', () => {
  it('adds within the minute without touching the date', () => {
    assert.deepEqual(addTid(tidOf(2024, 5, 5, 5, 5, 10), 5), tidOf(2024, 5, 5, 5, 5, 15));
    assert.deepEqual(addTid(tidOf(2024, 5, 5, 5, 5, 10), -10), tidOf(2024, 5, 5, 5, 5, 0));
  });

  const carries: Array<[string, Buffer, Buffer]> = [
    ['minute', tidOf(2024, 1, 1, 0, 0, LOW_MAX), tidOf(2024, 1, 1, 0, 1, 0)],
    ['hour', tidOf(2024, 1, 1, 10, 59, LOW_MAX), tidOf(2024, 1, 1, 11, 0, 0)],
    ['day', tidOf(2023, 3, 15, 23, 59, LOW_MAX), tidOf(2023, 3, 16, 0, 0, 0)],
    ['30-day month', tidOf(2023, 4, 30, 23, 59, LOW_MAX), tidOf(2023, 5, 1, 0, 0, 0)],
    ['Feb 28 of a common year', tidOf(2023, 2, 28, 23, 59, LOW_MAX), tidOf(2023, 3, 1, 0, 0, 0)],
    ['Feb 28 of a leap year', tidOf(2024, 2, 28, 23, 59, LOW_MAX), tidOf(2024, 2, 29, 0, 0, 0)],
    ['Feb 29', tidOf(2024, 2, 29, 23, 59, LOW_MAX), tidOf(2024, 3, 1, 0, 0, 0)],
    ['Feb 28, 1900 (not leap)', tidOf(1900, 2, 28, 23, 59, LOW_MAX), tidOf(1900, 3, 1, 0, 0, 0)],
    ['Feb 28, 2000 (leap)', tidOf(2000, 2, 28, 23, 59, LOW_MAX), tidOf(2000, 2, 29, 0, 0, 0)],
    ['Dec 31', tidOf(2023, 12, 31, 23, 59, LOW_MAX), tidOf(2024, 1, 1, 0, 0, 0)],
  ];
  for (const [boundary, before, after] of carries) {
    it(`carries across the ${boundary} boundary and borrows back`, () => {
      assert.deepEqual(addTid(before, 1), after);
      assert.deepEqual(addTid(after, -1), before);
    });
  }

  it('applies a carry of several minutes on the real calendar', () => {
    const oneDay = 2 ** 32 * 60 * 24;
    assert.deepEqual(addTid(tidOf(2024, 2, 28, 12, 0, 7), oneDay), tidOf(2024, 2, 29, 12, 0, 7));
    assert.deepEqual(addTid(tidOf(2023, 2, 28, 12, 0, 7), oneDay), tidOf(2023, 3, 1, 12, 0, 7));
    assert.deepEqual(addTid(tidOf(2024, 3, 1, 0, 0, 5), -(2 ** 32) - 10), tidOf(2024, 2, 29, 23, 58, LOW_MAX - 4));
  });

  it('leaves its argument unchanged and refuses dates before 1900', () => {
    const tid = tidOf(2024, 1, 1, 0, 0, LOW_MAX);
    const copy = Buffer.from(tid);
    addTid(tid, 1);
    assert.deepEqual(tid, copy);
    assert.throws(() => addTid(ZERO_TID, -1), RangeError);
  });
});

describe('master TID generation', () => {
  it('nextTid uses the candidate only when it is above the last TID', () => {
    const last = tidOf(2024, 2, 29, 23, 59, LOW_MAX);
    const later = tidOf(2024, 3, 1, 0, 5, 0);
    assert.deepEqual(nextTid(later, last), later);
    assert.notEqual(nextTid(later, last), later);
    assert.deepEqual(nextTid(last, last), tidOf(2024, 3, 1, 0, 0, 0));
    assert.deepEqual(nextTid(tidOf(2024, 1, 1, 0, 0, 0), last), tidOf(2024, 3, 1, 0, 0, 0));
  });

  it('finalTid keeps the partition of the TTID and stays above the last TID', () => {
    const random = makeRandom(7n);
    const base = u64(tidOf(2024, 1, 31, 23, 59, 0));
    for (let i = 0; i < 3000; i++) {
      const np = 1 + Number(random() % 20n);
      const last = p64(base + (random() % 0x100000000n));
      const ttid = addTid(last, -Number(random() % 1000n));
      // The clock may be behind the last TID, or a little ahead.
      const now = addTid(last, Number(random() % 2000n) - 1000);
      const tid = finalTid(now, ttid, last, np);
      assert.equal(partitionOf(tid, np), partitionOf(ttid, np));
      assert.ok(compareIds(tid, last) > 0 || (tid.equals(ttid) && ttid.equals(last)));
    }
  });

  it('finalTid holds when the adjustment crosses the end of a short month', () => {
    for (let np = 1; np <= 16; np++) {
      for (let k = 0; k < 24; k++) {
        const last = tidOf(2023, 2, 28, 23, 59, LOW_MAX - k);
        for (let r = 0; r < np; r++) {
          const ttid = addTid(last, -r);
          for (const now of [last, addTid(last, 1), addTid(last, 2)]) {
            const tid = finalTid(now, ttid, last, np);
            assert.equal(partitionOf(tid, np), partitionOf(ttid, np), `np=${np} k=${k} r=${r}`);
            assert.ok(compareIds(tid, last) > 0 || (r === 0 && now === last && tid.equals(last)));
          }
        }
      }
    }
  });

  it('finalTid prefers moving back a little to drifting ahead', () => {
    const last = tidOf(2024, 6, 1, 12, 0, 1000);
    const now = tidOf(2024, 6, 1, 12, 1, 500);
    const ttid = tidOf(2024, 6, 1, 12, 0, 900);
    const tid = finalTid(now, ttid, last, 12);
    assert.equal(partitionOf(tid, 12), partitionOf(ttid, 12));
    assert.ok(compareIds(tid, now) <= 0 && compareIds(tid, last) > 0);
  });

  it('finalTid is the TTID itself when the TTID is the last TID and the clock is behind', () => {
    const ttid = tidOf(2024, 6, 1, 12, 0, 1000);
    assert.deepEqual(finalTid(tidOf(2024, 6, 1, 11, 0, 0), ttid, ttid, 12), ttid);
  });
});

describe('node ids', () => {
  it('prints ids as NEO logs them', () => {
    assert.equal(nidToString(1), 'S1');
    assert.equal(nidToString(-268435455), 'M1');
    assert.equal(nidToString(-536870911), 'C1');
    assert.equal(nidToString(-805306367), 'A1');
    assert.equal(nidToString(null), 'None');
    assert.equal(nidToString(0), '0');
  });

  it('parses printed ids back', () => {
    assert.equal(parseNid('S1'), 1);
    assert.equal(parseNid('M1'), -268435455);
    assert.equal(parseNid('C1'), -536870911);
    assert.equal(parseNid('A1'), -805306367);
    assert.equal(parseNid('S16777215'), 0xffffff);
    for (const bad of ['', 'S', 's1', 'X1', 'S-1', 'S 1', 'S16777216', 'None']) {
      assert.throws(() => parseNid(bad), /invalid node id/, bad);
    }
  });

  it('allocates ids in the namespace of their node type', () => {
    assert.equal(nidNamespace(STORAGE), 0x00);
    assert.equal(nidNamespace(MASTER), -0x10);
    assert.equal(nidNamespace(CLIENT), -0x20);
    assert.equal(nidNamespace(ADMIN), -0x30);
    assert.equal(makeNid(STORAGE, 1), 1);
    assert.equal(makeNid(MASTER, 1), -268435455);
    assert.equal(makeNid(CLIENT, 1), -536870911);
    assert.equal(makeNid(ADMIN, 3), -805306365);
    for (const type of [MASTER, STORAGE, CLIENT, ADMIN]) {
      const nid = makeNid(type, 42);
      assert.equal(nidType(nid), type);
      assert.equal(parseNid(nidToString(nid)), nid);
    }
    assert.equal(nidType(0), null);
    assert.throws(() => nidNamespace(4), /unknown node type/);
  });
});

describe('replica-check checksums', () => {
  it('hash the decimal values joined by commas', () => {
    const checksum = checksumOfIds([p64(1234n), p64(1240n)]);
    assert.equal(checksum.toString('hex'), '2e8e08b06d40f0e265b2cd194397e2ba130fac5c');
  });

  it('are ZERO_HASH for an empty range', () => {
    assert.deepEqual(checksumOfIds([]), ZERO_HASH);
  });
});
