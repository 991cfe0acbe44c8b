/**
 * The telemetry vocabulary (docs/observability.md lists it): metric and span names, attribute
 * keys, and the attribute sets of the hot paths, made once here so that recording a figure builds
 * no object and no string. Also the two readings of untrusted text that attributes may carry: an
 * error's type, and the family of an AADSTS code.
 */
import { InvalidArgumentError, MsalDistributedCacheError } from '../errors';
import type { FlightGrant, RefusalReason, StoreErrorEvent } from '../events';

/** The meter's and the tracer's name (their version is {@link LIBRARY_VERSION}). */
export const LIBRARY_NAME = 'msal-distributed-cache';
/** The package's version (a test checks it against package.json). */
export const LIBRARY_VERSION = '0.1.0';

/** The public operations of DistributedClientApplication, as `msal_dc.operation` names them. */
export type OperationName =
  | 'acquire_token_by_code'
  | 'acquire_token_silent'
  | 'acquire_token_by_client_credential'
  | 'acquire_token_on_behalf_of'
  | 'acquire_token_by_refresh_token'
  | 'get_account_by_home_id'
  | 'remove_account';

export const METRIC = {
  operationDuration: 'msal_dc.operation.duration',
  cacheLookups: 'msal_dc.cache.lookups',
  cacheDuration: 'msal_dc.cache.duration',
  tokenRequests: 'msal_dc.token_requests',
  tokenRequestDuration: 'msal_dc.token_request.duration',
  redemptions: 'msal_dc.redemptions',
  lockWaitDuration: 'msal_dc.lock.wait.duration',
  lockTimeouts: 'msal_dc.lock.timeouts',
  storeErrors: 'msal_dc.store.errors',
  l1Entries: 'msal_dc.l1.entries',
  l1Size: 'msal_dc.l1.size',
  l1Evictions: 'msal_dc.l1.evictions',
  l1Invalidations: 'msal_dc.l1.invalidations',
  flights: 'msal_dc.flights',
  flightWaitDuration: 'msal_dc.flight.wait.duration',
} as const;

export const ATTR = {
  operation: 'msal_dc.operation',
  outcome: 'msal_dc.outcome',
  tokenSource: 'msal_dc.token_source',
  errorType: 'error.type',
  cacheLevel: 'msal_dc.cache.level',
  cacheOperation: 'msal_dc.cache.operation',
  grantType: 'msal_dc.grant_type',
  result: 'msal_dc.result',
  statusCode: 'http.response.status_code',
  serverAddress: 'server.address',
  aadstsFamily: 'msal_dc.aadsts.family',
  aadstsCode: 'msal_dc.aadsts.code',
  redemptionOutcome: 'msal_dc.redemption.outcome',
  refusalReason: 'msal_dc.refusal.reason',
  lockPurpose: 'msal_dc.lock.purpose',
  lockResult: 'msal_dc.lock.result',
  storeOperation: 'msal_dc.store.operation',
  policyOutcome: 'msal_dc.store.policy_outcome',
  invalidationReason: 'msal_dc.invalidation.reason',
  flightRole: 'msal_dc.flight.role',
  flightOutcome: 'msal_dc.flight.outcome',
  partitionHash: 'msal_dc.partition.hash',
  codeHash: 'msal_dc.code.hash',
  flightHash: 'msal_dc.flight.hash',
} as const;

/** Attribute sets are shared: never modified once made. */
export type Attrs = Readonly<Record<string, string | number>>;

const OPERATIONS: readonly OperationName[] = [
  'acquire_token_by_code',
  'acquire_token_silent',
  'acquire_token_by_client_credential',
  'acquire_token_on_behalf_of',
  'acquire_token_by_refresh_token',
  'get_account_by_home_id',
  'remove_account',
];

/** Per operation: its span's name and its attribute sets by outcome (an error's type is added on failure). */
export interface OperationVocabulary {
  readonly name: OperationName;
  readonly spanName: string;
  readonly fromCache: Attrs;
  readonly fromIdentityProvider: Attrs;
  readonly success: Attrs;
  readonly lockTimeout: Attrs;
  /** Failure attribute sets by error type, made on first use (error types are a finite set). */
  readonly failures: Map<string, Attrs>;
}

export const OPERATION: Readonly<Record<OperationName, OperationVocabulary>> = Object.fromEntries(
  OPERATIONS.map((name) => [
    name,
    {
      name,
      spanName: `msal_dc ${name}`,
      fromCache: frozen({ [ATTR.operation]: name, [ATTR.outcome]: 'success', [ATTR.tokenSource]: 'cache' }),
      fromIdentityProvider: frozen({ [ATTR.operation]: name, [ATTR.outcome]: 'success', [ATTR.tokenSource]: 'identity_provider' }),
      success: frozen({ [ATTR.operation]: name, [ATTR.outcome]: 'success' }),
      lockTimeout: frozen({ [ATTR.operation]: name }),
      failures: new Map<string, Attrs>(),
    },
  ]),
) as Record<OperationName, OperationVocabulary>;

export const SPAN = {
  cacheRead: 'msal_dc cache.read',
  cacheWrite: 'msal_dc cache.write',
  lockClaim: 'msal_dc lock.claim',
  lockWait: 'msal_dc lock.wait',
  lockComplete: 'msal_dc lock.complete',
  lockSettle: 'msal_dc lock.settle',
  tokenRequest: 'msal_dc token_request',
} as const;

export type CacheLevel = 'l1' | 'store' | 'miss';

export const CACHE_LOOKUP: Readonly<Record<CacheLevel, Attrs>> = {
  l1: frozen({ [ATTR.cacheLevel]: 'l1' }),
  store: frozen({ [ATTR.cacheLevel]: 'store' }),
  miss: frozen({ [ATTR.cacheLevel]: 'miss' }),
};

export const CACHE_READ: Readonly<Record<CacheLevel | 'failed', Attrs>> = {
  l1: frozen({ [ATTR.cacheOperation]: 'read', [ATTR.cacheLevel]: 'l1' }),
  store: frozen({ [ATTR.cacheOperation]: 'read', [ATTR.cacheLevel]: 'store' }),
  miss: frozen({ [ATTR.cacheOperation]: 'read', [ATTR.cacheLevel]: 'miss' }),
  failed: frozen({ [ATTR.cacheOperation]: 'read' }),
};

export const CACHE_WRITE: Attrs = frozen({ [ATTR.cacheOperation]: 'write' });

/** `msal_dc.redemption.outcome` by redeem event. */
export const REDEMPTION: Readonly<Record<string, Attrs>> = {
  'redeem:redeemed': frozen({ [ATTR.redemptionOutcome]: 'redeemed' }),
  'redeem:joined': frozen({ [ATTR.redemptionOutcome]: 'joined' }),
  'redeem:waited': frozen({ [ATTR.redemptionOutcome]: 'waited' }),
  'redeem:answered-from-cache': frozen({ [ATTR.redemptionOutcome]: 'answered' }),
  'redeem:unlocked': frozen({ [ATTR.redemptionOutcome]: 'unlocked' }),
  'redeem:corrupt': frozen({ [ATTR.redemptionOutcome]: 'corrupt' }),
};

const REFUSAL_REASONS: readonly RefusalReason[] = [
  'no-binding',
  'binding-mismatch',
  'already-redeemed',
  'expired',
  'outcome-unknown',
  'failed',
  'tokens-gone',
];

export const REFUSED: Readonly<Record<string, Attrs>> = Object.fromEntries(
  REFUSAL_REASONS.map((reason) => [reason, frozen({ [ATTR.redemptionOutcome]: 'refused', [ATTR.refusalReason]: reason })]),
);

export const INVALIDATION: Readonly<Record<string, Attrs>> = Object.fromEntries(
  ['write-elsewhere', 'flush', 'tracking-lost'].map((reason) => [reason, frozen({ [ATTR.invalidationReason]: reason })]),
);

export type LockPurpose = 'redemption' | 'flight';

/** The flight roles of `msal_dc.flights`, by flight event. */
const FLIGHT_ROLES: Readonly<Record<string, string>> = {
  'flight:held': 'held',
  'flight:taken-over': 'taken_over',
  'flight:uncoordinated': 'uncoordinated',
};

const FLIGHT_GRANTS: readonly FlightGrant[] = ['refresh_token', 'client_credentials', 'on_behalf_of'];

/** `msal_dc.flights` attributes by grant and event (`flight:waited` by outcome: `flight:waited:ok`). */
export const FLIGHT: Readonly<Record<string, Readonly<Record<string, Attrs>>>> = Object.fromEntries(
  FLIGHT_GRANTS.map((grant) => [
    grant,
    {
      ...Object.fromEntries(
        Object.entries(FLIGHT_ROLES).map(([event, role]) => [event, frozen({ [ATTR.grantType]: grant, [ATTR.flightRole]: role })]),
      ),
      'flight:waited:ok': frozen({ [ATTR.grantType]: grant, [ATTR.flightRole]: 'waited', [ATTR.flightOutcome]: 'ok' }),
      'flight:waited:failed': frozen({ [ATTR.grantType]: grant, [ATTR.flightRole]: 'waited', [ATTR.flightOutcome]: 'failed' }),
      'wait:ok': frozen({ [ATTR.grantType]: grant, [ATTR.flightOutcome]: 'ok' }),
      'wait:failed': frozen({ [ATTR.grantType]: grant, [ATTR.flightOutcome]: 'failed' }),
    },
  ]),
);

const storeErrors = new Map<string, Attrs>();

/** `msal_dc.store.errors` attributes of a `store:error` event (a finite set, made once each). */
export function storeErrorAttrs(event: StoreErrorEvent): Attrs {
  const key = `${event.operation}\u0000${event.code}\u0000${event.outcome}`;
  let attrs = storeErrors.get(key);
  if (attrs === undefined) {
    attrs = frozen({ [ATTR.storeOperation]: event.operation, [ATTR.errorType]: event.code, [ATTR.policyOutcome]: event.outcome });
    storeErrors.set(key, attrs);
  }
  return attrs;
}

/** What an error type may look like: a code or a class name, never free text (it is a metric attribute). */
const SAFE_TYPE = /^[A-Za-z][A-Za-z0-9_.-]{0,63}$/;

/**
 * An error's `error.type`: our `ERR_*` code, else MSAL's `errorCode` (`invalid_grant`,
 * `no_account_in_cache`), else the error's class name; `_OTHER` for anything that does not look
 * like a name (so that no free text, and nothing unbounded, becomes an attribute).
 */
export function errorTypeOf(error: unknown): string {
  if (error instanceof MsalDistributedCacheError || error instanceof InvalidArgumentError) return error.code;
  const { errorCode, name } = (error ?? {}) as { errorCode?: unknown; name?: unknown };
  if (typeof errorCode === 'string' && SAFE_TYPE.test(errorCode)) return errorCode;
  if (typeof name === 'string' && SAFE_TYPE.test(name)) return name;
  return '_OTHER';
}

/** An OAuth `error` value as an attribute: its letters and underscores only (RFC 6749's are), else `_OTHER`. */
export function oauthErrorOf(value: unknown): string | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  return typeof value === 'string' && /^[a-z_]{1,64}$/.test(value) ? value : '_OTHER';
}

/**
 * The family of an AADSTS code: `AADSTS` and its first two digits, the rest as `x`
 * (70000 → `AADSTS70xxx`, 7000215 → `AADSTS70xxxxx`); `undefined` for anything but a code of 4 to 9 digits.
 */
export function aadstsFamilyOf(code: number): string | undefined {
  if (!Number.isSafeInteger(code) || code < 1000 || code > 999_999_999) return undefined;
  const digits = String(code);
  return `AADSTS${digits.slice(0, 2)}${'x'.repeat(digits.length - 2)}`;
}

function frozen(attrs: Record<string, string | number>): Attrs {
  return Object.freeze(attrs);
}
