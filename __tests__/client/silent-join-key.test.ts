// The join key of concurrent acquireTokenSilent calls: equal only for requests that are equal in
// every field that can shape the token.
import { silentJoinKey } from '../../src/client/silent-join-key';
import { canonicalText } from '../../src/internal/canonical-text';
import type { DistributedSilentFlowRequest } from '../../src';

const base: DistributedSilentFlowRequest = { homeAccountId: 'oid.tid', scopes: ['User.Read', 'Mail.Read'] };
const key = (request: Record<string, unknown>): string | undefined =>
  silentJoinKey('partition', request as unknown as DistributedSilentFlowRequest);

describe('silentJoinKey', () => {
  it('is the same when only the correlation id, the order of scopes or a default forceRefresh differ', () => {
    const expected = key(base);
    expect(expected).toBeDefined();
    expect(key({ ...base, correlationId: 'c-1' })).toBe(expected);
    expect(key({ ...base, scopes: ['Mail.Read', 'User.Read'] })).toBe(expected);
    expect(key({ ...base, forceRefresh: false })).toBe(expected);
    expect(key({ ...base, claims: undefined })).toBe(expected);
    expect(key({ ...base, extraParameters: { a: '1', b: '2' } })).toBe(key({ ...base, extraParameters: { b: '2', a: '1' } }));
  });

  it.each([
    ['authenticationScheme', 'pop'],
    ['authenticationScheme', 'SSH'],
    ['resourceRequestMethod', 'POST'],
    ['resourceRequestUri', 'https://api.example.test/x'],
    ['sshJwk', '{"kty":"RSA","n":"abc","e":"AQAB"}'],
    ['sshKid', 'key-1'],
    ['shrClaims', '{"nonce":"n"}'],
    ['shrNonce', 'nonce-1'],
    ['shrOptions', { header: { kid: 'k' } }],
    ['popKid', 'k'],
    ['claims', '{"access_token":{"xms_cc":{"values":["cp1"]}}}'],
    ['extraParameters', { slice: 'testslice' }],
    ['extraQueryParameters', { dc: 'ESTS-PUB-WUS2-AZ1-FD000-TEST1' }],
    ['tokenQueryParameters', { slice: 'testslice' }], // msal-node before 3; now unknown: part of the key all the same
    ['resource', 'https://api.example.test'],
    ['attributeTokens', ['attr-1']],
    ['authority', 'https://login.example.test/other-tenant'],
    ['forceRefresh', true],
    ['refreshTokenExpirationOffsetSeconds', 300],
    ['aFieldMsalAddsLater', 'x'],
  ])('differs when %s differs (%j)', (field, value) => {
    expect(key({ ...base, [field]: value })).not.toBe(key(base));
    expect(key({ ...base, [field]: value })).toBeDefined();
  });

  it('differs between the same account given as an account and as a homeAccountId, or in another tenant', () => {
    const account = { homeAccountId: 'oid.tid', environment: 'login.example.test', tenantId: 'tid', username: 'a', localAccountId: 'oid' };
    const byAccount = key({ account, scopes: base.scopes });
    expect(byAccount).not.toBe(key(base));
    expect(key({ account: { ...account, tenantId: 'guest-tenant' }, scopes: base.scopes })).not.toBe(byAccount);
    const profiles = (tenantId: string) => new Map([[tenantId, { tenantId, localAccountId: 'oid', name: 'A', isHomeTenant: true }]]);
    expect(key({ account: { ...account, tenantProfiles: profiles('tid') }, scopes: base.scopes })).not.toBe(
      key({ account: { ...account, tenantProfiles: profiles('other') }, scopes: base.scopes }),
    );
  });

  it('writes the usual request (homeAccountId, scopes, authority, forceRefresh, correlationId) exactly as the general case', () => {
    // The general case: every field but correlationId, scopes sorted, forceRefresh false as absent.
    const general = (request: Record<string, unknown>): string | undefined => {
      const { correlationId: _correlationId, scopes, forceRefresh, ...fields } = request;
      return canonicalText([
        'partition',
        Array.isArray(scopes) ? [...(scopes as unknown[])].sort() : scopes,
        { ...fields, forceRefresh: forceRefresh === false ? undefined : forceRefresh },
      ]);
    };
    const requests: Record<string, unknown>[] = [
      base,
      { ...base, scopes: [] },
      { ...base, scopes: ['b', 'a', 'a', 'é "quoted"\n'] },
      { ...base, homeAccountId: 'odd "id" \u2028' },
      { ...base, authority: 'https://login.example.test/tenant' },
      { ...base, forceRefresh: true, correlationId: 'c', authority: 'https://login.example.test/t' },
      { ...base, forceRefresh: false },
      { ...base, authority: undefined, forceRefresh: undefined, correlationId: undefined },
      { ...base, scopes: ['a', 7] },
      { ...base, scopes: ['a', undefined] },
      { ...base, authority: 42 },
      { ...base, forceRefresh: 'yes' },
      { ...base, homeAccountId: 12 },
      Object.assign(Object.create({ inherited: 'x' }) as object, base),
    ];
    for (const request of requests) expect(key(request)).toBe(general(request));
  });

  it('is undefined (never join) when a field has no faithful text: a function, a class instance, a cycle', () => {
    const cycle: Record<string, unknown> = {};
    cycle.self = cycle;
    for (const value of [() => 'x', new (class Options {})(), cycle, Symbol('s'), 10n, Number.NaN, [undefined]]) {
      expect(key({ ...base, extraParameters: value })).toBeUndefined();
    }
  });
});
