// Parsing MSAL's serialized cache from untrusted store contents: what MSAL writes is accepted,
// anything else is refused before it can reach MSAL's deserializer.
import { ConfidentialClientApplication } from '@azure/msal-node';
import {
  accountIdsIn,
  emptyDocument,
  homeAccountIdsIn,
  isEmptyDocument,
  parseCacheDocument,
  SECTIONS,
  toCacheDocument,
} from '../../src/cache/cache-document';
import type { Section } from '../../src/cache/cache-document';

const ENV = 'login.microsoftonline.com';
const HOME = 'uid.utid';
const base64url = (value: object): string => Buffer.from(JSON.stringify(value)).toString('base64url');
// An unsigned ID token: MSAL only decodes the claims of a cached one.
const ID_TOKEN = `${base64url({ alg: 'none', typ: 'JWT' })}.${base64url({
  oid: 'uid',
  tid: 'utid',
  sub: 'subject',
  preferred_username: 'ada@example.test',
  name: 'Ada',
  aud: 'client-id',
  iss: 'https://login.microsoftonline.com/utid/v2.0',
  iat: 1700000000,
  exp: 4000000000,
})}.signature`;

/** One entity of each section, with the fields msal-node 7 writes. */
function entities(): Record<Section, Record<string, Record<string, unknown>>> {
  return {
    Account: {
      [`${HOME}-${ENV}-utid`]: {
        home_account_id: HOME,
        environment: ENV,
        realm: 'utid',
        local_account_id: 'uid',
        username: 'ada@example.test',
        authority_type: 'MSSTS',
        name: 'Ada',
        client_info: base64url({ uid: 'uid', utid: 'utid' }),
        last_modification_time: '1700000000',
      },
    },
    IdToken: {
      [`${HOME}-${ENV}-idtoken-client-id-utid---`]: {
        home_account_id: HOME,
        environment: ENV,
        credential_type: 'IdToken',
        client_id: 'client-id',
        secret: ID_TOKEN,
        realm: 'utid',
      },
    },
    AccessToken: {
      [`${HOME}-${ENV}-accesstoken-client-id-utid-user.read--`]: {
        home_account_id: HOME,
        environment: ENV,
        credential_type: 'AccessToken',
        client_id: 'client-id',
        secret: 'access-token',
        realm: 'utid',
        target: 'User.Read',
        cached_at: '1700000000',
        expires_on: '4000000000',
        extended_expires_on: '4000000000',
        token_type: 'Bearer',
      },
    },
    RefreshToken: {
      [`${HOME}-${ENV}-refreshtoken-client-id----`]: {
        home_account_id: HOME,
        environment: ENV,
        credential_type: 'RefreshToken',
        client_id: 'client-id',
        secret: 'refresh-token',
      },
    },
    AppMetadata: { [`appmetadata-${ENV}-client-id`]: { client_id: 'client-id', environment: ENV } },
  };
}

/** The first (only) entity of a section of {@link entities}. */
function entityOf(section: Section): { key: string; entity: Record<string, unknown> } {
  const [key, entity] = Object.entries(entities()[section])[0]!;
  return { key, entity };
}

function msalTokenCache() {
  return new ConfidentialClientApplication({
    auth: { clientId: 'client-id', clientSecret: 'unused-secret', authority: 'https://login.microsoftonline.com/common' },
  }).getTokenCache();
}

describe('parseCacheDocument', () => {
  it('accepts what msal-node serializes for a signed-in account and keeps every entity with all its fields', async () => {
    const tokenCache = msalTokenCache();
    tokenCache.deserialize(JSON.stringify(entities()));
    // MSAL itself recognizes the account, so this is a cache it would have written.
    expect((await tokenCache.getAllAccounts()).map((account) => account.homeAccountId)).toEqual([HOME]);
    const serialized = tokenCache.serialize();

    const document = parseCacheDocument(serialized);

    expect(document).toEqual(JSON.parse(serialized));
    expect(document).toEqual(entities());
  });

  it('accepts what msal-node serializes for an empty cache, as an empty document', () => {
    const document = parseCacheDocument(msalTokenCache().serialize());

    expect(document).toEqual(emptyDocument());
    expect(isEmptyDocument(document!)).toBe(true);
  });

  it('accepts a client-credentials document whose access token has home_account_id ""', () => {
    const text = JSON.stringify({
      AccessToken: {
        [`-${ENV}-accesstoken-client-id-utid-https://graph.example.test/.default--`]: {
          home_account_id: '',
          environment: ENV,
          credential_type: 'AccessToken',
          client_id: 'client-id',
          secret: 'app-token',
          realm: 'utid',
          target: 'https://graph.example.test/.default',
          cached_at: '1700000000',
          expires_on: '1700003600',
        },
      },
      AppMetadata: entities().AppMetadata,
    });

    const document = parseCacheDocument(text);

    expect(document).toBeDefined();
    expect(Object.keys(document!.AccessToken)).toHaveLength(1);
    expect(document!.AppMetadata).toEqual(entities().AppMetadata);
  });

  it('fills missing and null sections with empty ones', () => {
    const document = parseCacheDocument(JSON.stringify({ Account: entities().Account, IdToken: null }));

    expect(document).toEqual({ ...emptyDocument(), Account: entities().Account });
  });

  it('drops unknown top-level sections and keeps the known ones', () => {
    const document = parseCacheDocument(JSON.stringify({ ...entities(), Unknown: { key: { any: 'thing' } }, Extra: 'text' }));

    expect(Object.keys(document!).sort()).toEqual([...SECTIONS].sort());
    expect(document).toEqual(entities());
  });

  it.each([
    ['text that is not JSON', 'not json at all'],
    ['an empty string', ''],
    ['truncated JSON', JSON.stringify(entities()).slice(0, 120)],
    ['a JSON array', JSON.stringify([entities()])],
    ['a JSON string', JSON.stringify(JSON.stringify(entities()))],
    ['JSON null', 'null'],
    ['a JSON number', '42'],
  ])('returns undefined for %s', (_what, text) => {
    expect(parseCacheDocument(text)).toBeUndefined();
  });

  it.each(
    SECTIONS.flatMap(
      (section) =>
        [
          [section, 'a string', 'not an object'],
          [section, 'an array', [entityOf(section).entity]],
          [section, 'a number', 1],
        ] as const,
    ),
  )('returns undefined when the %s section is %s', (section, _what, value) => {
    expect(parseCacheDocument(JSON.stringify({ ...entities(), [section]: value }))).toBeUndefined();
  });

  it.each(
    SECTIONS.flatMap(
      (section) =>
        [
          [section, 'a string', 'entity'],
          [section, 'null', null],
          [section, 'an array', ['entity']],
        ] as const,
    ),
  )('returns undefined when a %s entity is %s', (section, _what, value) => {
    const sectionWithBadEntity = { ...entities()[section], 'bad-key': value };

    expect(parseCacheDocument(JSON.stringify({ ...entities(), [section]: sectionWithBadEntity }))).toBeUndefined();
  });

  const requiredFields: Array<[Section, string]> = [
    ...['home_account_id', 'environment', 'realm', 'local_account_id', 'username', 'authority_type'].map(
      (field) => ['Account', field] as [Section, string],
    ),
    ...['home_account_id', 'environment', 'credential_type', 'client_id', 'secret', 'realm'].map(
      (field) => ['IdToken', field] as [Section, string],
    ),
    ...['home_account_id', 'environment', 'credential_type', 'client_id', 'secret', 'realm', 'target', 'cached_at', 'expires_on'].map(
      (field) => ['AccessToken', field] as [Section, string],
    ),
    ...['home_account_id', 'environment', 'credential_type', 'client_id', 'secret'].map(
      (field) => ['RefreshToken', field] as [Section, string],
    ),
    ...['client_id', 'environment'].map((field) => ['AppMetadata', field] as [Section, string]),
  ];

  it.each(requiredFields)('returns undefined when a %s entity lacks the string field %s', (section, field) => {
    const { key, entity } = entityOf(section);
    const { [field]: _removed, ...incomplete } = entity;

    expect(parseCacheDocument(JSON.stringify({ ...entities(), [section]: { [key]: incomplete } }))).toBeUndefined();
  });

  it.each(requiredFields)('returns undefined when a %s entity has a number as %s', (section, field) => {
    const { key, entity } = entityOf(section);

    expect(parseCacheDocument(JSON.stringify({ ...entities(), [section]: { [key]: { ...entity, [field]: 1700000000 } } }))).toBeUndefined();
  });

  it.each(SECTIONS.flatMap((section) => ['__proto__', 'constructor', 'prototype'].map((key) => [section, key] as const)))(
    'returns undefined when a %s entity has the key %s',
    (section, forbidden) => {
      const entity = JSON.stringify(entityOf(section).entity);
      // Written as text: an object literal with a __proto__ key would set the prototype instead.
      const text = `{"${section}":{"${forbidden}":${entity}}}`;
      expect(Object.keys(JSON.parse(text)[section])).toEqual([forbidden]);

      expect(parseCacheDocument(text)).toBeUndefined();
    },
  );

  it('does not pollute Object.prototype when the text holds a __proto__ entity', () => {
    const payload = { ...entityOf('Account').entity, pollutedByCacheDocument: 'yes' };
    const text = `{"Account":{"__proto__":${JSON.stringify(payload)}},"AccessToken":{"__proto__":${JSON.stringify(payload)}}}`;

    const document = parseCacheDocument(text);

    expect(document).toBeUndefined();
    expect(({} as Record<string, unknown>).pollutedByCacheDocument).toBeUndefined();
    expect(({} as Record<string, unknown>).home_account_id).toBeUndefined();
    expect(Object.prototype).not.toHaveProperty('pollutedByCacheDocument');
    expect(Object.getPrototypeOf(emptyDocument().Account)).toBeNull(); // sections have no inherited members
  });

  it('ignores a top-level __proto__ key and reads only the sections it knows', () => {
    const text = `{"__proto__":{"Account":${JSON.stringify(entities().Account)}},"AppMetadata":${JSON.stringify(entities().AppMetadata)}}`;

    const document = parseCacheDocument(text);

    expect(document).toEqual({ ...emptyDocument(), AppMetadata: entities().AppMetadata });
    expect(({} as Record<string, unknown>).Account).toBeUndefined();
  });
});

describe('toCacheDocument', () => {
  it('accepts an already parsed document', () => {
    expect(toCacheDocument(entities())).toEqual(entities());
  });

  it.each([
    ['undefined', undefined],
    ['null', null],
    ['a string', '{}'],
    ['an array', []],
    ['a number', 1],
  ])('returns undefined for %s', (_what, value) => {
    expect(toCacheDocument(value)).toBeUndefined();
  });

  it('returns an empty document for an empty object', () => {
    expect(toCacheDocument({})).toEqual(emptyDocument());
  });
});

describe('homeAccountIdsIn', () => {
  it('collects each distinct home_account_id over all sections once', () => {
    const document = toCacheDocument(entities())!;
    const other = { ...entityOf('AccessToken').entity, home_account_id: 'other.utid' };
    document.AccessToken['other-key'] = other;

    expect([...homeAccountIdsIn(document)].sort()).toEqual(['other.utid', HOME]);
  });

  it('ignores the empty home_account_id of app tokens', () => {
    const document = emptyDocument();
    document.AccessToken['app-token'] = { ...entityOf('AccessToken').entity, home_account_id: '' };
    document.AppMetadata['meta'] = entityOf('AppMetadata').entity;

    expect(homeAccountIdsIn(document).size).toBe(0);
  });
});

describe('accountIdsIn', () => {
  it('lists the home account ids of Account entities only', () => {
    const document = toCacheDocument(entities())!;
    document.AccessToken['other-key'] = { ...entityOf('AccessToken').entity, home_account_id: 'other.utid' };

    expect(accountIdsIn(document)).toEqual([HOME]);
  });
});

describe('isEmptyDocument', () => {
  it('is true for a document with five empty sections', () => {
    expect(isEmptyDocument(emptyDocument())).toBe(true);
  });

  it.each(SECTIONS)('is false when only the %s section has an entity', (section) => {
    const document = emptyDocument();
    const { key, entity } = entityOf(section);
    document[section][key] = entity;

    expect(isEmptyDocument(document)).toBe(false);
  });
});
