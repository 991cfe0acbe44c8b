// Redeem-once on a real 3-master Redis Cluster: duplicate callbacks for one PKCE code, spread over
// 4 app instances that each own their cluster clients and RedisLockStore (as 4 processes would;
// they run in this process, so the only thing they share is the cluster), cause exactly one
// token-endpoint call and all get tokens.
import { randomUUID } from 'node:crypto';
import type { AuthenticationResult } from '@azure/msal-node';
import { RedisCluster } from '../../src/testing';
import type { FakeEntraId } from '../../src/testing';
import { newPkceSignIn, startFakeEntraId } from '../helpers/entra';
import { clusterAppInstance } from './cluster-clients';
import type { ClusterAppInstance } from './cluster-clients';

const redirectUri = 'https://app.example.test/auth/callback';
const INSTANCES = 4;

describe('duplicate storms over 4 app instances on a Redis Cluster', () => {
  let cluster: RedisCluster;
  let entra: FakeEntraId;
  let instances: ClusterAppInstance[] = [];

  beforeAll(async () => {
    cluster = await RedisCluster.start();
    entra = await startFakeEntraId();
    const keyPrefix = `cluster-storm-${randomUUID()}:`;
    instances = await Promise.all(Array.from({ length: INSTANCES }, () => clusterAppInstance(entra, cluster.rootNodes, keyPrefix)));
  }, 60_000);
  afterAll(async () => {
    for (const instance of instances) await instance.close();
    await entra?.close();
    await cluster?.stop();
  });

  const newSignIn = () => newPkceSignIn(entra, redirectUri, 'Cluster Storm User');

  /** Runs every redemption at once, call `i` on instance `i % 4`. */
  function spread(redemptions: { code: string; verifier: string }[]): Promise<PromiseSettledResult<AuthenticationResult>[]> {
    return Promise.allSettled(
      redemptions.map(({ code, verifier }, index) =>
        instances[index % INSTANCES]!.app.acquireTokenByCode({ code, redirectUri, scopes: ['User.Read'], codeVerifier: verifier }),
      ),
    );
  }

  const is54005 = (result: PromiseSettledResult<unknown>): boolean => {
    if (result.status === 'fulfilled') return false;
    const reason = result.reason as { errorNo?: string; errorMessage?: string; message?: string };
    return Number(reason?.errorNo) === 54005 || /AADSTS54005/.test(`${reason?.errorMessage ?? ''} ${reason?.message ?? ''}`);
  };

  it('50 concurrent duplicates of one code: one token-endpoint call, 50 results with tokens for the right account, no AADSTS54005', async () => {
    const { user, code, verifier } = await newSignIn();
    const results = await spread(Array.from({ length: 50 }, () => ({ code, verifier })));
    expect(entra.tokenCallCount({ code })).toBe(1);
    expect(results.some(is54005)).toBe(false);
    expect(results.map((result) => result.status)).toEqual(Array(50).fill('fulfilled'));
    for (const result of results as PromiseFulfilledResult<AuthenticationResult>[]) {
      expect(result.value.accessToken).toEqual(expect.any(String));
      expect(result.value.account!.homeAccountId).toBe(entra.homeAccountIdOf(user));
    }
  });

  it('20 codes at once, 50 duplicates each: one token-endpoint call per code, every duplicate gets its own account', async () => {
    const signIns = await Promise.all(Array.from({ length: 20 }, newSignIn));
    const redemptions = signIns.flatMap((signIn) => Array.from({ length: 50 }, () => signIn));
    const results = await spread(redemptions);
    for (const { code } of signIns) expect(entra.tokenCallCount({ code })).toBe(1);
    expect(results.some(is54005)).toBe(false);
    results.forEach((result, index) => {
      expect(result.status).toBe('fulfilled');
      const { value } = result as PromiseFulfilledResult<AuthenticationResult>;
      expect(value.accessToken).toEqual(expect.any(String));
      expect(value.account!.homeAccountId).toBe(entra.homeAccountIdOf(redemptions[index]!.user));
    });
  });

  it('in-process redemption state is empty again in every instance afterwards', () => {
    for (const { app, lockStore } of instances) expect([app.redemptionsInFlight, lockStore.waitingKeys]).toEqual([0, 0]);
  });
});
