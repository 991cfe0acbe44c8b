// What the benchmarks know of the in-process L1 (issue 14), in one place: the option that turns it
// off, the level a `cache:hit` reports, the event an invalidation emits, and the bound whose heap
// the docs state. If a name differs in the library, adapt it here.
import type { EventEmitter } from 'node:events';
import type { DistributedTokenCache, DistributedTokenCacheOptions } from '../../src';
import { internalsOf } from '../../src/cache/cache-internals';

/** The cache option: not set = the default (on for @keyv/redis stores), `false` = off. */
export function l1Options(options: DistributedTokenCacheOptions, l1: 'default' | 'off'): DistributedTokenCacheOptions {
  return l1 === 'default' ? options : ({ ...options, l1: false } as DistributedTokenCacheOptions);
}

/** The event a cache emits when its L1 drops what it held, and what it names. */
export const INVALIDATION_EVENT = 'cache:invalidate';

export interface Invalidation {
  /** The partition dropped; `undefined` when the whole L1 was emptied. */
  partitionHash: string | undefined;
  reason: string;
}

function invalidationOf(payload: unknown): Invalidation {
  const event = payload as { partitionHash?: unknown; reason?: unknown };
  return {
    partitionHash: typeof event?.partitionHash === 'string' ? event.partitionHash : undefined,
    reason: typeof event?.reason === 'string' ? event.reason : 'unknown',
  };
}

/** Calls `listener` on every invalidation of `cache`'s L1; returns a function that stops listening. */
export function onInvalidation(cache: DistributedTokenCache, listener: (invalidation: Invalidation) => void): () => void {
  const emitter = cache as unknown as EventEmitter;
  const handler = (payload: unknown): void => listener(invalidationOf(payload));
  emitter.on(INVALIDATION_EVENT, handler);
  return () => void emitter.off(INVALIDATION_EVENT, handler);
}

/** `cache:hit` events counted by `level`: `'unknown'` when the event carries none (a build without the L1). */
export class HitLevels {
  l1 = 0;
  store = 0;
  unknown = 0;
  readonly #stop: () => void;

  constructor(cache: DistributedTokenCache) {
    const handler = (event: object): void => {
      const level = (event as { level?: unknown }).level;
      if (level === 'l1') this.l1++;
      else if (level === 'store') this.store++;
      else this.unknown++;
    };
    cache.on('cache:hit', handler);
    this.#stop = () => void cache.off('cache:hit', handler);
  }

  reset(): void {
    this.l1 = this.store = this.unknown = 0;
  }

  /** Hits answered from the L1, of all hits; `NaN` without hits. */
  get l1Rate(): number {
    return this.l1 / (this.l1 + this.store + this.unknown);
  }

  /** Whether any hit said where it came from (the library has an L1). */
  get levelsReported(): boolean {
    return this.l1 + this.store > 0;
  }

  snapshot(): { l1: number; store: number; unknown: number } {
    return { l1: this.l1, store: this.store, unknown: this.unknown };
  }

  stop(): void {
    this.#stop();
  }
}

/** The default bound of the L1 (docs/token-cache.md, "In-process L1"): entries, and bytes of estimated heap. */
export const L1_DEFAULT_MAX_ENTRIES = 10_000;
export const L1_DEFAULT_MAX_BYTES = 64 * 1024 * 1024;

/** `12.3 %`, or `n/a`. */
export function percent(value: number): string {
  return Number.isFinite(value) ? `${(value * 100).toFixed(1)} %` : 'n/a';
}

/** What a cache's L1 holds now, by its own weighing of each partition, and what it has dropped. */
export interface L1Figures {
  entries: number;
  /** The estimated heap of what it holds (the weighing `maxBytes` bounds). */
  bytes: number;
  maxBytes: number;
  /** Entries dropped to make room: more than 0 once it has been full. */
  evictions: number;
  /** Times it was emptied (a flush, or coherence lost). */
  flushes: number;
}

/** The L1's figures, or `null` when the cache has none. */
export function l1Figures(cache: DistributedTokenCache): L1Figures | null {
  const l1 = internalsOf(cache).l1;
  if (!l1) return null;
  const { entries, bytes, evictions, flushes } = l1.stats;
  return { entries, bytes, maxBytes: l1.bounds.maxBytes, evictions, flushes };
}
