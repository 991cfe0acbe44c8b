// Headless Chromium (Debian's /usr/bin/chromium, which .ci/run installs) driven by playwright-core,
// trusting the fake Entra ID's certificate without turning TLS verification off.
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { connect } from 'node:tls';
import { chromium } from 'playwright-core';
import type { Browser } from 'playwright-core';

const CHROMIUM = '/usr/bin/chromium';

const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/**
 * Base64 SHA-256 of the SubjectPublicKeyInfo of the certificate that the HTTPS server at `origin`
 * presents, read over a TLS connection that Node verifies against `caCertPem` (so what is pinned
 * is a certificate the test CA really issued).
 */
export function spkiSha256(origin: string, caCertPem: string): Promise<string> {
  const { hostname, port } = new URL(origin);
  return new Promise((resolve, reject) => {
    const socket = connect({ host: hostname, port: Number(port), ca: caCertPem }, () => {
      const spki = socket.getPeerX509Certificate()!.publicKey.export({ type: 'spki', format: 'der' });
      socket.end();
      resolve(createHash('sha256').update(spki).digest('base64'));
    });
    socket.once('error', reject);
  });
}

/**
 * Launches headless Chromium with a new, empty profile (Playwright's temporary user-data dir)
 * that accepts the certificates of `trusted` HTTPS servers.
 *
 * Chromium has no flag to add a root CA: on Linux it reads extra roots from an NSS database
 * under $HOME/.pki/nssdb, which needs `certutil` (libnss3-tools, not installed here) and a HOME
 * per test. `--ignore-certificate-errors-spki-list` instead accepts exactly the listed public
 * keys, matched against the certificates the server sends; every other certificate stays fully
 * verified (without it, the fake's pages fail with ERR_CERT_AUTHORITY_INVALID). The fake sends
 * only its leaf certificate, so the leaf's key is pinned, not the CA's. Not `ignoreHTTPSErrors`,
 * which accepts any certificate.
 */
export async function launchChromium(trusted: { origin: string; caCertPem: string }[]): Promise<Browser> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} not found: the browser tests need Debian's chromium (apt-get install chromium; bash .ci/run installs it)`);
  }
  const pins = await Promise.all(trusted.map(({ origin, caCertPem }) => spkiSha256(origin, caCertPem)));
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [...CHROMIUM_ARGS, ...(pins.length > 0 ? [`--ignore-certificate-errors-spki-list=${pins.join(',')}`] : [])],
  });
}
