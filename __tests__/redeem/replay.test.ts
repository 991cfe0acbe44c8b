// A replayed code never yields tokens (guarantee 3), on the two paths no other test covered
// (issue 20): a replay that reaches the instance while its redemption is in flight (the in-process
// join), and a replay on an instance with its own lock store, answered after Entra ID's AADSTS54005
// from the `redeemed` copy in the shared token store. Real MSAL, the fake Entra ID, real Redis.
import { createHash, randomUUID } from 'node:crypto';
import Keyv from 'keyv';
import KeyvRedis from '@keyv/redis';
import { CryptoProvider } from '@azure/msal-node';
import { DistributedClientApplication, DistributedTokenCache, MemoryLockStore, RedisLockStore } from '../../src';
import type { LockStore, RedeemEvents } from '../../src';
import { newPkceSignIn, useFakeEntraId } from '../helpers/entra';
import { redisUrl } from '../helpers/stores';

const redirectUri = 'https://app.example.test/auth/callback';
const scopes = ['User.Read'];

describe('a replayed code with another PKCE verifier never gets tokens', () => {
  /** A fake Entra ID per test; cleanups run after the test, in reverse order. */
  const { entra, cleanups } = useFakeEntraId();

  /** An app instance: tokens in the shared Redis under `keyPrefix`, locks in `lockStore`. */
  function instance(lockStore: LockStore, keyPrefix: string) {
    const cache = new DistributedTokenCache({ store: new Keyv({ store: new KeyvRedis(redisUrl()) }), lockStore, keyPrefix });
    cleanups.push(() => cache.close()); // also closes the lock store
    const app = new DistributedClientApplication(entra().msalConfig(), { cache });
    const refused: RedeemEvents['redeem:refused'][0]['reason'][] = [];
    app.on('redeem:refused', ({ reason }) => refused.push(reason));
    return { app, refused };
  }

  /** The attacker's verifier: valid, but not the one the code was issued for. */
  const otherVerifier = async (): Promise<string> => (await new CryptoProvider().generatePkceCodes()).verifier;

  it('while the redemption is in flight on the same instance, the replay is refused, not joined', async () => {
    const keyPrefix = `replay-${randomUUID()}:`;
    const a = instance(new RedisLockStore({ url: redisUrl(), keyPrefix }), keyPrefix);
    const { user, code, verifier } = await newPkceSignIn(entra(), redirectUri);

    const release = entra().holdTokenResponses(); // the winner's token response waits at the fake
    cleanups.push(release);
    const reachedEntra = new Promise<void>((resolve) => {
      const codeHash = createHash('sha256').update(code).digest('hex');
      entra().on('token-request', (record) => record.codeHash === codeHash && resolve());
    });
    const winner = a.app.acquireTokenByCode({ code, redirectUri, scopes, codeVerifier: verifier });
    await reachedEntra; // the redemption is in flight: a duplicate now meets it in this process
    expect(a.app.redemptionsInFlight).toBe(1);

    const replay = a.app
      .acquireTokenByCode({ code, redirectUri, scopes, codeVerifier: await otherVerifier() })
      .catch((error: unknown) => error);
    release();
    const [won, replayed] = await Promise.all([winner, replay]);

    expect(won.account?.homeAccountId).toBe(entra().homeAccountIdOf(user));
    expect(replayed).not.toHaveProperty('accessToken'); // the attacker got no tokens
    expect(replayed).toMatchObject({ code: 'ERR_CODE_ALREADY_REDEEMED' });
    expect(a.refused).toEqual(['binding-mismatch']);
    expect(entra().tokenCallCount({ code })).toBe(1);
  });

  it('on an instance with its own lock store, the replay gets AADSTS54005 from Entra ID and then ERR_CODE_ALREADY_REDEEMED, not the redeemed copy', async () => {
    // Two instances that share the token store but (misconfigured) not a lock store: B sends the
    // code again, Entra ID answers AADSTS54005, and B finds A's `redeemed` record in the token store.
    const keyPrefix = `replay-${randomUUID()}:`;
    const a = instance(new MemoryLockStore(), keyPrefix);
    const b = instance(new MemoryLockStore(), keyPrefix);
    const { user, code, verifier } = await newPkceSignIn(entra(), redirectUri);
    const first = await a.app.acquireTokenByCode({ code, redirectUri, scopes, codeVerifier: verifier });
    expect(first.account?.homeAccountId).toBe(entra().homeAccountIdOf(user));
    const refreshesBefore = entra().tokenCallCount({ grantType: 'refresh_token' });

    const replayed = await b.app
      .acquireTokenByCode({ code, redirectUri, scopes, codeVerifier: await otherVerifier() })
      .catch((error: unknown) => error);

    expect(replayed).not.toHaveProperty('accessToken'); // the attacker got no tokens
    expect(replayed).toMatchObject({ code: 'ERR_CODE_ALREADY_REDEEMED' });
    expect(b.refused).toEqual(['already-redeemed']);
    expect(entra().tokenCallCount({ code })).toBe(2); // B's own lock store let it through; the server refused
    expect(entra().tokenCallCount({ grantType: 'refresh_token' })).toBe(refreshesBefore); // no refresh for the attacker
  });
});
