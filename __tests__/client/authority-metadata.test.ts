// The authority-metadata cache against the fake Entra ID's real OpenID configuration endpoints:
// one fetch per authority, and the least recently used authority is the one dropped when full.
import { AuthorityMetadataCache } from '../../src/client/authority-metadata';
import { startFakeEntraId } from '../helpers/entra';
import type { FakeEntraId } from '../../src/testing';

describe('AuthorityMetadataCache', () => {
  let entra: FakeEntraId;
  beforeAll(async () => {
    entra = await startFakeEntraId();
  });
  afterAll(async () => {
    await entra.close();
  });

  it('fetches each authority once, and when full drops the least recently used one, not the oldest fetched', async () => {
    const [tenant, common, organizations] = [entra.authority, `${entra.origin}/common`, `${entra.origin}/organizations`];
    const cache = new AuthorityMetadataCache(undefined, 2);
    const fetches = (): number => entra.requestCount('openid-configuration');
    const before = fetches();

    expect(JSON.parse((await cache.get(tenant))!).token_endpoint).toContain(entra.tenantId);
    await cache.get(common);
    await cache.get(tenant); // a hit: the tenant's authority is now the most recently used
    expect(fetches() - before).toBe(2);

    await cache.get(organizations); // full: drops `common`, the least recently used
    expect(fetches() - before).toBe(3);
    await cache.get(tenant); // still cached
    expect(fetches() - before).toBe(3);
    await cache.get(common); // was dropped: fetched again
    expect(fetches() - before).toBe(4);
  });
});
