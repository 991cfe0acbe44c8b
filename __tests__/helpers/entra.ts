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

/** Something a test made that must be closed or stopped after it. */
export type Cleanup = () => Promise<unknown> | void;

/**
 * The scaffold of a describe block whose tests each get their own fake Entra ID: registers a
 * beforeEach that starts one and an afterEach that runs the test's cleanups, last pushed first and
 * one at a time, then closes it. Call it in the describe body.
 */
export function useFakeEntraId(options: FakeEntraIdOptions = {}): {
  /** The current test's fake Entra ID. */
  entra: () => FakeEntraId;
  /** The current test's cleanups: what is pushed runs after the test, before the fake closes. */
  cleanups: { push: (...cleanups: Cleanup[]) => void };
} {
  let entra: FakeEntraId | undefined;
  let cleanups: Cleanup[] = [];
  beforeEach(async () => {
    entra = await startFakeEntraId(options);
    cleanups = [];
  });
  afterEach(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
    await entra?.close();
  });
  return {
    entra: () => {
      if (!entra) throw new Error('useFakeEntraId: the fake Entra ID starts in beforeEach; call entra() inside a test');
      return entra;
    },
    cleanups: { push: (...added) => void cleanups.push(...added) },
  };
}
