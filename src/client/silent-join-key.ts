// The in-process join key of acquireTokenSilent: calls join only when they are equal in every field
// that can shape the token (a proof-of-possession or SSH request never gets a bearer request's token).
import { canonicalText } from '../internal/canonical-text';
import type { DistributedSilentFlowRequest } from './distributed-client-application';

/**
 * What concurrent silent calls in this process join on: the partition and every field of the
 * request, except the ones that cannot change the token (`correlationId`; the order of `scopes`;
 * `forceRefresh: false`, the default). A field MSAL adds later is therefore part of the key by
 * default. `undefined` (never join) when a field holds a value with no faithful text.
 */
export function silentJoinKey(partition: string, request: DistributedSilentFlowRequest): string | undefined {
  const common = commonShapeKey(partition, request);
  if (common !== undefined) return common;
  const { correlationId: _correlationId, scopes, forceRefresh, ...fields } = request;
  return canonicalText([
    partition,
    Array.isArray(scopes) ? [...scopes].sort() : scopes,
    { ...fields, forceRefresh: forceRefresh === false ? undefined : forceRefresh },
  ]);
}

/** The fields of the usual request by `homeAccountId`, in the order canonicalText sorts them. */
const COMMON_FIELDS = new Set(['authority', 'correlationId', 'forceRefresh', 'homeAccountId', 'scopes']);

/**
 * The same text as the general case above, written directly for the request of nearly every call
 * (`homeAccountId`, `scopes`, optionally `authority`, `forceRefresh`, `correlationId`, all plain
 * strings and booleans); `undefined` for any other shape, which takes the general case.
 */
function commonShapeKey(partition: string, request: DistributedSilentFlowRequest): string | undefined {
  if (Object.getPrototypeOf(request) !== Object.prototype) return undefined;
  for (const field in request) if (!COMMON_FIELDS.has(field)) return undefined;
  const { homeAccountId, scopes, authority, forceRefresh } = request as {
    homeAccountId?: unknown;
    scopes?: unknown;
    authority?: unknown;
    forceRefresh?: unknown;
  };
  if (typeof homeAccountId !== 'string' || !Array.isArray(scopes) || Object.getPrototypeOf(scopes) !== Array.prototype) return undefined;
  if (authority !== undefined && typeof authority !== 'string') return undefined;
  if (forceRefresh !== undefined && typeof forceRefresh !== 'boolean') return undefined;
  const texts: string[] = [];
  for (const scope of [...scopes].sort()) {
    if (typeof scope !== 'string') return undefined;
    texts.push(JSON.stringify(scope));
  }
  const fields: string[] = [];
  if (authority !== undefined) fields.push(`"authority":${JSON.stringify(authority)}`);
  if (forceRefresh === true) fields.push('"forceRefresh":true');
  fields.push(`"homeAccountId":${JSON.stringify(homeAccountId)}`);
  return `[${JSON.stringify(partition)},[${texts.join(',')}],{${fields.join(',')}}]`;
}
