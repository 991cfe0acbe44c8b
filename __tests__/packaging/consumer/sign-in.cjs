// The same app from CommonJS (require), plus what a CommonJS consumer may not reach.
const { CryptoProvider } = require('@azure/msal-node');
const { default: Keyv } = require('keyv');
const {
  CodeAlreadyRedeemedError,
  DistributedClientApplication,
  DistributedTokenCache,
  MemoryLockStore,
  MsalDistributedCacheError,
} = require('msal-distributed-cache');
const { FakeEntraId } = require('msal-distributed-cache/testing');

const redirectUri = 'https://app.example.test/auth/callback';
const scopes = ['User.Read'];

async function main() {
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
    let deepImport;
    try {
      require('msal-distributed-cache/dist/index.js');
      deepImport = 'allowed';
    } catch (error) {
      deepImport = error.code;
    }
    console.log(
      JSON.stringify({
        resolved: require.resolve('msal-distributed-cache'),
        resolvedTesting: require.resolve('msal-distributed-cache/testing'),
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
        deepImport,
      }),
    );
  } finally {
    await Promise.all(instances.map((app) => app.close()));
    await cache.close();
    await entra.close();
  }
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
