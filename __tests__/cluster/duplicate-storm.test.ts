// Redeem-once on a real 3-master Redis Cluster across OS processes: duplicate callbacks for one
// PKCE code, spread over 4 app instances, each in its own process with its own cluster clients and
// RedisLockStore (the only thing they share is the cluster), cause exactly one token-endpoint call
// and all get tokens.
import { randomUUID } from 'node:crypto';
import { RedisCluster } from '../../src/testing';
import type { FakeEntraId } from '../../src/testing';
import { createClient } from '@keyv/redis';
import { AppInstanceProcess } from '../helpers/app-instance-process';
import { newPkceSignIn, startFakeEntraId } from '../helpers/entra';
import { redisUrl } from '../helpers/stores';
import { connectedClusterClient, keysOnMasters } from './cluster-clients';

const redirectUri = 'https://app.example.test/auth/callback';
const INSTANCES = 4;

/** One call's outcome, as the process fixture's `all` op reports it. */
interface Settled {
  status: 'fulfilled' | 'rejected';
  value?: { accessToken: string; homeAccountId: string };
  reason?: { code?: string; errorNo?: string; errorMessage?: string; message?: string };
}

describe('duplicate storms over 4 app instances in 4 processes on a Redis Cluster', () => {
  let cluster: RedisCluster;
  let entra: FakeEntraId;
  let instances: AppInstanceProcess[] = [];
  const keyPrefix = `cluster-storm-${randomUUID()}:`;

  beforeAll(async () => {
    cluster = await RedisCluster.start();
    entra = await startFakeEntraId();
    instances = await Promise.all(
      Array.from({ length: INSTANCES }, () => AppInstanceProcess.start(entra, keyPrefix, {}, { clusterRootNodes: cluster.rootNodes })),
    );
  }, 60_000);
  afterAll(async () => {
    await Promise.all(instances.map((instance) => instance.stop()));
    await entra?.close();
    await cluster?.stop();
  });

  const newSignIn = () => newPkceSignIn(entra, redirectUri, 'Cluster Storm User');

  /** Runs every redemption at once, redemption `i` in process `i % 4`; the outcomes in the redemptions' order. */
  async function spread(redemptions: { code: string; verifier: string }[]): Promise<Settled[]> {
    const shares = instances.map(() => [] as number[]);
    redemptions.forEach((_redemption, index) => shares[index % INSTANCES]!.push(index));
    const replies = await Promise.all(
      instances.map((instance, which) =>
        instance.call('all', {
          calls: shares[which]!.map((index) => ({
            op: 'signIn',
            args: { code: redemptions[index]!.code, redirectUri, scopes: ['User.Read'], codeVerifier: redemptions[index]!.verifier },
          })),
        }),
      ),
    );
    const results: Settled[] = [];
    replies.forEach((reply, which) => {
      if (!reply.ok) throw new Error(`process ${which} failed the storm: ${JSON.stringify(reply.error)}`);
      (reply.value as Settled[]).forEach((settled, position) => (results[shares[which]![position]!] = settled));
    });
    return results;
  }

  const is54005 = (result: Settled): boolean =>
    Number(result.reason?.errorNo) === 54005 || /AADSTS54005/.test(`${result.reason?.errorMessage ?? ''} ${result.reason?.message ?? ''}`);

  it('the 4 app instances are 4 OS processes', () => {
    expect(new Set([process.pid, ...instances.map((instance) => instance.pid)]).size).toBe(INSTANCES + 1);
  });

  it('50 concurrent duplicates of one code: one token-endpoint call, 50 results with tokens for the right account, no AADSTS54005', async () => {
    const { user, code, verifier } = await newSignIn();
    const results = await spread(Array.from({ length: 50 }, () => ({ code, verifier })));
    expect(entra.tokenCallCount({ code })).toBe(1);
    expect(results.some(is54005)).toBe(false);
    expect(results.map((result) => result.status)).toEqual(Array(50).fill('fulfilled'));
    for (const result of results) {
      expect(result.value!.accessToken).toEqual(expect.any(String));
      expect(result.value!.homeAccountId).toBe(entra.homeAccountIdOf(user));
    }
  });

  it('20 codes at once, 50 duplicates each: one token-endpoint call per code, every duplicate gets its own account', async () => {
    const signIns = await Promise.all(Array.from({ length: 20 }, newSignIn));
    const redemptions = signIns.flatMap((signIn) => Array.from({ length: 50 }, () => signIn));
    const results = await spread(redemptions);
    for (const { code } of signIns) expect(entra.tokenCallCount({ code })).toBe(1);
    expect(results.some(is54005)).toBe(false);
    expect(results).toHaveLength(redemptions.length);
    results.forEach((result, index) => {
      expect(result.status).toBe('fulfilled');
      expect(result.value!.accessToken).toEqual(expect.any(String));
      expect(result.value!.homeAccountId).toBe(entra.homeAccountIdOf(redemptions[index]!.user));
    });
  });

  it("the processes' stores are the cluster's: the storms' records are on its masters, none on the standalone Redis", async () => {
    const clusterClient = await connectedClusterClient(cluster.rootNodes);
    const standalone = createClient({ url: redisUrl() });
    try {
      await standalone.connect();
      expect((await keysOnMasters(clusterClient, keyPrefix)).length).toBeGreaterThan(0);
      expect(await standalone.keys(`${keyPrefix}*`)).toEqual([]);
    } finally {
      clusterClient.destroy();
      standalone.destroy();
    }
  });

  it('in-process redemption state is empty again in every process afterwards', async () => {
    for (const instance of instances) expect((await instance.call('state', {})).value).toEqual({ redemptionsInFlight: 0, waitingKeys: 0 });
  });
});
