// What a lock store that cannot be reached means for code redemption: a documented option,
// 'fail-closed' (default: nothing is sent) or 'fail-open' (redeem without cross-process protection).
import { randomUUID } from 'node:crypto';
import Keyv from 'keyv';
import KeyvRedis from '@keyv/redis';
import { DistributedClientApplication, DistributedTokenCache, RedisLockStore } from '../../src';
import type { RedeemEvent } from '../../src';
import { RedisServer } from '../../src/testing';
import type { FakeEntraId } from '../../src/testing';
import { newPkceSignIn, startFakeEntraId } from '../helpers/entra';

const redirectUri = 'https://app.example.test/auth/callback';
const scopes = ['User.Read'];

describe('the lock store is down during a redemption', () => {
  let entra: FakeEntraId;
  let redis: RedisServer;
  let cache: DistributedTokenCache;
  beforeEach(async () => {
    entra = await startFakeEntraId();
    redis = await RedisServer.start();
  });
  afterEach(async () => {
    redis.resume();
    await cache.close();
    await redis.stop();
    await entra.close();
  });

  function appWith(lockStoreFailure: 'fail-closed' | 'fail-open'): { app: DistributedClientApplication; unlocked: RedeemEvent[] } {
    // The token store (another, healthy Redis) writes atomically, without the lock store.
    const store = new Keyv({ store: new KeyvRedis(process.env.REDIS_URL!) });
    cache = new DistributedTokenCache({
      store,
      keyPrefix: `down-${randomUUID()}:`,
      lockStore: new RedisLockStore({ url: redis.url, commandTimeoutMs: 300 }),
    });
    const app = new DistributedClientApplication(entra.msalConfig(), { cache, redeem: { lockStoreFailure } });
    const unlocked: RedeemEvent[] = [];
    app.on('redeem:unlocked', (event) => unlocked.push(event));
    return { app, unlocked };
  }

  it.each([
    ['paused (SIGSTOP)', (server: RedisServer) => Promise.resolve(server.pause())],
    ['killed', (server: RedisServer) => server.kill()],
  ])('fail-closed (default), Redis %s: ERR_STORE_UNAVAILABLE and the code is not sent to Entra ID', async (_state, breakRedis) => {
    const { app, unlocked } = appWith('fail-closed');
    await breakRedis(redis);
    const { code, verifier } = await newPkceSignIn(entra, redirectUri);
    await expect(app.acquireTokenByCode({ code, redirectUri, scopes, codeVerifier: verifier })).rejects.toMatchObject({
      code: 'ERR_STORE_UNAVAILABLE',
    });
    expect(entra.tokenCallCount({ code })).toBe(0);
    expect(unlocked).toEqual([]);
  });

  it.each([
    ['paused (SIGSTOP)', (server: RedisServer) => Promise.resolve(server.pause())],
    ['killed', (server: RedisServer) => server.kill()],
  ])('fail-open, Redis %s: the code is redeemed once without the lock, and redeem:unlocked is emitted', async (_state, breakRedis) => {
    const { app, unlocked } = appWith('fail-open');
    await breakRedis(redis);
    const { user, code, verifier } = await newPkceSignIn(entra, redirectUri);
    const result = await app.acquireTokenByCode({ code, redirectUri, scopes, codeVerifier: verifier });
    expect(result.account?.homeAccountId).toBe(entra.homeAccountIdOf(user));
    expect(entra.tokenCallCount({ code })).toBe(1);
    expect(unlocked).toHaveLength(1);
    expect(JSON.stringify(unlocked)).not.toContain(code);
  });

  it('refuses an unknown lockStoreFailure value at construction', () => {
    cache = new DistributedTokenCache();
    expect(() => new DistributedClientApplication(entra.msalConfig(), { cache, redeem: { lockStoreFailure: 'maybe' as never } })).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE', message: expect.stringContaining('"options.redeem.lockStoreFailure"') }),
    );
  });
});
