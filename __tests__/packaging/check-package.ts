// `npm run check:package`: packs the library as `npm publish` would (prepack builds dist/) into a
// temporary directory, lists the tarball, and lints it with publint (strict) and attw.
// Exits with 1 on any publint message or attw problem. `-- <file.tgz>` lints an existing tarball.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { lintProblems, lintTarball, packInto } from './pack';

async function main(): Promise<number> {
  const given = process.argv[2];
  const directory = given ? undefined : mkdtempSync(join(tmpdir(), 'msal-distributed-cache-pack-'));
  try {
    let tarball: string;
    if (directory) {
      console.log('check:package: npm pack (prepack runs the build)');
      const packed = await packInto(directory);
      tarball = packed.tarball;
      for (const file of packed.files) console.log(`  ${String(file.size).padStart(8)}  ${file.path}`);
    } else {
      tarball = resolve(given!);
    }
    const results = await lintTarball(tarball);
    process.stdout.write(results.publint.stdout + results.publint.stderr);
    process.stdout.write(results.attw.stdout + results.attw.stderr);
    const problems = lintProblems(results);
    console.log(problems.length === 0 ? 'check:package: clean' : 'check:package: FAILED (see above)');
    return problems.length === 0 ? 0 : 1;
  } finally {
    if (directory) rmSync(directory, { recursive: true, force: true });
  }
}

main().then(
  (code) => (process.exitCode = code),
  (error: unknown) => {
    console.error(error);
    process.exitCode = 1;
  },
);
