// The problem this project exists for, on plain msal-node: the second redemption of one code fails.
import { ConfidentialClientApplication, ServerError } from '@azure/msal-node';
import { startFakeEntraId } from './helpers/entra';
import type { FakeEntraId } from '../src/testing';

const redirectUri = 'https://app.example.test/auth/callback';

describe('AADSTS54005 on a plain ConfidentialClientApplication', () => {
  let entra: FakeEntraId;
  beforeAll(async () => {
    entra = await startFakeEntraId();
  });
  afterAll(() => entra.close());

  it.each([
    ['current shape', false, [54005]],
    ['legacy shape', true, [70002, 54005]],
  ])('redeeming one code twice: tokens, then ServerError AADSTS54005 (%s)', async (_shape, legacy, errorCodes) => {
    entra.legacyCodeReusedShape = legacy;
    const app = new ConfidentialClientApplication(entra.msalConfig());
    const code = entra.mintCode({ redirectUri });

    const first = await app.acquireTokenByCode({ code, redirectUri, scopes: ['User.Read'] });
    expect(first.accessToken).toBeTruthy();
    expect(first.account?.homeAccountId).toBe(entra.homeAccountIdOf(entra.registeredUsers[0]!));

    const second = app.acquireTokenByCode({ code, redirectUri, scopes: ['User.Read'] });
    await expect(second).rejects.toBeInstanceOf(ServerError);
    const error = (await second.catch((e: unknown) => e)) as ServerError;
    expect(error.errorCode).toBe('invalid_grant');
    expect(Number(error.errorNo)).toBe(errorCodes[0]); // MSAL keeps only the first code
    expect(error.errorMessage).toContain('AADSTS54005');
    expect(error.errorMessage).toContain(`Error(s): ${errorCodes.join(',')}`);
    expect(entra.tokenCallCount({ code })).toBe(2);
  });
});
