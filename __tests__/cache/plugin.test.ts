// Plain msal-node, plugin style: apps that build their own ConfidentialClientApplication per request.
import { randomUUID } from 'node:crypto';
import Keyv from 'keyv';
import KeyvRedis from '@keyv/redis';
import { ConfidentialClientApplication } from '@azure/msal-node';
import { DistributedTokenCache, PartitionKey, PartitionMismatchError } from '../../src';
import { addRandomUser, startFakeEntraId } from '../helpers/entra';
import type { FakeEntraId, FakeUser } from '../../src/testing';

const redirectUri = 'https://app.example.test/auth/callback';
const scopes = ['User.Read'];

describe('DistributedTokenCache.plugin() with a plain ConfidentialClientApplication', () => {
  let entra: FakeEntraId;
  let cache: DistributedTokenCache;
  beforeAll(async () => {
    entra = await startFakeEntraId();
  });
  afterAll(() => entra.close());
  beforeEach(() => {
    cache = new DistributedTokenCache({
      store: new Keyv({ store: new KeyvRedis(process.env.REDIS_URL!) }),
      keyPrefix: `plugin-${randomUUID()}:`,
    });
  });
  afterEach(() => cache.close());

  const clientWith = (partitionKey?: string | PartitionKey) =>
    new ConfidentialClientApplication({ ...entra.msalConfig(), cache: { cachePlugin: cache.plugin(partitionKey) } });
  const newUser = (): FakeUser => addRandomUser(entra, 'Plugin User');

  it('a client per request: redeem with the keyless plugin, then silent calls from a client bound to the account', async () => {
    const user = newUser();
    const signIn = await clientWith().acquireTokenByCode({ code: entra.mintCode({ redirectUri, user }), redirectUri, scopes });
    const homeAccountId = signIn.account!.homeAccountId;
    const callsBefore = entra.tokenCallCount();
    const client = clientWith(homeAccountId);
    const account = await client.getTokenCache().getAccountByHomeId(homeAccountId);
    const silent = await client.acquireTokenSilent({ account: account!, scopes });
    expect(silent.accessToken).toBe(signIn.accessToken);
    expect(entra.tokenCallCount()).toBe(callsBefore);
  });

  it("refuses to write another account's tokens into a bound partition, and writes nothing", async () => {
    const owner = newUser();
    const intruder = newUser();
    const boundToOwner = clientWith(entra.homeAccountIdOf(owner));
    const attempt = boundToOwner.acquireTokenByCode({ code: entra.mintCode({ redirectUri, user: intruder }), redirectUri, scopes });
    await expect(attempt).rejects.toBeInstanceOf(PartitionMismatchError);
    await expect(attempt).rejects.toMatchObject({ code: 'ERR_PARTITION_MISMATCH' });
    expect(await clientWith(entra.homeAccountIdOf(owner)).getTokenCache().getAllAccounts()).toEqual([]);
    expect(await clientWith(entra.homeAccountIdOf(intruder)).getTokenCache().getAllAccounts()).toEqual([]);
  });

  it('app tokens (client credentials) live in the app partition', async () => {
    const partition = PartitionKey.forApp(entra.msalConfig().auth.clientId, entra.tenantId);
    const first = await clientWith(partition).acquireTokenByClientCredential({ scopes: ['https://graph.example.test/.default'] });
    const callsBefore = entra.tokenCallCount();
    const second = await clientWith(partition).acquireTokenByClientCredential({ scopes: ['https://graph.example.test/.default'] });
    expect(second!.accessToken).toBe(first!.accessToken);
    expect(entra.tokenCallCount()).toBe(callsBefore);
  });

  it('never accepts an empty partition key', () => {
    expect(() => cache.plugin('')).toThrow(expect.objectContaining({ name: 'InvalidArgumentError', code: 'ERR_INVALID_ARG_VALUE' }));
  });
});
