// Write-then-read rounds between two app instances in their own OS processes, for the L1's
// coherence claim: once a write on one process has resolved (a forced refresh, removeAccount, a
// sign-in again), the other never reads the older version. The parent relays "the write resolved"
// to the reader (IPC through the parent, as a load balancer or a user would).
import type { FakeEntraId, FakeUser } from '../../src/testing';
import type { AppInstanceProcess, CallResult } from './app-instance-process';
import { addRandomUser } from './entra';

const redirectUri = 'https://app.example.test/auth/callback';
export const coherenceScopes = ['User.Read'];

interface TokenSummary {
  accessToken: string;
  fromCache: boolean;
}

/** The value of a call that succeeded; throws with the error of one that failed. */
export function valueOf<T>(result: CallResult): T {
  if (!result.ok) throw new Error(`call failed: ${JSON.stringify(result.error)}`);
  return result.value as T;
}

/** Signs `user` in on `instance` and returns the access token it got. */
export async function signInOn(entra: FakeEntraId, instance: AppInstanceProcess, user: FakeUser): Promise<string> {
  const result = await instance.call('signIn', { code: entra.mintCode({ redirectUri, user }), redirectUri, scopes: coherenceScopes });
  return valueOf<TokenSummary>(result).accessToken;
}

/** What `reader` serves for the account now, from its cache: its access token, or null when it has no account. */
export async function readOn(reader: AppInstanceProcess, homeAccountId: string): Promise<string | null> {
  const result = await reader.call('silent', { homeAccountId, scopes: coherenceScopes });
  if (!result.ok && result.error?.errorCode === 'no_account_in_cache') return null;
  const token = valueOf<TokenSummary>(result);
  if (!token.fromCache) throw new Error('a silent read went to Entra ID');
  return token.accessToken;
}

export interface RoundsOptions {
  /** Users at once, each with its own partition. */
  users: number;
  /** Rounds per user; the two processes take turns writing. */
  roundsEach: number;
  /** Every this many rounds the write is a removeAccount (then a sign-in again), else a forced refresh. */
  removeEvery: number;
}

/**
 * Runs the rounds: the reader reads (so it holds the current version), the writer writes, and once
 * that has resolved the reader reads again. Returns what the reader read wrong (empty: coherent).
 */
export async function writeThenReadRounds(
  entra: FakeEntraId,
  instances: readonly [AppInstanceProcess, AppInstanceProcess],
  options: RoundsOptions,
): Promise<string[]> {
  const mismatches: string[] = [];
  async function rounds(user: FakeUser, index: number): Promise<void> {
    const homeAccountId = entra.homeAccountIdOf(user);
    let current: string | null = await signInOn(entra, instances[index % 2]!, user);
    for (let round = 0; round < options.roundsEach; round++) {
      const writer = instances[(index + round) % 2]!;
      const reader = instances[(index + round + 1) % 2]!;
      if ((await readOn(reader, homeAccountId)) !== current) mismatches.push(`user ${index} round ${round}: before the write`);
      if (current === null) {
        current = await signInOn(entra, writer, user);
      } else if (round % options.removeEvery === options.removeEvery - 1) {
        if (!valueOf<{ removed: boolean }>(await writer.call('remove', { homeAccountId })).removed) throw new Error('nothing removed');
        current = null;
      } else {
        const refreshed = valueOf<TokenSummary>(
          await writer.call('silent', { homeAccountId, scopes: coherenceScopes, forceRefresh: true }),
        );
        if (refreshed.accessToken === current) throw new Error('a forced refresh returned the same token');
        current = refreshed.accessToken;
      }
      // The write resolved on the writer; now the reader:
      const after = await readOn(reader, homeAccountId);
      if (after !== current) mismatches.push(`user ${index} round ${round}: read ${after === null ? 'no account' : 'an older token'}`);
    }
  }
  await Promise.all(Array.from({ length: options.users }, (_, index) => rounds(addRandomUser(entra, 'L1 Coherence'), index)));
  return mismatches;
}

/** How many reads each instance answered from its L1. */
export async function l1HitsOf(instances: readonly AppInstanceProcess[]): Promise<number[]> {
  return Promise.all(instances.map(async (instance) => valueOf<{ l1Hits: number }>(await instance.call('readStats', {})).l1Hits));
}
