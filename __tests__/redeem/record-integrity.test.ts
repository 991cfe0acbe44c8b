// Edge 1: redemption records are tamper-evident. The attack from issue 12, with the lock store on
// its own Redis: an attacker who can write to a store signs in as B (own code, own verifier), puts
// A's homeAccountId in B's record, and replays B's callback on another instance. Each record
// carries a MAC under the app's secret, bound to its key: the edited one is corrupt (an event, a
// typed error), never A's identity, and no token request is made for A.
import { randomUUID } from 'node:crypto';
import Keyv from 'keyv';
import KeyvRedis, { createClient } from '@keyv/redis';
import { DistributedClientApplication, DistributedTokenCache, KeyRing, RedisLockStore } from '../../src';
import type { RedeemEvents } from '../../src';
import { RedisServer } from '../../src/testing';
import type { FakeEntraId } from '../../src/testing';
import { newPkceSignIn, startFakeEntraId } from '../helpers/entra';

const redirectUri = 'https://app.example.test/auth/callback';
const scopes = ['User.Read'];

type RedisClient = ReturnType<typeof createClient>;

describe('redemption records are tamper-evident (edge 1)', () => {
  let entra: FakeEntraId;
  let lockServer: RedisServer;
  let lockRedis: RedisClient;
  let tokenRedis: RedisClient;
  let cleanup: (() => Promise<void>)[];
  beforeAll(async () => {
    entra = await startFakeEntraId();
    lockServer = await RedisServer.start();
    lockRedis = createClient({ url: lockServer.url });
    tokenRedis = createClient({ url: process.env.REDIS_URL! });
    await Promise.all([lockRedis.connect(), tokenRedis.connect()]);
  });
  afterAll(async () => {
    lockRedis.destroy();
    tokenRedis.destroy();
    await lockServer.stop();
    await entra.close();
  });
  beforeEach(() => {
    cleanup = [];
  });
  afterEach(async () => {
    for (const close of cleanup.reverse()) await close();
  });

  /** Two instances of one app: token store on the test Redis, lock store on its own Redis. */
  function twoInstances(options: { keyRing?: KeyRing } = {}) {
    const keyPrefix = `integrity-${randomUUID()}:`;
    const instance = () => {
      const cache = new DistributedTokenCache({
        store: new Keyv({ store: new KeyvRedis(process.env.REDIS_URL!) }),
        lockStore: new RedisLockStore({ url: lockServer.url, keyPrefix }),
        keyPrefix,
        ...(options.keyRing && { encryption: { keyRing: options.keyRing } }),
      });
      const app = new DistributedClientApplication(entra.msalConfig(), { cache });
      const events: [keyof RedeemEvents, unknown][] = [];
      for (const name of ['redeem:corrupt', 'redeem:answered-from-cache', 'redeem:refused'] as const) {
        app.on(name, (event: unknown) => events.push([name, event]));
      }
      cleanup.push(async () => {
        await app.close();
        await cache.close();
      });
      return { app, events };
    };
    return { keyPrefix, one: instance(), two: instance() };
  }

  /** A signs in on instance 1; then the attacker signs in as B, and gets B's code and verifier back. */
  async function aliceThenAttacker(app: DistributedClientApplication) {
    const alice = await newPkceSignIn(entra, redirectUri, 'Alice');
    const aliceResult = await app.acquireTokenByCode({ code: alice.code, redirectUri, scopes, codeVerifier: alice.verifier });
    const attacker = await newPkceSignIn(entra, redirectUri, 'Mallory');
    const attackerResult = await app.acquireTokenByCode({ code: attacker.code, redirectUri, scopes, codeVerifier: attacker.verifier });
    return {
      aliceId: aliceResult.account!.homeAccountId,
      attackerId: attackerResult.account!.homeAccountId,
      attacker,
    };
  }

  /** Replaces `from` by `to` in the one value among `keys` that contains `from`; returns its key. */
  async function editRecord(redis: RedisClient, pattern: string, from: string, to: string): Promise<string> {
    const keys = await redis.keys(pattern);
    const values = await Promise.all(keys.map((key) => redis.get(key)));
    const index = values.findIndex((value) => value?.includes(from));
    expect(index).toBeGreaterThanOrEqual(0);
    await redis.set(keys[index]!, values[index]!.replaceAll(from, to), { KEEPTTL: true });
    return keys[index]!;
  }

  it("an edited lock-store outcome does not give the attacker A's tokens on another instance", async () => {
    const { keyPrefix, one, two } = twoInstances();
    const { aliceId, attackerId, attacker } = await aliceThenAttacker(one.app);
    await editRecord(lockRedis, `${keyPrefix}claim:*:outcome`, attackerId, aliceId);

    const tokenRequests = entra.tokenRequests.length;
    const replay = two.app.acquireTokenByCode({ code: attacker.code, redirectUri, scopes, codeVerifier: attacker.verifier });
    await expect(replay).rejects.toMatchObject({ name: 'RedemptionRecordCorruptError', code: 'ERR_REDEMPTION_RECORD_CORRUPT' });
    await expect(replay).rejects.toThrow(/restart the sign-in/);
    expect(entra.tokenRequests.length).toBe(tokenRequests); // 0 token calls: no code sent again, no refresh for A
    expect(two.events).toEqual([['redeem:corrupt', { codeHash: expect.any(String), store: 'lock-store' }]]);
  });

  it('an outcome copied from another code (same app, same key) fails the check too: each MAC is bound to its key', async () => {
    const { keyPrefix, one, two } = twoInstances();
    const { attackerId, attacker } = await aliceThenAttacker(one.app);
    const keys = await lockRedis.keys(`${keyPrefix}claim:*:outcome`);
    const values = await Promise.all(keys.map((key) => lockRedis.get(key)));
    const attackerKey = keys[values.findIndex((value) => value?.includes(attackerId))]!;
    const aliceValue = values.find((value) => !value?.includes(attackerId))!;
    // The attacker's record, replaced by a verbatim copy of A's (a valid MAC, for A's code).
    await lockRedis.set(attackerKey, aliceValue, { KEEPTTL: true });
    await expect(
      two.app.acquireTokenByCode({ code: attacker.code, redirectUri, scopes, codeVerifier: attacker.verifier }),
    ).rejects.toMatchObject({ code: 'ERR_REDEMPTION_RECORD_CORRUPT' });
    expect(two.events.map(([name]) => name)).toEqual(['redeem:corrupt']);
  });

  it("an edited token-store copy (read after AADSTS54005, the lock store's records lost) does not give A's tokens", async () => {
    const { keyPrefix, one, two } = twoInstances();
    const { aliceId, attackerId, attacker } = await aliceThenAttacker(one.app);
    await editRecord(tokenRedis, `${keyPrefix}redeemed:*`, attackerId, aliceId);
    await lockRedis.flushAll(); // the lock store restarted without persistence: B's claim is gone

    const tokenRequests = entra.tokenRequests.length;
    const replay = two.app.acquireTokenByCode({ code: attacker.code, redirectUri, scopes, codeVerifier: attacker.verifier });
    await expect(replay).rejects.toMatchObject({ code: 'ERR_CODE_ALREADY_REDEEMED' });
    // The one request is the replayed code itself, which Entra ID refused (AADSTS54005); no refresh for A.
    expect(entra.tokenRequests.slice(tokenRequests).map(({ grantType }) => grantType)).toEqual(['authorization_code']);
    expect(
      two.events.map(([name, event]) => [
        name,
        (event as { store?: string; reason?: string }).store ?? (event as { reason: string }).reason,
      ]),
    ).toEqual([
      ['redeem:corrupt', 'token-store'],
      ['redeem:refused', 'already-redeemed'],
    ]);
  });

  it('with encryption on, a record is MACed then sealed, and a late duplicate is still answered from it', async () => {
    const keyRing = new KeyRing({ keys: [{ id: 'k1', key: Buffer.alloc(32, 7) }], activeKeyId: 'k1' });
    const { one, two } = twoInstances({ keyRing });
    const { attackerId, attacker } = await aliceThenAttacker(one.app);
    const late = await two.app.acquireTokenByCode({ code: attacker.code, redirectUri, scopes, codeVerifier: attacker.verifier });
    expect(late.account?.homeAccountId).toBe(attackerId);
    expect(two.events.map(([name]) => name)).toEqual(['redeem:answered-from-cache']);
  });
});
