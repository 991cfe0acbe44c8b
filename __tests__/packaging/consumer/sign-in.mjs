// An app using the installed package from ESM: two instances share one token cache and receive
// the same authorization-code callback at once (the AADSTS54005 case). Prints a JSON summary.
import { CryptoProvider } from '@azure/msal-node';
import Keyv from 'keyv';
import {
  CodeAlreadyRedeemedError,
  DistributedClientApplication,
  DistributedTokenCache,
  MemoryLockStore,
  MsalDistributedCacheError,
} from 'msal-distributed-cache';
import { FakeEntraId } from 'msal-distributed-cache/testing';

const redirectUri = 'https://app.example.test/auth/callback';
const scopes = ['User.Read'];

const entra = await FakeEntraId.start();
await entra.trustInThisProcess();
const cache = new DistributedTokenCache({ store: new Keyv(), lockStore: new MemoryLockStore() });
const instances = [0, 1].map(() => new DistributedClientApplication(entra.msalConfig(), { cache }));
try {
  const pkce = await new CryptoProvider().generatePkceCodes();
  const url = await instances[0].getAuthCodeUrl({ redirectUri, scopes, codeChallenge: pkce.challenge, codeChallengeMethod: 'S256' });
  const { code } = await entra.authorize(url);
  const request = { code, redirectUri, scopes, codeVerifier: pkce.verifier };
  const results = await Promise.all(instances.map((app) => app.acquireTokenByCode(request)));
  const silent = await instances[1].acquireTokenSilent({ homeAccountId: results[0].account.homeAccountId, scopes });
  const wrongVerifier = await instances[0].acquireTokenByCode({ ...request, codeVerifier: `${pkce.verifier}x` }).catch((error) => error);
  console.log(
    JSON.stringify({
      resolved: import.meta.resolve('msal-distributed-cache'),
      resolvedTesting: import.meta.resolve('msal-distributed-cache/testing'),
      gotTokens: results.map((result) => typeof result.accessToken === 'string' && result.accessToken.length > 0),
      sameAccount: results[0].account.homeAccountId === results[1].account.homeAccountId,
      codeTokenCalls: entra.tokenCallCount({ grantType: 'authorization_code' }),
      silentFromCache: silent.fromCache,
      wrongVerifier: {
        name: wrongVerifier.name,
        code: wrongVerifier.code,
        isCodeAlreadyRedeemedError: wrongVerifier instanceof CodeAlreadyRedeemedError,
        isLibraryError: wrongVerifier instanceof MsalDistributedCacheError,
      },
    }),
  );
} finally {
  await Promise.all(instances.map((app) => app.close()));
  await cache.close();
  await entra.close();
}
