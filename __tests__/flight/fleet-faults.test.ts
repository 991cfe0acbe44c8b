// Fleet single flight across OS processes when something fails: the process holding a refresh is
// killed (SIGKILL) while its request is at Entra ID, the lock store cannot be reached while the
// token store works, and the stores are a Redis Cluster. Each app instance is its own process.
import { randomUUID } from 'node:crypto';
import { RedisServer } from '../../src/testing';
import type { FakeEntraId } from '../../src/testing';
import { clusterAppInstance, useRedisCluster } from '../cluster/cluster-clients';
import type { ClusterAppInstance } from '../cluster/cluster-clients';
import { startFakeEntraId } from '../helpers/entra';
import {
  expectOneToken,
  Fleet,
  isInvalidGrant,
  localInstance,
  signInInRefreshWindow,
  stormInOneFlight,
  watchFlight,
} from '../helpers/fleet';

const CALLS_EACH = 25;
const scopes = ['User.Read'];

let entra: FakeEntraId;
beforeAll(async () => {
  entra = await startFakeEntraId(); // Entra ID's own rotation: a superseded refresh token stays valid
});
afterAll(() => entra?.close());

const refreshes = (): number => entra.tokenCallCount({ grantType: 'refresh_token' });

describe('the process holding a refresh is killed with SIGKILL while its request is at Entra ID', () => {
  const PROCESSES = 4;
  let fleet: Fleet;
  let local: ReturnType<typeof localInstance>;
  beforeAll(async () => {
    const keyPrefix = `flight-kill-${randomUUID()}:`;
    local = localInstance(entra, keyPrefix);
    fleet = await Fleet.start(entra, PROCESSES, keyPrefix, { SINGLE_FLIGHT_LEASE_MS: '1000' });
  });
  afterAll(async () => {
    await fleet?.stop();
    await local?.cache.close();
  });

  it(`${PROCESSES} x ${CALLS_EACH} acquireTokenSilent, 1 s lease: a waiter in another process takes over once the lease expires (flight:taken-over), 2 refresh calls in all, every caller in the surviving processes gets the same new token`, async () => {
    const { homeAccountId, accessToken } = await signInInRefreshWindow(entra, local.app, scopes);
    const before = refreshes();
    const release = entra.holdTokenResponses();
    const watch = watchFlight(entra, fleet.instances, 'refresh_token');
    const storms = fleet.stormEach('silent', () => ({ homeAccountId, scopes }), CALLS_EACH);
    let holder: number;
    try {
      holder = await watch.joined; // its refresh is at the fake, unanswered; every other process waits for it
    } finally {
      watch.stop();
    }
    const victim = fleet.instances[holder]!;
    victim.kill();
    await victim.exited;
    release(); // the victim's request is answered to nobody

    const survivors = fleet.instances.filter((instance) => instance !== victim);
    const results = (await Promise.all(storms.filter((_, index) => index !== holder))).flat();
    expect(expectOneToken(results, (PROCESSES - 1) * CALLS_EACH)).not.toBe(accessToken);
    expect(new Set(results.map((result) => result.value!.homeAccountId))).toEqual(new Set([homeAccountId]));
    expect(refreshes() - before).toBe(2); // the victim's, counted on arrival, and the one sent in its place
    expect(await fleet.flightStats(survivors)).toMatchObject({ held: 0, takenOver: 1, waitedFailed: 0, uncoordinated: 0 });
  });
});

describe('the lock store cannot be reached (its redis-server stopped with SIGSTOP) while the token store works', () => {
  const PROCESSES = 2;
  let lockRedis: RedisServer;
  let failOpen: Fleet;
  let failClosed: Fleet;
  let local: ReturnType<typeof localInstance>;
  beforeAll(async () => {
    const keyPrefix = `flight-lock-down-${randomUUID()}:`;
    local = localInstance(entra, keyPrefix);
    lockRedis = await RedisServer.start();
    lockRedis.pause();
    const down = { LOCK_REDIS_URL: lockRedis.url, LOCK_COMMAND_TIMEOUT_MS: '300' };
    [failOpen, failClosed] = await Promise.all([
      Fleet.start(entra, PROCESSES, keyPrefix, down), // the default: 'fail-open'
      Fleet.start(entra, PROCESSES, keyPrefix, { ...down, LOCK_STORE_FAILURE: 'fail-closed' }),
    ]);
  });
  afterAll(async () => {
    lockRedis?.resume();
    await Promise.all([failOpen?.stop(), failClosed?.stop()]);
    await local?.cache.close();
    await lockRedis?.stop();
  });

  it(`lockStoreFailure 'fail-open' (the default): all ${PROCESSES} x ${CALLS_EACH} callers get tokens, the refresh is sent without coordination (flight:uncoordinated, store:error 'ignored'; one refresh call per process at most)`, async () => {
    const { homeAccountId, accessToken } = await signInInRefreshWindow(entra, local.app, scopes);
    const before = refreshes();
    const results = await failOpen.storm('silent', () => ({ homeAccountId, scopes }), CALLS_EACH);
    expect(results.filter((result) => result.status !== 'fulfilled')).toEqual([]);
    expect(results.map((result) => result.value!.accessToken)).not.toContain(accessToken);
    expect(refreshes() - before).toBeGreaterThanOrEqual(1);
    expect(refreshes() - before).toBeLessThanOrEqual(PROCESSES); // equal calls in one process still share one
    expect(await failOpen.flightStats()).toMatchObject({ held: 0, uncoordinated: PROCESSES, lockErrorsIgnored: PROCESSES });
  });

  it(`lockStoreFailure 'fail-closed': all ${PROCESSES} x ${CALLS_EACH} callers get ERR_STORE_UNAVAILABLE, and no refresh is sent`, async () => {
    const { homeAccountId } = await signInInRefreshWindow(entra, local.app, scopes);
    const before = refreshes();
    const results = await failClosed.storm('silent', () => ({ homeAccountId, scopes }), CALLS_EACH);
    expect(results.map((result) => [result.status, result.reason?.code])).toEqual(
      Array(PROCESSES * CALLS_EACH).fill(['rejected', 'ERR_STORE_UNAVAILABLE']),
    );
    expect(refreshes() - before).toBe(0);
    expect(await failClosed.flightStats()).toMatchObject({ held: 0, uncoordinated: 0, lockErrorsThrown: PROCESSES });
  });
});

describe('on a Redis Cluster', () => {
  const { cluster } = useRedisCluster();
  const PROCESSES = 4;
  // Nested: its processes and app end before the cluster stops.
  describe(`${PROCESSES} processes, each with its own cluster clients`, () => {
    let fleet: Fleet;
    let local: ClusterAppInstance;
    beforeAll(async () => {
      const keyPrefix = `flight-cluster-${randomUUID()}:`;
      local = await clusterAppInstance(entra, cluster().rootNodes, keyPrefix);
      fleet = await Fleet.start(entra, PROCESSES, keyPrefix, {}, { clusterRootNodes: cluster().rootNodes });
    });
    afterAll(async () => {
      await fleet?.stop();
      await local?.close();
    });

    it(`refresh storm: ${PROCESSES} x ${CALLS_EACH} acquireTokenSilent for one user in the refresh window, all processes in the flight at once, strict rotation: 1 refresh call, every caller gets the same new token`, async () => {
      const { homeAccountId, accessToken } = await signInInRefreshWindow(entra, local.app, scopes);
      const before = refreshes();
      entra.strictRefreshTokenRotation = true;
      const results = await stormInOneFlight(entra, fleet.instances, 'refresh_token', () =>
        fleet.storm('silent', () => ({ homeAccountId, scopes }), CALLS_EACH),
      ).finally(() => (entra.strictRefreshTokenRotation = false));
      expect(refreshes() - before).toBe(1);
      expect(results.filter(isInvalidGrant)).toEqual([]);
      expect(expectOneToken(results, PROCESSES * CALLS_EACH)).not.toBe(accessToken);
      expect(await fleet.flightStats()).toMatchObject({ held: 1, waitedOk: PROCESSES - 1, takenOver: 0, uncoordinated: 0 });
    });
  });
});
