// Jest's node environment, plus trust in the run's test CA for the global fetch that MSAL uses.
// The dispatcher must be set here, in the worker's own realm: a test file's sandbox has its own
// globalThis, which Node's built-in fetch never reads. (Child processes get NODE_EXTRA_CA_CERTS.)
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { rootCertificates } from 'node:tls';
import { TestEnvironment } from 'jest-environment-node';
import { Agent, setGlobalDispatcher } from 'undici';

export default class TestCaEnvironment extends TestEnvironment {
  override async setup(): Promise<void> {
    await super.setup();
    const caDirectory = process.env.MDC_TEST_CA_DIR;
    if (caDirectory) {
      setGlobalDispatcher(new Agent({ connect: { ca: [...rootCertificates, readFileSync(join(caDirectory, 'ca.pem'), 'utf8')] } }));
    }
  }
}
