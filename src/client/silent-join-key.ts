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
  const { correlationId: _correlationId, scopes, forceRefresh, ...fields } = request;
  return canonicalText([
    partition,
    Array.isArray(scopes) ? [...scopes].sort() : scopes,
    { ...fields, forceRefresh: forceRefresh === false ? undefined : forceRefresh },
  ]);
}
