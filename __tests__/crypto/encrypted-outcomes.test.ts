// With encryption on, redeem-once's outcome records in the lock store are sealed too: they name
// no account, and duplicates are still answered from them.
import { randomBytes, randomUUID } from 'node:crypto';
import Keyv from 'keyv';
import KeyvRedis, { createClient } from '@keyv/redis';
import { DistributedClientApplication, DistributedTokenCache, KeyRing, RedisLockStore } from '../../src';
import type { FakeEntraId } from '../../src/testing';
import { newPkceSignIn, startFakeEntraId } from '../helpers/entra';

const redirectUri = 'https://app.example.test/auth/callback';
const scopes = ['User.Read'];

describe('encrypted outcome records', () => {
  let entra: FakeEntraId;
  beforeAll(async () => {
    entra = await startFakeEntraId();
  });
  afterAll(() => entra.close());

  it('the lock-store outcome is an envelope that names no account, and a late duplicate is still answered from it', async () => {
    const url = process.env.REDIS_URL!;
    const keyPrefix = `enc-outcome-${randomUUID()}:`;
    const keyRing = new KeyRing({ keys: [{ id: 'k1', key: randomBytes(32) }], activeKeyId: 'k1' });
    const cache = new DistributedTokenCache({
      store: new Keyv({ store: new KeyvRedis(url) }),
      lockStore: new RedisLockStore({ url, keyPrefix }),
      keyPrefix,
      encryption: { keyRing },
    });
    const app = new DistributedClientApplication(entra.msalConfig(), { cache });
    const raw = createClient({ url });
    await raw.connect();
    try {
      const { user, code, verifier } = await newPkceSignIn(entra, redirectUri);
      await app.acquireTokenByCode({ code, redirectUri, scopes, codeVerifier: verifier });
      const [outcomeKey] = await raw.keys(`${keyPrefix}claim:*:outcome`);
      const stored = (await raw.get(outcomeKey!))!;
      expect(stored).toMatch(/^\d+:mdc1\.k1\./);
      expect(stored).not.toContain(user.oid);
      expect(stored).not.toContain('redeemed');
      const late = await app.acquireTokenByCode({ code, redirectUri, scopes, codeVerifier: verifier });
      expect(late.account?.homeAccountId).toBe(entra.homeAccountIdOf(user));
      expect(entra.tokenCallCount({ code })).toBe(1);
    } finally {
      raw.destroy();
      await cache.close();
    }
  });
});
