/**
 * One redemption of one code, as a state machine: claim the code in the lock store; then either
 * redeem it (the winner), or wait for whoever holds the claim and answer from the recorded
 * outcome (a duplicate). Every path ends in tokens or a typed refusal, and records what happened
 * for the duplicates still to come.
 */
import type { AuthenticationResult } from '@azure/msal-node';
import { LockTimeoutError, MsalDistributedCacheError, StoreUnavailableError } from '../errors';
import type { RedeemEvents, RefusalReason } from '../events';
import { traceOf } from '../internal/trace-links';
import type { Claim, Lease } from '../lock/lock-store';
import type { RedemptionOutcome } from './outcome';
import type { RedeemOnceParts, RedemptionTokens } from './redeem-once';
import { asLockStoreError, corruptRecordError, isRetryable, refusalError, retryableError } from './refusals';
import { errorCodeOf, isCodeAlreadyRedeemed, isCodeExpired, isGrantRefused, isOutcomeUnknown } from './server-errors';

const MAX_POLL_MS = 250;

/** The token request outlived `tokenRequestTimeoutMs` (its outcome is unknown from then on). */
class TokenRequestTimedOut extends Error {
  constructor(timeoutMs: number) {
    super(`the token request got no answer within ${timeoutMs} ms (redeem.tokenRequestTimeoutMs)`);
    this.name = 'TokenRequestTimedOut';
  }
}

export class Redemption {
  /** Held from a successful claim until the outcome is recorded (none when redeeming fail-open). */
  private lease: Lease | undefined;
  /** The traceparent of this redeemer's token request, once sent and traced: recorded with the outcome. */
  private requestTrace: () => string | undefined = () => undefined;

  /**
   * @param codeHash - keyed hash of the code
   * @param bindingHash - keyed hash of the request's proof of sign-in (`''` when none)
   * @param tokens - this request's token operations
   * @param parts - the lock store, records, events and settings of redeem-once
   */
  constructor(
    readonly codeHash: string,
    readonly bindingHash: string,
    private readonly tokens: RedemptionTokens,
    private readonly parts: RedeemOnceParts,
  ) {}

  /** Claims the code, then redeems it or answers as a duplicate. */
  async run(): Promise<AuthenticationResult> {
    const { lockStore, settings } = this.parts;
    const deadline = Date.now() + settings.waitTimeoutMs;
    // Set once a claim found someone else at work on the code: from then on, fail-open would
    // send the code a second time, so a lock-store failure ends in an error.
    let seenOtherRedeemer = false;
    for (let attempt = 0; ; attempt++) {
      let claim: Claim;
      try {
        claim = await lockStore.claim(this.codeHash, { leaseMs: settings.leaseMs, recordTtlMs: settings.recordTtlMs });
      } catch (error) {
        const failOpen = settings.lockStoreFailure === 'fail-open' && error instanceof StoreUnavailableError;
        if (!failOpen || seenOtherRedeemer) {
          if (error instanceof MsalDistributedCacheError) this.parts.lockStoreError(error, 'thrown');
          if (!failOpen) throw error;
          throw new StoreUnavailableError(
            `the lock store stopped answering while another caller was redeeming this code (${this.codeHash.slice(0, 16)}, a keyed hash), so it is not sent from here (lockStoreFailure: 'fail-open' applies only before anyone else is seen redeeming); retry the request once the lock store is back`,
            { cause: error },
          );
        }
        // Fail-open, and nobody else seen redeeming: redeem without cross-process protection.
        // Duplicates in other processes may then reach Entra ID and are recognised by AADSTS54005.
        this.parts.lockStoreError(error, 'ignored');
        this.emit('redeem:unlocked');
        return this.redeem();
      }
      if (claim.state === 'claimed') {
        this.lease = claim.lease;
        return this.redeem();
      }
      seenOtherRedeemer = true;
      if (attempt === 1) this.emit('redeem:waited');
      if (claim.state === 'done') return this.answer(this.openRecord(claim.outcome));
      if (claim.state === 'abandoned') {
        // The redeemer vanished after claiming: whether the code reached Entra ID is unknown.
        const settled = await lockStore
          .settle(this.codeHash, this.parts.records.seal(this.codeHash, { state: 'unknown' }), settings.recordTtlMs)
          .catch((error) => {
            if (error instanceof MsalDistributedCacheError) this.parts.lockStoreError(error, 'thrown');
            throw error;
          });
        return this.answer(this.openRecord(settled));
      }
      const remaining = deadline - Date.now();
      if (remaining <= 0) {
        throw new LockTimeoutError(
          `a redemption of this code (${this.codeHash.slice(0, 16)}, a keyed hash) was still in progress after ${settings.waitTimeoutMs} ms; retry the request, or restart the sign-in from /authorize`,
        );
      }
      await lockStore.waitForChange(this.codeHash, Math.min(remaining, 10 * 2 ** Math.min(attempt, 5), MAX_POLL_MS));
    }
  }

  /** The winner: sends the code once, keeps its lease meanwhile, and records the outcome. */
  private async redeem(): Promise<AuthenticationResult> {
    const { settings } = this.parts;
    // Keep the lease while the token endpoint is slow; a lost lease is reported, and fencing
    // keeps this holder from overwriting an outcome recorded after it.
    const keepAlive = setInterval(
      () => {
        this.lease?.extend(settings.leaseMs).then(
          (held) => held || this.emit('lock:lost'),
          (error: unknown) => this.parts.lockStoreError(asLockStoreError(error, 'renewing the lease of a redemption'), 'ignored'),
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
      const watched = this.parts.trace?.watchTokenRequest(() => this.tokens.redeem(onSend));
      if (watched) this.requestTrace = watched.traceparent;
      result = await Promise.race([watched ? watched.promise : this.tokens.redeem(onSend), expired]);
    } catch (error) {
      return this.afterFailedRedemption(error, sent);
    } finally {
      clearInterval(keepAlive);
      clearTimeout(deadline);
    }
    const homeAccountId = result.account?.homeAccountId ?? '';
    const outcome: RedemptionOutcome = { state: 'redeemed', homeAccountId, bindingHash: this.bindingHash, redeemedAt: Date.now() };
    await this.record(outcome);
    await this.parts.records.writeCopy(this.codeHash, outcome).catch(() => undefined); // best effort: only read after an AADSTS54005
    this.emit('redeem:redeemed', { homeAccountId });
    return result;
  }

  private async afterFailedRedemption(error: unknown, sent: boolean): Promise<AuthenticationResult> {
    if (!sent && (await this.withdraw())) throw error; // the code never left: the next attempt may redeem it
    if (error instanceof TokenRequestTimedOut) {
      await this.record({ state: 'unknown' });
      throw this.refuse('outcome-unknown', error);
    }
    if (isCodeAlreadyRedeemed(error)) return this.afterServerSaidRedeemed(error);
    if (isCodeExpired(error)) {
      await this.record({ state: 'expired' });
      throw this.refuse('expired', error);
    }
    if (isOutcomeUnknown(error)) {
      // The server may have redeemed the code before the connection failed: never send it again.
      await this.record({ state: 'unknown' });
      throw this.refuse('outcome-unknown', error);
    }
    await this.record({ state: 'failed', errorCode: errorCodeOf(error) });
    throw error; // the redeemer sees MSAL's (or the store's) own error; duplicates get ERR_REDEMPTION_FAILED
  }

  /**
   * AADSTS54005 for our own first attempt: the code was redeemed outside our lock (another
   * deployment, a lost lock record). Entra ID may have revoked the first redemption's tokens
   * (RFC 6749 §4.1.2), so answer only through a refresh, and purge only what the server refuses:
   * a refresh that got no answer, or a store that failed, leaves the tokens and the outcome
   * (marked refresh-required) in place for a retry.
   */
  private async afterServerSaidRedeemed(error: unknown): Promise<AuthenticationResult> {
    const copy = await this.parts.records.readCopy(this.codeHash).catch(() => undefined);
    if (copy === 'corrupt') this.emit('redeem:corrupt', { store: 'token-store' });
    const mirrored = copy === 'corrupt' ? undefined : copy;
    if (mirrored?.state === 'redeemed' && this.bindingHash && mirrored.bindingHash === this.bindingHash) {
      try {
        const result = await this.tokens.silent(mirrored.homeAccountId, true);
        await this.record(mirrored);
        this.emit('redeem:answered-from-cache', { homeAccountId: mirrored.homeAccountId, afterServerRejection: true });
        return result;
      } catch (refreshError) {
        if (isGrantRefused(refreshError)) {
          await this.tokens.purge(mirrored.homeAccountId).catch(() => undefined);
        } else if (isRetryable(refreshError)) {
          await this.record({ ...mirrored, refreshRequired: true });
          throw retryableError(refreshError);
        }
        await this.record({ state: 'already-redeemed' });
        throw this.refuse('tokens-gone', refreshError);
      }
    }
    await this.record({ state: 'already-redeemed' });
    throw this.refuse('already-redeemed', error);
  }

  /** A duplicate: answers from the recorded outcome. */
  private async answer(outcome: RedemptionOutcome): Promise<AuthenticationResult> {
    if (outcome.trace !== undefined) this.parts.trace?.linkTo(outcome.trace);
    switch (outcome.state) {
      case 'redeemed': {
        if (!this.bindingHash || outcome.bindingHash !== this.bindingHash)
          throw this.refuse(this.bindingHash ? 'binding-mismatch' : 'no-binding');
        const refresh = outcome.refreshRequired === true;
        let result: AuthenticationResult;
        try {
          result = await this.tokens.silent(outcome.homeAccountId, refresh);
        } catch (error) {
          if (isRetryable(error)) throw retryableError(error); // nothing is lost: the same duplicate can retry
          throw this.refuse('tokens-gone', error);
        }
        this.emit('redeem:answered-from-cache', { homeAccountId: outcome.homeAccountId, afterServerRejection: refresh });
        return result;
      }
      case 'expired':
        throw this.refuse('expired');
      case 'unknown':
        throw this.refuse('outcome-unknown');
      case 'failed':
        throw this.refuse('failed');
      case 'already-redeemed':
        throw this.refuse('already-redeemed');
    }
  }

  /** The outcome in the lock store's record; one that fails its integrity check names no account. */
  private openRecord(stored: string): RedemptionOutcome {
    const outcome = this.parts.records.open(this.codeHash, stored);
    if (outcome !== 'corrupt') return outcome;
    this.emit('redeem:corrupt', { store: 'lock-store' });
    throw corruptRecordError(this.codeHash, 'lock-store');
  }

  /**
   * Records the outcome. A store failure here is not the caller's failure: it is reported as
   * `store:error`, and duplicates find the claim abandoned once the lease expires.
   */
  private async record(outcome: RedemptionOutcome): Promise<void> {
    if (!this.lease) return; // redeemed without the lock store (fail-open): nowhere to record
    let accepted: boolean;
    try {
      accepted = await this.parts.lockStore.complete(
        this.lease,
        this.parts.records.seal(this.codeHash, { ...outcome, ...traceOf(this.requestTrace()) }),
        this.parts.settings.recordTtlMs,
      );
    } catch (error) {
      this.parts.lockStoreError(asLockStoreError(error, 'recording the outcome of a redemption'), 'ignored');
      return;
    }
    if (!accepted) this.emit('lock:lost');
  }

  /**
   * Gives the claim back after a failure that provably happened before the code was sent (MSAL's
   * own checks, discovery): the next attempt, here or on another instance, may redeem the code.
   * `true` also without a lease (fail-open: nothing to give back). `false` when the lock store
   * cannot withdraw a claim, the lease was already lost, or the withdrawal failed: the failure is
   * then recorded as usual (a duplicate sees it; the code is not sent again).
   */
  private async withdraw(): Promise<boolean> {
    if (!this.lease) return true; // redeemed without the lock store (fail-open): nothing to give back
    if (!this.parts.lockStore.withdraw) return false;
    try {
      return await this.parts.lockStore.withdraw(this.lease);
    } catch (error) {
      this.parts.lockStoreError(asLockStoreError(error, 'giving back the claim of an unsent code'), 'ignored');
      return false;
    }
  }

  /** Emits `redeem:refused` and returns the error for the caller. */
  refuse(reason: RefusalReason, cause?: unknown): MsalDistributedCacheError {
    this.emit('redeem:refused', { reason });
    return refusalError(reason, cause);
  }

  /** Emits a redeem event about this code (the payload's `codeHash` is added here). */
  private emit<Name extends keyof RedeemEvents>(name: Name, ...extra: ExtraPayload<Name>): void {
    this.parts.events(name, ...([{ codeHash: this.codeHash, ...extra[0] }] as RedeemEvents[Name]));
  }
}

/** What an event's payload carries besides `codeHash`: nothing, or an object. */
type ExtraPayload<Name extends keyof RedeemEvents> = [keyof Omit<RedeemEvents[Name][0], 'codeHash'>] extends [never]
  ? []
  : [Omit<RedeemEvents[Name][0], 'codeHash'>];
