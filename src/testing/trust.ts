/**
 * Making this process's global `fetch` (which MSAL uses) trust a test CA, without turning TLS
 * checks off. Child processes are simpler: start them with `NODE_EXTRA_CA_CERTS=<ca file>`.
 */
import { rootCertificates } from 'node:tls';

const trusted = new Set<string>();

/**
 * Adds `caCertPem` to the CAs that the global `fetch` trusts in this process, by installing an
 * undici dispatcher (the optional peer dependency `undici`, major 6 on Node 20) that keeps the
 * system roots. MSAL's own HTTP client stays in the path.
 *
 * @param caCertPem - the CA certificate, PEM
 * @throws Error when `undici` is not installed; set `NODE_EXTRA_CA_CERTS` instead
 */
export async function trustCertificateAuthority(caCertPem: string): Promise<void> {
  if (trusted.has(caCertPem)) return;
  let undici: Pick<typeof import('undici'), 'Agent' | 'setGlobalDispatcher'>;
  try {
    const { Agent, setGlobalDispatcher } = await import('undici');
    undici = { Agent, setGlobalDispatcher };
  } catch (cause) {
    throw new Error(
      'trustCertificateAuthority needs the "undici" package (npm i -D undici@6); or start node with NODE_EXTRA_CA_CERTS=<ca file>',
      { cause },
    );
  }
  trusted.add(caCertPem);
  undici.setGlobalDispatcher(new undici.Agent({ connect: { ca: [...rootCertificates, ...trusted] } }));
}
