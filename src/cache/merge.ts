/**
 * Three-way merge of MSAL cache documents, for when another writer changed a partition between
 * our read (`base`) and our write (`mine`). Per entity: a change on one side wins over no change;
 * a removal on one side wins over no change; when both sides changed one entity, the one cached
 * later wins (ties go to ours, the fresher response). For account partitions, credentials left
 * without their Account are dropped, so a removal racing a write is never undone.
 */
import { emptyDocument, SECTIONS } from './cache-document';
import type { CacheDocument, CacheEntity } from './cache-document';

const same = (left: CacheEntity | undefined, right: CacheEntity | undefined): boolean => JSON.stringify(left) === JSON.stringify(right);

function cachedAt(entity: CacheEntity): number {
  const value = Number(entity.cached_at ?? entity.last_modification_time ?? 0);
  return Number.isFinite(value) ? value : 0;
}

function mergeEntity(
  base: CacheEntity | undefined,
  mine: CacheEntity | undefined,
  theirs: CacheEntity | undefined,
): CacheEntity | undefined {
  if (same(mine, theirs)) return mine;
  if (same(base, theirs)) return mine; // only we changed it (or removed it)
  if (same(base, mine)) return theirs; // only they changed it (or removed it)
  if (mine === undefined || theirs === undefined) return undefined; // changed on one side, removed on the other: removal wins
  return cachedAt(theirs) > cachedAt(mine) ? theirs : mine;
}

/**
 * @param base - what we read
 * @param mine - what we want to write (base plus our changes)
 * @param theirs - what is stored now
 * @param accountPartition - drop credentials whose Account is gone
 */
export function mergeCacheDocuments(
  base: CacheDocument,
  mine: CacheDocument,
  theirs: CacheDocument,
  accountPartition: boolean,
): CacheDocument {
  const merged = emptyDocument();
  for (const section of SECTIONS) {
    const keys = new Set([...Object.keys(base[section]), ...Object.keys(mine[section]), ...Object.keys(theirs[section])]);
    for (const key of keys) {
      const entity = mergeEntity(base[section][key], mine[section][key], theirs[section][key]);
      if (entity !== undefined) merged[section][key] = entity;
    }
  }
  return accountPartition ? withoutOrphans(merged) : merged;
}

/** Drops user credentials whose home account has no Account entity left. */
export function withoutOrphans(document: CacheDocument): CacheDocument {
  const accounts = new Set(Object.values(document.Account).map((account) => account.home_account_id));
  for (const section of ['IdToken', 'AccessToken', 'RefreshToken'] as const) {
    for (const [key, entity] of Object.entries(document[section])) {
      if (!accounts.has(entity.home_account_id)) delete document[section][key];
    }
  }
  return document;
}
