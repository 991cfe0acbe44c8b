/**
 * The MSAL cache document (msal-node's serialized JSON: Account, IdToken, AccessToken,
 * RefreshToken, AppMetadata sections), parsed from untrusted store contents. Anything that does
 * not have the shape MSAL writes is rejected here, so it never reaches MSAL's deserializer.
 */

/** The sections of MSAL's serialized cache that this library keeps. */
export const SECTIONS = ['Account', 'IdToken', 'AccessToken', 'RefreshToken', 'AppMetadata'] as const;
export type Section = (typeof SECTIONS)[number];

/** One entity: MSAL writes string fields (numbers as strings) and a few nested objects. */
export type CacheEntity = Record<string, unknown>;
export type CacheDocument = Record<Section, Record<string, CacheEntity>>;

/** Fields that each section's entities must carry as strings. */
const REQUIRED_STRING_FIELDS: Record<Section, readonly string[]> = {
  Account: ['home_account_id', 'environment', 'realm', 'local_account_id', 'username', 'authority_type'],
  IdToken: ['home_account_id', 'environment', 'credential_type', 'client_id', 'secret', 'realm'],
  AccessToken: ['home_account_id', 'environment', 'credential_type', 'client_id', 'secret', 'realm', 'target', 'cached_at', 'expires_on'],
  RefreshToken: ['home_account_id', 'environment', 'credential_type', 'client_id', 'secret'],
  AppMetadata: ['client_id', 'environment'],
};

const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

/** Sections have no prototype: a stored key such as `toString` must never resolve to an inherited member. */
const section = (): Record<string, CacheEntity> => Object.create(null) as Record<string, CacheEntity>;

export function emptyDocument(): CacheDocument {
  return { Account: section(), IdToken: section(), AccessToken: section(), RefreshToken: section(), AppMetadata: section() };
}

export function isEmptyDocument(document: CacheDocument): boolean {
  return SECTIONS.every((section) => Object.keys(document[section]).length === 0);
}

const isPlainObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/**
 * Validates a parsed value as a cache document. Returns `undefined` for anything MSAL would not
 * have written. Unknown top-level sections are dropped.
 */
export function toCacheDocument(value: unknown): CacheDocument | undefined {
  if (!isPlainObject(value)) return undefined;
  const document = emptyDocument();
  for (const section of SECTIONS) {
    const entries = value[section];
    if (entries === undefined || entries === null) continue;
    if (!isPlainObject(entries)) return undefined;
    for (const [key, entity] of Object.entries(entries)) {
      if (FORBIDDEN_KEYS.has(key) || !isPlainObject(entity)) return undefined;
      if (!REQUIRED_STRING_FIELDS[section].every((field) => typeof entity[field] === 'string')) return undefined;
      document[section][key] = entity;
    }
  }
  return document;
}

/**
 * Freezes a document, its sections and its entities (in place; returns it): a snapshot kept in the
 * L1 is shared by every reader of its partition in the process, so a change would be seen by all.
 */
export function freezeDocument(document: CacheDocument): CacheDocument {
  for (const section of SECTIONS) {
    for (const entity of Object.values(document[section])) deepFreeze(entity);
    Object.freeze(document[section]);
  }
  return Object.freeze(document);
}

function deepFreeze(value: unknown): void {
  if (typeof value !== 'object' || value === null || Object.isFrozen(value)) return;
  for (const child of Object.values(value)) deepFreeze(child);
  Object.freeze(value);
}

/** Parses MSAL's serialized cache (`TokenCache.serialize()`), or `undefined` if it is not one. */
export function parseCacheDocument(text: string): CacheDocument | undefined {
  try {
    return toCacheDocument(JSON.parse(text));
  } catch {
    return undefined;
  }
}

/** The distinct `home_account_id`s of every entity that carries one (app tokens carry ''). */
export function homeAccountIdsIn(document: CacheDocument): Set<string> {
  const ids = new Set<string>();
  for (const section of SECTIONS) {
    for (const entity of Object.values(document[section])) {
      if (typeof entity.home_account_id === 'string' && entity.home_account_id !== '') ids.add(entity.home_account_id);
    }
  }
  return ids;
}

/** Home account ids of the Account entities only. */
export function accountIdsIn(document: CacheDocument): string[] {
  return Object.values(document.Account).map((account) => account.home_account_id as string);
}
