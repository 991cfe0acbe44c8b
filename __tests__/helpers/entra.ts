// The fake Entra ID, signed by the test run's CA so in-process MSAL and child processes trust it.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { FakeEntraId } from '../../src/testing';
import type { FakeEntraIdOptions } from '../../src/testing';

export function testCertificateAuthority(): { certPem: string; keyPem: string } {
  const directory = process.env.MDC_TEST_CA_DIR;
  if (!directory) throw new Error('MDC_TEST_CA_DIR is not set: run the tests through jest (global setup)');
  return { certPem: readFileSync(join(directory, 'ca.pem'), 'utf8'), keyPem: readFileSync(join(directory, 'ca-key.pem'), 'utf8') };
}

export function startFakeEntraId(options: FakeEntraIdOptions = {}): Promise<FakeEntraId> {
  return FakeEntraId.start({ certificateAuthority: testCertificateAuthority(), ...options });
}
