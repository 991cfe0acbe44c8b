// The app process of the memory benchmark (run with --expose-gc): DistributedClientApplication with
// default settings but the L1's byte bound (L1_MAX_BYTES), tokens in Redis, locks in Redis
// (LOCK_STORE=redis) or in memory (LOCK_STORE=memory, the default lock store). Redeems the codes it
// is sent, CONCURRENCY at a time, and reports its heap, its in-process maps and what its L1 holds.
import Keyv from 'keyv';
import KeyvRedis from '@keyv/redis';
import { DistributedClientApplication, DistributedTokenCache, MemoryLockStore, RedisLockStore } from '../../src';
import { l1Figures } from '../lib/l1';
import { collectGarbage } from '../lib/stats';
import { describe, env, msalConfigFromEnv, serve } from '../lib/worker-serve';

type CodeRequest = { code: string; codeVerifier: string; redirectUri: string; scopes: string[] };

const concurrency = Number(env('CONCURRENCY'));
const lockStore =
  env('LOCK_STORE') === 'memory' ? new MemoryLockStore() : new RedisLockStore({ url: env('REDIS_URL'), keyPrefix: env('KEY_PREFIX') });
const cache = new DistributedTokenCache({
  store: new Keyv({ store: new KeyvRedis(env('REDIS_URL')) }),
  keyPrefix: env('KEY_PREFIX'),
  lockStore,
  l1: { maxBytes: Number(env('L1_MAX_BYTES')) },
});
const app = new DistributedClientApplication(msalConfigFromEnv(), { cache });

/** Codes waiting for a lane, and the batch each belongs to. */
const queue: { request: CodeRequest; batch: Batch }[] = [];
interface Batch {
  remaining: number;
  failed: number;
  firstError?: string;
  done: () => void;
}
let lanes = 0;

function pump(): void {
  while (lanes < concurrency && queue.length) {
    const { request, batch } = queue.shift()!;
    lanes++;
    app
      .acquireTokenByCode(request)
      .catch((error: unknown) => {
        batch.failed++;
        batch.firstError ??= describe(error);
      })
      .finally(() => {
        lanes--;
        if (--batch.remaining === 0) batch.done();
        pump();
      });
  }
}

serve(
  {
    /** Queues a batch; resolves when all its codes are redeemed (lanes stay busy with the next batch). */
    redeem: (args) =>
      new Promise((resolve) => {
        const requests = (args as { requests: CodeRequest[] }).requests;
        const batch: Batch = {
          remaining: requests.length,
          failed: 0,
          done: () => resolve({ failed: batch.failed, firstError: batch.firstError }),
        };
        for (const request of requests) queue.push({ request, batch });
        pump();
      }),
    stats: async (args) => {
      if ((args as { gc?: boolean }).gc) await collectGarbage();
      return {
        heapUsed: process.memoryUsage().heapUsed,
        redemptionsInFlight: app.redemptionsInFlight,
        waitingKeys: lockStore instanceof RedisLockStore ? lockStore.waitingKeys : null,
        activeKeys: lockStore instanceof MemoryLockStore ? lockStore.activeKeys : null,
        l1: l1Figures(cache),
        queued: queue.length,
        lanes,
      };
    },
  },
  () => cache.close(),
);
