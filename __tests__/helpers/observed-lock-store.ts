// A real lock store (MemoryLockStore, RedisLockStore) seen from the outside: every call goes to it
// unchanged, and the test hears what each claim found (who holds a round, who waits). Optionally
// the outcomes recorded with `complete` are replaced, to plant forged or corrupt records through
// the lock store's own API.
import type { Claim, ClaimOptions, Lease, LockOptions, LockStore } from '../../src';

export interface LockStoreHooks {
  /** Told what each claim found. */
  onClaim?(key: string, claim: Claim): void;
  /** What `complete` records instead of `outcome` (return `outcome` to keep it). */
  outcome?(key: string, outcome: string): string;
}

/** `inner`, with `hooks` told of (or rewriting) what passes through. */
export function observedLockStore(inner: LockStore, hooks: LockStoreHooks): LockStore {
  return {
    acquire: (key: string, options: LockOptions) => inner.acquire(key, options),
    claim: async (key: string, options: ClaimOptions) => {
      const claim = await inner.claim(key, options);
      hooks.onClaim?.(key, claim);
      return claim;
    },
    complete: (lease: Lease, outcome: string, recordTtlMs: number) =>
      inner.complete(lease, hooks.outcome ? hooks.outcome(lease.key, outcome) : outcome, recordTtlMs),
    ...(inner.withdraw && { withdraw: (lease: Lease) => inner.withdraw!(lease) }),
    settle: (key: string, outcome: string, recordTtlMs: number) => inner.settle(key, outcome, recordTtlMs),
    waitForChange: (key: string, timeoutMs: number) => inner.waitForChange(key, timeoutMs),
    close: () => inner.close(),
    ...(inner.connect && { connect: () => inner.connect!() }),
  };
}

/** Whether a lock-store key names a round of a token flight (`flight:<hash>:<version>:<round>`, src/storage-keys.ts). */
export const isFlightKey = (key: string): boolean => key.startsWith('flight:');
