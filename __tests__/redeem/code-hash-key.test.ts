// Edge 2: the default codeHashKey is secret for every credential type. With a certificate it is
// derived from the private key, not from the thumbprint that every assertion's x5t publishes.
import { createHash, generateKeyPairSync } from 'node:crypto';
import { CryptoProvider } from '@azure/msal-node';
import type { Configuration } from '@azure/msal-node';
import { DistributedClientApplication, DistributedTokenCache, MemoryLockStore } from '../../src';
import type { Claim, ClaimOptions } from '../../src';
import { CodeHasher } from '../../src/redeem/code-hasher';
import type { FakeEntraId } from '../../src/testing';
import { startFakeEntraId } from '../helpers/entra';

const redirectUri = 'https://app.example.test/auth/callback';
const scopes = ['User.Read'];

/** A real MemoryLockStore that remembers which code hashes were claimed (the hashes leave the process only as keys). */
class ClaimRecordingLockStore extends MemoryLockStore {
  readonly claimed: string[] = [];
  override claim(key: string, options: ClaimOptions): Promise<Claim> {
    this.claimed.push(key);
    return super.claim(key, options);
  }
}

describe('the default codeHashKey (edge 2)', () => {
  let entra: FakeEntraId;
  beforeAll(async () => {
    entra = await startFakeEntraId();
  });
  afterAll(() => entra.close());

  /** The hash an app would give `code`, observed where it is used: the claim in the lock store. */
  async function codeHashOf(config: Configuration, code: string): Promise<string> {
    const lockStore = new ClaimRecordingLockStore();
    const cache = new DistributedTokenCache({ lockStore });
    const app = new DistributedClientApplication(config, { cache });
    const { verifier } = await new CryptoProvider().generatePkceCodes();
    // The fake Entra ID accepts only client secrets: the redemption fails after the claim, which is all we look at.
    await app.acquireTokenByCode({ code, redirectUri, scopes, codeVerifier: verifier }).catch(() => undefined);
    await app.close();
    await cache.close();
    expect(lockStore.claimed).toHaveLength(1);
    return lockStore.claimed[0]!;
  }

  it('with a certificate, two private keys behind one client id and thumbprint hash codes differently, and not as public data would', async () => {
    const { auth } = entra.msalConfig();
    const thumbprintSha256 = createHash('sha256').update('the certificate, as published in the app registration').digest('hex');
    const certificateConfig = (): Configuration => {
      const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
      const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
      const { clientSecret: _secret, ...withoutSecret } = auth;
      return { auth: { ...withoutSecret, clientCertificate: { thumbprintSha256, privateKey: pem } } };
    };
    const code = entra.mintCode({ redirectUri });
    const [first, second] = [await codeHashOf(certificateConfig(), code), await codeHashOf(certificateConfig(), code)];
    expect(first).not.toBe(second);
    // What anyone could compute from the client id and the thumbprint (the former default).
    const fromPublicData = new CodeHasher(`${auth.clientId}\u0000${thumbprintSha256}`).code(code);
    expect([first, second]).not.toContain(fromPublicData);
  });

  it('with a client secret, the hash is unchanged (instances upgrading one by one still agree)', async () => {
    const config = entra.msalConfig();
    const code = entra.mintCode({ redirectUri });
    expect(await codeHashOf(config, code)).toBe(new CodeHasher(`${config.auth.clientId}\u0000${config.auth.clientSecret}`).code(code));
  });

  it('with only a client assertion, a process warning says that codeHashKey must be set', async () => {
    const { auth } = entra.msalConfig();
    const { clientSecret: _secret, ...withoutSecret } = auth;
    const emitWarning = jest.spyOn(process, 'emitWarning'); // observed, still emitted
    const cache = new DistributedTokenCache();
    try {
      new DistributedClientApplication({ auth: { ...withoutSecret, clientAssertion: 'an.assertion.jwt' } }, { cache });
      new DistributedClientApplication({ auth: { ...withoutSecret, clientAssertion: 'an.assertion.jwt' } }, { cache });
      expect(emitWarning).toHaveBeenCalledTimes(1); // once per process
      expect(emitWarning).toHaveBeenCalledWith(expect.stringContaining('codeHashKey'), { code: 'MSAL_DC_NO_CODE_HASH_KEY' });
    } finally {
      emitWarning.mockRestore();
    }
    await cache.close();
  });
});
