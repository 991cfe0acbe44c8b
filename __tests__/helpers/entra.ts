// The fake Entra ID, signed by the test run's CA so in-process MSAL and child processes trust it.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { CryptoProvider } from '@azure/msal-node';
import { FakeEntraId } from '../../src/testing';
import type { FakeEntraIdOptions, FakeUser } from '../../src/testing';

export function testCertificateAuthority(): { certPem: string; keyPem: string } {
  const directory = process.env.MDC_TEST_CA_DIR;
  if (!directory) throw new Error('MDC_TEST_CA_DIR is not set: run the tests through jest (global setup)');
  return { certPem: readFileSync(join(directory, 'ca.pem'), 'utf8'), keyPem: readFileSync(join(directory, 'ca-key.pem'), 'utf8') };
}

export function startFakeEntraId(options: FakeEntraIdOptions = {}): Promise<FakeEntraId> {
  return FakeEntraId.start({ certificateAuthority: testCertificateAuthority(), ...options });
}

/** Registers a new user with a random object id. */
export function addRandomUser(entra: FakeEntraId, name = 'Test User'): FakeUser {
  const user = { oid: randomUUID(), name, username: `${randomUUID().slice(0, 8)}@example.test` };
  entra.addUser(user);
  return user;
}

/** A new user and a PKCE (S256) code issued to them, with its verifier. */
export async function newPkceSignIn(
  entra: FakeEntraId,
  redirectUri: string,
  name?: string,
): Promise<{ user: FakeUser; code: string; verifier: string }> {
  const user = addRandomUser(entra, name);
  const pkce = await new CryptoProvider().generatePkceCodes();
  return {
    user,
    code: entra.mintCode({ redirectUri, user, codeChallenge: pkce.challenge, codeChallengeMethod: 'S256' }),
    verifier: pkce.verifier,
  };
}
