// The five real reasons a web app redeems one authorization code twice, as callback traffic.
import { CryptoProvider } from '@azure/msal-node';
import type { FakeEntraId } from '../src/testing';
import type { AttemptResult, Side } from './attempt';
import type { Instances } from './instances';

export const CAUSES = {
  'retry-after-timeout': 'client retries the token request after its own timeout, same code',
  'browser-refresh': 'the user refreshes the callback page after signing in',
  'load-balancer-resend': 'a proxy sends the callback to every instance at once',
  're-redeem-later': 'app logic redeems the code again on a later request, elsewhere',
  'racing-workers': 'several workers race on the same callback',
} as const;
export type Cause = keyof typeof CAUSES;

export interface SignInRecord {
  cause: Cause;
  code: string;
  attempts: AttemptResult[];
}

const redirectUri = 'https://app.example.test/auth/callback';
const scopes = ['User.Read'];
const RETRY_AFTER_MS = 30; // shorter than the token endpoint's latency: the first call is still running

/**
 * Signs `users` users in through `side`'s instances and fires duplicate callbacks, one cause per
 * user in turn. Returns every attempt with its outcome.
 */
export async function runTraffic(
  side: Side,
  instances: Instances,
  entra: FakeEntraId,
  users: number,
  onProgress: (done: number) => void,
): Promise<SignInRecord[]> {
  const causes = Object.keys(CAUSES) as Cause[];
  const records: SignInRecord[] = [];
  await Promise.all(
    Array.from({ length: users }, async (_, index) => {
      const cause = causes[index % causes.length]!;
      const user = entra.registeredUsers[index % entra.registeredUsers.length]!;
      const pkce = await new CryptoProvider().generatePkceCodes();
      const url = await instances.authCodeUrl(side, { redirectUri, scopes, codeChallenge: pkce.challenge, state: `s${index}` });
      const { code } = await entra.authorize(`${url}&login_hint=${encodeURIComponent(user.username)}`);
      const request = { code, redirectUri, scopes, codeVerifier: pkce.verifier };
      const home = index % instances.count;
      const other = (home + 1) % instances.count;
      const redeemOn = (instance: number) => instances.redeem(side, instance, request);
      let attempts: AttemptResult[];
      switch (cause) {
        case 'retry-after-timeout': {
          const first = redeemOn(home);
          await new Promise((resolve) => setTimeout(resolve, RETRY_AFTER_MS));
          attempts = await Promise.all([first, redeemOn(home)]);
          break;
        }
        case 'browser-refresh':
          attempts = [await redeemOn(home), await redeemOn(home)];
          break;
        case 'load-balancer-resend':
          attempts = await Promise.all(Array.from({ length: instances.count }, (_, instance) => redeemOn(instance)));
          break;
        case 're-redeem-later':
          attempts = [await redeemOn(home), await redeemOn(other)];
          break;
        case 'racing-workers':
          attempts = await Promise.all([redeemOn(home), redeemOn(other), redeemOn(home), redeemOn(other)]);
          break;
      }
      records.push({ cause, code, attempts });
      onProgress(records.length);
    }),
  );
  return records;
}
