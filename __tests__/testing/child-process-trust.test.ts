// Several app instances are several OS processes: they trust the fake through NODE_EXTRA_CA_CERTS.
import { startFakeEntraId } from '../helpers/entra';
import { fixture, runTypeScript } from '../helpers/processes';

it('a child process reaches the fake Entra ID over verified HTTPS with MSAL', async () => {
  const entra = await startFakeEntraId();
  try {
    const { auth } = entra.msalConfig();
    const { stdout, stderr } = await runTypeScript(fixture('client-credential-child.ts'), [
      entra.authority,
      auth.clientId,
      auth.clientSecret,
      entra.host,
    ]);
    expect({ result: JSON.parse(stdout || '{}'), stderr }).toMatchObject({ result: { ok: true, tokenType: 'Bearer' } });
    expect(entra.tokenCallCount({ grantType: 'client_credentials' })).toBe(1);
  } finally {
    await entra.close();
  }
});

it('without the test CA the same child is refused by TLS (the check is real)', async () => {
  const entra = await startFakeEntraId();
  try {
    const { auth } = entra.msalConfig();
    const { stdout } = await runTypeScript(
      fixture('client-credential-child.ts'),
      [entra.authority, auth.clientId, auth.clientSecret, entra.host],
      { NODE_EXTRA_CA_CERTS: '' },
    );
    expect(JSON.parse(stdout)).toMatchObject({ ok: false });
    expect(entra.tokenCallCount()).toBe(0);
  } finally {
    await entra.close();
  }
});
