/**
 * Three-way merge of MSAL cache documents, for when another writer changed a partition between
 * our read (`base`) and our write (`mine`). Per entity: a change on one side wins over no change;
 * when one side changed an entity and the other removed it, what is stored (`theirs`) wins, because
 * the other side never saw it: our removal does not remove what was written after our read, and
 * our change does not undo a removal that landed after our read. When both sides changed one
 * entity, the one cached later wins (ties go to ours, the fresher response). For account
 * partitions, credentials left without their Account are dropped, except where they are theirs
 * and newer than our base: their Account is then kept with them.
 */
import { emptyDocument, SECTIONS } from './cache-document';
import type { CacheDocument, CacheEntity } from './cache-document';

const same = (left: CacheEntity | undefined, right: CacheEntity | undefined): boolean => JSON.stringify(left) === JSON.stringify(right);

const CREDENTIAL_SECTIONS = ['IdToken', 'AccessToken', 'RefreshToken'] as const;

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
  // Changed on one side, removed on the other: neither side saw the other's write, and theirs
  // landed first. A removal removes only what it saw; a change does not undo a later removal.
  if (mine === undefined || theirs === undefined) return theirs;
  return cachedAt(theirs) > cachedAt(mine) ? theirs : mine;
}

/**
 * @param base - what we read
 * @param mine - what we want to write (base plus our changes)
 * @param theirs - what is stored now
 * @param accountPartition - drop credentials whose Account is gone, unless they are theirs and
 *   newer than `base` (then their Account stays: our removal never saw them)
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
  if (!accountPartition) return merged;
  keepAccountsOfTheirNewerCredentials(base, theirs, merged);
  return withoutOrphans(merged);
}

/**
 * A credential that theirs wrote after our read (a fresh sign-in's refresh token) survives our
 * removal of its account only if its Account does too: put theirs back where the merge removed it.
 */
function keepAccountsOfTheirNewerCredentials(base: CacheDocument, theirs: CacheDocument, merged: CacheDocument): void {
  const needed = new Set<unknown>();
  for (const section of CREDENTIAL_SECTIONS) {
    for (const [key, entity] of Object.entries(merged[section])) {
      if (entity === theirs[section][key] && !same(entity, base[section][key])) needed.add(entity.home_account_id);
    }
  }
  for (const [key, account] of Object.entries(theirs.Account)) {
    if (needed.has(account.home_account_id) && merged.Account[key] === undefined) merged.Account[key] = account;
  }
}

/** Drops user credentials whose home account has no Account entity left. */
export function withoutOrphans(document: CacheDocument): CacheDocument {
  const accounts = new Set(Object.values(document.Account).map((account) => account.home_account_id));
  for (const section of CREDENTIAL_SECTIONS) {
    for (const [key, entity] of Object.entries(document[section])) {
      if (!accounts.has(entity.home_account_id)) delete document[section][key];
    }
  }
  return document;
}
