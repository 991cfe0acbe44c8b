// The in-process L1 on its own (pure bookkeeping, no store): its bounds under eviction, least
// recently used first, and the rules that keep it from serving what may be stale: nothing served
// or stored while not coherent, and no fill after an invalidation, a flush, a coherence change or
// (for reads) a write of this process to the same key.
import { L1Cache } from '../../src/cache/l1/l1-cache';

function coherentL1(maxEntries = 100, maxBytes = 1_000_000): L1Cache<string> {
  const l1 = new L1Cache<string>({ maxEntries, maxBytes });
  l1.setCoherent(true);
  return l1;
}

/** Reads `key` as if from the store: a ticket, then a fill. */
function readInto(l1: L1Cache<string>, key: string, value: string, bytes = value.length): boolean {
  return l1.fill(l1.begin(key), value, bytes);
}

describe('bounds', () => {
  it('holds at most maxEntries, dropping the least recently used first', () => {
    const l1 = coherentL1(3);
    for (const key of ['a', 'b', 'c']) readInto(l1, key, key);
    expect(l1.get('a')).toBe('a'); // a is now the most recently used: b is the oldest
    readInto(l1, 'd', 'd');
    expect(l1.get('b')).toBeUndefined();
    readInto(l1, 'e', 'e'); // c is the oldest now
    expect(['a', 'c', 'd', 'e'].map((key) => l1.get(key))).toEqual(['a', undefined, 'd', 'e']);
    expect(l1.stats).toMatchObject({ entries: 3, evictions: 2 });
  });

  it('holds at most maxBytes, evicting as many of the oldest as it takes, and never stores a value larger than the bound', () => {
    const l1 = coherentL1(100, 100);
    for (const key of ['a', 'b', 'c', 'd']) readInto(l1, key, key, 25);
    expect(l1.stats).toMatchObject({ entries: 4, bytes: 100, evictions: 0 });
    expect(readInto(l1, 'big', 'big', 60)).toBe(true); // a, b and c go: 25 + 60 <= 100
    expect(l1.stats).toMatchObject({ entries: 2, bytes: 85, evictions: 3 });
    expect(['a', 'b', 'c', 'd', 'big'].map((key) => l1.get(key))).toEqual([undefined, undefined, undefined, 'd', 'big']);
    expect(readInto(l1, 'huge', 'huge', 101)).toBe(false);
    expect(l1.stats).toMatchObject({ entries: 2, bytes: 85 });
  });

  it('replacing an entry reweighs it instead of counting it twice', () => {
    const l1 = coherentL1(2, 100);
    readInto(l1, 'a', 'a1', 40);
    readInto(l1, 'a', 'a2', 70);
    expect(l1.stats).toMatchObject({ entries: 1, bytes: 70, evictions: 0 });
    expect(l1.get('a')).toBe('a2');
  });

  it('stays within both bounds through many fills of random sizes', () => {
    const maxEntries = 50;
    const maxBytes = 5_000;
    const l1 = coherentL1(maxEntries, maxBytes);
    let seed = 7;
    const random = (below: number): number => (seed = (seed * 48271) % 2147483647) % below;
    const largest = { entries: 0, bytes: 0 };
    for (let round = 0; round < 5_000; round++) {
      const key = `k${random(400)}`;
      if (random(10) === 0) l1.invalidate(key);
      else readInto(l1, key, key, 1 + random(300));
      const { entries, bytes } = l1.stats;
      largest.entries = Math.max(largest.entries, entries);
      largest.bytes = Math.max(largest.bytes, bytes);
    }
    expect(largest.entries).toBeLessThanOrEqual(maxEntries);
    expect(largest.bytes).toBeLessThanOrEqual(maxBytes);
    expect(l1.stats.evictions).toBeGreaterThan(0);
  });
});

describe('coherence', () => {
  it('serves nothing and stores nothing until coherent', () => {
    const l1 = new L1Cache<string>({ maxEntries: 10, maxBytes: 1_000 });
    expect(readInto(l1, 'a', 'a')).toBe(false);
    expect(l1.get('a')).toBeUndefined();
    expect(l1.stats).toMatchObject({ entries: 0, misses: 1, hits: 0 });
  });

  it('losing coherence empties it and bypasses it until coherent again', () => {
    const l1 = coherentL1();
    readInto(l1, 'a', 'a');
    expect(l1.get('a')).toBe('a');
    l1.setCoherent(false);
    expect(l1.stats).toMatchObject({ entries: 0, bytes: 0, flushes: 1 });
    expect(readInto(l1, 'a', 'a')).toBe(false);
    expect(l1.get('a')).toBeUndefined();
    l1.setCoherent(true);
    expect(l1.get('a')).toBeUndefined(); // what was there before is gone, not back
    expect(readInto(l1, 'a', 'a')).toBe(true);
    expect(l1.get('a')).toBe('a');
  });

  it('a read begun before tracking started never stores: it may predate a write nobody announced', () => {
    const l1 = new L1Cache<string>({ maxEntries: 10, maxBytes: 1_000 });
    const ticket = l1.begin('a');
    l1.setCoherent(true);
    expect(l1.fill(ticket, 'old', 3)).toBe(false);
    expect(l1.get('a')).toBeUndefined();
  });

  it('a read in flight when coherence is lost and regained never stores', () => {
    const l1 = coherentL1();
    const ticket = l1.begin('a');
    l1.setCoherent(false);
    l1.setCoherent(true);
    expect(l1.fill(ticket, 'old', 3)).toBe(false);
    expect(l1.get('a')).toBeUndefined();
  });
});

describe('invalidation and flush', () => {
  it('invalidate drops the entry', () => {
    const l1 = coherentL1();
    readInto(l1, 'a', 'a', 10);
    readInto(l1, 'b', 'b', 10);
    expect(l1.invalidate('a')).toBe(true);
    expect(l1.get('a')).toBeUndefined();
    expect(l1.get('b')).toBe('b');
    expect(l1.invalidate('nothing-here')).toBe(false);
    expect(l1.stats).toMatchObject({ entries: 1, bytes: 10, invalidations: 1 });
  });

  it('an invalidation that arrives while a read of the same key is in flight leaves no entry', () => {
    const l1 = coherentL1();
    readInto(l1, 'a', 'v1');
    const ticket = l1.begin('a'); // the read is sent...
    expect(l1.invalidate('a')).toBe(true); // ...another instance writes v2 meanwhile...
    expect(l1.fill(ticket, 'v1', 2)).toBe(false); // ...and the answer, v1, arrives after
    expect(l1.get('a')).toBeUndefined();
    expect(readInto(l1, 'a', 'v2')).toBe(true); // the next read stores again
    expect(l1.get('a')).toBe('v2');
  });

  it('an invalidation of another key spoils nothing', () => {
    const l1 = coherentL1();
    const ticket = l1.begin('a');
    l1.invalidate('b');
    expect(l1.fill(ticket, 'a', 1)).toBe(true);
  });

  it('flush empties it and spoils every ticket in flight', () => {
    const l1 = coherentL1();
    readInto(l1, 'a', 'a');
    const reading = [l1.begin('a'), l1.begin('b')];
    l1.flush();
    expect(l1.stats).toMatchObject({ entries: 0, bytes: 0, flushes: 1 });
    expect(l1.get('a')).toBeUndefined();
    expect(reading.map((ticket) => l1.fill(ticket, 'old', 3))).toEqual([false, false]);
    expect(l1.stats.entries).toBe(0);
    expect(readInto(l1, 'a', 'new')).toBe(true); // tickets begun after the flush store
  });

  it('a ticket ends once: a second fill or an abandon after it changes nothing', () => {
    const l1 = coherentL1();
    const ticket = l1.begin('a');
    expect(l1.fill(ticket, 'first', 5)).toBe(true);
    expect(l1.fill(ticket, 'second', 6)).toBe(false);
    l1.abandon(ticket);
    expect(l1.get('a')).toBe('first');
  });
});

describe("this process's writes (never announced to it)", () => {
  it('a write replaces the entry with what it wrote', () => {
    const l1 = coherentL1();
    readInto(l1, 'a', 'v1');
    expect(l1.fill(l1.begin('a', 'write'), 'v2', 2)).toBe(true);
    expect(l1.get('a')).toBe('v2');
  });

  it('a read in flight when a write begins never stores its possibly older answer', () => {
    const l1 = coherentL1();
    const read = l1.begin('a');
    const write = l1.begin('a', 'write');
    expect(l1.fill(write, 'v2', 2)).toBe(true);
    expect(l1.fill(read, 'v1', 2)).toBe(false);
    expect(l1.get('a')).toBe('v2');
  });

  it('a read begun while a write is in flight never stores: it may be answered before the write lands', () => {
    const l1 = coherentL1();
    const write = l1.begin('a', 'write');
    const read = l1.begin('a');
    expect(l1.fill(read, 'v1', 2)).toBe(false);
    expect(l1.fill(write, 'v2', 2)).toBe(true);
    expect(l1.get('a')).toBe('v2');
  });

  it('a write that failed or lost its compare-and-set drops the entry: the store may hold something newer', () => {
    const l1 = coherentL1();
    readInto(l1, 'a', 'v1');
    l1.abandon(l1.begin('a', 'write'));
    expect(l1.get('a')).toBeUndefined();
  });

  it('a write spoiled by an invalidation drops the entry instead of keeping the one it replaced', () => {
    const l1 = coherentL1();
    readInto(l1, 'a', 'v1');
    const write = l1.begin('a', 'write');
    l1.invalidate('a');
    readInto(l1, 'b', 'b');
    expect(l1.fill(write, 'v2', 2)).toBe(false);
    expect(l1.get('a')).toBeUndefined();
  });

  it('a write too large to keep drops the entry it replaced', () => {
    const l1 = coherentL1(10, 10);
    readInto(l1, 'a', 'v1', 5);
    expect(l1.fill(l1.begin('a', 'write'), 'v2', 11)).toBe(false);
    expect(l1.get('a')).toBeUndefined();
  });

  it('reads of one key in flight together do not spoil each other', () => {
    const l1 = coherentL1();
    const first = l1.begin('a');
    const second = l1.begin('a');
    expect(l1.fill(first, 'v', 1)).toBe(true);
    expect(l1.fill(second, 'v', 1)).toBe(true);
    expect(l1.get('a')).toBe('v');
  });
});

it('stats count hits, misses, evictions, invalidations and flushes', () => {
  const l1 = coherentL1(1);
  l1.get('a'); // miss
  readInto(l1, 'a', 'a', 3);
  l1.get('a'); // hit
  l1.get('a'); // hit
  readInto(l1, 'b', 'b', 4); // evicts a
  l1.invalidate('b');
  l1.flush();
  expect(l1.stats).toEqual({ hits: 2, misses: 1, evictions: 1, invalidations: 1, flushes: 1, entries: 0, bytes: 0 });
});
