// The shape of src/, as docs/development.md ("Where things live") states it: imports go one way
// between folders, storage key names are built in one module, and files stay small enough to read
// (or say in their header why not).
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, sep } from 'node:path';

const SRC = join(__dirname, '..', '..', 'src');

/** Each folder (or top-level module) of src/, and what it may import. The order is the layering. */
const MAY_IMPORT: Record<string, string[]> = {
  client: ['redeem', 'flight', 'cache', 'telemetry', 'lock', 'crypto', 'internal', 'storage-keys', 'events', 'errors'],
  flight: ['lock', 'internal', 'storage-keys', 'events', 'errors'],
  redeem: ['lock', 'crypto', 'internal', 'storage-keys', 'events', 'errors'],
  cache: ['telemetry', 'lock', 'crypto', 'internal', 'storage-keys', 'events', 'errors'],
  telemetry: ['lock', 'internal', 'storage-keys', 'events', 'errors'],
  lock: ['internal', 'storage-keys', 'events', 'errors'],
  crypto: ['internal', 'errors'],
  internal: ['errors'],
  'storage-keys': [],
  events: ['errors'],
  errors: [],
};

function sourceFiles(directory: string): string[] {
  return readdirSync(directory).flatMap((name) => {
    const path = join(directory, name);
    if (statSync(path).isDirectory()) return sourceFiles(path);
    return name.endsWith('.ts') ? [path] : [];
  });
}

/** The part of src/ a file belongs to: its top folder, or its module name for a top-level file. */
function partOf(file: string): string {
  const [first] = relative(SRC, file).split(sep);
  return first!.replace(/\.ts$/, '');
}

const files = sourceFiles(SRC);

describe('src layout', () => {
  it('imports go one way between folders (docs/development.md, "Where things live")', () => {
    const wrong: string[] = [];
    for (const file of files) {
      const from = partOf(file);
      const allowed = MAY_IMPORT[from];
      if (!allowed) continue; // index.ts and testing/ see the whole public API
      for (const [, specifier] of readFileSync(file, 'utf8').matchAll(/from '(\.[^']+)'/g)) {
        const target = partOf(join(file, '..', specifier!));
        if (target !== from && !allowed.includes(target)) wrong.push(`${relative(SRC, file)} imports ${specifier}`);
      }
    }
    expect(wrong).toEqual([]);
  });

  it('storage keys are spelled only in src/storage-keys.ts', () => {
    const spelled = files
      .filter((file) => !file.endsWith('storage-keys.ts') && !file.includes(`${sep}testing${sep}`))
      .filter((file) =>
        readFileSync(file, 'utf8')
          .split('\n')
          .filter((line) => !/^\s*(\*|\/\/|\/\*)/.test(line)) // code, not comments
          .some((line) => /[`'][^`'\n]*(?:(?:cache|claim|redeemed|lock):\{|lock-changes|connect-check)/.test(line)),
      )
      .map((file) => relative(SRC, file));
    expect(spelled).toEqual([]);
  });

  it('no file is over about 300 lines unless its header says why', () => {
    const long = files
      .map((file) => ({ file: relative(SRC, file), text: readFileSync(file, 'utf8') }))
      .filter(({ text }) => text.split('\n').length > 320)
      .filter(({ text }) => !/lines\b/.test(text.slice(0, text.indexOf('*/') + 2)))
      .map(({ file, text }) => `${file}: ${text.split('\n').length} lines`);
    expect(long).toEqual([]);
  });
});
