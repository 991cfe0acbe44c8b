/**
 * Redeem-once: every authorization code is sent to the token endpoint at most once, by one caller
 * across all processes sharing the lock store; every duplicate waits for that one redemption and
 * is answered from its outcome: with tokens from the shared cache when it proves it belongs to
 * the same sign-in (same PKCE verifier or binding), with a typed error otherwise.
 *
 * In-process duplicates join the pending redemption (single flight); other processes claim the
 * code in the lock store, find it busy, and wait for the outcome (pub/sub plus polling). Each
 * redemption is a {@link Redemption}; this module owns what they share.
 */
import type { AuthenticationResult } from '@azure/msal-node';
import type { MsalDistributedCacheError } from '../errors';
import type { EventSink, RedeemEvents } from '../events';
import type { TraceLinks } from '../internal/trace-links';
import type { LockStore } from '../lock/lock-store';
import { Redemption } from './redemption';
import type { RedemptionRecords } from './redemption-records';

export interface RedeemOnceSettings {
  leaseMs: number;
  waitTimeoutMs: number;
  /** The lock store cannot be reached: refuse (`'fail-closed'`) or redeem without it (`'fail-open'`). */
  lockStoreFailure: 'fail-closed' | 'fail-open';
  recordTtlMs: number;
  /** Deadline of the token request, from the moment it is sent; then its outcome is unknown. */
  tokenRequestTimeoutMs: number;
}

/** The token operations of one redemption request (MSAL clients bound to the right partition). */
export interface RedemptionTokens {
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
}

/** What redeem-once is made of: shared by every redemption of an application. */
export interface RedeemOnceParts {
  lockStore: LockStore;
  /** How outcomes are stored (MAC, encryption) in the lock store and the token store. */
  records: RedemptionRecords;
  events: EventSink<RedeemEvents>;
  /** Reports a lock-store failure (`store:error` with `operation: 'lock'`), whether thrown or ignored. */
  lockStoreError(error: MsalDistributedCacheError, outcome: 'thrown' | 'ignored'): void;
  settings: RedeemOnceSettings;
  /** Telemetry's links between the redeemer's token request and the duplicates (none: telemetry off). */
  trace?: TraceLinks | undefined;
}

export class RedeemOnce {
  /** The redemption in flight per code hash, which duplicates in this process join. */
  private readonly flights = new Map<string, { redemption: Redemption; promise: Promise<AuthenticationResult> }>();

  constructor(private readonly parts: RedeemOnceParts) {}

  /** Codes being redeemed by this process right now (empty when idle). */
  get inFlight(): number {
    return this.flights.size;
  }

  /**
   * Redeems a code once, or answers as a duplicate.
   *
   * @param codeHash - keyed hash of the code
   * @param bindingHash - keyed hash of the request's proof of sign-in (`''` when none)
   * @param tokens - this request's token operations
   */
  run(codeHash: string, bindingHash: string, tokens: RedemptionTokens): Promise<AuthenticationResult> {
    const redemption = new Redemption(codeHash, bindingHash, tokens, this.parts);
    const flight = this.flights.get(codeHash);
    if (flight) {
      if (!bindingHash || flight.redemption.bindingHash !== bindingHash)
        return Promise.reject(redemption.refuse(bindingHash ? 'binding-mismatch' : 'no-binding'));
      this.parts.events('redeem:joined', { codeHash });
      return flight.promise;
    }
    const promise = redemption.run().finally(() => {
      if (this.flights.get(codeHash)?.promise === promise) this.flights.delete(codeHash);
    });
    this.flights.set(codeHash, { redemption, promise });
    return promise;
  }
}
