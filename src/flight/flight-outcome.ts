/**
 * The outcome of one round of a token flight, as recorded in the lock store for the instances that
 * waited on it: the request succeeded (its tokens are in the shared cache), it failed (with what
 * an error needs to be raised again alike on every waiter: MSAL's error class, code and
 * sub-error; never a token), or its holder vanished. The lock store is read as untrusted input:
 * every record carries a MAC under the app's secret, bound to its round, and a record that fails
 * the check counts as a vanished holder (a retry), never as an error to raise.
 */
import { InteractionRequiredAuthError, ServerError } from '@azure/msal-node';
import {
  LockTimeoutError,
  MsalDistributedCacheError,
  PartitionMismatchError,
  StoreUnavailableError,
  TokenEndpointUnavailableError,
} from '../errors';
import { flightOutcomeName } from '../storage-keys';

/** What an error needs to be raised again on a waiter: strings only, capped. */
export interface RecordedError {
  /** `interaction`: MSAL's InteractionRequiredAuthError; `server`: its ServerError; `library`: ours (by `code`); `other`: anything else. */
  kind: 'interaction' | 'server' | 'library' | 'other';
  /** MSAL's `errorCode` (such as `invalid_grant`), or our `code`. */
  errorCode: string;
  /** MSAL's `subError` (such as `bad_token`), when any. */
  subError: string;
  /** The first AADSTS number (`errorNo`), when any. */
  errorNo: string;
  /** MSAL's `errorMessage` (Entra ID's description: codes, trace and correlation ids, never a token). */
  errorMessage: string;
}

/**
 * `ok`: the request succeeded; `shape` names what it asked for (a hash), so that only callers that
 * asked alike take its tokens in place of a request of their own. `trace`: the W3C traceparent of
 * the holder's token request, when it was traced (the waiters' spans link to it).
 */
export type FlightOutcome =
  { state: 'ok'; shape: string; trace?: string } | { state: 'failed'; error: RecordedError; trace?: string } | { state: 'abandoned' };

/** A W3C traceparent (version 00), exactly: lower-case hex, ids not all zero. */
const TRACEPARENT = /^00-(?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-[0-9a-f]{2}$/;

/** `{ trace }` when `value` is a traceparent, else nothing. */
function traceOf(value: unknown): { trace?: string } {
  return typeof value === 'string' && TRACEPARENT.test(value) ? { trace: value } : {};
}

/** Signs and verifies records (the app's record MAC: {@link CodeHasher}'s). */
export interface RecordMac {
  macRecord(name: string, text: string): string;
  verifyRecord(name: string, text: string, mac: string): boolean;
}

const SIGNED = 'mac1.';
const MAX_TEXT = 1_000;

/** The stored form: `mac1.<MAC>.<JSON>`, the MAC bound to the round's claim key. */
export function sealFlightOutcome(outcome: FlightOutcome, mac: RecordMac, claimKey: string): string {
  const text = JSON.stringify(outcome);
  return `${SIGNED}${mac.macRecord(flightOutcomeName(claimKey), text)}.${text}`;
}

/** The outcome in a stored record; one that fails its check, or is malformed, is `abandoned`. */
export function openFlightOutcome(stored: string, mac: RecordMac, claimKey: string): FlightOutcome {
  const end = stored.startsWith(SIGNED) ? stored.indexOf('.', SIGNED.length) : -1;
  if (end < 0) return { state: 'abandoned' };
  const text = stored.slice(end + 1);
  if (!mac.verifyRecord(flightOutcomeName(claimKey), text, stored.slice(SIGNED.length, end))) return { state: 'abandoned' };
  try {
    const value = JSON.parse(text) as { state?: unknown; error?: Record<string, unknown>; trace?: unknown };
    if (value.state === 'ok')
      return {
        state: 'ok',
        shape: typeof (value as { shape?: unknown }).shape === 'string' ? (value as { shape: string }).shape : '',
        ...traceOf(value.trace),
      };
    if (value.state === 'failed' && value.error && ['interaction', 'server', 'library', 'other'].includes(value.error.kind as string)) {
      const field = (name: string): string =>
        typeof value.error![name] === 'string' ? (value.error![name] as string).slice(0, MAX_TEXT) : '';
      return {
        state: 'failed',
        error: {
          kind: value.error.kind as RecordedError['kind'],
          errorCode: field('errorCode'),
          subError: field('subError'),
          errorNo: field('errorNo'),
          errorMessage: field('errorMessage'),
        },
        ...traceOf(value.trace),
      };
    }
  } catch {
    // malformed: as a vanished holder
  }
  return { state: 'abandoned' };
}

/** What a failed token request is recorded as. */
export function recordError(error: unknown): RecordedError {
  const e = (error ?? {}) as { errorCode?: unknown; subError?: unknown; errorNo?: unknown; errorMessage?: unknown; code?: unknown };
  const text = (value: unknown): string => (typeof value === 'string' ? value.slice(0, MAX_TEXT) : '');
  if (error instanceof MsalDistributedCacheError)
    return { kind: 'library', errorCode: error.code, subError: '', errorNo: '', errorMessage: '' };
  const kind = error instanceof InteractionRequiredAuthError ? 'interaction' : error instanceof ServerError ? 'server' : 'other';
  // MSAL's errorNo is Entra ID's error_codes[0] as parsed from the JSON: a number, whatever its type says.
  const errorNo = typeof e.errorNo === 'number' && Number.isSafeInteger(e.errorNo) ? String(e.errorNo) : text(e.errorNo);
  return { kind, errorCode: text(e.errorCode), subError: text(e.subError), errorNo, errorMessage: text(e.errorMessage) };
}

/** A recorded errorNo as MSAL gives it: Entra ID's number (MSAL's type says string), or none. */
function msalErrorNo(recorded: RecordedError): string | undefined {
  if (recorded.errorNo === '') return undefined;
  return /^\d{1,15}$/.test(recorded.errorNo) ? (Number(recorded.errorNo) as unknown as string) : recorded.errorNo;
}

/**
 * The error a waiter gets for a round that failed: MSAL's own class with the same code and
 * sub-error (an app's `instanceof InteractionRequiredAuthError` and `errorCode` checks work alike
 * on the holder and every waiter), or ours.
 */
export function raisedAgain(recorded: RecordedError, flightHash: string): Error {
  const where = `the token request another caller sent for this token (flight ${flightHash.slice(0, 16)}, a hash) failed`;
  const message = `${where}: ${recorded.errorMessage || recorded.errorCode}`;
  switch (recorded.kind) {
    case 'interaction':
      return new InteractionRequiredAuthError(recorded.errorCode, '', message, recorded.subError, '', '', '', msalErrorNo(recorded));
    case 'server':
      return new ServerError(recorded.errorCode, '', message, recorded.subError, msalErrorNo(recorded));
    case 'library':
      switch (recorded.errorCode) {
        case StoreUnavailableError.code:
          return new StoreUnavailableError(`${where} with ${recorded.errorCode}: a store did not answer; retry once it is back`);
        case LockTimeoutError.code:
          return new LockTimeoutError(`${where} with ${recorded.errorCode}; retry the request`);
        case PartitionMismatchError.code:
          return new PartitionMismatchError(`${where} with ${recorded.errorCode}; see docs/failure-modes.md`);
      }
  }
  return new TokenEndpointUnavailableError(`${where} (${recorded.errorCode || 'no answer'}); retry the request`);
}
