// Redeem-once under faults: a lock holder that dies mid-redemption, a token endpoint slower than
// the lease, secrets that must never reach the stores, events or errors, and in-process state
// that must be empty again after a long run. Real MSAL, the fake Entra ID and real Redis.
import { createHash, randomUUID } from 'node:crypto';
import type { ChildProcess } from 'node:child_process';
import { CryptoProvider } from '@azure/msal-node';
import type { AuthenticationResult } from '@azure/msal-node';
import Keyv from 'keyv';
import KeyvRedis, { createClient } from '@keyv/redis';
import { DistributedClientApplication, DistributedTokenCache, RedisLockStore } from '../../src';
import type { DistributedAuthorizationCodeRequest, RedeemEvents, TokenCacheEvents } from '../../src';
import { AppInstanceProcess } from '../helpers/app-instance-process';
import { newPkceSignIn, useFakeEntraId } from '../helpers/entra';
import { redisUrl } from '../helpers/stores';
import type { FakeEntraId, TokenRequestRecord } from '../../src/testing';

const redirectUri = 'https://app.example.test/auth/callback';
const scopes = ['User.Read'];
const CODE_LIFETIME_MS = 10 * 60_000;

const sha256 = (value: string): string => createHash('sha256').update(value).digest('hex');

// Every event name, checked by the compiler: adding an event to either map without listing it
// here fails `tsc`, so the secrets test always listens to all of them.
const CACHE_EVENTS: Record<keyof TokenCacheEvents, true> = {
  'cache:hit': true,
  'cache:miss': true,
  'cache:write': true,
  'cache:conflict': true,
  'cache:merge': true,
  'cache:corrupt': true,
  'cache:invalidate': true,
  'store:error': true,
};
const REDEEM_EVENTS: Record<keyof RedeemEvents, true> = {
  'redeem:redeemed': true,
  'redeem:unlocked': true,
  'redeem:corrupt': true,
  'redeem:joined': true,
  'redeem:waited': true,
  'redeem:answered-from-cache': true,
  'redeem:refused': true,
  'lock:lost': true,
};

interface RecordedEvent {
  source: 'app' | 'cache';
  name: string;
  args: unknown[];
}

/** Records every event of the app and of its cache. */
function recordEvents(app: DistributedClientApplication): RecordedEvent[] {
  const events: RecordedEvent[] = [];
  for (const name of Object.keys(REDEEM_EVENTS) as (keyof RedeemEvents)[]) {
    app.on(name, (...args: unknown[]) => events.push({ source: 'app', name, args }));
  }
  for (const name of Object.keys(CACHE_EVENTS) as (keyof TokenCacheEvents)[]) {
    app.cache.on(name, (...args: unknown[]) => events.push({ source: 'cache', name, args }));
  }
  return events;
}

/** Resolves with the fake's record of the first token request that carries `code`. */
function tokenRequestFor(entra: FakeEntraId, code: string): Promise<TokenRequestRecord> {
  const codeHash = sha256(code);
  return new Promise((resolve) => {
    const listener = (record: TokenRequestRecord): void => {
      if (record.codeHash !== codeHash) return;
      entra.off('token-request', listener);
      resolve(record);
    };
    entra.on('token-request', listener);
  });
}

/** Resolves when the instance's OS process has exited, with the signal (or exit code). */
function exited(instance: AppInstanceProcess): Promise<NodeJS.Signals | number | null> {
  // The helper has no public exit promise; its child process is a private field.
  const child = (instance as unknown as { child: ChildProcess }).child;
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.signalCode ?? child.exitCode);
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve(signal ?? code)));
}

/** JSON of anything, with every Error (and its cause chain) spelled out field by field. */
function toJson(value: unknown): string {
  return JSON.stringify(value, (_key, item: unknown) => {
    if (item instanceof Error) {
      const fields = item as unknown as Record<string, unknown>;
      return { ...fields, name: item.name, message: item.message, code: fields.code, cause: fields.cause };
    }
    return item;
  });
}

/** Every error message in an error's cause chain. */
function messagesOf(error: unknown): string[] {
  const messages: string[] = [];
  for (let current: unknown = error; current instanceof Error; current = (current as { cause?: unknown }).cause) {
    messages.push(current.message, String((current as { errorMessage?: unknown }).errorMessage ?? ''));
  }
  return messages;
}

const newSignIn = (entra: FakeEntraId) => newPkceSignIn(entra, redirectUri, 'Faults User');

describe('redeem-once under faults', () => {
  /** A fake Entra ID per test; cleanups run after the test, in reverse order. */
  const { entra, cleanups } = useFakeEntraId();

  /** An app instance in this process, with its own Redis connections, under `keyPrefix`. */
  function inProcessInstance(keyPrefix: string, redeem: { leaseMs?: number } = {}): DistributedClientApplication {
    const lockStore = new RedisLockStore({ url: redisUrl(), keyPrefix });
    const cache = new DistributedTokenCache({ store: new Keyv({ store: new KeyvRedis(redisUrl()) }), lockStore, keyPrefix });
    cleanups.push(() => cache.close()); // also closes the lock store
    return new DistributedClientApplication(entra().msalConfig(), { cache, redeem });
  }

  it('when the lock holder is SIGKILLed mid-redemption, a waiting duplicate gets ERR_REDEMPTION_OUTCOME_UNKNOWN and the code is never sent again', async () => {
    const keyPrefix = `faults-${randomUUID()}:`;
    const [a, b] = await Promise.all([
      AppInstanceProcess.start(entra(), keyPrefix, { LEASE_MS: '1000' }),
      AppInstanceProcess.start(entra(), keyPrefix, { LEASE_MS: '1000' }),
    ]);
    cleanups.push(
      () => a.stop(),
      () => b.stop(),
    );
    const { code, verifier } = await newSignIn(entra());
    const request = { code, redirectUri, scopes, codeVerifier: verifier };
    entra().tokenLatencyMs = 30_000; // the holder's token request hangs until it is killed
    try {
      const holderReachedEntra = tokenRequestFor(entra(), code);
      void a.call('signIn', request); // never answers: A is killed before the token endpoint does
      await holderReachedEntra;

      const duplicate = b.call('signIn', request);
      a.kill();
      expect(await exited(a)).toBe('SIGKILL');

      // A's lease (1 s) is no longer renewed; once it expires, B finds the claim abandoned.
      expect(await duplicate).toMatchObject({ ok: false, error: { code: 'ERR_REDEMPTION_OUTCOME_UNKNOWN' } });
      expect(entra().tokenCallCount({ code })).toBe(1);
      expect((await b.call('state', {})).value).toEqual({ redemptionsInFlight: 0, waitingKeys: 0 });
    } finally {
      entra().tokenLatencyMs = 0;
    }
  });

  it('the lock holder keeps its lease while the token endpoint is slower than the lease: a duplicate on another instance waits and gets the same tokens', async () => {
    const keyPrefix = `faults-${randomUUID()}:`;
    const appA = inProcessInstance(keyPrefix, { leaseMs: 300 });
    const appB = inProcessInstance(keyPrefix, { leaseMs: 300 });
    const eventsA = recordEvents(appA);
    const eventsB = recordEvents(appB);
    const { user, code, verifier } = await newSignIn(entra());
    const request = { code, redirectUri, scopes, codeVerifier: verifier };
    // 1500 ms at the token endpoint is 5 leases of 300 ms. Only the renewal every leaseMs/3 keeps
    // A's claim alive: without it the lease would expire mid-request, B's next claim would find the
    // code abandoned and B would get ERR_REDEMPTION_OUTCOME_UNKNOWN instead of tokens.
    entra().tokenLatencyMs = 1500;
    try {
      const holderReachedEntra = tokenRequestFor(entra(), code);
      const first = appA.acquireTokenByCode(request);
      await holderReachedEntra;
      const duplicate = appB.acquireTokenByCode(request);
      const [resultA, resultB] = await Promise.all([first, duplicate]);

      expect(resultA.account?.homeAccountId).toBe(entra().homeAccountIdOf(user));
      expect(resultB.account?.homeAccountId).toBe(entra().homeAccountIdOf(user));
      expect(resultB.accessToken).toBe(resultA.accessToken);
      expect(resultB.fromCache).toBe(true);
      expect(entra().tokenCallCount({ code })).toBe(1);
      expect(entra().tokenCallCount({ grantType: 'authorization_code' })).toBe(1);

      const namesOf = (events: RecordedEvent[]): string[] => events.filter((event) => event.source === 'app').map((event) => event.name);
      expect(namesOf(eventsA)).toEqual(['redeem:redeemed']); // in particular no 'lock:lost'
      expect(namesOf(eventsB)).toEqual(['redeem:waited', 'redeem:answered-from-cache']);
      expect(eventsB.find((event) => event.name === 'redeem:answered-from-cache')?.args[0]).toMatchObject({
        homeAccountId: entra().homeAccountIdOf(user),
        afterServerRejection: false,
      });
    } finally {
      entra().tokenLatencyMs = 0;
    }
  });

  it('raw codes, PKCE verifiers, bindings, the client secret and tokens never appear in store keys, store values, events or errors', async () => {
    const keyPrefix = `faults-${randomUUID()}:`;
    const url = redisUrl();
    const raw = createClient({ url });
    await raw.connect();
    cleanups.push(() => raw.destroy());
    // Everything the library publishes under its prefix (the lock-changes channel) counts as stored.
    const published: string[] = [];
    const subscriber = raw.duplicate();
    await subscriber.connect();
    cleanups.push(() => subscriber.destroy());
    await subscriber.pSubscribe(`${keyPrefix}*`, (message, channel) => published.push(channel, message));

    const app = inProcessInstance(keyPrefix);
    const events = recordEvents(app);
    const errors: unknown[] = [];
    const results: AuthenticationResult[] = [];
    const redeem = async (request: DistributedAuthorizationCodeRequest): Promise<string> => {
      try {
        results.push(await app.acquireTokenByCode(request));
        return 'tokens';
      } catch (error) {
        errors.push(error);
        return (error as { code?: string }).code ?? String(error);
      }
    };
    const pkceProvider = new CryptoProvider();

    // A redemption with PKCE, a concurrent duplicate, a late duplicate, a wrong verifier.
    const pkce = await newSignIn(entra());
    const wrongVerifier = (await pkceProvider.generatePkceCodes()).verifier;
    const withPkce = { code: pkce.code, redirectUri, scopes, codeVerifier: pkce.verifier };
    expect(await Promise.all([redeem(withPkce), redeem(withPkce)])).toEqual(['tokens', 'tokens']);
    expect(await redeem(withPkce)).toBe('tokens');
    expect(await redeem({ ...withPkce, codeVerifier: wrongVerifier })).toBe('ERR_CODE_ALREADY_REDEEMED');

    // An explicit binding on another code, then a duplicate with another binding.
    const bound = entra().mintCode({ redirectUri });
    const binding = 'session-secret-123';
    const otherBinding = `session-secret-${randomUUID()}`;
    expect(await redeem({ code: bound, redirectUri, scopes, binding })).toBe('tokens');
    expect(await redeem({ code: bound, redirectUri, scopes, binding: otherBinding })).toBe('ERR_CODE_ALREADY_REDEEMED');

    // An expired code.
    const expiring = await newSignIn(entra());
    entra().advanceTime(CODE_LIFETIME_MS + 1);
    try {
      expect(await redeem({ code: expiring.code, redirectUri, scopes, codeVerifier: expiring.verifier })).toBe('ERR_CODE_EXPIRED');
    } finally {
      entra().advanceTime(-(CODE_LIFETIME_MS + 1));
    }

    // The token endpoint redeems the code and the connection drops before the answer; then a duplicate.
    const dropped = await newSignIn(entra());
    entra().injectFailure('redeemThenDrop', { grantType: 'authorization_code' });
    const droppedRequest = { code: dropped.code, redirectUri, scopes, codeVerifier: dropped.verifier };
    expect(await redeem(droppedRequest)).toBe('ERR_REDEMPTION_OUTCOME_UNKNOWN');
    expect(await redeem(droppedRequest)).toBe('ERR_REDEMPTION_OUTCOME_UNKNOWN');
    expect(entra().tokenCallCount({ code: dropped.code })).toBe(1);

    // Everything stored under the prefix: every key, and every value (strings and hashes only).
    const keys: string[] = [];
    for await (const batch of raw.scanIterator({ MATCH: `${keyPrefix}*`, COUNT: 500 })) keys.push(...([] as string[]).concat(batch));
    const values: string[] = [];
    for (const key of keys) {
      const type = await raw.type(key);
      if (type === 'string') values.push((await raw.get(key)) ?? '');
      else if (type === 'hash') values.push(toJson(await raw.hGetAll(key)));
      else if (type !== 'none') throw new Error(`unexpected Redis type ${type} at ${key}`); // 'none': expired meanwhile
    }
    // Key names in the whole database (other test files share this Redis): none outside the prefix may carry a secret either.
    const allKeys: string[] = [];
    for await (const batch of raw.scanIterator({ MATCH: '*', COUNT: 1000 })) allKeys.push(...([] as string[]).concat(batch));

    // The tokens, read back from the cache itself (every "secret" field of MSAL's cache entities).
    const tokens = new Set(results.map((result) => result.accessToken));
    for (const value of values) for (const match of value.matchAll(/secret\\*"\s*:\s*\\*"([^"\\]+)/g)) tokens.add(match[1]!);

    const secrets = new Map<string, string>([
      ['PKCE code', pkce.code],
      ['bound code', bound],
      ['expired code', expiring.code],
      ['dropped code', dropped.code],
      ['PKCE verifier', pkce.verifier],
      ['wrong verifier', wrongVerifier],
      ['expired code verifier', expiring.verifier],
      ['dropped code verifier', dropped.verifier],
      ['binding', binding],
      ['other binding', otherBinding],
      ['client secret', entra().msalConfig().auth.clientSecret],
    ]);
    const leaks = (where: string, texts: string[], watched: Map<string, string>): string[] =>
      texts.flatMap((text) => [...watched].filter(([, secret]) => text.includes(secret)).map(([name]) => `${name} in ${where}`));
    const tokenSecrets = new Map([...tokens].map((token, index) => [`token #${index}`, token]));
    const eventTexts = events.map((event) => toJson(event));
    const errorTexts = [...errors.map((error) => toJson(error)), ...errors.flatMap(messagesOf)];

    // The scenario really happened, and what is searched is really there.
    expect(keys.some((key) => key.startsWith(`${keyPrefix}cache:`))).toBe(true);
    expect(keys.some((key) => key.startsWith(`${keyPrefix}claim:`))).toBe(true);
    expect(published.length).toBeGreaterThan(0);
    expect(results).toHaveLength(4);
    expect(errors).toHaveLength(5);
    expect([...new Set(events.map((event) => event.name))]).toEqual(
      expect.arrayContaining(['redeem:redeemed', 'redeem:joined', 'redeem:answered-from-cache', 'redeem:refused', 'cache:write']),
    );
    const refusals = events.filter((event) => event.name === 'redeem:refused').map((event) => (event.args[0] as { reason: string }).reason);
    expect(refusals.sort()).toEqual(['binding-mismatch', 'binding-mismatch', 'expired', 'outcome-unknown', 'outcome-unknown']);
    expect(values.some((value) => value.includes(results[0]!.accessToken))).toBe(true); // tokens are the cache
    expect(tokens.size).toBeGreaterThan(new Set(results.map((result) => result.accessToken)).size); // refresh and ID tokens too
    expect(leaks('a control', [toJson({ withPkce, binding })], secrets)).toHaveLength(3);

    expect([
      ...leaks('a store key', [...keys, ...allKeys], secrets),
      ...leaks('a store value', values, secrets),
      ...leaks('a published message', published, secrets),
      ...leaks('an event', eventTexts, secrets),
      ...leaks('an error', errorTexts, secrets),
      ...leaks('a store key', [...keys, ...allKeys], tokenSecrets),
      ...leaks('a published message', published, tokenSecrets),
      ...leaks('an event', eventTexts, tokenSecrets),
      ...leaks('an error', errorTexts, tokenSecrets),
    ]).toEqual([]);
  });

  it('in-process redemption state is empty again after 10,000 distinct codes, each with a concurrent duplicate', async () => {
    const CODES = 10_000;
    const BATCH = 100;
    // Deadlines far above any stall of a loaded CI machine: this test is about state left behind,
    // not about deadlines (those have their own tests).
    const lockStore = new RedisLockStore({ url: redisUrl(), keyPrefix: `faults-${randomUUID()}:`, commandTimeoutMs: 120_000 });
    const cache = new DistributedTokenCache({ lockStore, storeTimeoutMs: 120_000 }); // in-memory Keyv tokens, locks in Redis
    cleanups.push(() => cache.close());
    const app = new DistributedClientApplication(entra().msalConfig(), { cache });
    const counts = new Map<string, number>();
    for (const name of Object.keys(REDEEM_EVENTS) as (keyof RedeemEvents)[]) {
      app.on(name, () => counts.set(name, (counts.get(name) ?? 0) + 1));
    }
    const homeAccountId = entra().homeAccountIdOf(entra().registeredUsers[0]!);
    const callsBefore = entra().tokenCallCount({ grantType: 'authorization_code' });
    const failures: unknown[] = [];

    for (let start = 0; start < CODES; start += BATCH) {
      const calls = Array.from({ length: BATCH }, () => {
        // Without a binding (or verifier) the duplicate would be refused, not joined.
        const request = { code: entra().mintCode({ redirectUri }), redirectUri, scopes, binding: randomUUID() };
        return [app.acquireTokenByCode(request), app.acquireTokenByCode(request)];
      }).flat();
      for (const settled of await Promise.allSettled(calls)) {
        if (settled.status === 'rejected') failures.push(settled.reason);
        else if (settled.value.account?.homeAccountId !== homeAccountId) failures.push(settled.value.account);
      }
    }

    expect(failures.slice(0, 5).map((failure) => toJson(failure))).toEqual([]);
    expect(failures).toHaveLength(0);
    expect(app.redemptionsInFlight).toBe(0);
    expect(lockStore.waitingKeys).toBe(0);
    expect(entra().tokenCallCount({ grantType: 'authorization_code' }) - callsBefore).toBe(CODES);
    expect(counts.get('redeem:redeemed')).toBe(CODES);
    expect(counts.get('redeem:joined')).toBe(CODES);
    expect(counts.get('lock:lost')).toBeUndefined();
  }, 240_000);
});
