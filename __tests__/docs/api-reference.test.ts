// docs/api (the Markdown API reference, committed so that it reads on GitHub) is what `npm run docs:api`
// generates from the TSDoc of src/ now, and TypeDoc generates it without a warning: every public
// export documented, every {@link} resolved (typedoc.json: treatWarningsAsErrors, validation).
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, sep } from 'node:path';

const root = join(__dirname, '..', '..');
const committed = join(root, 'docs', 'api');

function files(directory: string): Map<string, string> {
  const found = new Map<string, string>();
  const walk = (current: string): void => {
    let entries: import('node:fs').Dirent[];
    try {
      entries = readdirSync(current, { withFileTypes: true });
    } catch {
      return;
    }
    for (const entry of entries) {
      const path = join(current, entry.name);
      if (entry.isDirectory()) walk(path);
      else found.set(relative(directory, path).split(sep).join('/'), readFileSync(path, 'utf8'));
    }
  };
  walk(directory);
  return found;
}

function typedoc(out: string): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(root, 'node_modules', 'typedoc', 'bin', 'typedoc'), '--out', out, '--logLevel', 'Warn'], {
      cwd: root,
      env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, output }));
  });
}

test('docs/api is up to date with the TSDoc of src/, and TypeDoc has nothing to warn about', async () => {
  const out = mkdtempSync(join(tmpdir(), 'mdc-api-reference-'));
  try {
    const { code, output } = await typedoc(out);
    if (code !== 0 || /\[(warning|error)\]/.test(output)) {
      throw new Error(
        `TypeDoc (typedoc.json) failed with exit code ${code}: document what it names in src/ (TSDoc comments).\n\n${output}`,
      );
    }
    const generated = files(out);
    const current = files(committed);
    const changed = [...generated.keys()].filter((path) => current.has(path) && current.get(path) !== generated.get(path));
    const missing = [...generated.keys()].filter((path) => !current.has(path));
    const stale = [...current.keys()].filter((path) => !generated.has(path));
    const problems = [
      ...changed.map((path) => `changed: docs/api/${path}`),
      ...missing.map((path) => `missing: docs/api/${path}`),
      ...stale.map((path) => `no longer generated: docs/api/${path}`),
    ];
    if (problems.length > 0) {
      throw new Error(
        `docs/api is out of date with the TSDoc of src/: run \`npm run docs:api\` and commit docs/api.\n  ${problems.join('\n  ')}`,
      );
    }
    expect(generated.size).toBeGreaterThan(0);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});
