/**
 * Fleet single flight: one token request for the whole fleet when many callers, on any instance,
 * need the same token that the shared cache cannot answer (a refresh, an app token, an
 * on-behalf-of token). It runs on the lock store's claims, in rounds: a round is named by the
 * flight, the version of the partition it starts from, and a round number. One caller claims the
 * round (the holder): it sends the request from the version that names the round (a request
 * already made from that version would hold or have ended that very round), and records the
 * outcome. Everyone else waits for that outcome (woken by
 * the lock store, polling as a safety net), then reads the partition again: it never sends what it
 * read before the wait. A failed request is raised again, alike, on every caller that waited for
 * it. A holder that vanished (its lease expired) is settled once for everyone, and the next round
 * is claimed by one of them: refreshes are retryable, unlike codes.
 */
import { LockTimeoutError, MsalDistributedCacheError, StoreUnavailableError } from '../errors';
import type { EventSink, FlightGrant, TokenFlightEvents } from '../events';
import type { Claim, Lease, LockStore } from '../lock/lock-store';
import { flightClaimKey } from '../storage-keys';
import { openFlightOutcome, raisedAgain, recordError, sealFlightOutcome } from './flight-outcome';
import type { FlightOutcome, RecordMac } from './flight-outcome';

/** How flights wait, hold and fail; see `singleFlight` in DistributedClientApplicationOptions. */
export interface FlightSettings {
  /** The holder's lease, renewed while its request runs; a holder that dies is taken over after it. */
  leaseMs: number;
  /** How long a caller waits for flights of others before `ERR_LOCK_TIMEOUT`. */
  waitTimeoutMs: number;
  /** `'fail-open'`: without a lock store, send without coordination; `'fail-closed'`: throw. */
  lockStoreFailure: 'fail-open' | 'fail-closed';
  /** Refreshes of one account take turns whatever they ask for (one refresh token is never presented twice). */
  strictRotation: boolean;
}

/** What flights need once per application. */
export interface FlightParts {
  lockStore: LockStore;
  /** Authenticates outcomes in the lock store. */
  mac: RecordMac;
  events: EventSink<TokenFlightEvents>;
  /** Reports a lock-store failure (the cache's `store:error`), with what was done about it. */
  lockStoreError: (error: MsalDistributedCacheError, outcome: 'thrown' | 'ignored') => void;
  settings: FlightSettings;
  /** Telemetry's links between a holder's token request and its waiters (none: telemetry off). */
  trace?: FlightTrace | undefined;
}

/** How a holder's token request is found, and how a waiter's span links to it (see src/telemetry). */
export interface FlightTrace {
  /** Runs `send`; `traceparent()` then names the token request it made, when that was traced. */
  watchTokenRequest<T>(send: () => Promise<T>): { promise: Promise<T>; traceparent: () => string | undefined };
  /** Links the caller's active span (its operation) to the token request named by `traceparent`. */
  linkTo(traceparent: string): void;
}

/** A read of the partition a flight's token lives in: its version names the round. */
export interface FlightRead {
  readonly version: string;
  /**
   * The token store did not answer (the read counts as empty by policy): nobody could share the
   * tokens of a flight through it, so the request goes out without one.
   */
  readonly unavailable: boolean;
}

/** One token a flight may have to request, with the caller's ways to read, answer and send. */
export interface Flight<R extends FlightRead, T> {
  grant: FlightGrant;
  /**
   * Names the flight: a hash of the partition and of what shapes the token, or of the partition
   * alone for refreshes under strict rotation (every refresh of an account presents its one refresh
   * token, so they take turns).
   */
  hash: string;
  /** A hash of what the caller asks for: the tokens of a request of the same shape answer it even when it asked to skip the cache. */
  shape: string;
  /** Reads the partition now. */
  read(): Promise<R>;
  /**
   * The caller's answer from `read` without a request, or `undefined`. `afterFlight`: a request
   * of the caller's shape just ended, so even a caller that asked to skip the cache
   * (`forceRefresh`) takes its tokens.
   */
  fromCache(read: R, afterFlight: boolean): Promise<T | undefined>;
  /** Sends the request from `read` and writes its tokens to the partition (the holder only). */
  send(read: R): Promise<T>;
}

/** Never poll a waiting round less often than this: the lock store's wake-ups are the fast path. */
const MAX_POLL_MS = 250;

export class TokenFlights {
  constructor(private readonly parts: FlightParts) {}

  /** Whether refreshes of one account take turns whatever they ask for (see {@link FlightSettings}). */
  get strictRotation(): boolean {
    return this.parts.settings.strictRotation;
  }

  /**
   * The caller's token, requested once for the fleet.
   *
   * @param flight - the token and the caller's ways to read, answer and send
   * @param first - the caller's read of the partition, which the cache could not answer from
   */
  async run<R extends FlightRead, T>(flight: Flight<R, T>, first: R): Promise<T> {
    const { lockStore, settings } = this.parts;
    const started = Date.now();
    let read = first;
    let round = 0;
    let waited = false;
    /** The round this caller last found busy: only its failure is this caller's to raise. */
    let waitedOn: string | undefined;
    let takingOver = false;
    /** A wait for the round's key that began before the latest claim of it (see below). */
    let listening: Promise<void> | undefined;
    for (let poll = 0; ;) {
      if (read.unavailable) return this.sendUnshared(flight, read);
      const key = flightClaimKey(flight.hash, read.version, round);
      let claim: Claim;
      try {
        claim = await lockStore.claim(key, { leaseMs: settings.leaseMs, recordTtlMs: this.recordTtlMs });
      } catch (error) {
        return this.uncoordinated(flight, error);
      }
      const change = listening;
      listening = undefined;
      if (claim.state === 'claimed') return this.hold(flight, key, claim.lease, read, takingOver);
      let outcome: FlightOutcome | undefined;
      if (claim.state === 'done') outcome = openFlightOutcome(claim.outcome, this.parts.mac, key);
      if (claim.state === 'abandoned') outcome = await this.settle(key);
      if (outcome === undefined) {
        // busy: someone holds this round
        waited = true;
        waitedOn = key;
        const remaining = started + settings.waitTimeoutMs - Date.now();
        if (remaining <= 0) {
          throw new LockTimeoutError(
            `a request for this token (flight ${flight.hash.slice(0, 16)}, a hash) was still in progress elsewhere after ${settings.waitTimeoutMs} ms; retry the request`,
          );
        }
        if (change) {
          await change; // it listened since before this claim: no change can have slipped by
          poll++;
        } else {
          // Listen first, then claim again: a round that ends between a claim and the start of a
          // wait publishes its change before anyone listens, and the wait would last its whole
          // interval (the lock stores listen from the call of waitForChange on).
          listening = lockStore.waitForChange(key, Math.min(remaining, 10 * 2 ** Math.min(poll, 5), MAX_POLL_MS));
          listening.catch(() => undefined); // raised where it is awaited; dropped unawaited when the claim ends the wait
        }
        continue;
      }
      if (outcome.state !== 'abandoned' && outcome.trace !== undefined && waitedOn === key) this.parts.trace?.linkTo(outcome.trace);
      if (outcome.state === 'failed' && waitedOn === key) {
        this.emit('flight:waited', flight, { outcome: 'failed', waitedMs: Date.now() - started });
        throw raisedAgain(outcome.error, flight.hash);
      }
      // The round ended (or its holder vanished): read what it left; the caller's answer may be there.
      const next = await flight.read();
      const answer = await flight.fromCache(next, outcome.state === 'ok' && outcome.shape === flight.shape);
      if (answer !== undefined) {
        if (waited) this.emit('flight:waited', flight, { outcome: 'ok', waitedMs: Date.now() - started });
        return answer;
      }
      takingOver = outcome.state === 'abandoned';
      if (next.version !== read.version || next.unavailable) {
        read = next;
        round = 0;
      } else {
        round++; // the next round, claimed by one caller: a retry for everyone who needs it
      }
    }
  }

  /** Records outcomes long enough for every caller still waiting on the round. */
  private get recordTtlMs(): number {
    return 2 * this.parts.settings.waitTimeoutMs;
  }

  /**
   * The holder of a round: sends the request from `read`, and records the outcome. `read` needs no
   * second look: the round is named by its version, so a request already made from that version
   * (by anyone, in any process) ended or holds that very round, and the claim would have said so;
   * a caller that waited read the partition again after the wait, before claiming this round.
   */
  private async hold<R extends FlightRead, T>(flight: Flight<R, T>, key: string, lease: Lease, read: R, takingOver: boolean): Promise<T> {
    const { leaseMs } = this.parts.settings;
    const keepAlive = setInterval(
      () => void lease.extend(leaseMs).catch((error: unknown) => this.reportIgnored(error, 'renewing the lease of a token flight')),
      Math.max(1, Math.floor(leaseMs / 3)),
    );
    keepAlive.unref();
    let result: T;
    let watched: ReturnType<FlightTrace['watchTokenRequest']> | undefined;
    const trace = (): { trace?: string } => {
      const traceparent = watched?.traceparent();
      return traceparent === undefined ? {} : { trace: traceparent };
    };
    try {
      this.emit(takingOver ? 'flight:taken-over' : 'flight:held', flight, {});
      watched = this.parts.trace?.watchTokenRequest(() => flight.send(read));
      result = (await (watched ? watched.promise : flight.send(read))) as T;
    } catch (error) {
      clearInterval(keepAlive);
      await this.complete(lease, key, { state: 'failed', error: recordError(error), ...trace() });
      throw error;
    }
    clearInterval(keepAlive);
    await this.complete(lease, key, { state: 'ok', shape: flight.shape, ...trace() });
    return result;
  }

  /** Records a round's outcome and wakes its waiters; a failure is reported, never thrown (the holder has its answer). */
  private async complete(lease: Lease, key: string, outcome: FlightOutcome): Promise<void> {
    const sealed = sealFlightOutcome(outcome, this.parts.mac, key);
    await this.parts.lockStore
      .complete(lease, sealed, this.recordTtlMs)
      .catch((error: unknown) => this.reportIgnored(error, 'recording the outcome of a token flight'));
  }

  /** Settles a round whose holder vanished, once for everyone; the outcome now recorded. */
  private async settle(key: string): Promise<FlightOutcome> {
    const abandoned = sealFlightOutcome({ state: 'abandoned' }, this.parts.mac, key);
    try {
      return openFlightOutcome(await this.parts.lockStore.settle(key, abandoned, this.recordTtlMs), this.parts.mac, key);
    } catch (error) {
      const failure = asStoreError(error, 'settling a token flight whose holder vanished');
      this.parts.lockStoreError(failure, 'thrown');
      throw failure;
    }
  }

  /**
   * The lock store failed: with `'fail-open'` (the default) and a store that did not answer, the
   * request goes out without coordination (Entra ID accepts a superseded refresh token;
   * providers with strict rotation may not: choose `'fail-closed'` for them).
   */
  private async uncoordinated<R extends FlightRead, T>(flight: Flight<R, T>, error: unknown): Promise<T> {
    const failure = asStoreError(error, 'claiming a token flight');
    if (this.parts.settings.lockStoreFailure === 'fail-closed' || !(failure instanceof StoreUnavailableError)) {
      this.parts.lockStoreError(failure, 'thrown');
      throw failure;
    }
    this.parts.lockStoreError(failure, 'ignored');
    this.emit('flight:uncoordinated', flight, { code: failure.code });
    return flight.send(await flight.read());
  }

  /** The token store did not answer: the request goes out without a flight (no one could read its tokens). */
  private sendUnshared<R extends FlightRead, T>(flight: Flight<R, T>, read: R): Promise<T> {
    this.emit('flight:uncoordinated', flight, { code: StoreUnavailableError.code });
    return flight.send(read);
  }

  private reportIgnored(error: unknown, what: string): void {
    this.parts.lockStoreError(asStoreError(error, what), 'ignored');
  }

  private emit<Name extends keyof TokenFlightEvents>(
    name: Name,
    flight: { grant: FlightGrant; hash: string },
    extra: Omit<TokenFlightEvents[Name][0], 'grant' | 'flightHash'>,
  ): void {
    (this.parts.events as EventSink<Record<string, unknown[]>>)(name, {
      grant: flight.grant,
      flightHash: flight.hash.slice(0, 32),
      ...extra,
    });
  }
}

function asStoreError(error: unknown, what: string): MsalDistributedCacheError {
  if (error instanceof MsalDistributedCacheError) return error;
  return new StoreUnavailableError(`${what} in the lock store failed; check the lock store's connection`, { cause: error });
}
