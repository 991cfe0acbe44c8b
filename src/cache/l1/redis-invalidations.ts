/**
 * PLACEHOLDER, branch i14-l1-core only: the lead replaces this file at merge with l1-redis's
 * implementation (branch i14-l1-redis). It has the agreed signature and never tracks: it never
 * makes the L1 coherent, so the L1 is always bypassed and the cache behaves as without one.
 *
 * RedisInvalidations keeps an L1 coherent with Redis (client-side tracking on a dedicated RESP3
 * connection); see /tmp/i14-design.md.
 */
import type { KeyvRedisLike, RedisScriptingClient } from '../redis-partition-store';

/** What RedisInvalidations keeps coherent (an L1Cache). */
export interface L1Sink {
  setCoherent(coherent: boolean): void;
  invalidate(storageKey: string): void;
  flush(): void;
}

export class RedisInvalidations {
  /**
   * @param store - the @keyv/redis store
   * @param l1 - what to keep coherent (an L1Cache)
   * @param options - `trackedPrefix`: storage-key prefix to track (`<keyPrefix>cache:`);
   *   `namespace`: the Keyv namespace, or undefined; `timeoutMs`: deadline of each tracking command
   */
  constructor(
    readonly store: KeyvRedisLike,
    readonly l1: L1Sink,
    readonly options: { trackedPrefix: string; namespace: string | undefined; timeoutMs: number },
  ) {}

  /** Starts tracking in the background (the placeholder never does). */
  start(): void {}

  /** The tracking connection while coherent (the placeholder never is). */
  writeClient(): RedisScriptingClient | undefined {
    return undefined;
  }

  /** Idempotent, bounded by timeoutMs. */
  async close(): Promise<void> {}
}
