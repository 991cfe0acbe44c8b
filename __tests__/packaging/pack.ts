// Packing the library as npm publishes it, and linting the tarball with publint and
// @arethetypeswrong/cli. Shared by package.test.ts and `npm run check:package` (check-package.ts).
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

export const repoRoot = resolve(__dirname, '..', '..');

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** `npm`, or `npm.cmd` through a shell on Windows. */
export const npm = { command: 'npm', shell: process.platform === 'win32' };

/**
 * Runs a command and collects what it prints. A child still running after `timeoutMs` is killed
 * and the promise rejects with what it printed so far (a hung child fails with its output rather
 * than as a bare test timeout).
 */
export function run(
  command: string,
  args: string[],
  options: { cwd: string; env?: NodeJS.ProcessEnv; timeoutMs?: number; shell?: boolean },
): Promise<RunResult> {
  const timeoutMs = options.timeoutMs ?? 120_000;
  return new Promise((resolvePromise, reject) => {
    const child = spawn(command, args, {
      cwd: options.cwd,
      env: options.env ?? process.env,
      shell: options.shell ?? false,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${command} ${args.join(' ')} did not finish within ${timeoutMs} ms\n${stdout}\n${stderr}`));
    }, timeoutMs);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      resolvePromise({ code, stdout, stderr });
    });
  });
}

/** Fails with everything the command printed unless it exited with 0. */
export function assertSucceeded(what: string, result: RunResult): RunResult {
  if (result.code !== 0) throw new Error(`${what} exited with ${result.code}\n--- stdout\n${result.stdout}\n--- stderr\n${result.stderr}`);
  return result;
}

export interface PackedFile {
  path: string;
  size: number;
}

export interface Packed {
  /** Absolute path of the .tgz. */
  tarball: string;
  files: PackedFile[];
}

/**
 * `npm pack` of the repository into `destination`. The package's `prepack` script builds dist/
 * first, as it does for `npm publish`.
 */
export async function packInto(destination: string): Promise<Packed> {
  const result = assertSucceeded(
    'npm pack',
    await run(npm.command, ['pack', '--json', '--pack-destination', destination], {
      cwd: repoRoot,
      shell: npm.shell,
      timeoutMs: 180_000,
    }),
  );
  // prepack's build prints to the same stdout; npm's JSON report is the last thing, a top-level array.
  const start = result.stdout.startsWith('[') ? 0 : result.stdout.lastIndexOf('\n[') + 1;
  const report = JSON.parse(result.stdout.slice(start)) as Array<{ filename: string; files: PackedFile[] }>;
  const tarballs = readdirSync(destination).filter((name) => name.endsWith('.tgz'));
  if (report.length !== 1 || tarballs.length !== 1 || tarballs[0] !== report[0]!.filename) {
    throw new Error(`npm pack should have produced one tarball in ${destination}; found ${tarballs.join(', ') || 'none'}`);
  }
  return { tarball: join(destination, report[0]!.filename), files: report[0]!.files };
}

/** The script of a devDependency's command, to run with this Node (no npx, no shell). */
function binOf(packageName: string, command: string): string {
  const directory = join(repoRoot, 'node_modules', packageName);
  const { bin } = JSON.parse(readFileSync(join(directory, 'package.json'), 'utf8')) as { bin: string | Record<string, string> };
  const script = typeof bin === 'string' ? bin : bin[command];
  if (!script) throw new Error(`${packageName} has no "${command}" command`);
  return join(directory, script);
}

export interface LintResults {
  /** `publint --strict <tgz>`: prints `All good!` only when it has no message at all, suggestions included. */
  publint: RunResult;
  /** `attw <tgz>` with the default (strict) profile: node10, node16 from CJS and from ESM, bundler. */
  attw: RunResult;
}

export async function lintTarball(tarball: string, env: NodeJS.ProcessEnv = process.env): Promise<LintResults> {
  const options = { cwd: repoRoot, env, timeoutMs: 120_000 };
  const [publint, attw] = await Promise.all([
    run(process.execPath, [binOf('publint', 'publint'), '--strict', tarball], options),
    run(process.execPath, [binOf('@arethetypeswrong/cli', 'attw'), tarball], options),
  ]);
  return { publint, attw };
}

/** What a clean lint prints: no publint message of any level, no attw problem. */
export function lintProblems({ publint, attw }: LintResults): string[] {
  const problems: string[] = [];
  if (publint.code !== 0 || !publint.stdout.includes('All good!')) problems.push(`publint:\n${publint.stdout}${publint.stderr}`);
  if (attw.code !== 0 || !attw.stdout.includes('No problems found')) problems.push(`attw:\n${attw.stdout}${attw.stderr}`);
  return problems;
}
