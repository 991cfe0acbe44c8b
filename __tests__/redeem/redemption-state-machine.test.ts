// The redemption state machine on its own, table-driven: claim states (claimed, busy, done,
// abandoned) × recorded outcomes × proofs of sign-in × lock-store failures, each row checked for
// its answer (tokens or a typed error with its reason), its events, and how often the code was
// sent. RedeemOnce runs on the real MemoryLockStore with fake timers (leases, waits and token
// deadlines of tens of seconds pass in microseconds); the token side is a scripted
// RedemptionTokens, since MSAL's own part is covered end to end in the other redeem tests.
import { AuthError, ServerError } from '@azure/msal-node';
import type { AuthenticationResult } from '@azure/msal-node';
import { MemoryLockStore, StoreUnavailableError } from '../../src';
import type { Claim, ClaimOptions, Lease, LockStore } from '../../src';
import { CodeHasher } from '../../src/redeem/code-hasher';
import { RedeemOnce } from '../../src/redeem/redeem-once';
import type { RedeemOnceSettings, RedemptionTokens } from '../../src/redeem/redeem-once';
import { RedemptionRecords } from '../../src/redeem/redemption-records';
import type { TokenStoreValues } from '../../src/redeem/redemption-records';

const SETTINGS: RedeemOnceSettings = {
  leaseMs: 30_000,
  waitTimeoutMs: 40_000,
  tokenRequestTimeoutMs: 30_000,
  recordTtlMs: 900_000,
  lockStoreFailure: 'fail-closed',
};
const HOME = 'uid.tid';
const CODE = 'c0de';

/** What the token endpoint does with the code (the first redemption's script). */
type Redeem = 'ok' | 'fails-before-send' | 'fails' | 'expired' | '54005' | 'network' | 'hangs';
/** What the cache does when a duplicate is answered. */
type Silent = 'ok' | 'refused' | 'unavailable';

function serverError(code: string, message: string, status?: number): ServerError {
  return new ServerError(code, '', message, undefined, undefined, status); // (errorCode, correlationId, message, ...)
}

const REDEEM_ERRORS: Record<Exclude<Redeem, 'ok' | 'fails-before-send' | 'hangs'>, () => Error> = {
  fails: () => serverError('invalid_grant', 'AADSTS501481: The Code_Verifier does not match the code_challenge'),
  expired: () => serverError('invalid_grant', 'AADSTS70008: The provided authorization code or refresh token has expired'),
  '54005': () => serverError('invalid_grant', 'AADSTS54005: OAuth2 Authorization code was already redeemed'),
  network: () => new AuthError('network_error', 'the connection was reset'),
};

function result(homeAccountId: string): AuthenticationResult {
  return { accessToken: `token-of-${homeAccountId}`, account: { homeAccountId } } as AuthenticationResult;
}

/** A lock store that fails the calls named in `failing`, as a store that is down does. */
class FlakyLockStore implements LockStore {
  readonly failing = new Set<'claim' | 'complete'>();
  constructor(private readonly inner: LockStore) {}
  acquire = (...args: Parameters<LockStore['acquire']>): Promise<Lease> => this.inner.acquire(...args);
  async claim(key: string, options: ClaimOptions): Promise<Claim> {
    if (this.failing.has('claim')) throw new StoreUnavailableError('the lock store is down');
    return this.inner.claim(key, options);
  }
  async complete(lease: Lease, outcome: string, recordTtlMs: number): Promise<boolean> {
    if (this.failing.has('complete')) throw new StoreUnavailableError('the lock store is down');
    return this.inner.complete(lease, outcome, recordTtlMs);
  }
  withdraw = (lease: Lease): Promise<boolean> => this.inner.withdraw!(lease);
  settle = (...args: Parameters<LockStore['settle']>): Promise<string> => this.inner.settle(...args);
  waitForChange = (key: string, timeoutMs: number): Promise<void> => this.inner.waitForChange(key, timeoutMs);
  close = (): Promise<void> => this.inner.close();
}

/** Several "instances" (RedeemOnce objects that share no flights) on one lock store and one token store. */
function world(settings: Partial<RedeemOnceSettings> = {}) {
  const lockStore = new FlakyLockStore(new MemoryLockStore());
  const values = new Map<string, string>();
  const tokenStore: TokenStoreValues = {
    keyPrefix: 'msal-dc:',
    cipher: undefined,
    getValue: async (key) => values.get(key),
    setValue: async (key, value) => void values.set(key, value),
  };
  const hasher = new CodeHasher('state-machine-test-key');
  const events: Array<[string, Record<string, unknown>]> = [];
  const storeErrors: Array<[string, string]> = [];
  const merged = { ...SETTINGS, ...settings };
  const records = new RedemptionRecords(hasher, tokenStore, merged.recordTtlMs);
  const instance = (): RedeemOnce =>
    new RedeemOnce({
      lockStore,
      records,
      events: (name, ...payload) => events.push([name, payload[0] as unknown as Record<string, unknown>]),
      lockStoreError: (error, outcome) => storeErrors.push([error.code, outcome]),
      settings: merged,
    });
  const codeHash = hasher.code(CODE);
  const proof = (verifier: string | undefined): string => hasher.binding({ codeVerifier: verifier });
  return { lockStore, values, records, events, storeErrors, instance, codeHash, proof };
}

/** A scripted token side, counting what was asked of it. */
function tokens(redeem: Redeem, silent: Silent = 'ok') {
  const calls = { sent: 0, redeem: 0, silent: [] as boolean[], purged: 0 };
  let finish: ((value: AuthenticationResult) => void) | undefined;
  const source: RedemptionTokens = {
    redeem: async (onSend) => {
      calls.redeem++;
      if (redeem === 'fails-before-send') throw new Error('discovery failed before any request');
      onSend();
      calls.sent++;
      if (redeem === 'hangs') return new Promise<AuthenticationResult>((resolve) => (finish = resolve));
      if (redeem !== 'ok') throw REDEEM_ERRORS[redeem]();
      return result(HOME);
    },
    silent: async (homeAccountId, forceRefresh) => {
      calls.silent.push(forceRefresh);
      if (silent === 'refused') throw serverError('invalid_grant', 'AADSTS70000: the refresh token was revoked');
      if (silent === 'unavailable') throw serverError('server_error', 'AADSTS90033: service unavailable', 503);
      return result(homeAccountId);
    },
    purge: async () => void calls.purged++,
  };
  return { source, calls, finish: (): void => finish?.(result(HOME)) };
}

/** Settles a promise while fake time runs: the outcome, as `{ value }` or `{ error }`. */
async function settle<T>(promise: Promise<T>, advanceMs = 0): Promise<{ value?: T; error?: { code?: string; reason?: string } }> {
  const outcome = promise.then(
    (value) => ({ value }),
    (error: { code?: string; reason?: string }) => ({ error }),
  );
  if (advanceMs > 0) await jest.advanceTimersByTimeAsync(advanceMs);
  return outcome;
}

const names = (events: Array<[string, Record<string, unknown>]>): string[] => events.map(([name]) => name);

beforeEach(() => jest.useFakeTimers());
afterEach(() => jest.useRealTimers());

describe('RedeemOnce state machine: a duplicate on another instance, after the first redemption settled', () => {
  // first: what the token endpoint did with the first redemption; proof: the duplicate's verifier
  // ('same' as the first, 'none', or 'other'); silent: how the cache answers the duplicate.
  const rows: Array<{
    first: Redeem;
    proof: 'same' | 'none' | 'other';
    silent?: Silent;
    expected: { tokens: true; forceRefresh: boolean } | { code: string; reason?: string };
  }> = [
    { first: 'ok', proof: 'same', expected: { tokens: true, forceRefresh: false } },
    { first: 'ok', proof: 'none', expected: { code: 'ERR_CODE_ALREADY_REDEEMED', reason: 'no-binding' } },
    { first: 'ok', proof: 'other', expected: { code: 'ERR_CODE_ALREADY_REDEEMED', reason: 'binding-mismatch' } },
    { first: 'ok', proof: 'same', silent: 'refused', expected: { code: 'ERR_CODE_ALREADY_REDEEMED', reason: 'tokens-gone' } },
    { first: 'ok', proof: 'same', silent: 'unavailable', expected: { code: 'ERR_TOKEN_ENDPOINT_UNAVAILABLE' } },
    { first: 'fails', proof: 'same', expected: { code: 'ERR_REDEMPTION_FAILED', reason: 'failed' } },
    { first: 'expired', proof: 'same', expected: { code: 'ERR_CODE_EXPIRED', reason: 'expired' } },
    { first: 'network', proof: 'same', expected: { code: 'ERR_REDEMPTION_OUTCOME_UNKNOWN', reason: 'outcome-unknown' } },
    { first: '54005', proof: 'same', expected: { code: 'ERR_CODE_ALREADY_REDEEMED', reason: 'already-redeemed' } },
    { first: 'fails', proof: 'none', expected: { code: 'ERR_REDEMPTION_FAILED', reason: 'failed' } },
  ];

  it.each(rows)('first $first, duplicate with proof $proof, cache $silent → $expected', async ({ first, proof, silent, expected }) => {
    const w = world();
    const winner = tokens(first);
    await settle(w.instance().run(w.codeHash, w.proof('verifier'), winner.source));
    expect(winner.calls.sent).toBe(1);

    w.events.length = 0;
    const duplicate = tokens('ok', silent);
    const verifier = proof === 'same' ? 'verifier' : proof === 'other' ? 'another-verifier' : undefined;
    const answer = await settle(w.instance().run(w.codeHash, verifier === undefined ? '' : w.proof(verifier), duplicate.source));

    expect(duplicate.calls.redeem).toBe(0); // a duplicate never sends the code
    if ('tokens' in expected) {
      expect(answer.value?.account?.homeAccountId).toBe(HOME);
      expect(duplicate.calls.silent).toEqual([expected.forceRefresh]);
      expect(names(w.events)).toEqual(['redeem:answered-from-cache']);
    } else {
      expect(answer.error?.code).toBe(expected.code);
      // The error's reason (CodeAlreadyRedeemedError) is the event's.
      if (expected.code === 'ERR_CODE_ALREADY_REDEEMED') expect(answer.error?.reason).toBe(expected.reason);
      const refused = w.events.filter(([name]) => name === 'redeem:refused').map(([, payload]) => payload.reason);
      expect(refused).toEqual(expected.reason === undefined ? [] : [expected.reason]);
    }
  });
});

describe('RedeemOnce state machine: the first caller and its claim', () => {
  it('claimed: sends the code once, records the outcome and its copy, emits redeem:redeemed', async () => {
    const w = world();
    const winner = tokens('ok');
    const answer = await settle(w.instance().run(w.codeHash, w.proof('verifier'), winner.source));
    expect(answer.value?.account?.homeAccountId).toBe(HOME);
    expect(winner.calls.sent).toBe(1);
    expect(names(w.events)).toEqual(['redeem:redeemed']);
    expect(await w.records.readCopy(w.codeHash)).toMatchObject({ state: 'redeemed', homeAccountId: HOME });
  });

  it('busy in this instance: a duplicate with the same proof joins; with another proof it is refused at once', async () => {
    const w = world();
    const app = w.instance();
    const winner = tokens('hangs');
    const first = settle(app.run(w.codeHash, w.proof('verifier'), winner.source));
    const joined = settle(app.run(w.codeHash, w.proof('verifier'), tokens('ok').source));
    const refused = await settle(app.run(w.codeHash, w.proof('other'), tokens('ok').source));
    expect(refused.error).toMatchObject({ code: 'ERR_CODE_ALREADY_REDEEMED', reason: 'binding-mismatch' });
    winner.finish();
    expect((await first).value).toBe((await joined).value);
    expect(winner.calls.sent).toBe(1);
    expect(names(w.events)).toEqual(['redeem:joined', 'redeem:refused', 'redeem:redeemed']);
    expect(app.inFlight).toBe(0);
  });

  it('busy on another instance: the duplicate waits for the outcome, then is answered from the cache', async () => {
    const w = world();
    const winner = tokens('hangs');
    const first = settle(w.instance().run(w.codeHash, w.proof('verifier'), winner.source));
    const duplicate = tokens('ok');
    const second = settle(w.instance().run(w.codeHash, w.proof('verifier'), duplicate.source));
    await jest.advanceTimersByTimeAsync(1_000); // the duplicate polls meanwhile
    winner.finish();
    await jest.advanceTimersByTimeAsync(0);
    expect((await second).value?.account?.homeAccountId).toBe(HOME);
    expect((await first).value?.account?.homeAccountId).toBe(HOME);
    expect(winner.calls.sent + duplicate.calls.sent).toBe(1);
    // The winner's event and the duplicate's answer race: both happen, in either order.
    expect(names(w.events).sort()).toEqual(['redeem:answered-from-cache', 'redeem:redeemed', 'redeem:waited']);
  });

  it('busy beyond redeem.waitTimeoutMs: ERR_LOCK_TIMEOUT, and the code is not sent again', async () => {
    const w = world({ tokenRequestTimeoutMs: 10 * SETTINGS.waitTimeoutMs }); // a holder still legitimately at work
    const winner = tokens('hangs');
    void settle(w.instance().run(w.codeHash, w.proof('verifier'), winner.source));
    const duplicate = tokens('ok');
    const answer = await settle(w.instance().run(w.codeHash, w.proof('verifier'), duplicate.source), SETTINGS.waitTimeoutMs + 1_000);
    expect(answer.error?.code).toBe('ERR_LOCK_TIMEOUT');
    expect(duplicate.calls.redeem).toBe(0);
  });

  it('a token request unanswered after tokenRequestTimeoutMs: ERR_REDEMPTION_OUTCOME_UNKNOWN, for its duplicates too', async () => {
    const w = world();
    const winner = tokens('hangs');
    const answer = await settle(w.instance().run(w.codeHash, w.proof('verifier'), winner.source), SETTINGS.tokenRequestTimeoutMs);
    expect(answer.error?.code).toBe('ERR_REDEMPTION_OUTCOME_UNKNOWN');
    const duplicate = await settle(w.instance().run(w.codeHash, w.proof('verifier'), tokens('ok').source));
    expect(duplicate.error?.code).toBe('ERR_REDEMPTION_OUTCOME_UNKNOWN');
    expect(winner.calls.sent).toBe(1);
  });

  it('abandoned (the holder vanished and its lease expired): settled as unknown for everyone', async () => {
    const w = world();
    const claim = await w.lockStore.claim(w.codeHash, { leaseMs: 1_000, recordTtlMs: SETTINGS.recordTtlMs });
    expect(claim.state).toBe('claimed');
    await jest.advanceTimersByTimeAsync(1_001);
    const duplicate = tokens('ok');
    const answer = await settle(w.instance().run(w.codeHash, w.proof('verifier'), duplicate.source));
    expect(answer.error?.code).toBe('ERR_REDEMPTION_OUTCOME_UNKNOWN');
    expect(duplicate.calls.redeem).toBe(0);
  });

  it('a failure before the code was sent gives the claim back: the retry redeems it', async () => {
    const w = world();
    const unsent = tokens('fails-before-send');
    const failed = await settle(w.instance().run(w.codeHash, w.proof('verifier'), unsent.source));
    expect(failed.error).toBeInstanceOf(Error);
    expect(unsent.calls.sent).toBe(0);
    const retry = tokens('ok');
    const answer = await settle(w.instance().run(w.codeHash, w.proof('verifier'), retry.source));
    expect(answer.value?.account?.homeAccountId).toBe(HOME);
    expect(retry.calls.sent).toBe(1);
  });

  it('AADSTS54005 with the copy of an earlier redemption and the same proof: answered through a refresh', async () => {
    const w = world();
    await w.records.writeCopy(w.codeHash, { state: 'redeemed', homeAccountId: HOME, bindingHash: w.proof('verifier'), redeemedAt: 1 });
    const caller = tokens('54005');
    const answer = await settle(w.instance().run(w.codeHash, w.proof('verifier'), caller.source));
    expect(answer.value?.account?.homeAccountId).toBe(HOME);
    expect(caller.calls.silent).toEqual([true]);
    expect(names(w.events)).toEqual(['redeem:answered-from-cache']);
  });

  it('AADSTS54005, and the refresh is refused: the tokens are purged, reason tokens-gone', async () => {
    const w = world();
    await w.records.writeCopy(w.codeHash, { state: 'redeemed', homeAccountId: HOME, bindingHash: w.proof('verifier'), redeemedAt: 1 });
    const caller = tokens('54005', 'refused');
    const answer = await settle(w.instance().run(w.codeHash, w.proof('verifier'), caller.source));
    expect(answer.error).toMatchObject({ code: 'ERR_CODE_ALREADY_REDEEMED', reason: 'tokens-gone' });
    expect(caller.calls.purged).toBe(1);
  });

  it('an edited lock-store record: ERR_REDEMPTION_RECORD_CORRUPT and redeem:corrupt, never tokens', async () => {
    const w = world();
    const claim = await w.lockStore.claim(w.codeHash, { leaseMs: 1_000, recordTtlMs: SETTINGS.recordTtlMs });
    if (claim.state !== 'claimed') throw new Error('expected a claim');
    await w.lockStore.complete(
      claim.lease,
      JSON.stringify({ state: 'redeemed', homeAccountId: 'attacker', bindingHash: '', redeemedAt: 1 }),
      60_000,
    );
    const duplicate = tokens('ok');
    const answer = await settle(w.instance().run(w.codeHash, w.proof('verifier'), duplicate.source));
    expect(answer.error?.code).toBe('ERR_REDEMPTION_RECORD_CORRUPT');
    expect(names(w.events)).toEqual(['redeem:corrupt']);
    expect(duplicate.calls.silent).toEqual([]);
  });
});

describe('RedeemOnce state machine: the lock store fails', () => {
  it('fail-closed: ERR_STORE_UNAVAILABLE before anything is sent, reported as thrown', async () => {
    const w = world();
    w.lockStore.failing.add('claim');
    const caller = tokens('ok');
    const answer = await settle(w.instance().run(w.codeHash, w.proof('verifier'), caller.source));
    expect(answer.error?.code).toBe('ERR_STORE_UNAVAILABLE');
    expect(caller.calls.redeem).toBe(0);
    expect(w.storeErrors).toEqual([['ERR_STORE_UNAVAILABLE', 'thrown']]);
  });

  it('fail-open: redeems without the lock store, emits redeem:unlocked, reported as ignored', async () => {
    const w = world({ lockStoreFailure: 'fail-open' });
    w.lockStore.failing.add('claim');
    const caller = tokens('ok');
    const answer = await settle(w.instance().run(w.codeHash, w.proof('verifier'), caller.source));
    expect(answer.value?.account?.homeAccountId).toBe(HOME);
    expect(names(w.events)).toEqual(['redeem:unlocked', 'redeem:redeemed']);
    expect(w.storeErrors).toEqual([['ERR_STORE_UNAVAILABLE', 'ignored']]);
  });

  it('fail-open after a claim saw another redeemer: ERR_STORE_UNAVAILABLE, the code is not sent a second time', async () => {
    const w = world({ lockStoreFailure: 'fail-open' });
    const winner = tokens('hangs');
    void settle(w.instance().run(w.codeHash, w.proof('verifier'), winner.source));
    const duplicate = tokens('ok');
    const second = settle(w.instance().run(w.codeHash, w.proof('verifier'), duplicate.source));
    await jest.advanceTimersByTimeAsync(0); // its first claim finds the code busy
    w.lockStore.failing.add('claim');
    await jest.advanceTimersByTimeAsync(1_000);
    expect((await second).error?.code).toBe('ERR_STORE_UNAVAILABLE');
    expect(duplicate.calls.redeem).toBe(0);
  });

  it('recording the outcome fails: the caller still gets its tokens; the failure is reported as ignored', async () => {
    const w = world();
    w.lockStore.failing.add('complete');
    const answer = await settle(w.instance().run(w.codeHash, w.proof('verifier'), tokens('ok').source));
    expect(answer.value?.account?.homeAccountId).toBe(HOME);
    expect(w.storeErrors).toEqual([['ERR_STORE_UNAVAILABLE', 'ignored']]);
  });
});
