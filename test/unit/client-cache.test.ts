import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ClientCache, LIFE_TIME } from '../../src/client/cache.js';
import { p64 } from '../../src/protocol/ids.js';

const oid = (n: number) => p64(BigInt(n));
const tid = (n: number) => p64(BigInt(n));
const data = (text: string) => Buffer.from(text);

describe('client cache (multi-queue)', () => {
  it('keeps revisions by validity range, as NEO\'s own cache test', () => {
    const cache = new ClientCache(20 * 1024 * 1024);
    assert.equal(cache.load(oid(1), tid(10)), undefined);
    assert.equal(cache.load(oid(1), null), undefined);
    cache.invalidate(oid(1), tid(10));
    cache.store(oid(1), data('5'), tid(5), tid(10));
    cache.store(oid(1), data('5'), tid(5), tid(10)); // two loaders missed at once
    assert.deepEqual(cache.load(oid(1), tid(10)), { data: data('5'), tid: tid(5), nextTid: tid(10) });
    assert.equal(cache.load(oid(1), null), undefined);
    cache.store(oid(1), data('15'), tid(15), null);
    assert.deepEqual(cache.load(oid(1), null), { data: data('15'), tid: tid(15), nextTid: null });
    cache.clearCurrent();
    assert.equal(cache.size, 1);
    assert.equal(cache.load(oid(1), null), undefined);
    cache.store(oid(1), data('15'), tid(15), null);
    cache.invalidate(oid(1), tid(20));
    assert.equal(cache.size, 3);
    cache.clearCurrent();
    assert.equal(cache.size, 3);
    assert.deepEqual(cache.load(oid(1), tid(20)), { data: data('15'), tid: tid(15), nextTid: tid(20) });
    cache.store(oid(1), data('10'), tid(10), tid(15));
    cache.store(oid(1), data('20'), tid(20), tid(21));
    assert.deepEqual(cache.loadSerial(oid(1), tid(10))?.data, data('10'));
    assert.equal(cache.loadSerial(oid(1), tid(11)), undefined);
    assert.throws(() => cache.store(oid(1), data('20'), tid(20), null));
    // A gap: nothing known between 21 and 30.
    assert.equal(cache.load(oid(1), tid(30)), undefined);
  });

  it('evicts the least used first and remembers evicted counters in history', () => {
    const cache = new ClientCache(10);
    cache.store(oid(1), data('aaaa'), tid(1), null);
    for (let i = 0; i < 5; i++) assert.ok(cache.load(oid(1), null)); // frequently used
    cache.store(oid(2), data('bbbb'), tid(1), null);
    cache.store(oid(3), data('cccc'), tid(1), null); // over 10 bytes: evict from level 1
    assert.ok(cache.size <= 10);
    assert.ok(cache.load(oid(1), null), 'the frequently used object stays');
    assert.equal(cache.load(oid(2), null), undefined, 'the least used object is evicted');
    assert.ok(cache.load(oid(3), null));
    // oid 2 had been accessed once: its counter is kept in history, without data.
    assert.equal(cache.historyLength, 1);
  });

  it('demotes items that are not accessed for LIFE_TIME accesses', () => {
    const cache = new ClientCache(1 << 20);
    cache.store(oid(1), data('x'), tid(1), null);
    cache.store(oid(2), data('y'), tid(1), null);
    for (let i = 0; i < LIFE_TIME + 10; i++) cache.load(oid(2), null);
    // oid 1 (level 1, counter 1) went to history: its data is dropped.
    assert.equal(cache.load(oid(1), null), undefined);
    assert.equal(cache.size, 1);
  });

  it('caches nothing with a size of 0, and ignores records too big', () => {
    const off = new ClientCache(0);
    off.store(oid(1), data('x'), tid(1), null);
    assert.equal(off.load(oid(1), null), undefined);
    const small = new ClientCache(4);
    small.store(oid(1), data('12345'), tid(1), null);
    assert.equal(small.itemCount, 0);
  });
});
