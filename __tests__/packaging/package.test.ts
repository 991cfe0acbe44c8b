// The package as npm publishes it: `npm pack` (prepack builds dist/), installed into a new project
// outside the repository, used from ESM and CommonJS, type-checked in both modes, and linted with
// publint and @arethetypeswrong/cli. One pack and one install, shared by every test.
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { assertSucceeded, lintProblems, lintTarball, npm, packInto, repoRoot, run } from './pack';
import type { Packed } from './pack';

const PACKAGE = 'msal-distributed-cache';
const consumerSources = join(__dirname, 'consumer');

/** The version of a devDependency installed in the repository: what our own tests run against. */
const installedVersion = (name: string): string =>
  (JSON.parse(readFileSync(join(repoRoot, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;

/** This process's environment without what jest's global setup and `npm test` add to it. */
function consumerEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const name of Object.keys(env)) {
    if (/^npm_(package|lifecycle)_/i.test(name) || ['NODE_EXTRA_CA_CERTS', 'MDC_TEST_CA_DIR', 'REDIS_URL'].includes(name)) delete env[name];
  }
  return env;
}

interface SignInSummary {
  resolved: string;
  resolvedTesting: string;
  gotTokens: boolean[];
  sameAccount: boolean;
  codeTokenCalls: number;
  silentFromCache: boolean;
  wrongVerifier: { name: string; code: string; isCodeAlreadyRedeemedError: boolean; isLibraryError: boolean };
  deepImport?: string;
}

describe('the packed package, installed in a fresh project', () => {
  let work: string;
  let packed: Packed;
  let project: string;
  let installed: string;

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), `${PACKAGE}-packaging-`));
    const packDirectory = join(work, 'pack');
    project = join(work, 'consumer');
    mkdirSync(packDirectory);
    mkdirSync(project);
    packed = await packInto(packDirectory);

    // types.mts.fixture → types.mts (see there why the suffix).
    for (const file of readdirSync(consumerSources))
      copyFileSync(join(consumerSources, file), join(project, file.replace(/\.fixture$/, '')));
    writeFileSync(join(project, 'package.json'), `${JSON.stringify({ name: 'consumer', version: '0.0.0', private: true }, null, 2)}\n`);
    writeFileSync(
      join(project, 'tsconfig.json'),
      JSON.stringify({
        // What a strict Node project uses; skipLibCheck off so that our .d.ts/.d.mts are checked too.
        compilerOptions: {
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          target: 'ES2022',
          strict: true,
          noEmit: true,
          skipLibCheck: false,
        },
        files: ['types.mts', 'types.cts'],
      }),
    );
    const dependencies = ['@azure/msal-node', 'keyv', 'undici', '@types/node'].map((name) => `${name}@${installedVersion(name)}`);
    assertSucceeded(
      'npm install',
      await run(npm.command, ['install', '--no-audit', '--no-fund', '--prefer-offline', packed.tarball, ...dependencies], {
        cwd: project,
        env: consumerEnv(),
        shell: npm.shell,
      }),
    );
    installed = join(project, 'node_modules', PACKAGE);
  }, 300_000);

  afterAll(() => {
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('holds dist, the SQL migration, README, CHANGELOG, LICENSE and package.json, and nothing else', () => {
    const paths = packed.files.map((file) => file.path).sort();
    for (const path of paths) {
      expect(path).toMatch(
        /^(dist\/(index|testing)\.(js|mjs|d\.ts|d\.mts|js\.map|mjs\.map)|sql\/postgres-lock-store\.sql|README\.md|CHANGELOG\.md|LICENSE|package\.json)$/,
      );
    }
    expect(paths).toEqual(expect.arrayContaining(['CHANGELOG.md', 'LICENSE', 'README.md', 'package.json', 'sql/postgres-lock-store.sql']));

    // Every file that package.json points at is in the tarball.
    const manifest = JSON.parse(readFileSync(join(installed, 'package.json'), 'utf8')) as Record<string, unknown>;
    const targets = new Set<string>();
    const collect = (value: unknown): void => {
      if (typeof value === 'string') targets.add(value.replace(/^\.\//, ''));
      else if (Array.isArray(value)) value.forEach(collect);
      else if (value && typeof value === 'object') Object.values(value).forEach(collect);
    };
    collect([manifest.main, manifest.module, manifest.types, manifest.exports, manifest.typesVersions]);
    expect([...targets].filter((target) => !paths.includes(target))).toEqual([]);
    expect(targets.size).toBeGreaterThanOrEqual(9);
  });

  it('ships source maps that stand alone: every source embedded, none of node_modules bundled', () => {
    const scripts = packed.files.map((file) => file.path).filter((path) => /^dist\/.*\.m?js$/.test(path));
    expect(scripts).toHaveLength(4);
    for (const script of scripts) {
      const code = readFileSync(join(installed, script), 'utf8');
      const mapName = /\/\/# sourceMappingURL=(\S+)\s*$/.exec(code)?.[1];
      expect(`dist/${mapName}`).toBe(`${script}.map`);
      const map = JSON.parse(readFileSync(join(installed, `${script}.map`), 'utf8')) as { sources: string[]; sourcesContent?: unknown[] };
      expect(map.sources.length).toBeGreaterThan(0);
      expect(map.sourcesContent).toHaveLength(map.sources.length);
      expect(map.sourcesContent!.every((content) => typeof content === 'string' && content.length > 0)).toBe(true);
      expect(map.sources.filter((source) => !source.startsWith('../src/'))).toEqual([]);
    }
  });

  it.each([
    ['ESM (import)', 'sign-in.mjs', /\/node_modules\/msal-distributed-cache\/dist\/index\.mjs$/, /\/dist\/testing\.mjs$/],
    ['CommonJS (require)', 'sign-in.cjs', /\/node_modules\/msal-distributed-cache\/dist\/index\.js$/, /\/dist\/testing\.js$/],
  ])(
    'works from %s: two instances redeem one code with one token call',
    async (_mode, program, entry, testingEntry) => {
      const result = assertSucceeded(
        program,
        await run(process.execPath, [program], { cwd: project, env: consumerEnv(), timeoutMs: 30_000 }),
      );
      const summary = JSON.parse(result.stdout) as SignInSummary;
      // The installed copy, never the repository's sources or dist/.
      expect(summary.resolved).toMatch(entry);
      expect(summary.resolvedTesting).toMatch(testingEntry);
      expect(summary.resolved).not.toContain(repoRoot);
      expect(summary).toMatchObject({
        gotTokens: [true, true],
        sameAccount: true,
        codeTokenCalls: 1,
        silentFromCache: true,
        wrongVerifier: {
          name: 'CodeAlreadyRedeemedError',
          code: 'ERR_CODE_ALREADY_REDEEMED',
          isCodeAlreadyRedeemedError: true,
          isLibraryError: true,
        },
      });
      if (program.endsWith('.cjs')) expect(summary.deepImport).toBe('ERR_PACKAGE_PATH_NOT_EXPORTED');
    },
    60_000,
  );

  it.each([
    ['ESM (import)', 'lock-store-contract.mjs'],
    ['CommonJS (require)', 'lock-store-contract.cjs'],
  ])(
    'runs the exported lock-store contract from %s under node:test, without jest, and MemoryLockStore passes it',
    async (_mode, program) => {
      const result = assertSucceeded(
        program,
        await run(process.execPath, ['--test-reporter=tap', program], { cwd: project, env: consumerEnv(), timeoutMs: 60_000 }),
      );
      // Every test ran and passed: among them, the ones that check LockTimeoutError and ClosedError
      // with instanceof, which only pass when the contract sees the classes the store throws.
      expect(result.stdout).toMatch(/^# tests 15$/m);
      expect(result.stdout).toMatch(/^# pass 15$/m);
      expect(result.stdout).toMatch(/^# fail 0$/m);
      expect(result.stdout).toContain('acquire gives up with LockTimeoutError');
    },
    60_000,
  );

  it('type-checks from ESM (.mts) and CommonJS (.cts) under NodeNext, strict, each with its own declarations', async () => {
    const tsc = join(repoRoot, 'node_modules', 'typescript', 'bin', 'tsc');
    const result = assertSucceeded(
      'tsc',
      await run(process.execPath, [tsc, '-p', 'tsconfig.json', '--listFiles'], { cwd: project, timeoutMs: 60_000 }),
    );
    const ours = result.stdout
      .split(/\r?\n/)
      .filter((file) => file.includes(`/node_modules/${PACKAGE}/`))
      .map((file) => file.slice(file.indexOf(`/node_modules/${PACKAGE}/`) + `/node_modules/${PACKAGE}/`.length))
      .sort();
    // import → .d.mts, require → .d.ts; the @ts-expect-error lines in types.*ts prove they are not `any`.
    expect(ours).toEqual(['dist/index.d.mts', 'dist/index.d.ts', 'dist/testing.d.mts', 'dist/testing.d.ts']);
  }, 60_000);

  it('publishes types that name no internal member: no @internal, no TypeScript private member (ES #private only)', () => {
    for (const file of ['index.d.ts', 'testing.d.ts']) {
      const types = readFileSync(join(installed, 'dist', file), 'utf8');
      const internals = types
        .split(/\r?\n/)
        .filter((line) => /@internal\b/.test(line) || /^\s+(private|protected)\b(?! constructor\()/.test(line))
        .map((line) => `${file}: ${line.trim()}`);
      expect(internals).toEqual([]);
    }
  });

  it('passes publint (strict, not even a suggestion) and attw (node10, node16 CJS and ESM, bundler)', async () => {
    const results = await lintTarball(packed.tarball);
    expect(lintProblems(results)).toEqual([]);
  }, 60_000);
});
