// TokenFlights on a real MemoryLockStore: a round that ends between a waiter's claim (which found
// it busy) and the start of the waiter's wait publishes its change before the waiter listens. The
// waiter listens first and then claims again, so it takes the outcome at once instead of sleeping
// through a poll interval (the benchmark saw waiters 55 ms late from this race).
import { createHmac } from 'node:crypto';
import { MemoryLockStore } from '../../src';
import { TokenFlights } from '../../src/flight/token-flights';
import { sealFlightOutcome } from '../../src/flight/flight-outcome';
import type { RecordMac } from '../../src/flight/flight-outcome';
import { flightClaimKey } from '../../src/storage-keys';

const mac: RecordMac = {
  macRecord: (name, text) => createHmac('sha256', 'test key').update(`${name}\u0000${text}`).digest('base64url'),
  verifyRecord: (name, text, given) => given === mac.macRecord(name, text),
};
const LEASE_MS = 15_000;
const RECORD_TTL_MS = 90_000;

it('a waiter whose round ends between its claim and its wait takes the outcome without waiting for a wake-up or a poll', async () => {
  const lockStore = new MemoryLockStore();
  const flights = new TokenFlights({
    lockStore,
    mac,
    events: () => undefined,
    lockStoreError: () => undefined,
    settings: { leaseMs: LEASE_MS, waitTimeoutMs: 45_000, lockStoreFailure: 'fail-closed', strictRotation: false },
  });
  const key = flightClaimKey('flight-hash', 'v1', 0);
  const holder = await lockStore.claim(key, { leaseMs: LEASE_MS, recordTtlMs: RECORD_TTL_MS });
  if (holder.state !== 'claimed') throw new Error(`the holder's claim found ${holder.state}`);

  const log: string[] = [];
  const claim = lockStore.claim.bind(lockStore);
  let ended = false;
  lockStore.claim = async (claimKey, options) => {
    const found = await claim(claimKey, options);
    log.push(`claim: ${found.state}`);
    if (found.state === 'busy' && !ended) {
      // The holder records its outcome (and the store publishes the change) after the waiter's
      // claim found the round busy and before the waiter can start waiting.
      ended = true;
      await lockStore.complete(holder.lease, sealFlightOutcome({ state: 'ok', shape: 'shape' }, mac, key), RECORD_TTL_MS);
      log.push('holder: completed');
    }
    return found;
  };
  const waitForChange = lockStore.waitForChange.bind(lockStore);
  lockStore.waitForChange = (changeKey, timeoutMs) => waitForChange(changeKey, timeoutMs).then(() => void log.push('wait: ended'));

  const answer = await flights.run(
    {
      grant: 'refresh_token',
      hash: 'flight-hash',
      shape: 'shape',
      read: () => Promise.resolve({ version: 'v1', unavailable: false }),
      fromCache: (_read, afterFlight) => Promise.resolve(afterFlight ? 'tokens from the holder' : undefined),
      send: () => Promise.reject(new Error('a waiter never sends')),
    },
    { version: 'v1', unavailable: false },
  );
  log.push('answered');

  expect(answer).toBe('tokens from the holder');
  // Answered on the claim made after it began to listen; its wait (begun before that claim) had not ended.
  expect(log.slice(0, 4)).toEqual(['claim: busy', 'holder: completed', 'claim: done', 'answered']);
  await lockStore.close(); // ends the wait left behind
});
