// Two app instances in this process that share one flight: each its own cache (so no joining in
// process) on one token store and one MemoryLockStore, and a way to run a call on both while the
// fake Entra ID holds its answers, until the second has found the first's flight busy.
import { once } from 'node:events';
import Keyv from 'keyv';
import { DistributedClientApplication, DistributedTokenCache, MemoryLockStore } from '../../src';
import type { DistributedTokenCacheOptions } from '../../src';
import type { FakeEntraId } from '../../src/testing';
import type { Cleanup } from './entra';
import { isFlightKey, observedLockStore } from './observed-lock-store';

export interface FlightPair {
  apps: [DistributedClientApplication, DistributedClientApplication];
  /**
   * Runs `call` on the first app, and once its request is at the fake (its answer held), on the
   * second; lets the answer go once the second found the flight busy. Both outcomes.
   */
  inOneFlight<T>(call: (app: DistributedClientApplication) => Promise<T>): Promise<PromiseSettledResult<T>[]>;
}

export function flightPair(
  entra: FakeEntraId,
  cacheOptions: Pick<DistributedTokenCacheOptions, 'telemetry'>,
  cleanups: { push: (...cleanups: Cleanup[]) => void },
): FlightPair {
  const store = new Keyv();
  let busyClaims = 0;
  const waiting: (() => void)[] = [];
  const lockStore = observedLockStore(new MemoryLockStore(), {
    onClaim: (key, claim) => {
      if (!isFlightKey(key) || claim.state !== 'busy') return;
      busyClaims++;
      waiting.splice(0).forEach((resolve) => resolve());
    },
  });
  const apps = [0, 1].map(() => {
    const cache = new DistributedTokenCache({ store, lockStore, ...cacheOptions });
    const app = new DistributedClientApplication(entra.msalConfig(), { cache });
    cleanups.push(
      () => cache.close(),
      () => app.close(),
    );
    return app;
  }) as [DistributedClientApplication, DistributedClientApplication];
  const busy = (): Promise<void> => (busyClaims > 0 ? Promise.resolve() : new Promise((resolve) => waiting.push(resolve)));
  return {
    apps,
    async inOneFlight(call) {
      busyClaims = 0;
      const release = entra.holdTokenResponses();
      try {
        const arrived = once(entra, 'token-request');
        const holder = call(apps[0]);
        await arrived;
        const waiter = call(apps[1]);
        await busy();
        release();
        return await Promise.allSettled([holder, waiter]);
      } finally {
        release();
      }
    },
  };
}
