// `npm start` (the demo) really shows the problem and the fix: run it as a user would.
import { runTypeScript } from '../helpers/processes';
import { join } from 'node:path';
import { PostgresServer } from '../../src/testing';

const demo = join(__dirname, '..', '..', 'demo', 'main.ts');

interface SideSummary {
  callbacks: number;
  tokenEndpointCalls: number;
  aadsts54005: number;
  successes: number;
}

describe('npm start (demo)', () => {
  it.each([
    ['embedded (in-memory stores, one process)', []],
    ['--redis (one OS process per instance)', ['--redis', process.env.REDIS_URL!]],
  ])('%s: ours makes one token call per sign-in and answers every duplicate; plain MSAL gets AADSTS54005', async (_mode, extra) => {
    const users = 10;
    const { code, stdout, stderr } = await runTypeScript(demo, ['--json', '--users', String(users), '--latency', '20', ...extra]);
    expect({ code, stderr: code === 0 ? '' : stderr }).toEqual({ code: 0, stderr: '' });
    const { results } = JSON.parse(stdout) as { results: { ours: SideSummary; plain: SideSummary } };
    expect(results.ours).toMatchObject({ tokenEndpointCalls: users, aadsts54005: 0, successes: results.ours.callbacks });
    expect(results.plain.tokenEndpointCalls).toBe(results.plain.callbacks);
    expect(results.plain.aadsts54005).toBe(results.plain.callbacks - users);
    expect(results.plain.successes).toBe(users);
  });

  it('--postgres (one OS process per instance, both stores on PostgreSQL, no Redis): one token call per sign-in, every duplicate answered', async () => {
    const postgres = await PostgresServer.start();
    try {
      const users = 10;
      // No REDIS_URL in the demo's environment: nothing there can reach the Redis of the test run.
      const { code, stdout, stderr } = await runTypeScript(
        demo,
        ['--json', '--users', String(users), '--latency', '20', '--postgres', postgres.url],
        { REDIS_URL: undefined },
      );
      expect({ code, stderr: code === 0 ? '' : stderr }).toEqual({ code: 0, stderr: '' });
      const { mode, results } = JSON.parse(stdout) as { mode: string; results: { ours: SideSummary; plain: SideSummary } };
      expect(mode).toBe('postgres');
      expect(results.ours).toMatchObject({ tokenEndpointCalls: users, aadsts54005: 0, successes: results.ours.callbacks });
      expect(results.plain.aadsts54005).toBe(results.plain.callbacks - users);
    } finally {
      await postgres.stop();
    }
  });

  it('refuses --postgres with a URL that is not one, naming the flag', async () => {
    const { code, stderr } = await runTypeScript(demo, ['--postgres', 'localhost:5432']);
    expect(code).toBe(2);
    expect(stderr).toContain('--postgres must be a postgres:// or postgresql:// URL');
  });

  it('refuses an unknown flag with a usage message and exit code 2', async () => {
    const { code, stderr } = await runTypeScript(demo, ['--bogus']);
    expect(code).toBe(2);
    expect(stderr).toContain('Usage: npm start -- [options]');
  });

  it('refuses a malformed value, naming the flag', async () => {
    const { code, stderr } = await runTypeScript(demo, ['--users', 'many']);
    expect(code).toBe(2);
    expect(stderr).toContain('--users must be an integer');
  });
});
