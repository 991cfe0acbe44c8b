// npm run mutants [-- <id>...]: applies each curated mutation (scripts/mutants/list.ts) to a
// scratch copy of the tree, runs the test files that must catch it, and prints which were killed.
// Exit code 1 when any mutation survives (a guarantee that no test would notice breaking) or when
// a mutation's original text is no longer in its file exactly once (the list must not rot silently).
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { mutations, notBuilt } from './mutants/list';
import type { Mutation } from './mutants/list';

const root = resolve(__dirname, '..');
/** What the selected tests need: the sources, the tests and their setup, and the configs. */
const copied = ['src', '__tests__', 'jest.config.js', 'tsconfig.json', 'package.json'];

function occurrences(text: string, part: string): number {
  let count = 0;
  for (let at = text.indexOf(part); at !== -1; at = text.indexOf(part, at + 1)) count++;
  return count;
}

function select(ids: string[]): Mutation[] {
  const unknown = ids.filter((id) => !mutations.some((mutation) => mutation.id === id));
  if (unknown.length > 0) throw new Error(`unknown mutation id(s): ${unknown.join(', ')}`);
  return ids.length === 0 ? mutations : mutations.filter((mutation) => ids.includes(mutation.id));
}

/** Fails before anything runs when an original text is missing or ambiguous. */
function checkOriginals(selected: Mutation[]): void {
  const problems = selected.flatMap((mutation) => {
    const count = occurrences(readFileSync(join(root, mutation.file), 'utf8'), mutation.original);
    return count === 1 ? [] : [`${mutation.id}: the original text occurs ${count} times in ${mutation.file} (expected exactly once)`];
  });
  if (problems.length > 0) throw new Error(`the mutation list is out of date:\n  ${problems.join('\n  ')}`);
}

function scratchCopy(): string {
  const scratch = mkdtempSync(join(tmpdir(), 'mdc-mutants-'));
  for (const entry of copied) cpSync(join(root, entry), join(scratch, entry), { recursive: true });
  symlinkSync(join(root, 'node_modules'), join(scratch, 'node_modules'), 'dir');
  return scratch;
}

/** Applies the mutation, runs its tests, restores the file: `true` when a test failed (killed). */
function run(scratch: string, mutation: Mutation): { killed: boolean; seconds: number; output: string } {
  const path = join(scratch, mutation.file);
  const original = readFileSync(path, 'utf8');
  writeFileSync(
    path,
    original.replace(mutation.original, () => mutation.replacement),
  );
  const started = Date.now();
  try {
    const args = ['jest', '--bail', '--ci', '--silent', ...mutation.tests];
    if (mutation.testNamePattern) args.push('-t', mutation.testNamePattern);
    const jest = spawnSync('npx', args, { cwd: scratch, env: { ...process.env, CI: 'true' }, encoding: 'utf8' });
    const output = `${jest.stdout}${jest.stderr}`;
    // A run that selected no test proves nothing: count it as survived.
    const ranTests = /Tests:\s+.*\d+ (passed|failed)/.test(output);
    return { killed: ranTests && jest.status !== 0, seconds: (Date.now() - started) / 1000, output };
  } finally {
    writeFileSync(path, original);
  }
}

function main(): void {
  const selected = select(process.argv.slice(2));
  checkOriginals(selected);
  const scratch = scratchCopy();
  const started = Date.now();
  const rows: string[][] = [];
  let survivors = 0;
  try {
    for (const mutation of selected) {
      const result = run(scratch, mutation);
      if (!result.killed) {
        survivors++;
        console.log(`SURVIVED ${mutation.id}: ${mutation.description}\n${result.output.slice(-3000)}`);
      }
      console.log(`${result.killed ? 'killed  ' : 'SURVIVED'} ${mutation.id} (${result.seconds.toFixed(1)} s)`);
      rows.push([mutation.id, mutation.guarantee, result.killed ? 'killed' : 'SURVIVED', result.seconds.toFixed(1)]);
    }
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
  const header = ['id', 'guarantee', 'result', 'seconds'];
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => row[column]!.length)));
  const line = (cells: string[]): string => `| ${cells.map((cell, column) => cell.padEnd(widths[column]!)).join(' | ')} |`;
  console.log(`\n${line(header)}\n${line(widths.map((width) => '-'.repeat(width)))}\n${rows.map(line).join('\n')}`);
  for (const { guarantee, until } of notBuilt) console.log(`${guarantee}: not built yet, add its mutations when ${until} lands`);
  const total = ((Date.now() - started) / 1000).toFixed(0);
  console.log(`\n${rows.length - survivors} killed, ${survivors} survived, ${total} s`);
  process.exitCode = survivors > 0 ? 1 : 0;
}

main();
