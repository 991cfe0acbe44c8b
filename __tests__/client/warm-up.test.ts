// Start-up work done before traffic: app.warmUp() and cache.connect().
import { randomUUID } from 'node:crypto';
import Keyv from 'keyv';
import KeyvRedis, { createClient } from '@keyv/redis';
import { ClosedError, DistributedClientApplication, DistributedTokenCache, RedisLockStore, StoreUnavailableError } from '../../src';
import { findFreePort } from '../../src/testing';
import type { FakeEntraId } from '../../src/testing';
import { rejectionOf } from '../helpers/assertions';
import { startFakeEntraId } from '../helpers/entra';

const redirectUri = 'https://app.example.test/auth/callback';
const scopes = ['User.Read'];

describe('DistributedClientApplication.warmUp', () => {
  let entra: FakeEntraId;
  beforeEach(async () => {
    entra = await startFakeEntraId();
  });
  afterEach(() => entra.close());

  it('fetches the authority metadata before any call, so the first sign-in and silent call make no discovery request', async () => {
    const app = new DistributedClientApplication(entra.msalConfig());
    await app.warmUp();
    expect(entra.requestCount('openid-configuration')).toBe(1);

    const signIn = await app.acquireTokenByCode({ code: entra.mintCode({ redirectUri }), redirectUri, scopes });
    await app.acquireTokenSilent({ homeAccountId: signIn.account!.homeAccountId, scopes, forceRefresh: true });
    expect(entra.requestCount('openid-configuration')).toBe(1);
    await app.cache.close();
  });

  it('prepares further authorities (other tenants) given in options.authorities', async () => {
    const app = new DistributedClientApplication(entra.msalConfig());
    const organizations = `${entra.origin}/organizations`;
    await app.warmUp({ authorities: [organizations] });
    expect(entra.requestCount('openid-configuration')).toBe(2);

    await app.getAuthCodeUrl({ redirectUri, scopes, authority: organizations });
    expect(entra.requestCount('openid-configuration')).toBe(2);
    await app.cache.close();
  });

  it('refuses bad authorities with a typed error before fetching anything, and ClosedError after close()', async () => {
    const app = new DistributedClientApplication(entra.msalConfig());
    for (const options of [{ authorities: 'https://login.example.test/x' }, { authorities: [''] }, { authorities: [42] }]) {
      const error = await rejectionOf(app.warmUp(options as never));
      expect(error).toBeInstanceOf(TypeError);
      expect(error.code).toMatch(/^ERR_INVALID_ARG_(TYPE|VALUE)$/);
    }
    expect(entra.requestCount('openid-configuration')).toBe(0);
    await app.close();
    await expect(app.warmUp()).rejects.toBeInstanceOf(ClosedError);
    await app.cache.close();
  });
});

describe('DistributedTokenCache.connect', () => {
  it('connects the Redis token store and the RedisLockStore, subscribed, before any operation', async () => {
    const url = process.env.REDIS_URL!;
    const keyPrefix = `warm-${randomUUID()}:`;
    const redis = new KeyvRedis(url);
    const cache = new DistributedTokenCache({
      store: new Keyv({ store: redis }),
      lockStore: new RedisLockStore({ url, keyPrefix }),
      keyPrefix,
    });
    const observer = createClient({ url });
    await observer.connect();
    try {
      expect(redis.client.isOpen).toBe(false); // KeyvRedis connects lazily
      await cache.connect();
      expect(redis.client.isOpen).toBe(true);
      // The lock store's subscriber listens on its channel: waiters will be woken, not polling.
      expect(await observer.pubSubNumSub(`${keyPrefix}lock-changes`)).toEqual({ [`${keyPrefix}lock-changes`]: 1 });
    } finally {
      await cache.close();
      await observer.close();
    }
  });

  it('rejects with ERR_STORE_UNAVAILABLE, naming the connection error, when Redis is not there', async () => {
    const url = `redis://127.0.0.1:${await findFreePort()}`; // nothing listens there
    const inMemoryTokens = new DistributedTokenCache({ lockStore: new RedisLockStore({ url, commandTimeoutMs: 300 }) });
    const error = await rejectionOf(inMemoryTokens.connect());
    expect(error).toBeInstanceOf(StoreUnavailableError);
    expect(error.code).toBe('ERR_STORE_UNAVAILABLE');
    expect(error.message).toContain('ECONNREFUSED');
    await inMemoryTokens.close();
  });

  it('resolves at once for the in-memory defaults, and throws ClosedError after close()', async () => {
    const cache = new DistributedTokenCache();
    await expect(cache.connect()).resolves.toBeUndefined();
    await cache.close();
    await expect(cache.connect()).rejects.toBeInstanceOf(ClosedError);
  });
});
