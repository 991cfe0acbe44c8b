// Once per test run: a test CA that every fake Entra ID signs with (child processes trust it via
// NODE_EXTRA_CA_CERTS) and a real redis-server, unless REDIS_URL points at one.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTestCertificateAuthority, RedisServer } from '../../src/testing';

export default async function globalSetup(): Promise<void> {
  const directory = mkdtempSync(join(tmpdir(), 'msal-distributed-cache-test-'));
  const ca = createTestCertificateAuthority();
  writeFileSync(join(directory, 'ca.pem'), ca.certPem);
  writeFileSync(join(directory, 'ca-key.pem'), ca.keyPem, { mode: 0o600 });
  process.env.MDC_TEST_CA_DIR = directory;
  process.env.NODE_EXTRA_CA_CERTS = join(directory, 'ca.pem');
  if (!process.env.REDIS_URL) {
    const redis = await RedisServer.start();
    (globalThis as { testRedis?: RedisServer }).testRedis = redis;
    process.env.REDIS_URL = redis.url;
  }
}
