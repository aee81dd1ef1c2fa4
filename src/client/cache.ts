// The client cache (transactions.md §16): NEO's variant of the Multi-Queue algorithm (Zhou,
// Philbin, Li, USENIX 2001), keyed by object revision. Regular queues 1.. hold data, ordered by
// how often an item was used; queue 0 ("history") remembers the access counters of evicted
// items without their data, so a revision that comes back starts at its old level. Data is kept
// uncompressed. `maxSizeBytes` 0 disables caching.

import assert from 'node:assert/strict';

/** Accesses after which an item at the head of its queue is demoted one level. */
export const LIFE_TIME = 10_000;
/** Bound on history entries (items without data). */
export const MAX_HISTORY_SIZE = 100_000;

interface Item {
  readonly oid: string;
  readonly tid: Buffer;
  nextTid: Buffer | null;
  data: Buffer | null;
  counter: number;
  /** Queue index, or null while in no queue. */
  level: number | null;
  expire: number;
  prev: Item | null;
  next: Item | null;
}

export interface CacheHit {
  data: Buffer;
  tid: Buffer;
  nextTid: Buffer | null;
}

function bitLength(n: number): number {
  return n <= 0 ? 0 : 32 - Math.clz32(n);
}

function key(oid: Buffer): string {
  return oid.toString('hex');
}

export class ClientCache {
  maxSizeBytes: number;
  private readonly byOid = new Map<string, Item[]>();
  /** Heads of the circular lists: queues[0] is history. */
  private readonly queues: (Item | null)[] = [null];
  private time = 0;
  private sizeBytes = 0;
  private historySize = 0;
  hits = 0;
  misses = 0;

  constructor(maxSizeBytes: number) {
    assert(Number.isInteger(maxSizeBytes) && maxSizeBytes >= 0, 'cache size must be a byte count');
    this.maxSizeBytes = maxSizeBytes;
  }

  get size(): number {
    return this.sizeBytes;
  }

  get historyLength(): number {
    return this.historySize;
  }

  /** Number of revisions known (with or without data). */
  get itemCount(): number {
    let n = 0;
    for (const items of this.byOid.values()) n += items.length;
    return n;
  }

  // --- queue primitives ------------------------------------------------------------------------

  private add(item: Item): void {
    const level = item.level!;
    while (this.queues.length <= level) this.queues.push(null);
    const head = this.queues[level]!;
    if (head === null) {
      item.prev = item.next = item;
      this.queues[level] = item;
    } else {
      item.prev = head.prev;
      item.next = head;
      head.prev!.next = item;
      head.prev = item;
    }
    if (level > 0) {
      item.expire = this.time + LIFE_TIME;
      return;
    }
    this.sizeBytes -= item.data?.length ?? 0;
    item.data = null;
    this.historySize += 1;
    if (this.historySize > MAX_HISTORY_SIZE) {
      const oldest = this.queues[0]!;
      this.remove(oldest);
      this.forget(oldest);
    }
  }

  /** Unlinks `item` (decrementing its level); returns the next item of its queue, if any. */
  private remove(item: Item): Item | null {
    const level = item.level;
    if (level === null) return null;
    if (level > 0) item.level = level - 1;
    else this.historySize -= 1;
    const next = item.next === item ? null : item.next;
    if (next !== null) {
      item.prev!.next = next;
      next.prev = item.prev;
    }
    if (this.queues[level] === item) this.queues[level] = next;
    item.prev = item.next = null;
    return next;
  }

  private forget(item: Item): void {
    const items = this.byOid.get(item.oid);
    if (items === undefined) return;
    const index = items.indexOf(item);
    if (index >= 0) items.splice(index, 1);
    if (items.length === 0) this.byOid.delete(item.oid);
  }

  private fetched(item: Item): void {
    this.remove(item);
    item.counter += 1;
    item.level = bitLength(item.counter);
    this.add(item);
    this.time += 1;
    for (let level = 1; level < this.queues.length; level++) {
      const head = this.queues[level];
      if (head === null || head === undefined || head.expire >= this.time) continue;
      this.remove(head);
      if (head.level! > 0 || head.counter > 0) this.add(head);
      else {
        this.sizeBytes -= head.data?.length ?? 0;
        head.data = null;
        this.forget(head);
      }
      break; // at most one demotion per access
    }
  }

  // --- operations ------------------------------------------------------------------------------

  private lookup(oid: Buffer, before: Buffer | null): Item | undefined {
    const items = this.byOid.get(key(oid));
    if (items === undefined) return undefined;
    if (before === null) {
      const last = items[items.length - 1]!;
      return last.nextTid === null ? last : undefined;
    }
    for (let i = items.length - 1; i >= 0; i--) {
      const item = items[i]!;
      if (Buffer.compare(item.tid, before) < 0) {
        if (item.nextTid !== null && Buffer.compare(item.nextTid, before) < 0) return undefined;
        return item;
      }
    }
    return undefined;
  }

  /** The revision visible before `before` (the current one when null), or undefined on a miss. */
  load(oid: Buffer, before: Buffer | null): CacheHit | undefined {
    const item = this.lookup(oid, before);
    if (item === undefined || item.data === null || item.level === 0) {
      this.misses += 1;
      return undefined;
    }
    this.hits += 1;
    this.fetched(item);
    return { data: item.data, tid: item.tid, nextTid: item.nextTid };
  }

  /** The exact revision `tid`, or undefined. */
  loadSerial(oid: Buffer, tid: Buffer): CacheHit | undefined {
    // "Before a value just above tid": a 9-byte key sorts right after the 8-byte tid.
    const item = this.lookup(oid, Buffer.concat([tid, Buffer.from([0])]));
    if (item === undefined || !item.tid.equals(tid) || item.data === null || item.level === 0) {
      this.misses += 1;
      return undefined;
    }
    this.hits += 1;
    this.fetched(item);
    return { data: item.data, tid: item.tid, nextTid: item.nextTid };
  }

  /** Records a revision read from a storage (or committed by us: `nextTid` null). */
  store(oid: Buffer, data: Buffer, tid: Buffer, nextTid: Buffer | null): void {
    if (data.length >= this.maxSizeBytes) return;
    const k = key(oid);
    let item = this.lookup(oid, nextTid);
    if (item !== undefined) {
      assert(item.tid.equals(tid), 'cache: two revisions overlap');
      if (item.level !== null && item.level > 0) return; // already cached
      // A history entry: the revision comes back, maybe with its end learnt late.
      item.nextTid = nextTid;
    } else {
      item = { oid: k, tid, nextTid, data: null, counter: 0, level: null, expire: 0, prev: null, next: null };
      let items = this.byOid.get(k);
      if (items === undefined) this.byOid.set(k, (items = []));
      if (nextTid !== null) {
        // A historical revision: insert in tid order.
        let i = items.length;
        while (i > 0 && Buffer.compare(items[i - 1]!.tid, tid) > 0) i--;
        items.splice(i, 0, item);
      } else {
        const prev = items[items.length - 1];
        if (prev !== undefined) {
          assert(prev.nextTid !== null && Buffer.compare(prev.nextTid, tid) <= 0,
            'cache: new current revision while the previous one is still current');
          item.counter = prev.counter;
          if (prev.level !== null && prev.level > 0) {
            prev.counter = 0;
            if (prev.level > 1) this.fetched(prev);
            items.push(item);
          } else {
            this.remove(prev);
            items[items.length - 1] = item;
          }
        } else {
          items.push(item);
        }
      }
    }
    item.data = data;
    this.sizeBytes += data.length;
    this.fetched(item);
    if (this.sizeBytes > this.maxSizeBytes) this.evict();
  }

  private evict(): void {
    for (let level = 1; level < this.queues.length; level++) {
      let head = this.queues[level] ?? null;
      while (head !== null) {
        const next = this.remove(head);
        if (head.counter > 0) {
          head.level = 0;
          this.add(head);
        } else {
          this.sizeBytes -= head.data?.length ?? 0;
          head.data = null;
          this.forget(head);
        }
        if (this.sizeBytes <= this.maxSizeBytes) return;
        head = next;
      }
    }
  }

  /** The current revision of `oid` ended at `tid`. */
  invalidate(oid: Buffer, tid: Buffer): void {
    const items = this.byOid.get(key(oid));
    const last = items?.[items.length - 1];
    if (last !== undefined && last.nextTid === null) last.nextTid = tid;
  }

  /** Forgets every current revision (historical ones stay valid). */
  clearCurrent(): void {
    for (const [k, items] of [...this.byOid]) {
      const last = items[items.length - 1]!;
      if (last.nextTid !== null) continue;
      if (last.level !== null && last.level > 0) {
        this.sizeBytes -= last.data?.length ?? 0;
        last.data = null;
      }
      this.remove(last);
      items.pop();
      if (items.length === 0) this.byOid.delete(k);
    }
  }

  clear(): void {
    this.byOid.clear();
    this.queues.length = 0;
    this.queues.push(null);
    this.time = 0;
    this.sizeBytes = 0;
    this.historySize = 0;
    this.hits = 0;
    this.misses = 0;
  }
}
