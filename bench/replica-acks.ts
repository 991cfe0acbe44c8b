// What WAIT costs per redemption: 300 claims (and completes) one after another, and 300 at once,
// on a primary with one replica on loopback, with replicaAcks 'auto' (WAIT for the replica) and 0.
// Prints, asserts nothing. Run: node --import tsx bench/replica-acks.ts
import { randomUUID } from 'node:crypto';
import { RedisLockStore } from '../src';
import { RedisReplicaPair } from '../src/testing';

const CLAIMS = 300;
const options = { leaseMs: 10_000, recordTtlMs: 60_000 };

async function redeemOnce(store: RedisLockStore): Promise<void> {
  const claim = await store.claim(randomUUID(), options);
  if (claim.state !== 'claimed') throw new Error(`unexpected ${claim.state}`);
  await store.complete(claim.lease, 'outcome', options.recordTtlMs);
}

async function main(): Promise<void> {
  const pair = await RedisReplicaPair.start();
  try {
    for (const replicaAcks of [0, 'auto'] as const) {
      const store = new RedisLockStore({ url: pair.url, keyPrefix: `bench-${randomUUID()}:`, replicaAcks });
      await redeemOnce(store); // connected, scripts loaded
      let started = performance.now();
      for (let index = 0; index < CLAIMS; index++) await redeemOnce(store);
      const sequentialMs = (performance.now() - started) / CLAIMS;
      started = performance.now();
      await Promise.all(Array.from({ length: CLAIMS }, () => redeemOnce(store)));
      const concurrentMs = performance.now() - started;
      console.log(
        `replicaAcks ${String(replicaAcks).padEnd(4)}: claim + complete ${sequentialMs.toFixed(3)} ms each (one after another); ` +
          `${CLAIMS} at once in ${concurrentMs.toFixed(0)} ms`,
      );
      await store.close();
    }
  } finally {
    await pair.stop();
  }
}

void main();
