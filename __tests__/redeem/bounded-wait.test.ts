// Bounded waits (guarantee 7) for redeem-once: a duplicate that waits on another instance's
// redemption gets an answer after redeem.waitTimeoutMs even when that redemption never ends.
// Real MSAL, the fake Entra ID (holding the winner's answer), a shared RedisLockStore.
import { createHash, randomUUID } from 'node:crypto';
import { once } from 'node:events';
import Keyv from 'keyv';
import KeyvRedis from '@keyv/redis';
import { DistributedClientApplication, DistributedTokenCache, LockTimeoutError, RedisLockStore } from '../../src';
import type { RedeemOptions } from '../../src';
import { newPkceSignIn, useFakeEntraId } from '../helpers/entra';
import { redisUrl } from '../helpers/stores';

const redirectUri = 'https://app.example.test/auth/callback';
const scopes = ['User.Read'];

describe('a duplicate waiting on another instance', () => {
  /** A fake Entra ID per test; cleanups run after the test, in reverse order. */
  const { entra, cleanups } = useFakeEntraId();

  /** An app instance: tokens in the shared Redis, locks in a RedisLockStore, both under `keyPrefix`. */
  function instance(keyPrefix: string, redeem: RedeemOptions = {}): DistributedClientApplication {
    const cache = new DistributedTokenCache({
      store: new Keyv({ store: new KeyvRedis(redisUrl()) }),
      lockStore: new RedisLockStore({ url: redisUrl(), keyPrefix }),
      keyPrefix,
    });
    cleanups.push(() => cache.close()); // also closes the lock store
    return new DistributedClientApplication(entra().msalConfig(), { cache, redeem });
  }

  it('gets ERR_LOCK_TIMEOUT after redeem.waitTimeoutMs while the redemption is still in flight, and sends nothing', async () => {
    const keyPrefix = `bounded-wait-${randomUUID()}:`;
    const a = instance(keyPrefix);
    const b = instance(keyPrefix, { waitTimeoutMs: 200 });
    const { user, code, verifier } = await newPkceSignIn(entra(), redirectUri);
    const request = { code, redirectUri, scopes, codeVerifier: verifier };

    const release = entra().holdTokenResponses(); // A's redemption does not end until the test says so
    cleanups.push(release);
    const reachedEntra = new Promise<void>((resolve) => {
      const codeHash = createHash('sha256').update(code).digest('hex');
      entra().on('token-request', (record) => record.codeHash === codeHash && resolve());
    });
    const first = a.acquireTokenByCode(request);
    await reachedEntra;
    const waited = once(b, 'redeem:waited');
    const error = await b.acquireTokenByCode(request).catch((caught: unknown) => caught);
    await waited;

    expect(error).toBeInstanceOf(LockTimeoutError);
    expect(error).toMatchObject({ code: 'ERR_LOCK_TIMEOUT', message: expect.stringContaining('still in progress after 200 ms') });
    expect((error as Error).message).not.toContain(code);
    expect(entra().tokenCallCount({ code })).toBe(1);

    release();
    expect((await first).account?.homeAccountId).toBe(entra().homeAccountIdOf(user));
  });
});
