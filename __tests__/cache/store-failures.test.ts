// Redis failures under the real @azure/msal-node: a paused (SIGSTOP) or killed redis-server of this
// file's own, the failure policy (readFailure / writeFailure), the 'store:error' events, our own
// store deadline, and recovery of the same instances once Redis is back.
import { internalsOf } from '../../src/cache/cache-internals';
import { InteractionRequiredAuthError } from '@azure/msal-node';
import type { AuthenticationResult } from '@azure/msal-node';
import KeyvRedis from '@keyv/redis';
import Keyv from 'keyv';
import { EventEmitter, once } from 'node:events';
import { DistributedClientApplication, DistributedTokenCache, MemoryLockStore, PartitionKey, StoreUnavailableError } from '../../src';
import type { DistributedTokenCacheOptions, Lease, LockOptions, StoreErrorEvent } from '../../src';
import { RedisServer } from '../../src/testing';
import type { FakeEntraId } from '../../src/testing';
import { startFakeEntraId } from '../helpers/entra';
import { rejectionOf } from '../helpers/assertions';
import { SlowSetStore } from '../helpers/slow-set-store';

const redirectUri = 'https://app.example.test/auth/callback';
const scopes = ['User.Read'];
const appScopes = ['https://graph.example.test/.default'];
const storeTimeoutMs = 300;

/** The part of node-redis's client (behind KeyvRedis) that these tests watch. */
interface WatchedRedisClient {
  readonly isOpen: boolean;
  readonly isReady: boolean;
  on(event: string, listener: (...args: unknown[]) => void): unknown;
  off(event: string, listener: (...args: unknown[]) => void): unknown;
}

interface Setup {
  app: DistributedClientApplication;
  cache: DistributedTokenCache;
  keyvRedis: KeyvRedis<unknown>;
  client: WatchedRedisClient;
  storeErrors: StoreErrorEvent[];
}

let entra: FakeEntraId;
let server: RedisServer;
let setups: Setup[] = [];

beforeEach(async () => {
  entra = await startFakeEntraId();
  server = await RedisServer.start();
});

afterEach(async () => {
  server.resume(); // a paused server answers again, so pending commands drain and close() returns
  try {
    for (const { cache } of setups) await cache.close();
  } finally {
    setups = [];
    await entra.close();
    await server.stop();
  }
});

/**
 * A DistributedTokenCache over this test's redis-server, configured the way a user would, and the
 * app that uses it.
 *
 * @param policy - failure policies, and `l1` (off unless given)
 * @param redisOptions - `'configured'`: throwOnConnectError, throwOnErrors, connectionTimeout 500;
 *   `'default'`: `new KeyvRedis(url)`, which waits forever while Redis is down
 */
function createApp(
  policy: Pick<DistributedTokenCacheOptions, 'readFailure' | 'writeFailure' | 'l1'> = {},
  redisOptions: 'configured' | 'default' = 'configured',
): Setup {
  const keyvRedis =
    redisOptions === 'configured'
      ? new KeyvRedis(server.url, { throwOnConnectError: true, throwOnErrors: true, connectionTimeout: 500 })
      : new KeyvRedis(server.url);
  const store = new Keyv({ store: keyvRedis });
  // No L1 unless asked: these tests are about the store's failures, not about what L1 answers meanwhile.
  const cache = new DistributedTokenCache({ store, storeTimeoutMs, l1: false, ...policy });
  const storeErrors: StoreErrorEvent[] = [];
  cache.on('store:error', (event) => storeErrors.push(event));
  const app = new DistributedClientApplication(entra.msalConfig(), { cache });
  const client = (store.store as KeyvRedis<unknown>).client as unknown as WatchedRedisClient;
  const setup = { app, cache, keyvRedis, client, storeErrors };
  setups.push(setup);
  return setup;
}

async function signIn(app: DistributedClientApplication): Promise<{ code: string; result: AuthenticationResult }> {
  const code = entra.mintCode({ redirectUri });
  const result = await app.acquireTokenByCode({ code, redirectUri, scopes });
  return { code, result };
}

/** Waits, one client event at a time, until `done()` holds; bounded by a number of events. */
async function untilClient(client: WatchedRedisClient, done: () => boolean, events: string[], maxEvents = 50): Promise<void> {
  for (let seen = 0; seen < maxEvents && !done(); seen++) {
    await new Promise<void>((resolve) => {
      const next = (): void => {
        for (const event of events) client.off(event, next);
        resolve();
      };
      for (const event of events) client.on(event, next);
    });
  }
  if (!done()) throw new Error(`the Redis client did not reach the expected state within ${maxEvents} events`);
}

/** After a kill: until node-redis has seen the connection drop (commands then wait in its queue). */
const untilDisconnected = (client: WatchedRedisClient): Promise<void> =>
  untilClient(client, () => !client.isReady, ['error', 'reconnecting', 'end']);

/** After a restart: until node-redis has reconnected (each failed attempt emits 'error'). */
const untilReconnected = (client: WatchedRedisClient): Promise<void> => untilClient(client, () => client.isReady, ['ready', 'error']);

function expectStoreUnavailable(error: unknown): asserts error is StoreUnavailableError {
  expect(error).toBeInstanceOf(StoreUnavailableError);
  expect((error as StoreUnavailableError).code).toBe('ERR_STORE_UNAVAILABLE');
}

/** Our deadline, not a node-redis or KeyvRedis error: our message, and no underlying cause. */
function expectOurDeadline(error: unknown): void {
  expectStoreUnavailable(error);
  // Ours, not node-redis's: the deadline (while connecting, we wait for 'ready' rather than queue).
  expect(error.message).toMatch(new RegExp(`^Redis [\\w -]+ did not answer within ${storeTimeoutMs} ms`));
  expect(error.cause).toBeUndefined();
}

/** Every message of an error and its causes. */
function messagesOf(error: unknown): string {
  const messages: string[] = [];
  for (let current = error; current instanceof Error; current = current.cause) messages.push(current.name, current.message);
  return messages.join('\n');
}

describe('Redis paused (SIGSTOP)', () => {
  it('a silent call rejects with StoreUnavailableError by default, emits a thrown read event, and leaks no secret', async () => {
    const { app, cache, storeErrors } = createApp();
    const { code, result } = await signIn(app);
    const homeAccountId = result.account!.homeAccountId;
    const partition = PartitionKey.forAccount(homeAccountId).forClient(entra.msalConfig().auth.clientId);
    const stored = await internalsOf(cache).repository.read(partition);
    const refreshTokens = Object.values(stored.document.RefreshToken).map((entity) => String(entity.secret));
    expect(refreshTokens).toHaveLength(1);
    const refreshCallsBefore = entra.tokenCallCount({ grantType: 'refresh_token' });

    server.pause();
    const error = await rejectionOf(app.acquireTokenSilent({ homeAccountId, scopes }));

    expectStoreUnavailable(error);
    expect(storeErrors).toEqual([
      expect.objectContaining({ operation: 'read', outcome: 'thrown', code: 'ERR_STORE_UNAVAILABLE', partitionHash: partition.hash }),
    ]);
    expect(storeErrors[0]!.error).toBe(error);
    expect(entra.tokenCallCount({ grantType: 'refresh_token' })).toBe(refreshCallsBefore); // failed before Entra

    const secrets = [result.accessToken, result.idToken, ...refreshTokens, code, entra.msalConfig().auth.clientSecret];
    const seen = [messagesOf(error), String(error), JSON.stringify(storeErrors[0], (key, value) => (key === 'error' ? undefined : value))];
    for (const text of seen) {
      for (const secret of secrets) {
        expect(secret.length).toBeGreaterThan(8);
        expect(text).not.toContain(secret);
      }
    }
  });

  it('with an L1: once tracking has lost the paused server, a silent call is not answered from L1 but rejects', async () => {
    const { app, cache, storeErrors } = createApp({ l1: {} });
    const { result } = await signIn(app);
    const homeAccountId = result.account!.homeAccountId;
    const levels: string[] = [];
    cache.on('cache:hit', ({ level }) => levels.push(level));
    // Tracking starts in the background: silent calls until one is answered from L1.
    for (let call = 0; call < 50 && !levels.includes('l1'); call++) await app.acquireTokenSilent({ homeAccountId, scopes });
    expect(levels).toContain('l1');

    const lost = once(cache, 'cache:invalidate');
    server.pause();
    expect((await lost)[0]).toEqual({ reason: 'tracking-lost' });
    expectStoreUnavailable(await rejectionOf(app.acquireTokenSilent({ homeAccountId, scopes })));
    expect(storeErrors.map(({ operation, outcome }) => ({ operation, outcome }))).toEqual([{ operation: 'read', outcome: 'thrown' }]);
  });

  it("readFailure 'miss': a silent call gets MSAL's InteractionRequiredAuthError, and the read event says treated-as-miss", async () => {
    const { app, storeErrors } = createApp({ readFailure: 'miss' });
    const { result } = await signIn(app);
    const homeAccountId = result.account!.homeAccountId;

    server.pause();
    const error = await rejectionOf(app.acquireTokenSilent({ homeAccountId, scopes }));

    expect(error).toBeInstanceOf(InteractionRequiredAuthError);
    expect(storeErrors).toEqual([
      expect.objectContaining({
        operation: 'read',
        outcome: 'treated-as-miss',
        code: 'ERR_STORE_UNAVAILABLE',
        partitionHash: PartitionKey.forAccount(homeAccountId).forClient(entra.msalConfig().auth.clientId).hash,
        error: expect.any(StoreUnavailableError),
      }),
    ]);
  });

  it("readFailure 'miss' + writeFailure 'ignore': client credentials still get a token from Entra, and the write event says ignored", async () => {
    const { app, storeErrors } = createApp({ readFailure: 'miss', writeFailure: 'ignore' });
    const cached = await app.acquireTokenByClientCredential({ scopes: appScopes }); // now in Redis
    const before = entra.tokenCallCount({ grantType: 'client_credentials' });
    const uncoordinated: unknown[] = [];
    app.on('flight:uncoordinated', (event) => uncoordinated.push(event));

    server.pause();
    const result = await app.acquireTokenByClientCredential({ scopes: appScopes });
    // Nobody could share the tokens of a flight through a store that does not answer: sent without one.
    expect(uncoordinated).toEqual([expect.objectContaining({ grant: 'client_credentials', code: 'ERR_STORE_UNAVAILABLE' })]);

    expect(entra.isAccessTokenValid(result!.accessToken)).toBe(true);
    expect(result!.accessToken).not.toBe(cached!.accessToken); // the cached one was unreachable
    expect(entra.tokenCallCount({ grantType: 'client_credentials' })).toBe(before + 1);
    expect(storeErrors.map(({ operation, outcome, code }) => ({ operation, outcome, code }))).toEqual([
      { operation: 'read', outcome: 'treated-as-miss', code: 'ERR_STORE_UNAVAILABLE' },
      { operation: 'write', outcome: 'ignored', code: 'ERR_STORE_UNAVAILABLE' },
    ]);
    expect(storeErrors[1]!.error).toBeInstanceOf(StoreUnavailableError);
  });

  it("writeFailure 'throw' (default): a code redemption rejects with StoreUnavailableError after Entra redeemed the code", async () => {
    const { app, storeErrors } = createApp();
    await signIn(app); // connected, and the user's partition exists
    const code = entra.mintCode({ redirectUri });

    server.pause();
    const error = await rejectionOf(app.acquireTokenByCode({ code, redirectUri, scopes }));

    expectStoreUnavailable(error);
    expect(entra.tokenCallCount({ code })).toBe(1);
    expect(storeErrors).toEqual([expect.objectContaining({ operation: 'write', outcome: 'thrown', code: 'ERR_STORE_UNAVAILABLE' })]);
    expect(storeErrors[0]!.error).toBe(error);
    expect(messagesOf(error)).not.toContain(code);
  });

  it("writeFailure 'ignore': a code redemption returns the tokens and emits an ignored write event", async () => {
    const { app, storeErrors } = createApp({ writeFailure: 'ignore' });
    await signIn(app); // connected, and the user's partition exists
    const code = entra.mintCode({ redirectUri });

    server.pause();
    const result = await app.acquireTokenByCode({ code, redirectUri, scopes });

    expect(entra.isAccessTokenValid(result.accessToken)).toBe(true);
    expect(result.account?.homeAccountId).toBe(entra.homeAccountIdOf(entra.registeredUsers[0]!));
    expect(storeErrors).toEqual([
      expect.objectContaining({
        operation: 'write',
        outcome: 'ignored',
        code: 'ERR_STORE_UNAVAILABLE',
        partitionHash: PartitionKey.forAccount(result.account!.homeAccountId).forClient(entra.msalConfig().auth.clientId).hash,
      }),
    ]);
  });

  it("a first connection to a paused Redis gets our deadline, not KeyvRedis's longer connectionTimeout", async () => {
    server.pause();
    const { app, storeErrors } = createApp();
    const homeAccountId = entra.homeAccountIdOf(entra.registeredUsers[0]!);

    const error = await rejectionOf(app.acquireTokenSilent({ homeAccountId, scopes }));

    expectOurDeadline(error);
    expect((error as Error).message).toMatch(/^Redis connect did not answer/);
    expect(storeErrors).toEqual([expect.objectContaining({ operation: 'read', outcome: 'thrown', error })]);
  });
});

describe('Redis killed (SIGKILL) and restarted on the same port', () => {
  it('calls during the outage reject with ERR_STORE_UNAVAILABLE; afterwards the same instances work again', async () => {
    const { app, cache, client, storeErrors } = createApp();
    const { result: before } = await signIn(app);
    const homeAccountId = before.account!.homeAccountId;
    const port = server.port;

    await server.kill();
    const outage = [
      await rejectionOf(app.acquireTokenSilent({ homeAccountId, scopes })),
      await rejectionOf(app.acquireTokenByCode({ code: entra.mintCode({ redirectUri }), redirectUri, scopes })),
      await rejectionOf(app.acquireTokenByClientCredential({ scopes: appScopes })),
    ];
    for (const error of outage) expectStoreUnavailable(error);
    expect(storeErrors.map(({ operation, outcome }) => `${operation}:${outcome}`)).toEqual(['read:thrown', 'write:thrown', 'read:thrown']);

    await server.restart();
    expect(server.port).toBe(port);
    await untilReconnected(client);

    // The restarted server is empty: the user signs in again, through the same app and cache.
    const { result: after } = await signIn(app);
    expect(after.account!.homeAccountId).toBe(homeAccountId);
    const refreshCalls = entra.tokenCallCount({ grantType: 'refresh_token' });
    const silent = await app.acquireTokenSilent({ homeAccountId, scopes });
    expect(silent.accessToken).toBe(after.accessToken); // served from Redis, no call to Entra
    expect(entra.tokenCallCount({ grantType: 'refresh_token' })).toBe(refreshCalls);
    expect(await app.acquireTokenByClientCredential({ scopes: appScopes })).toMatchObject({ accessToken: expect.any(String) });
    expect(app.cache).toBe(cache);
    expect(storeErrors).toHaveLength(3); // nothing failed after the restart
  });
});

describe('default `new KeyvRedis(url)` (waits forever while Redis is down): our deadline answers', () => {
  it('Redis killed after the cache connected: silent and code calls settle with ERR_STORE_UNAVAILABLE', async () => {
    const { app, client, storeErrors } = createApp({}, 'default');
    const { result } = await signIn(app);
    const homeAccountId = result.account!.homeAccountId;

    await server.kill();
    await untilDisconnected(client); // from here on node-redis queues commands until it reconnects

    const silent = await rejectionOf(app.acquireTokenSilent({ homeAccountId, scopes }));
    const redemption = await rejectionOf(app.acquireTokenByCode({ code: entra.mintCode({ redirectUri }), redirectUri, scopes }));

    expectOurDeadline(silent);
    expectOurDeadline(redemption);
    expect(storeErrors.map(({ operation, outcome }) => `${operation}:${outcome}`)).toEqual(['read:thrown', 'write:thrown']);
  });

  it('Redis down before the cache ever connected: silent and code calls settle with ERR_STORE_UNAVAILABLE', async () => {
    await server.kill();
    const { app, storeErrors } = createApp({}, 'default');
    const homeAccountId = entra.homeAccountIdOf(entra.registeredUsers[0]!);

    const silent = await rejectionOf(app.acquireTokenSilent({ homeAccountId, scopes }));
    const redemption = await rejectionOf(app.acquireTokenByCode({ code: entra.mintCode({ redirectUri }), redirectUri, scopes }));

    expectOurDeadline(silent);
    expect((silent as Error).message).toMatch(/^Redis connect did not answer/);
    expectOurDeadline(redemption);
    expect(storeErrors.map(({ operation, outcome }) => `${operation}:${outcome}`)).toEqual(['read:thrown', 'write:thrown']);
  });
});

describe('after an outage', () => {
  it('cache.close() settles while Redis is down after a call timed out', async () => {
    const { app, cache, client, storeErrors } = createApp();
    await app.acquireTokenByClientCredential({ scopes: appScopes }); // connected
    await server.kill();
    await untilDisconnected(client);
    expectStoreUnavailable(await rejectionOf(app.acquireTokenByClientCredential({ scopes: appScopes })));
    await cache.close(); // a graceful disconnect would wait forever for the unanswered command
    expect(storeErrors.map((event) => event.operation)).toContain('read');
  });

  it('a write that was reported as failed while Redis was down is not replayed after it comes back', async () => {
    const { app, client } = createApp();
    await app.acquireTokenByClientCredential({ scopes: appScopes });
    await server.kill();
    await untilDisconnected(client);
    expectStoreUnavailable(await rejectionOf(app.acquireTokenByCode({ code: entra.mintCode({ redirectUri }), redirectUri, scopes })));
    await server.restart();
    await untilReconnected(client);
    expect(await app.getAccountByHomeId(entra.homeAccountIdOf(entra.registeredUsers[0]!))).toBeNull();
  });
});

/** The `jti` claim of an access token of the fake Entra ID. */
const tokenId = (accessToken: string): unknown =>
  (JSON.parse(Buffer.from(accessToken.split('.')[1]!, 'base64url').toString()) as { jti?: unknown }).jti;

/** A MemoryLockStore that says when an `acquire` has to wait because another holder has the lock. */
class WatchedLockStore extends MemoryLockStore {
  private readonly waits = new EventEmitter();

  /** Resolves when the next `acquire` finds the lock taken. */
  async nextWait(): Promise<void> {
    await once(this.waits, 'wait');
  }

  override async acquire(key: string, options: LockOptions): Promise<Lease> {
    const lease = super.acquire(key, options);
    // A free lock is granted within microtasks; still waiting a macrotask later means it is held.
    const granted = await Promise.race([
      lease.then(
        () => true,
        () => true,
      ),
      new Promise<false>((resolve) => setImmediate(() => resolve(false))),
    ]);
    if (!granted) this.waits.emit('wait');
    return lease;
  }
}

describe('a Keyv store other than Redis whose set is slow', () => {
  it('Edge 10: a set that missed its deadline keeps the partition locked until it lands, so it never overwrites a newer sign-in', async () => {
    const slow = new SlowSetStore();
    const locks = new WatchedLockStore();
    const keyv = new Keyv({ store: slow });
    const caches: DistributedTokenCache[] = [];
    const instance = (): DistributedClientApplication => {
      const cache = new DistributedTokenCache({ store: keyv, lockStore: locks, storeTimeoutMs });
      caches.push(cache);
      expect(cache.atomicWrites).toBe(false);
      return new DistributedClientApplication(entra.msalConfig(), { cache });
    };
    try {
      const [refresher, signer, reader] = [instance(), instance(), instance()];
      const { result } = await signIn(refresher);
      const homeAccountId = result.account!.homeAccountId;

      // A refresh whose write reaches the store, which then takes longer than storeTimeoutMs:
      const setArrived = slow.holdNextSet();
      const refresh = rejectionOf(refresher.acquireTokenSilent({ homeAccountId, scopes, forceRefresh: true }));
      const landLateSet = await setArrived;
      expectStoreUnavailable(await refresh); // the caller was told the write failed ...

      // ... and the user signs in again on another instance while that set is still in flight.
      const signInAgain = signIn(signer);
      await Promise.race([signInAgain, locks.nextWait()]);
      landLateSet();
      const { result: fresh } = await signInAgain;

      const silent = await reader.acquireTokenSilent({ homeAccountId, scopes });
      expect(silent.fromCache).toBe(true);
      // The newer sign-in survived the late set (compared by the tokens' jti, to keep tokens out of the output).
      expect(tokenId(silent.accessToken)).toBe(tokenId(fresh.accessToken));
    } finally {
      for (const cache of caches) await cache.close();
    }
  });
});
