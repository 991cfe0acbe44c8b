// What every benchmark shares: the fake Entra ID (in this process), Redis, a key prefix of its own,
// the CA file that child processes trust, and helpers to mint sign-ins.
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type { FakeEntraId, FakeUser } from '../../src/testing';

export const REDIRECT_URI = 'https://app.bench.test/auth/callback';
export const SCOPES = ['User.Read'];

export interface BenchContext {
  /** `--quick`: fewer iterations, smaller sizes. */
  quick: boolean;
  entra: FakeEntraId;
  redisUrl: string;
  /** Prefix of every Redis key this bench run writes (unique per run). */
  keyPrefix: string;
  /** A file holding `entra.caCertPem`, for NODE_EXTRA_CA_CERTS in child processes. */
  caFile: string;
  /** Progress output (stderr), so stdout keeps only the tables. */
  log(message: string): void;
}

/** One sign-in: a fresh user and a PKCE (S256) code minted for them. */
export interface SignIn {
  code: string;
  codeVerifier: string;
  homeAccountId: string;
}

export function newUser(name = 'Bench User'): FakeUser {
  const oid = randomUUID();
  return { oid, name, username: `${oid.slice(0, 13)}@bench.test` };
}

/** Mints a code as /authorize would (the fake's users list is not touched: nothing grows per user there). */
export function mintSignIn(entra: FakeEntraId, user: FakeUser = newUser()): SignIn {
  const codeVerifier = randomBytes(32).toString('base64url');
  const codeChallenge = createHash('sha256').update(codeVerifier).digest('base64url');
  const code = entra.mintCode({ redirectUri: REDIRECT_URI, user, codeChallenge, codeChallengeMethod: 'S256' });
  return { code, codeVerifier, homeAccountId: entra.homeAccountIdOf(user) };
}

/** The `acquireTokenByCode` request for a sign-in. */
export function codeRequest(signIn: SignIn): { code: string; codeVerifier: string; redirectUri: string; scopes: string[] } {
  return { code: signIn.code, codeVerifier: signIn.codeVerifier, redirectUri: REDIRECT_URI, scopes: SCOPES };
}

/** Environment of a bench worker process. */
export function workerEnv(context: BenchContext, keyPrefix: string): NodeJS.ProcessEnv {
  const { auth } = context.entra.msalConfig();
  return {
    NODE_EXTRA_CA_CERTS: context.caFile,
    REDIS_URL: context.redisUrl,
    KEY_PREFIX: keyPrefix,
    AUTHORITY: auth.authority,
    CLIENT_ID: auth.clientId,
    CLIENT_SECRET: auth.clientSecret,
    KNOWN_AUTHORITY: context.entra.host,
  };
}
