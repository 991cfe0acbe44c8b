// Edge 12: a write that keeps losing its compare-and-set gives up after lockWaitTimeoutMs (time,
// not a count of rounds), with ERR_LOCK_TIMEOUT. Only time matters, so the clock is Jest's fake one.
import { internalsOf } from '../../src/cache/cache-internals';
import Keyv from 'keyv';
import { DistributedTokenCache, LockTimeoutError, PartitionKey } from '../../src';
import type { PartitionEvent, StoreErrorEvent } from '../../src';
import { parseCacheDocument } from '../../src/cache/cache-document';
import { RECORD_FORMAT } from '../../src/cache/partition-store';
import { rejectionOf } from '../helpers/assertions';
import { appTokenJson } from '../helpers/cache-documents';

const lockWaitTimeoutMs = 1_000;
const partition = PartitionKey.forApp('00000000-0000-4000-8000-00000000c11e', 'tenant');
const appToken = appTokenJson;

/**
 * A Map-backed Keyv store with a rival writer that always lands first: every read of a partition
 * finds a version written just before it, as under a writer in another process that never pauses.
 */
class AlwaysOvertakenStore {
  private readonly data = new Map<string, unknown>();
  private round = 0;

  async get(key: string): Promise<unknown> {
    if (key.includes('cache:{')) {
      const record = { format: RECORD_FORMAT, version: `rival-${++this.round}`, partition: partition.hash, cache: appToken('rival') };
      this.data.set(key, JSON.stringify({ value: record }));
    }
    return this.data.get(key);
  }

  async set(key: string, value: unknown): Promise<boolean> {
    this.data.set(key, value);
    return true;
  }

  async delete(key: string): Promise<boolean> {
    return this.data.delete(key);
  }

  async clear(): Promise<void> {
    this.data.clear();
  }
}

afterEach(() => jest.useRealTimers());

it('Edge 12: a write that loses every round backs off and gives up with ERR_LOCK_TIMEOUT after lockWaitTimeoutMs, not after a count of rounds', async () => {
  jest.useFakeTimers();
  const cache = new DistributedTokenCache({ store: new Keyv({ store: new AlwaysOvertakenStore() }), lockWaitTimeoutMs });
  const conflicts: PartitionEvent[] = [];
  const errors: StoreErrorEvent[] = [];
  cache.on('cache:conflict', (event) => conflicts.push(event));
  cache.on('store:error', (event) => errors.push(event));

  const write = rejectionOf(internalsOf(cache).repository.write(partition, undefined, parseCacheDocument(appToken('mine'))!));
  let settled = false;
  void write.finally(() => (settled = true));
  await jest.advanceTimersByTimeAsync(lockWaitTimeoutMs - 1);
  expect({ settled, roundsLost: conflicts.length > 1 }).toEqual({ settled: false, roundsLost: true }); // still trying, with backoff
  await jest.advanceTimersByTimeAsync(1);
  const error = await write;

  expect(error).toBeInstanceOf(LockTimeoutError);
  expect(error.code).toBe('ERR_LOCK_TIMEOUT');
  expect(error.message).toMatch(/kept changing under other writers for 1000 ms .*; retry later or raise lockWaitTimeoutMs$/);
  expect(errors).toEqual([expect.objectContaining({ operation: 'write', outcome: 'thrown', code: 'ERR_LOCK_TIMEOUT', error })]);
  await cache.close();
});
