// Three-way merge of MSAL cache documents (base = what we read, mine = what we want to write,
// theirs = what another writer stored meanwhile), and the orphan sweep of account partitions.
import { emptyDocument, parseCacheDocument, SECTIONS } from '../../src/cache/cache-document';
import type { CacheDocument, CacheEntity, Section } from '../../src/cache/cache-document';
import { mergeCacheDocuments, withoutOrphans } from '../../src/cache/merge';

const ENV = 'login.microsoftonline.com';
const CLIENT = 'client-id';
const TENANT = 'utid';
const HOME = 'uid.utid';
const OTHER_HOME = 'other.utid';

type Entry = [key: string, entity: CacheEntity];

function account(home = HOME, lastModified = '1700000000'): Entry {
  return [
    `${home}-${ENV}-${TENANT}`,
    {
      home_account_id: home,
      environment: ENV,
      realm: TENANT,
      local_account_id: home.split('.')[0],
      username: `${home}@example.test`,
      authority_type: 'MSSTS',
      last_modification_time: lastModified,
    },
  ];
}

function idToken(home = HOME, secret = 'id-token'): Entry {
  return [
    `${home}-${ENV}-idtoken-${CLIENT}-${TENANT}---`,
    { home_account_id: home, environment: ENV, credential_type: 'IdToken', client_id: CLIENT, secret, realm: TENANT },
  ];
}

function accessToken(options: { home?: string; target?: string; cachedAt?: string; secret?: string } = {}): Entry {
  const { home = HOME, target = 'User.Read', cachedAt = '1700000000', secret = `at-${target}-${cachedAt}` } = options;
  return [
    `${home}-${ENV}-accesstoken-${CLIENT}-${TENANT}-${target.toLowerCase()}--`,
    {
      home_account_id: home,
      environment: ENV,
      credential_type: 'AccessToken',
      client_id: CLIENT,
      secret,
      realm: TENANT,
      target,
      cached_at: cachedAt,
      expires_on: String(Number(cachedAt) + 3600),
      token_type: 'Bearer',
    },
  ];
}

function refreshToken(home = HOME, secret = 'rt-1'): Entry {
  return [
    `${home}-${ENV}-refreshtoken-${CLIENT}----`,
    { home_account_id: home, environment: ENV, credential_type: 'RefreshToken', client_id: CLIENT, secret },
  ];
}

function appMetadata(): Entry {
  return [`appmetadata-${ENV}-${CLIENT}`, { client_id: CLIENT, environment: ENV }];
}

/** A document from entries per section. */
function doc(sections: Partial<Record<Section, Entry[]>> = {}): CacheDocument {
  const document = emptyDocument();
  for (const section of SECTIONS) {
    for (const [key, entity] of sections[section] ?? []) document[section][key] = entity;
  }
  return document;
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}

/** Merges frozen inputs and checks that none of them changed. */
function merge(base: CacheDocument, mine: CacheDocument, theirs: CacheDocument, accountPartition: boolean): CacheDocument {
  const before = structuredClone({ base, mine, theirs });
  const merged = mergeCacheDocuments(deepFreeze(base), deepFreeze(mine), deepFreeze(theirs), accountPartition);
  expect({ base, mine, theirs }).toEqual(before);
  return merged;
}

const keysOf = (document: CacheDocument, section: Section): string[] => Object.keys(document[section]).sort();

describe('mergeCacheDocuments', () => {
  const [accountKey, accountEntity] = account();
  const [refreshKey] = refreshToken();

  it('keeps an entity that only mine added and an entity that only theirs added', () => {
    const base = doc({ Account: [account()], RefreshToken: [refreshToken()] });
    const mail = accessToken({ target: 'Mail.Read' });
    const files = accessToken({ target: 'Files.Read' });
    const mine = doc({ Account: [account()], RefreshToken: [refreshToken()], AccessToken: [mail] });
    const theirs = doc({ Account: [account()], RefreshToken: [refreshToken()], AccessToken: [files] });

    const merged = merge(base, mine, theirs, true);

    expect(merged.AccessToken).toEqual({ [mail[0]]: mail[1], [files[0]]: files[1] });
    expect(merged.Account).toEqual({ [accountKey]: accountEntity });
    expect(keysOf(merged, 'RefreshToken')).toEqual([refreshKey]);
  });

  it('takes my change when theirs left the entity as it was in base', () => {
    const old = accessToken({ cachedAt: '1700000000' });
    const renewed = accessToken({ cachedAt: '1700003000' });
    const base = doc({ Account: [account()], AccessToken: [old] });

    const merged = merge(
      base,
      doc({ Account: [account()], AccessToken: [renewed] }),
      doc({ Account: [account()], AccessToken: [old] }),
      true,
    );

    expect(merged.AccessToken).toEqual({ [renewed[0]]: renewed[1] });
  });

  it('takes their change when mine left the entity as in base, even where a cached_at tie would favour mine', () => {
    const old = accessToken({ cachedAt: '1700000000', secret: 'old' });
    // Their change keeps the same cached_at: "a change wins over no change", not "the later one wins".
    const theirChange = accessToken({ cachedAt: '1700000000', secret: 'rewritten-by-them' });
    const base = doc({ Account: [account()], AccessToken: [old] });

    const merged = merge(
      base,
      doc({ Account: [account()], AccessToken: [old] }),
      doc({ Account: [account()], AccessToken: [theirChange] }),
      true,
    );

    expect(merged.AccessToken[old[0]]).toEqual(theirChange[1]);
  });

  it('removes an entity that theirs removed and mine left unchanged', () => {
    const token = accessToken();
    const base = doc({ Account: [account()], AccessToken: [token] });

    const merged = merge(base, doc({ Account: [account()], AccessToken: [token] }), doc({ Account: [account()] }), true);

    expect(merged.AccessToken).toEqual({});
    expect(merged.Account).toEqual({ [accountKey]: accountEntity });
  });

  it('removes an entity that mine removed and theirs left unchanged', () => {
    const token = accessToken();
    const base = doc({ Account: [account()], AccessToken: [token] });

    const merged = merge(base, doc({ Account: [account()] }), doc({ Account: [account()], AccessToken: [token] }), true);

    expect(merged.AccessToken).toEqual({});
  });

  it('removes an entity that mine changed (even to a later cached_at) and theirs removed', () => {
    const old = accessToken({ cachedAt: '1700000000' });
    const renewed = accessToken({ cachedAt: '1800000000' });
    const base = doc({ Account: [account()], AccessToken: [old] });

    const merged = merge(base, doc({ Account: [account()], AccessToken: [renewed] }), doc({ Account: [account()] }), true);

    expect(merged.AccessToken).toEqual({});
  });

  // Edge 11: this was "removal wins"; a removal now removes only what it saw.
  it('keeps an entity that theirs changed and mine removed: my removal never saw their change', () => {
    const old = accessToken({ cachedAt: '1700000000' });
    const renewed = accessToken({ cachedAt: '1600000000' }); // even an earlier cached_at: not a "both changed" tie-break
    const base = doc({ Account: [account()], AccessToken: [old] });

    const merged = merge(base, doc({ Account: [account()] }), doc({ Account: [account()], AccessToken: [renewed] }), true);

    expect(merged.AccessToken).toEqual({ [renewed[0]]: renewed[1] });
  });

  it("Edge 11: a removeAccount whose base predates a fresh sign-in keeps the sign-in's tokens and their Account, and removes what it saw", () => {
    const oldRead = accessToken({ target: 'User.Read', cachedAt: '1700000000', secret: 'at-old' });
    const oldMail = accessToken({ target: 'Mail.Read', cachedAt: '1700000000', secret: 'at-mail-old' });
    const base = doc({
      Account: [account()],
      IdToken: [idToken(HOME, 'id-old')],
      AccessToken: [oldRead, oldMail],
      RefreshToken: [refreshToken(HOME, 'rt-old')],
      AppMetadata: [appMetadata()],
    });
    // Mine: removeAccount on base (the Account and all its credentials gone) ...
    const mine = doc({ AppMetadata: [appMetadata()] });
    // ... while a fresh sign-in wrote new tokens under the same keys; the Account entity is unchanged.
    const newRead = accessToken({ target: 'User.Read', cachedAt: '1700000900', secret: 'at-new' });
    const theirs = doc({
      Account: [account()],
      IdToken: [idToken(HOME, 'id-new')],
      AccessToken: [newRead, oldMail],
      RefreshToken: [refreshToken(HOME, 'rt-new')],
      AppMetadata: [appMetadata()],
    });

    const merged = merge(base, mine, theirs, true);

    expect(merged).toEqual(
      doc({
        Account: [account()],
        IdToken: [idToken(HOME, 'id-new')],
        AccessToken: [newRead], // the Mail.Read token the removal saw is gone
        RefreshToken: [refreshToken(HOME, 'rt-new')],
        AppMetadata: [appMetadata()],
      }),
    );
  });

  it('Edge 11: a removeAccount with nothing of that account newer in store removes the account and every credential of it', () => {
    const entries = (otherRefreshSecret: string): Partial<Record<Section, Entry[]>> => ({
      Account: [account(), account(OTHER_HOME)],
      IdToken: [idToken()],
      AccessToken: [accessToken()],
      RefreshToken: [refreshToken(), refreshToken(OTHER_HOME, otherRefreshSecret)],
    });
    const base = doc(entries('rt-1'));
    const mine = doc({ Account: [account(OTHER_HOME)], RefreshToken: [refreshToken(OTHER_HOME, 'rt-1')] });
    // Theirs changed only the other account's refresh token: nothing of HOME is newer than base.
    const theirs = doc(entries('rt-9'));

    const merged = merge(base, mine, theirs, true);

    expect(merged).toEqual(doc({ Account: [account(OTHER_HOME)], RefreshToken: [refreshToken(OTHER_HOME, 'rt-9')] }));
  });

  it('takes theirs when both changed an entity and theirs has the later cached_at (compared as numbers, not strings)', () => {
    const old = accessToken({ cachedAt: '800', secret: 'base' });
    const mineChange = accessToken({ cachedAt: '900', secret: 'mine' });
    const theirChange = accessToken({ cachedAt: '1000', secret: 'theirs' }); // '1000' < '900' as strings
    const base = doc({ Account: [account()], AccessToken: [old] });

    const merged = merge(
      base,
      doc({ Account: [account()], AccessToken: [mineChange] }),
      doc({ Account: [account()], AccessToken: [theirChange] }),
      true,
    );

    expect(merged.AccessToken[old[0]]).toEqual(theirChange[1]);
  });

  it('takes mine when both changed an entity and mine has the later cached_at', () => {
    const old = accessToken({ cachedAt: '1700000000', secret: 'base' });
    const mineChange = accessToken({ cachedAt: '1700000200', secret: 'mine' });
    const theirChange = accessToken({ cachedAt: '1700000100', secret: 'theirs' });
    const base = doc({ Account: [account()], AccessToken: [old] });

    const merged = merge(
      base,
      doc({ Account: [account()], AccessToken: [mineChange] }),
      doc({ Account: [account()], AccessToken: [theirChange] }),
      true,
    );

    expect(merged.AccessToken[old[0]]).toEqual(mineChange[1]);
  });

  it('takes mine when both changed an entity with the same cached_at', () => {
    const old = accessToken({ cachedAt: '1700000000', secret: 'base' });
    const mineChange = accessToken({ cachedAt: '1700000100', secret: 'mine' });
    const theirChange = accessToken({ cachedAt: '1700000100', secret: 'theirs' });
    const base = doc({ Account: [account()], AccessToken: [old] });

    const merged = merge(
      base,
      doc({ Account: [account()], AccessToken: [mineChange] }),
      doc({ Account: [account()], AccessToken: [theirChange] }),
      true,
    );

    expect(merged.AccessToken[old[0]]).toEqual(mineChange[1]);
  });

  it('takes the later of two different entities that both sides added under one key', () => {
    const mineAdd = accessToken({ cachedAt: '1700000000', secret: 'mine' });
    const theirAdd = accessToken({ cachedAt: '1700000500', secret: 'theirs' });

    const merged = merge(
      doc({ Account: [account()] }),
      doc({ Account: [account()], AccessToken: [mineAdd] }),
      doc({ Account: [account()], AccessToken: [theirAdd] }),
      true,
    );

    expect(merged.AccessToken).toEqual({ [theirAdd[0]]: theirAdd[1] });
  });

  it('orders entities without cached_at (Account) by last_modification_time when both sides changed them', () => {
    const [key, older] = account(HOME, '1700000100');
    const [, newer] = account(HOME, '1700000200');
    const base = doc({ Account: [account(HOME, '1700000000')] });

    const theirsNewer = merge(base, doc({ Account: [[key, older]] }), doc({ Account: [[key, newer]] }), true);
    const mineNewer = merge(
      doc({ Account: [account(HOME, '1700000000')] }),
      doc({ Account: [[key, structuredClone(newer)]] }),
      doc({ Account: [[key, structuredClone(older)]] }),
      true,
    );

    expect(theirsNewer.Account[key]).toEqual(newer);
    expect(mineNewer.Account[key]).toEqual(newer);
  });

  it('keeps all 20 access tokens when two writers each added 10 scopes concurrently, and my rotated refresh token on the tie', () => {
    const scopes = (prefix: string): string[] => Array.from({ length: 10 }, (_, index) => `api://${prefix}/scope${index}`);
    const mineTokens = scopes('mine').map((target) => accessToken({ target, cachedAt: '1700000100' }));
    const theirTokens = scopes('theirs').map((target) => accessToken({ target, cachedAt: '1700000200' }));
    const base = doc({ Account: [account()], IdToken: [idToken()], RefreshToken: [refreshToken(HOME, 'rt-base')] });
    const mine = doc({
      Account: [account()],
      IdToken: [idToken()],
      RefreshToken: [refreshToken(HOME, 'rt-mine')],
      AccessToken: mineTokens,
    });
    const theirs = doc({
      Account: [account()],
      IdToken: [idToken()],
      RefreshToken: [refreshToken(HOME, 'rt-theirs')],
      AccessToken: theirTokens,
    });

    const merged = merge(base, mine, theirs, true);

    expect(keysOf(merged, 'AccessToken')).toEqual([...mineTokens, ...theirTokens].map(([key]) => key).sort());
    expect(Object.keys(merged.AccessToken)).toHaveLength(20);
    for (const [key, entity] of [...mineTokens, ...theirTokens]) expect(merged.AccessToken[key]).toEqual(entity);
    // Refresh tokens carry no cached_at: both rotated it, so the tie goes to mine.
    expect(merged.RefreshToken[refreshKey]?.secret).toBe('rt-mine');
    expect(keysOf(merged, 'IdToken')).toEqual([idToken()[0]]);
  });

  it('in an account partition, drops my new credentials when theirs removed the account meanwhile (the removal is not undone)', () => {
    const oldToken = accessToken({ target: 'User.Read' });
    const newToken = accessToken({ target: 'Mail.Read', cachedAt: '1700000500' });
    const base = doc({
      Account: [account()],
      IdToken: [idToken()],
      AccessToken: [oldToken],
      RefreshToken: [refreshToken(HOME, 'rt-1')],
      AppMetadata: [appMetadata()],
    });
    // Mine acquired a token for a new scope and rotated the refresh token ...
    const mine = doc({
      Account: [account()],
      IdToken: [idToken()],
      AccessToken: [oldToken, newToken],
      RefreshToken: [refreshToken(HOME, 'rt-2')],
      AppMetadata: [appMetadata()],
    });
    // ... while another instance signed the user out (removeAccount).
    const theirs = doc({ AppMetadata: [appMetadata()] });

    const merged = merge(base, mine, theirs, true);

    expect(merged).toEqual(doc({ AppMetadata: [appMetadata()] }));
  });

  it('without the account-partition flag, the same race keeps my new access token (the flag is what drops orphans)', () => {
    const newToken = accessToken({ target: 'Mail.Read', cachedAt: '1700000500' });
    const base = doc({ Account: [account()], RefreshToken: [refreshToken()] });
    const mine = doc({ Account: [account()], RefreshToken: [refreshToken()], AccessToken: [newToken] });

    const merged = merge(base, mine, doc(), false);

    expect(merged).toEqual(doc({ AccessToken: [newToken] }));
  });

  it('in an account partition, keeps credentials whose account is still present', () => {
    const token = accessToken();
    const base = doc({ Account: [account()] });
    const mine = doc({ Account: [account()], IdToken: [idToken()], AccessToken: [token], RefreshToken: [refreshToken()] });

    const merged = merge(base, mine, doc({ Account: [account()] }), true);

    expect(merged).toEqual(mine);
  });

  it('in an app partition (accountPartition=false), keeps credentials with home_account_id "" from both writers', () => {
    const mineToken = accessToken({ home: '', target: 'https://graph.example.test/.default', cachedAt: '1700000100' });
    const theirToken = accessToken({ home: '', target: 'https://vault.example.test/.default', cachedAt: '1700000200' });
    const base = doc({ AppMetadata: [appMetadata()] });
    const mine = doc({ AppMetadata: [appMetadata()], AccessToken: [mineToken] });
    const theirs = doc({ AppMetadata: [appMetadata()], AccessToken: [theirToken] });

    const merged = merge(base, mine, theirs, false);

    expect(merged).toEqual(doc({ AppMetadata: [appMetadata()], AccessToken: [mineToken, theirToken] }));
  });

  it('returns a document with exactly the five sections, all present even when every input is empty', () => {
    const merged = merge(doc(), doc(), doc(), true);

    expect(merged).toEqual({ Account: {}, IdToken: {}, AccessToken: {}, RefreshToken: {}, AppMetadata: {} });
  });

  it('returns a new document and leaves base, mine and theirs unchanged, also when orphans are dropped', () => {
    const base = doc({ Account: [account()], AccessToken: [accessToken()], RefreshToken: [refreshToken()] });
    const mine = doc({
      Account: [account()],
      AccessToken: [accessToken(), accessToken({ target: 'Mail.Read' })],
      RefreshToken: [refreshToken(HOME, 'rt-2')],
    });
    const theirs = doc({ RefreshToken: [refreshToken()] }); // removed the account meanwhile
    const snapshot = structuredClone({ base, mine, theirs });

    // Not frozen here: an in-place edit would show up as a difference rather than a TypeError.
    const merged = mergeCacheDocuments(base, mine, theirs, true);

    expect(merged).toEqual(doc()); // every credential left was an orphan
    expect({ base, mine, theirs }).toEqual(snapshot);
    expect(merged).not.toBe(base);
    expect(merged).not.toBe(mine);
    expect(merged).not.toBe(theirs);
    for (const section of SECTIONS) {
      expect(merged[section]).not.toBe(mine[section]);
      expect(merged[section]).not.toBe(theirs[section]);
    }
  });
});

describe('withoutOrphans', () => {
  it('drops IdToken, AccessToken and RefreshToken entries whose home account has no Account entity', () => {
    const document = doc({
      Account: [account(HOME)],
      IdToken: [idToken(HOME), idToken(OTHER_HOME)],
      AccessToken: [accessToken({ home: HOME }), accessToken({ home: OTHER_HOME })],
      RefreshToken: [refreshToken(HOME), refreshToken(OTHER_HOME)],
      AppMetadata: [appMetadata()],
    });

    const result = withoutOrphans(document);

    expect(result).toEqual(
      doc({
        Account: [account(HOME)],
        IdToken: [idToken(HOME)],
        AccessToken: [accessToken({ home: HOME })],
        RefreshToken: [refreshToken(HOME)],
        AppMetadata: [appMetadata()],
      }),
    );
  });

  it('keeps Account and AppMetadata entries even when no credential refers to them', () => {
    const document = doc({ Account: [account(HOME), account(OTHER_HOME)], AppMetadata: [appMetadata()] });

    expect(withoutOrphans(document)).toEqual(doc({ Account: [account(HOME), account(OTHER_HOME)], AppMetadata: [appMetadata()] }));
  });

  it('drops app credentials (home_account_id ""), which is why app partitions must not be swept', () => {
    const document = doc({ AccessToken: [accessToken({ home: '' })], AppMetadata: [appMetadata()] });

    expect(withoutOrphans(document)).toEqual(doc({ AppMetadata: [appMetadata()] }));
  });

  it('edits the given document in place and returns that same object', () => {
    const document = doc({ AccessToken: [accessToken()] });

    const result = withoutOrphans(document);

    expect(result).toBe(document);
    expect(document.AccessToken).toEqual({});
  });
});

describe('keys that name Object.prototype members', () => {
  const at = (cachedAt: string, secret: string) => ({
    home_account_id: '',
    environment: 'e',
    credential_type: 'AccessToken',
    client_id: 'c',
    secret,
    realm: 'r',
    target: 't',
    cached_at: cachedAt,
    expires_on: '4000000000',
  });
  const parse = (sections: object) => parseCacheDocument(JSON.stringify(sections))!;

  it('a "toString" entity changed on mine and removed on theirs is removed', () => {
    const base = parse({ AccessToken: { toString: at('100', 'old') } });
    const mine = parse({ AccessToken: { toString: at('200', 'new') } });
    expect(Object.keys(mergeCacheDocuments(base, mine, emptyDocument(), false).AccessToken)).toEqual([]);
  });

  it('a "valueOf" entity unchanged on mine and removed on theirs leaves no entry', () => {
    const base = parse({ AccessToken: { valueOf: at('100', 'old') } });
    expect(Object.keys(mergeCacheDocuments(base, base, emptyDocument(), false).AccessToken)).toEqual([]);
  });
});
