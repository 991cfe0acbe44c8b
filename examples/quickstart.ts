// `npm start`: the problem this library solves, in one run against the fake Entra ID.
// A plain ConfidentialClientApplication redeems one authorization code twice (a browser refresh
// on the callback): the first call gets tokens, the second AADSTS54005.
import { ConfidentialClientApplication, ServerError } from '@azure/msal-node';
import { FakeEntraId } from '../src/testing';

async function main(): Promise<void> {
  const entra = await FakeEntraId.start();
  await entra.trustInThisProcess();
  const redirectUri = 'https://app.example.test/auth/callback';
  try {
    const app = new ConfidentialClientApplication(entra.msalConfig());
    const { code } = await entra.authorize(await app.getAuthCodeUrl({ redirectUri, scopes: ['User.Read'] }));
    const first = await app.acquireTokenByCode({ code, redirectUri, scopes: ['User.Read'] });
    console.log(`1st redemption: tokens for ${first.account?.username}`);
    try {
      await app.acquireTokenByCode({ code, redirectUri, scopes: ['User.Read'] });
      console.log('2nd redemption: tokens (unexpected)');
    } catch (error) {
      const text = error instanceof ServerError ? error.errorMessage.split(' Trace ID')[0] : String(error);
      console.log(`2nd redemption of the same code: ${text}`);
    }
    console.log(`token-endpoint calls for this code: ${entra.tokenCallCount({ code })}`);
  } finally {
    await entra.close();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
