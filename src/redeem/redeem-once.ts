/**
 * Redeem-once: every authorization code is sent to the token endpoint at most once, by one caller
 * across all processes sharing the lock store; every duplicate waits for that one redemption and
 * is answered from its outcome: with tokens from the shared cache when it proves it belongs to
 * the same sign-in (same PKCE verifier or binding), with a typed error otherwise.
 *
 * In-process duplicates join the pending redemption (single flight); other processes claim the
 * code in the lock store, find it busy, and wait for the outcome (pub/sub plus polling).
 */
import type { AuthenticationResult } from '@azure/msal-node';
import {
  CodeAlreadyRedeemedError,
  CodeExpiredError,
  LockTimeoutError,
  MsalDistributedCacheError,
  RedemptionFailedError,
  RedemptionOutcomeUnknownError,
  StoreUnavailableError,
  TokenEndpointUnavailableError,
} from '../errors';
import type { SafeEmitter } from '../events';
import type { Claim, Lease, LockStore } from '../lock/lock-store';
import type { CodeHasher } from './code-hasher';
import type { RedemptionOutcome } from './outcome';
import { errorCodeOf, isCodeAlreadyRedeemed, isCodeExpired, isGrantRefused, isOutcomeUnknown } from './server-errors';

/** Common to redeem events: the code, as a keyed hash. */
export interface RedeemEvent {
  /** Keyed hash (HMAC-SHA-256) of the code, truncated. */
  codeHash: string;
}

/**
 * Every event of redeem-once, emitted by {@link DistributedClientApplication}: listen with
 * `msal.on(name, listener)`.
 *
 * @example
 * ```ts
 * msal.on('redeem:answered-from-cache', ({ codeHash }) => console.info(`duplicate callback ${codeHash} answered from the cache`));
 * msal.on('redeem:refused', ({ codeHash, reason }) => console.warn(`duplicate callback ${codeHash} refused: ${reason}`));
 * ```
 */
export interface RedeemEvents {
  /** This caller redeemed the code at the token endpoint. */
  'redeem:redeemed': [
    RedeemEvent & {
      /** The account that signed in. */
      homeAccountId: string;
    },
  ];
  /** A duplicate in this process joined the pending redemption. */
  'redeem:joined': [RedeemEvent];
  /** A duplicate waited for a redemption in progress elsewhere. */
  'redeem:waited': [RedeemEvent];
  /** A duplicate was answered with tokens from the shared cache. */
  'redeem:answered-from-cache': [
    RedeemEvent & {
      /** The account whose tokens answered it. */
      homeAccountId: string;
      /** `true` when Entra ID itself said the code was redeemed (AADSTS54005) and the answer came from a refresh. */
      afterServerRejection: boolean;
    },
  ];
  /** A duplicate (or a rejected redemption) got an error instead of tokens. */
  'redeem:refused': [
    RedeemEvent & {
      /** Why: no or another proof of the same sign-in, or what happened to the first redemption. */
      reason: 'no-binding' | 'binding-mismatch' | 'already-redeemed' | 'expired' | 'outcome-unknown' | 'failed' | 'tokens-gone';
    },
  ];
  /**
   * A stored redemption record failed its integrity check (edited, copied from another code, or
   * written with another `codeHashKey`): it is ignored, and the caller gets an error instead of tokens.
   */
  'redeem:corrupt': [
    RedeemEvent & {
      /** Where the record was: the lock store's outcome, or its copy in the token store. */
      store: 'lock-store' | 'token-store';
    },
  ];
  /** The lock store could not be reached and `lockStoreFailure: 'fail-open'` redeemed without it. */
  'redeem:unlocked': [RedeemEvent];
  /** The redeemer's lease was lost while it worked (its outcome may be refused by fencing). */
  'lock:lost': [RedeemEvent];
}

export interface RedeemOnceSettings {
  leaseMs: number;
  waitTimeoutMs: number;
  /** The lock store cannot be reached: refuse (`'fail-closed'`) or redeem without it (`'fail-open'`). */
  lockStoreFailure: 'fail-closed' | 'fail-open';
  recordTtlMs: number;
  /** Deadline of the token request, from the moment it is sent; then its outcome is unknown. */
  tokenRequestTimeoutMs: number;
}

/** What redeem-once needs from the application. */
export interface RedeemOnceDeps {
  lockStore: LockStore;
  hasher: CodeHasher;
  events: SafeEmitter<RedeemEvents>;
  settings: RedeemOnceSettings;
  /**
   * The one real redemption (an MSAL client whose cache is the account's partition). It calls
   * `onSend` when it starts a request that may carry the code (a POST); until then, the code has
   * provably not left the process.
   */
  redeem(onSend: () => void): Promise<AuthenticationResult>;
  /** Tokens for an account from the shared cache; `forceRefresh` after a server-side rejection. */
  silent(homeAccountId: string, forceRefresh: boolean): Promise<AuthenticationResult>;
  /** Removes an account's tokens that the server refused to refresh. */
  purge(homeAccountId: string): Promise<void>;
  /** Reports a lock-store failure (`store:error` with `operation: 'lock'`), whether thrown or ignored. */
  lockStoreError(error: MsalDistributedCacheError, outcome: 'thrown' | 'ignored'): void;
  /** How outcomes are written to and read from the lock store (sealed when encryption is on). */
  outcomes: { seal(outcome: RedemptionOutcome): string; open(stored: string): RedemptionOutcome };
  /** The copy of 'redeemed' outcomes kept in the token store (read after an AADSTS54005). */
  mirror: {
    read(codeHash: string): Promise<RedemptionOutcome | undefined>;
    write(codeHash: string, outcome: RedemptionOutcome): Promise<void>;
  };
}

interface Flight {
  bindingHash: string;
  promise: Promise<AuthenticationResult>;
}

const MAX_POLL_MS = 250;

/** The token request outlived `tokenRequestTimeoutMs` (its outcome is unknown from then on). */
class TokenRequestTimedOut extends Error {
  constructor(timeoutMs: number) {
    super(`the token request got no answer within ${timeoutMs} ms (redeem.tokenRequestTimeoutMs)`);
    this.name = 'TokenRequestTimedOut';
  }
}

export class RedeemOnce {
  private readonly flights = new Map<string, Flight>();

  /** Codes being redeemed by this process right now (empty when idle). */
  get inFlight(): number {
    return this.flights.size;
  }

  /**
   * Redeems `code` once, or answers as a duplicate.
   *
   * @param codeHash - keyed hash of the code
   * @param bindingHash - keyed hash of the request's proof of sign-in (`''` when none)
   */
  run(codeHash: string, bindingHash: string, deps: RedeemOnceDeps): Promise<AuthenticationResult> {
    const flight = this.flights.get(codeHash);
    if (flight) {
      if (!bindingHash || flight.bindingHash !== bindingHash)
        return Promise.reject(this.refuse(deps, codeHash, bindingHash ? 'binding-mismatch' : 'no-binding'));
      deps.events.safeEmit('redeem:joined', { codeHash });
      return flight.promise;
    }
    const promise = this.coordinate(codeHash, bindingHash, deps).finally(() => {
      if (this.flights.get(codeHash)?.promise === promise) this.flights.delete(codeHash);
    });
    this.flights.set(codeHash, { bindingHash, promise });
    return promise;
  }

  private async coordinate(codeHash: string, bindingHash: string, deps: RedeemOnceDeps): Promise<AuthenticationResult> {
    const { lockStore, settings } = deps;
    const deadline = Date.now() + settings.waitTimeoutMs;
    // Set once a claim found someone else at work on the code: from then on, fail-open would
    // send the code a second time, so a lock-store failure ends in an error.
    let seenOtherRedeemer = false;
    for (let attempt = 0; ; attempt++) {
      let claim: Claim;
      try {
        claim = await lockStore.claim(codeHash, { leaseMs: settings.leaseMs, recordTtlMs: settings.recordTtlMs });
      } catch (error) {
        const failOpen = settings.lockStoreFailure === 'fail-open' && error instanceof StoreUnavailableError;
        if (!failOpen || seenOtherRedeemer) {
          if (error instanceof MsalDistributedCacheError) deps.lockStoreError(error, 'thrown');
          if (!failOpen) throw error;
          throw new StoreUnavailableError(
            `the lock store stopped answering while another caller was redeeming this code (${codeHash.slice(0, 16)}, a keyed hash), so it is not sent from here (lockStoreFailure: 'fail-open' applies only before anyone else is seen redeeming); retry the request once the lock store is back`,
            { cause: error },
          );
        }
        // Fail-open, and nobody else seen redeeming: redeem without cross-process protection.
        // Duplicates in other processes may then reach Entra ID and are recognised by AADSTS54005.
        deps.lockStoreError(error, 'ignored');
        deps.events.safeEmit('redeem:unlocked', { codeHash });
        return this.redeemAsWinner(undefined, codeHash, bindingHash, deps);
      }
      if (claim.state === 'claimed') return this.redeemAsWinner(claim.lease, codeHash, bindingHash, deps);
      seenOtherRedeemer = true;
      if (attempt === 1) deps.events.safeEmit('redeem:waited', { codeHash });
      if (claim.state === 'done') return this.answer(deps.outcomes.open(claim.outcome), codeHash, bindingHash, deps, false);
      if (claim.state === 'abandoned') {
        // The redeemer vanished after claiming: whether the code reached Entra ID is unknown.
        const settled = await lockStore.settle(codeHash, deps.outcomes.seal({ state: 'unknown' }), settings.recordTtlMs).catch((error) => {
          if (error instanceof MsalDistributedCacheError) deps.lockStoreError(error, 'thrown');
          throw error;
        });
        return this.answer(deps.outcomes.open(settled), codeHash, bindingHash, deps, false);
      }
      const remaining = deadline - Date.now();
      if (remaining <= 0) {
        throw new LockTimeoutError(
          `a redemption of this code (${codeHash.slice(0, 16)}, a keyed hash) was still in progress after ${settings.waitTimeoutMs} ms; retry the request, or restart the sign-in from /authorize`,
        );
      }
      await lockStore.waitForChange(codeHash, Math.min(remaining, 10 * 2 ** Math.min(attempt, 5), MAX_POLL_MS));
    }
  }

  private async redeemAsWinner(
    lease: Lease | undefined,
    codeHash: string,
    bindingHash: string,
    deps: RedeemOnceDeps,
  ): Promise<AuthenticationResult> {
    const { settings } = deps;
    // Keep the lease while the token endpoint is slow; a lost lease is reported, and fencing
    // keeps this holder from overwriting an outcome recorded after it.
    const keepAlive = setInterval(
      () => {
        lease?.extend(settings.leaseMs).then(
          (held) => held || deps.events.safeEmit('lock:lost', { codeHash }),
          (error: unknown) => deps.lockStoreError(asLockStoreError(error, 'renewing the lease of a redemption'), 'ignored'),
        );
      },
      Math.max(1, Math.floor(settings.leaseMs / 3)),
    );
    keepAlive.unref();
    // The deadline starts when the code is sent: then, and only then, its outcome can be unknown.
    let sent = false;
    let deadline: NodeJS.Timeout | undefined;
    let timedOut!: (error: TokenRequestTimedOut) => void;
    const expired = new Promise<never>((_, reject) => (timedOut = reject));
    const onSend = (): void => {
      if (sent) return;
      sent = true;
      deadline = setTimeout(() => timedOut(new TokenRequestTimedOut(settings.tokenRequestTimeoutMs)), settings.tokenRequestTimeoutMs);
    };
    let result: AuthenticationResult;
    try {
      // A late answer after the deadline still reaches the partition (MSAL writes it), but this
      // call, its lease renewal and close() no longer wait for it.
      result = await Promise.race([deps.redeem(onSend), expired]);
    } catch (error) {
      return this.afterFailedRedemption(error, sent, lease, codeHash, bindingHash, deps);
    } finally {
      clearInterval(keepAlive);
      clearTimeout(deadline);
    }
    const homeAccountId = result.account?.homeAccountId ?? '';
    const outcome: RedemptionOutcome = { state: 'redeemed', homeAccountId, bindingHash, redeemedAt: Date.now() };
    await this.record(lease, outcome, codeHash, deps);
    await deps.mirror.write(codeHash, outcome).catch(() => undefined); // best effort: only read after an AADSTS54005
    deps.events.safeEmit('redeem:redeemed', { codeHash, homeAccountId });
    return result;
  }

  private async afterFailedRedemption(
    error: unknown,
    sent: boolean,
    lease: Lease | undefined,
    codeHash: string,
    bindingHash: string,
    deps: RedeemOnceDeps,
  ): Promise<AuthenticationResult> {
    if (!sent && (await this.withdraw(lease, deps))) throw error; // the code never left: the next attempt may redeem it
    if (error instanceof TokenRequestTimedOut) {
      await this.record(lease, { state: 'unknown' }, codeHash, deps);
      throw this.refuse(deps, codeHash, 'outcome-unknown', error);
    }
    if (isCodeAlreadyRedeemed(error)) return this.afterServerSaidRedeemed(error, lease, codeHash, bindingHash, deps);
    if (isCodeExpired(error)) {
      await this.record(lease, { state: 'expired' }, codeHash, deps);
      throw this.refuse(deps, codeHash, 'expired', error);
    }
    if (isOutcomeUnknown(error)) {
      // The server may have redeemed the code before the connection failed: never send it again.
      await this.record(lease, { state: 'unknown' }, codeHash, deps);
      throw this.refuse(deps, codeHash, 'outcome-unknown', error);
    }
    await this.record(lease, { state: 'failed', errorCode: errorCodeOf(error) }, codeHash, deps);
    throw error; // the redeemer sees MSAL's (or the store's) own error; duplicates get ERR_REDEMPTION_FAILED
  }

  /**
   * AADSTS54005 for our own first attempt: the code was redeemed outside our lock (another
   * deployment, a lost lock record). Entra ID may have revoked the first redemption's tokens
   * (RFC 6749 §4.1.2), so answer only through a refresh, and purge only what the server refuses:
   * a refresh that got no answer, or a store that failed, leaves the tokens and the outcome
   * (marked refresh-required) in place for a retry.
   */
  private async afterServerSaidRedeemed(
    error: unknown,
    lease: Lease | undefined,
    codeHash: string,
    bindingHash: string,
    deps: RedeemOnceDeps,
  ): Promise<AuthenticationResult> {
    const mirrored = await deps.mirror.read(codeHash).catch(() => undefined);
    if (mirrored?.state === 'redeemed' && bindingHash && mirrored.bindingHash === bindingHash) {
      try {
        const result = await deps.silent(mirrored.homeAccountId, true);
        await this.record(lease, mirrored, codeHash, deps);
        deps.events.safeEmit('redeem:answered-from-cache', { codeHash, homeAccountId: mirrored.homeAccountId, afterServerRejection: true });
        return result;
      } catch (refreshError) {
        if (isGrantRefused(refreshError)) {
          await deps.purge(mirrored.homeAccountId).catch(() => undefined);
        } else if (isRetryable(refreshError)) {
          await this.record(lease, { ...mirrored, refreshRequired: true }, codeHash, deps);
          throw this.retryable(refreshError);
        }
        await this.record(lease, { state: 'already-redeemed' }, codeHash, deps);
        throw this.refuse(deps, codeHash, 'tokens-gone', refreshError);
      }
    }
    await this.record(lease, { state: 'already-redeemed' }, codeHash, deps);
    throw this.refuse(deps, codeHash, 'already-redeemed', error);
  }

  /** Answers a duplicate from the recorded outcome. */
  private async answer(
    outcome: RedemptionOutcome,
    codeHash: string,
    bindingHash: string,
    deps: RedeemOnceDeps,
    afterServerRejection: boolean,
  ): Promise<AuthenticationResult> {
    switch (outcome.state) {
      case 'redeemed': {
        if (!bindingHash || outcome.bindingHash !== bindingHash)
          throw this.refuse(deps, codeHash, bindingHash ? 'binding-mismatch' : 'no-binding');
        const refresh = afterServerRejection || outcome.refreshRequired === true;
        let result: AuthenticationResult;
        try {
          result = await deps.silent(outcome.homeAccountId, refresh);
        } catch (error) {
          if (isRetryable(error)) throw this.retryable(error); // nothing is lost: the same duplicate can retry
          throw this.refuse(deps, codeHash, 'tokens-gone', error);
        }
        deps.events.safeEmit('redeem:answered-from-cache', {
          codeHash,
          homeAccountId: outcome.homeAccountId,
          afterServerRejection: refresh,
        });
        return result;
      }
      case 'expired':
        throw this.refuse(deps, codeHash, 'expired');
      case 'unknown':
        throw this.refuse(deps, codeHash, 'outcome-unknown');
      case 'failed':
        throw this.refuse(deps, codeHash, 'failed');
      case 'already-redeemed':
        throw this.refuse(deps, codeHash, 'already-redeemed');
    }
  }

  /**
   * Records the outcome. A store failure here is not the caller's failure: it is reported as
   * `store:error`, and duplicates find the claim abandoned once the lease expires.
   */
  private async record(lease: Lease | undefined, outcome: RedemptionOutcome, codeHash: string, deps: RedeemOnceDeps): Promise<void> {
    if (!lease) return; // redeemed without the lock store (fail-open): nowhere to record
    let accepted: boolean;
    try {
      accepted = await deps.lockStore.complete(lease, deps.outcomes.seal(outcome), deps.settings.recordTtlMs);
    } catch (error) {
      deps.lockStoreError(asLockStoreError(error, 'recording the outcome of a redemption'), 'ignored');
      return;
    }
    if (!accepted) deps.events.safeEmit('lock:lost', { codeHash });
  }

  /**
   * Gives the claim back after a failure that provably happened before the code was sent (MSAL's
   * own checks, discovery): the next attempt, here or on another instance, may redeem the code.
   * `true` also without a lease (fail-open: nothing to give back). `false` when the lock store
   * cannot withdraw a claim, the lease was already lost, or the withdrawal failed: the failure is
   * then recorded as usual (a duplicate sees it; the code is not sent again).
   */
  private async withdraw(lease: Lease | undefined, deps: RedeemOnceDeps): Promise<boolean> {
    if (!lease) return true; // redeemed without the lock store (fail-open): nothing to give back
    if (!deps.lockStore.withdraw) return false;
    try {
      return await deps.lockStore.withdraw(lease);
    } catch (error) {
      deps.lockStoreError(asLockStoreError(error, 'giving back the claim of an unsent code'), 'ignored');
      return false;
    }
  }

  /** A failure after which nothing is lost and the same request can be retried as it is. */
  private retryable(error: unknown): MsalDistributedCacheError {
    if (error instanceof MsalDistributedCacheError) return error; // the store's own error already says to retry
    return new TokenEndpointUnavailableError(
      'Entra ID did not answer the refresh that answers this sign-in (a 5xx, a dropped connection or a timeout); its tokens are kept in the cache; retry the same request later',
      { cause: error },
    );
  }

  private refuse(
    deps: RedeemOnceDeps,
    codeHash: string,
    reason: RedeemEvents['redeem:refused'][0]['reason'],
    cause?: unknown,
  ): MsalDistributedCacheError {
    deps.events.safeEmit('redeem:refused', { codeHash, reason });
    const options = cause === undefined ? undefined : { cause };
    const restart = 'restart the sign-in from /authorize';
    switch (reason) {
      case 'no-binding':
        return new CodeAlreadyRedeemedError(
          `this authorization code was already redeemed, and this request carries no proof that it belongs to the same sign-in (pass the PKCE codeVerifier or a binding such as the session id); ${restart}`,
          options,
        );
      case 'binding-mismatch':
        return new CodeAlreadyRedeemedError(
          `this authorization code was already redeemed for a different sign-in (its PKCE verifier or binding does not match); ${restart}`,
          options,
        );
      case 'already-redeemed':
        return new CodeAlreadyRedeemedError(
          `Entra ID says this authorization code was already redeemed (AADSTS54005) and no tokens of that redemption can be used; ${restart}`,
          options,
        );
      case 'tokens-gone':
        return new CodeAlreadyRedeemedError(
          `this authorization code was already redeemed, but its tokens are no longer usable (removed, or refused by Entra ID); ${restart}`,
          options,
        );
      case 'expired':
        return new CodeExpiredError(`the authorization code expired (AADSTS70008); ${restart}`, options);
      case 'outcome-unknown':
        return new RedemptionOutcomeUnknownError(
          `the token request for this authorization code failed without an answer, so it may have been redeemed; the code is not sent again; ${restart}`,
          options,
        );
      case 'failed':
        return new RedemptionFailedError(
          `the first redemption of this authorization code failed, and the code is not sent again; ${restart}`,
          options,
        );
    }
  }
}

/** A refresh failure that says nothing about the tokens: no answer from Entra ID, or a store that failed. */
function isRetryable(error: unknown): boolean {
  if (error instanceof StoreUnavailableError || error instanceof LockTimeoutError) return true;
  return !isGrantRefused(error) && isOutcomeUnknown(error);
}

/** A lock-store failure as a typed error, for `store:error`. */
function asLockStoreError(error: unknown, what: string): MsalDistributedCacheError {
  if (error instanceof MsalDistributedCacheError) return error;
  return new StoreUnavailableError(`${what} in the lock store failed; check the lock store's connection`, { cause: error });
}
