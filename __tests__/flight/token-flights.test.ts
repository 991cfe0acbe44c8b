// Fleet single flight between app instances in one process: each instance its own
// DistributedTokenCache and DistributedClientApplication (so no in-process joining between them),
// all on one token store and one real MemoryLockStore, against the fake Entra ID. What a refused
// refresh gives every waiter, who joins whose refresh, how strictRotation orders refreshes of one
// account, what a forged outcome record in the lock store counts as, and the options' checks.
import { EventEmitter } from 'node:events';
import Keyv from 'keyv';
import { ConfidentialClientApplication, InteractionRequiredAuthError, ServerError } from '@azure/msal-node';
import type { AuthenticationResult } from '@azure/msal-node';
import { DistributedClientApplication, DistributedTokenCache, InvalidArgumentError, MemoryLockStore } from '../../src';
import type { DistributedClientApplicationOptions } from '../../src';
import type { FakeEntraId } from '../../src/testing';
import type { ChildEvent } from '../helpers/app-instance-process';
import { addRandomUser, startFakeEntraId } from '../helpers/entra';
import { inRefreshWindow, signInInRefreshWindow, stormInOneFlight, watchFlight } from '../helpers/fleet';
import { isFlightKey, observedLockStore } from '../helpers/observed-lock-store';

const redirectUri = 'https://app.example.test/auth/callback';
const scopes = ['User.Read'];
const FLIGHT_EVENTS = ['flight:held', 'flight:waited', 'flight:taken-over', 'flight:uncoordinated'] as const;

interface Instance {
  app: DistributedClientApplication;
  /** Its flight events and what its flight claims found, as the process fixture reports them. */
  onEvent(listener: (event: ChildEvent) => void): () => void;
  events: ChildEvent[];
}

let entra: FakeEntraId;
let store: Keyv;
let locks: MemoryLockStore;
let caches: DistributedTokenCache[];
let apps: DistributedClientApplication[];
/** What `complete` records in place of the holder's outcome, for flight rounds (none: the outcome itself). */
let replaceOutcome: ((outcome: string) => string) | undefined;

beforeAll(async () => {
  entra = await startFakeEntraId();
});
afterAll(() => entra?.close());
beforeEach(() => {
  store = new Keyv();
  locks = new MemoryLockStore();
  caches = [];
  apps = [];
  replaceOutcome = undefined;
});
afterEach(async () => {
  entra.strictRefreshTokenRotation = false;
  entra.revokeTokensOnCodeReuse = false;
  await Promise.all(apps.map((app) => app.close())); // the calls still in flight end first (a test that failed early)
  await Promise.all(caches.map((cache) => cache.close()));
});

/** `count` app instances on the shared stores. */
function instances(count: number, options: Omit<DistributedClientApplicationOptions, 'cache'> = {}): Instance[] {
  return Array.from({ length: count }, () => {
    const emitter = new EventEmitter<{ event: [ChildEvent] }>();
    const events: ChildEvent[] = [];
    const report = (event: ChildEvent): void => void (events.push(event), emitter.emit('event', event));
    const lockStore = observedLockStore(locks, {
      onClaim: (key, claim) => isFlightKey(key) && report({ event: 'claim', state: claim.state }),
      outcome: (key, outcome) => (isFlightKey(key) && replaceOutcome ? replaceOutcome(outcome) : outcome),
    });
    const cache = new DistributedTokenCache({ store, lockStore });
    caches.push(cache);
    const app = new DistributedClientApplication(entra.msalConfig(), { ...options, cache });
    apps.push(app);
    for (const name of FLIGHT_EVENTS) app.on(name, ({ grant }: { grant: string }) => report({ event: name, grant }));
    return {
      app,
      events,
      onEvent: (listener) => {
        emitter.on('event', listener);
        return () => void emitter.off('event', listener);
      },
    };
  });
}

/** Signs a new user in on `instance`; its homeAccountId. */
async function signInNewUser(instance: Instance): Promise<string> {
  const signIn = await instance.app.acquireTokenByCode({
    code: entra.mintCode({ redirectUri, user: addRandomUser(entra) }),
    redirectUri,
    scopes,
  });
  return signIn.account!.homeAccountId;
}

const refreshes = (): number => entra.tokenCallCount({ grantType: 'refresh_token' });
const count = (instance: Instance, name: ChildEvent['event']): number => instance.events.filter((event) => event.event === name).length;

/** A user signed in through `app`, the access token in the refresh window, whose refresh tokens Entra ID then revokes (their code presented again). */
async function signInRevoked(app: DistributedClientApplication): Promise<string> {
  const code = entra.mintCode({ redirectUri, user: addRandomUser(entra) });
  const result = await inRefreshWindow(entra, () => app.acquireTokenByCode({ code, redirectUri, scopes }));
  entra.revokeTokensOnCodeReuse = true;
  await expect(new ConfidentialClientApplication(entra.msalConfig()).acquireTokenByCode({ code, redirectUri, scopes })).rejects.toThrow(
    /AADSTS54005/,
  );
  return result.account!.homeAccountId;
}

/** `callsEach` concurrent acquireTokenSilent on each instance, all at once. */
function silentStorm(
  fleet: Instance[],
  request: Record<string, unknown>,
  callsEach = 4,
): Promise<PromiseSettledResult<AuthenticationResult>[]> {
  return Promise.allSettled(fleet.flatMap(({ app }) => Array.from({ length: callsEach }, () => app.acquireTokenSilent(request as never))));
}

describe('token flights between app instances in one process (one MemoryLockStore)', () => {
  it('a refresh Entra ID refuses (invalid_grant: the refresh token was revoked): 1 refresh call, and every caller, holder and waiters, gets the same MSAL error: class (ServerError), errorCode, subError and errorNo', async () => {
    const fleet = instances(3);
    const homeAccountId = await signInRevoked(fleet[0]!.app);
    const before = refreshes();
    const settled = await stormInOneFlight(entra, fleet, 'refresh_token', () => silentStorm(fleet, { homeAccountId, scopes }));
    expect(refreshes() - before).toBe(1);
    expect(settled.map((each) => each.status)).toEqual(Array(12).fill('rejected'));
    // MSAL's own class for invalid_grant, as the holder got it, with the same errorCode, subError and errorNo (Entra ID's AADSTS70000).
    const errors = settled.map((each) => (each as PromiseRejectedResult).reason as ServerError);
    for (const error of errors) {
      expect(error).toBeInstanceOf(ServerError);
      expect(error).not.toBeInstanceOf(InteractionRequiredAuthError);
    }
    expect(new Set(errors.map((error) => error.constructor))).toEqual(new Set([ServerError]));
    expect(new Set(errors.map((error) => JSON.stringify([error.errorCode, error.subError, error.errorNo])))).toEqual(
      new Set([JSON.stringify(['invalid_grant', '', 70000])]),
    );
    expect(fleet.map((instance) => [count(instance, 'flight:held'), count(instance, 'flight:waited')]).sort()).toEqual([
      [0, 1],
      [0, 1],
      [1, 0],
    ]);
  });

  it('forceRefresh calls of the same shape on 3 instances join one refresh: 1 refresh call, one new access token for all 12 callers', async () => {
    const fleet = instances(3);
    const signIn = await fleet[0]!.app.acquireTokenByCode({
      code: entra.mintCode({ redirectUri, user: addRandomUser(entra) }),
      redirectUri,
      scopes,
    });
    const homeAccountId = signIn.account!.homeAccountId;
    const before = refreshes();
    const settled = await stormInOneFlight(entra, fleet, 'refresh_token', () =>
      silentStorm(fleet, { homeAccountId, scopes, forceRefresh: true }),
    );
    expect(refreshes() - before).toBe(1);
    expect(settled.filter((each) => each.status === 'rejected')).toEqual([]);
    const tokens = new Set(settled.map((each) => (each as PromiseFulfilledResult<AuthenticationResult>).value.accessToken));
    expect(tokens.size).toBe(1);
    expect(tokens.has(signIn.accessToken)).toBe(false);
  });

  it('strictRotation true: refreshes of one account for other scopes take turns (while the first is unanswered at Entra ID the second waits and sends nothing), each from the newest refresh token: 2 refresh calls, no invalid_grant under strict rotation', async () => {
    entra.strictRefreshTokenRotation = true;
    const [first, second] = instances(2, { singleFlight: { strictRotation: true } });
    const homeAccountId = await signInNewUser(first!);
    const before = refreshes();
    const release = entra.holdTokenResponses();
    const firstIn = watchFlight(entra, [first!], 'refresh_token');
    const a = first!.app.acquireTokenSilent({ homeAccountId, scopes: ['https://a.example.test/read'] });
    const secondIn = watchFlight(entra, [first!, second!], 'refresh_token');
    try {
      await firstIn.joined; // its refresh is at the fake
      const b = second!.app.acquireTokenSilent({ homeAccountId, scopes: ['https://b.example.test/read'] });
      await secondIn.joined; // the other refresh found the account's flight busy
      expect(refreshes() - before).toBe(1);
      release();
      const [resultA, resultB] = await Promise.all([a, b]);
      expect([resultA.scopes, resultB.scopes]).toEqual([['https://a.example.test/read'], ['https://b.example.test/read']]);
    } finally {
      release();
      firstIn.stop();
      secondIn.stop();
    }
    expect(refreshes() - before).toBe(2);
    expect([count(first!, 'flight:held'), count(second!, 'flight:held')]).toEqual([1, 1]);
  });

  it('strictRotation false (the default): refreshes of one account for other scopes run side by side (both at Entra ID at once), each once', async () => {
    const [first, second] = instances(2);
    const homeAccountId = await signInNewUser(first!);
    const before = refreshes();
    const release = entra.holdTokenResponses();
    let arrived = 0;
    const bothArrived = new Promise<void>((resolve) =>
      entra.on('token-request', function onRequest(record) {
        if (record.grantType !== 'refresh_token' || ++arrived < 2) return;
        entra.off('token-request', onRequest);
        resolve();
      }),
    );
    const a = first!.app.acquireTokenSilent({ homeAccountId, scopes: ['https://a.example.test/read'] });
    const b = second!.app.acquireTokenSilent({ homeAccountId, scopes: ['https://b.example.test/read'] });
    try {
      await bothArrived; // both unanswered at once
    } finally {
      release();
    }
    const [resultA, resultB] = await Promise.all([a, b]);
    expect([resultA.scopes, resultB.scopes]).toEqual([['https://a.example.test/read'], ['https://b.example.test/read']]);
    expect(refreshes() - before).toBe(2);
    expect([count(first!, 'flight:held'), count(second!, 'flight:held')]).toEqual([1, 1]);
  });

  const forgedFailure = `mac1.${'0'.repeat(64)}.${JSON.stringify({
    state: 'failed',
    error: { kind: 'interaction', errorCode: 'invalid_grant', subError: 'bad_token', errorNo: '70000', errorMessage: 'forged' },
  })}`;
  it.each<[string, (genuine: string, otherRound: string) => string]>([
    ['random text', () => 'not an outcome \u0000\u00ff'],
    ['truncated record', (genuine) => genuine.slice(0, -3)],
    ['forged failure (invalid_grant) with a made-up MAC', () => forgedFailure],
    ["genuine failure record of another flight's round, replayed", (_genuine, otherRound) => otherRound],
  ])(
    "a %s in the lock store in place of the holder's outcome counts as a vanished holder, never as an error: every waiter reads the partition and gets the holder's new token, 1 refresh call",
    async (_name, forge) => {
      const fleet = instances(3);
      // A genuine failed outcome, sealed for a round of another flight.
      let otherRound = '';
      replaceOutcome = (outcome) => (otherRound = outcome);
      const revoked = await signInRevoked(fleet[0]!.app);
      await expect(fleet[0]!.app.acquireTokenSilent({ homeAccountId: revoked, scopes })).rejects.toMatchObject({
        errorCode: 'invalid_grant',
      });
      expect(otherRound).toContain('"failed"');
      entra.revokeTokensOnCodeReuse = false;

      const { homeAccountId, accessToken } = await signInInRefreshWindow(entra, fleet[1]!.app, scopes);
      replaceOutcome = (genuine) => forge(genuine, otherRound);
      const before = refreshes();
      const settled = await stormInOneFlight(entra, fleet, 'refresh_token', () => silentStorm(fleet, { homeAccountId, scopes }));
      expect(settled.filter((each) => each.status === 'rejected')).toEqual([]);
      const tokens = new Set(settled.map((each) => (each as PromiseFulfilledResult<AuthenticationResult>).value.accessToken));
      expect(tokens.size).toBe(1);
      expect(tokens.has(accessToken)).toBe(false);
      expect(refreshes() - before).toBe(1);
    },
  );
});

describe('singleFlight options are checked at construction', () => {
  it.each<[string, string, string, unknown]>([
    ['leaseMs: -1', 'ERR_INVALID_ARG_VALUE', 'options.singleFlight.leaseMs', { leaseMs: -1 }],
    ['leaseMs: 0', 'ERR_INVALID_ARG_VALUE', 'options.singleFlight.leaseMs', { leaseMs: 0 }],
    ['leaseMs: 1.5', 'ERR_INVALID_ARG_VALUE', 'options.singleFlight.leaseMs', { leaseMs: 1.5 }],
    ["leaseMs: '1000'", 'ERR_INVALID_ARG_TYPE', 'options.singleFlight.leaseMs', { leaseMs: '1000' }],
    ['waitTimeoutMs: 0', 'ERR_INVALID_ARG_VALUE', 'options.singleFlight.waitTimeoutMs', { waitTimeoutMs: 0 }],
    ['waitTimeoutMs: Infinity', 'ERR_INVALID_ARG_VALUE', 'options.singleFlight.waitTimeoutMs', { waitTimeoutMs: Infinity }],
    ["lockStoreFailure: 'maybe'", 'ERR_INVALID_ARG_VALUE', 'options.singleFlight.lockStoreFailure', { lockStoreFailure: 'maybe' }],
    ["strictRotation: 'yes'", 'ERR_INVALID_ARG_TYPE', 'options.singleFlight.strictRotation', { strictRotation: 'yes' }],
    ['null', 'ERR_INVALID_ARG_TYPE', 'options.singleFlight', null],
    ["'fast'", 'ERR_INVALID_ARG_TYPE', 'options.singleFlight', 'fast'],
  ])('singleFlight %s: InvalidArgumentError %s naming "%s"', (_name, code, option, singleFlight) => {
    const create = (): unknown => new DistributedClientApplication(entra.msalConfig(), { singleFlight: singleFlight as never });
    expect(create).toThrow(InvalidArgumentError);
    expect(create).toThrow(expect.objectContaining({ code, message: expect.stringContaining(`"${option}"`) }));
  });

  it('accepts every documented value', () => {
    for (const singleFlight of [
      {},
      { leaseMs: 1, waitTimeoutMs: 1, lockStoreFailure: 'fail-closed', strictRotation: true },
      { lockStoreFailure: 'fail-open', strictRotation: false },
    ] as const) {
      expect(new DistributedClientApplication(entra.msalConfig(), { singleFlight })).toBeInstanceOf(DistributedClientApplication);
    }
  });
});
