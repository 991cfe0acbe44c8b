/**
 * What RedisInvalidations drives: forwards to the L1 and reports each drop of something the L1
 * held as a `cache:invalidate` event (partitions named by hash only, as in every event).
 */
import type { EventSink, TokenCacheEvents } from '../../events';
import { partitionHashOfStorageKey } from '../../storage-keys';
import type { L1Cache } from './l1-cache';
import type { L1Sink } from './redis-invalidations';

/** @param keyPrefix - the cache's key prefix, to name an invalidated partition by its hash */
export function reportingSink(l1: L1Cache<unknown>, emit: EventSink<TokenCacheEvents>, keyPrefix: string): L1Sink {
  return {
    setCoherent(coherent) {
      const lost = !coherent && l1.coherent;
      l1.setCoherent(coherent);
      if (lost) emit('cache:invalidate', { reason: 'tracking-lost' });
    },
    invalidate(storageKey) {
      if (!l1.invalidate(storageKey)) return;
      const partitionHash = partitionHashOfStorageKey(keyPrefix, storageKey);
      emit('cache:invalidate', partitionHash === undefined ? { reason: 'write-elsewhere' } : { partitionHash, reason: 'write-elsewhere' });
    },
    flush() {
      l1.flush();
      emit('cache:invalidate', { reason: 'flush' });
    },
  };
}
