// npm run mutants [-- <id>...]: applies each curated mutation (scripts/mutants/list.ts) to a
// scratch copy of the tree, runs the test files that must catch it, and prints which were killed.
// Exit code 1 when any mutation survives (a guarantee that no test would notice breaking) or when
// a mutation's original text is no longer in its file exactly once (the list must not rot silently).
// One redis-server serves every jest run (REDIS_URL, so jest's global setup starts none): jest
// --bail exits without its global teardown, which would leave one server behind per killed mutation.
import { spawn } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { RedisServer } from '../src/testing';
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

type Result = 'killed' | 'SURVIVED' | 'BROKEN';

/** Runs a command to its end: its exit status or signal and everything it printed. */
async function spawnToEnd(
  command: string,
  args: string[],
  options: { cwd: string; env: NodeJS.ProcessEnv },
): Promise<{ status: number | null; signal: NodeJS.Signals | null; output: string }> {
  const child = spawn(command, args, { ...options, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (status, signal) => resolve({ status, signal, output: `${stdout}${stderr}` }));
  });
}

/**
 * Applies the mutation, runs its tests, restores the file. Killed: a test failed (`by` names the
 * first). Broken: a suite did not even run (the replacement does not compile, say), which proves
 * nothing about the tests. Survived: every selected test passed, or none was selected.
 */
async function run(
  scratch: string,
  redisUrl: string,
  mutation: Mutation,
): Promise<{ result: Result; by: string; seconds: number; output: string }> {
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
    if (mutation.testTimeoutMs) args.push(`--testTimeout=${mutation.testTimeoutMs}`);
    const jest = await spawnToEnd('npx', args, { cwd: scratch, env: { ...process.env, CI: 'true', REDIS_URL: redisUrl } });
    // Ctrl-C reaches jest too (same process group): stop here; main() removes the scratch copy.
    if (jest.signal === 'SIGINT') throw new Error('interrupted (Ctrl-C)');
    const { output } = jest;
    const seconds = (Date.now() - started) / 1000;
    if (output.includes('Test suite failed to run')) return { result: 'BROKEN', by: '', seconds, output };
    const failed = /Tests:\s+\d+ failed/.test(output) && jest.status !== 0;
    // The first failing test's title: jest prints "● <describe> › <test>" for each failure.
    const by = /^\s*● (.+)$/m.exec(output)?.[1]?.split(' › ').pop()?.trim() ?? '';
    return { result: failed ? 'killed' : 'SURVIVED', by, seconds, output };
  } finally {
    writeFileSync(path, original);
  }
}

/** MUTANTS_VERBOSE=1 prints why each mutation was killed: the first failure's heading and assertion. */
const verbose = process.env.MUTANTS_VERBOSE === '1';

function firstFailure(output: string): string {
  const lines = output.split('\n');
  const start = lines.findIndex((line) => /^\s*● /.test(line));
  return lines.slice(start, start + 16).join('\n');
}

/** Runs each mutation in turn in a scratch copy of the tree; the rows of the closing table. */
async function runAll(selected: Mutation[], redisUrl: string, interrupted: () => boolean): Promise<{ rows: string[][]; failures: number }> {
  const scratch = scratchCopy();
  const rows: string[][] = [];
  let failures = 0;
  try {
    for (const mutation of selected) {
      if (interrupted()) throw new Error('interrupted (Ctrl-C)');
      const { result, by, seconds, output } = await run(scratch, redisUrl, mutation);
      if (result !== 'killed') {
        failures++;
        console.log(`${result} ${mutation.id}: ${mutation.description}\n${output.slice(-3000)}`);
      }
      console.log(`${result.padEnd(8)} ${mutation.id} (${seconds.toFixed(1)} s)`);
      if (result === 'killed' && verbose) console.log(firstFailure(output));
      const title = by.length > 70 ? `${by.slice(0, 67)}...` : by;
      rows.push([mutation.id, mutation.guarantee, result, seconds.toFixed(1), title]);
    }
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
  return { rows, failures };
}

async function main(): Promise<void> {
  const selected = select(process.argv.slice(2));
  checkOriginals(selected);
  // Ctrl-C: without a handler Node would exit at once and leave the scratch copy and the
  // redis-server behind; with one, the jest run in progress ends by the signal and run() stops the
  // loop (a SIGINT sent to this process alone stops it before the next mutation).
  let interrupted = false;
  process.on('SIGINT', () => {
    interrupted = true;
  });
  const started = Date.now();
  // REDIS_URL already set: every run uses that server, as jest would, and none is started here.
  const redis = process.env.REDIS_URL ? undefined : await RedisServer.start();
  let outcome: { rows: string[][]; failures: number };
  try {
    outcome = await runAll(selected, process.env.REDIS_URL ?? redis!.url, () => interrupted);
  } finally {
    await redis?.stop();
  }
  const { rows, failures } = outcome;
  const header = ['id', 'guarantee', 'result', 'seconds', 'killed by (first failing test)'];
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => row[column]!.length)));
  const line = (cells: string[]): string => `| ${cells.map((cell, column) => cell.padEnd(widths[column]!)).join(' | ')} |`;
  console.log(`\n${line(header)}\n${line(widths.map((width) => '-'.repeat(width)))}\n${rows.map(line).join('\n')}`);
  for (const { guarantee, until } of notBuilt) console.log(`${guarantee}: not built yet, add its mutations when ${until} lands`);
  const total = ((Date.now() - started) / 1000).toFixed(0);
  console.log(`\n${rows.length - failures} killed, ${failures} survived or broken, ${total} s`);
  process.exitCode = failures > 0 ? 1 : 0;
}

main().catch((error: unknown) => {
  console.error(`mutants: ${error instanceof Error ? error.message : String(error)}`);
  process.exitCode = 1;
});
