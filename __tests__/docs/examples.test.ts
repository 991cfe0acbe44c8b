// Every ```ts block of README.md, docs/**/*.md (not the generated docs/api), examples/**/README.md and
// every @example of src/ type-checks against the real API, with the repository's strictness. How the
// blocks are extracted and checked: snippets.ts; the names they may use freely: snippet-globals.d.ts.
import { checkSnippets, collectSnippets, formatDiagnostics, markdownSnippets, tsdocSnippets } from './snippets';
import type { Snippet, SnippetDiagnostic } from './snippets';

const snippets = collectSnippets();

// Broken examples, checked in the same program as the real ones: the check must report each of them,
// at its file and line, with TypeScript's error.
const canaries: Snippet[] = [
  { file: 'canary/wrong-option-type.md', line: 10, code: "const cache = new DistributedTokenCache({ storeTimeoutMs: '2s' });" },
  {
    file: 'canary/no-such-method.ts',
    line: 20,
    code: ['// the method is acquireTokenByCode', "await msal.acquireTokenByAuthCode({ code, redirectUri, scopes: ['User.Read'] });"].join(
      '\n',
    ),
  },
  { file: 'canary/undeclared.md', line: 30, code: 'console.log(notDeclaredAnywhere);' },
];

let diagnostics: SnippetDiagnostic[] = [];

beforeAll(() => {
  ({ diagnostics } = checkSnippets([...snippets, ...canaries]));
});

test('the blocks are found: README, the guides and the TSDoc examples', () => {
  const files = new Set(snippets.map((snippet) => snippet.file));
  expect(files).toContain('README.md');
  expect([...files].some((file) => file.startsWith('docs/'))).toBe(true);
  expect([...files].some((file) => file.startsWith('docs/api/'))).toBe(false);
  for (const file of [
    'src/cache/distributed-token-cache.ts',
    'src/client/distributed-client-application.ts',
    'src/testing/fake-entra-id/fake-entra-id.ts',
  ]) {
    expect(files).toContain(file);
  }
});

test('every ```ts block of the documentation type-checks', () => {
  const errors = diagnostics.filter((diagnostic) => !canaries.includes(diagnostic.snippet));
  if (errors.length > 0) {
    throw new Error(
      `${errors.length} TypeScript error(s) in the documentation's code examples. Fix the example (or the API), ` +
        'declare a common free variable in __tests__/docs/snippet-globals.d.ts, or, for pseudo-code in Markdown only, ' +
        'put <!-- not-checked: reason --> above the block.\n\n' +
        formatDiagnostics(errors),
    );
  }
});

test('a broken example is reported with its file, its line and the TypeScript error', () => {
  const report = (file: string): string[] =>
    diagnostics
      .filter((diagnostic) => diagnostic.snippet.file === file)
      .map((diagnostic) => `${diagnostic.snippet.file}:${diagnostic.line}: TS${diagnostic.code}: ${diagnostic.message.split('\n')[0]}`);
  expect(report('canary/wrong-option-type.md')).toEqual([
    "canary/wrong-option-type.md:11: TS2322: Type 'string' is not assignable to type 'number'.",
  ]);
  expect(report('canary/no-such-method.ts')).toEqual([
    expect.stringMatching(
      /^canary\/no-such-method\.ts:22: TS2551: Property 'acquireTokenByAuthCode' does not exist on type 'DistributedClientApplication'/,
    ),
  ]);
  expect(report('canary/undeclared.md')).toEqual(["canary/undeclared.md:31: TS2304: Cannot find name 'notDeclaredAnywhere'."]);
  expect(formatDiagnostics(diagnostics.filter((diagnostic) => diagnostic.snippet.file === 'canary/undeclared.md'))).toBe(
    "canary/undeclared.md:30: the ```ts block starting here does not type-check:\n  canary/undeclared.md:31: error TS2304: Cannot find name 'notDeclaredAnywhere'.",
  );
});

test('blocks exempted with <!-- not-checked: reason --> give a reason', () => {
  const exempted = snippets.filter((snippet) => snippet.notChecked !== undefined);
  expect(exempted.filter((snippet) => snippet.notChecked === '').map((snippet) => `${snippet.file}:${snippet.line}`)).toEqual([]);
});

describe('extraction', () => {
  test('Markdown: ts and typescript blocks, with their line, indented ones, and the not-checked comment', () => {
    const text = [
      '# Title', // 1
      '```sh', // 2
      '```ts', // 3: inside a sh block, not a ts block
      '```', // 4
      '```ts', // 5
      'const a = 1;', // 6
      '```', // 7
      '<!-- not-checked: pseudo-code -->', // 8
      '', // 9
      '```typescript', // 10
      'a(...);', // 11
      '```', // 12
      '1. A list item:', // 13
      '   ```ts', // 14
      '   const b = 2;', // 15
      '     indented();', // 16
      '   ```', // 17
      '```js', // 18
      'ignored();', // 19
      '```', // 20
      '```` ```ts ```` in a paragraph is inline code, not a fence', // 21
      '```ts', // 22
      'const c = 3;', // 23
      '```', // 24
    ].join('\n');
    expect(markdownSnippets('x.md', text)).toEqual([
      { file: 'x.md', line: 5, code: 'const a = 1;' },
      { file: 'x.md', line: 10, code: 'a(...);', notChecked: 'pseudo-code' },
      { file: 'x.md', line: 14, code: 'const b = 2;\n  indented();' },
      { file: 'x.md', line: 22, code: 'const c = 3;' },
    ]);
  });

  test('TSDoc: the ```ts blocks of /** */ comments, with their line', () => {
    const text = [
      '/**', // 1
      ' * Summary.', // 2
      ' *', // 3
      ' * @example', // 4
      ' * ```ts', // 5
      ' * const x = f();', // 6
      ' * if (x) {', // 7
      ' *   g();', // 8
      ' * }', // 9
      ' * ```', // 10
      ' */', // 11
      'export function f(): boolean {', // 12
      '  // ```ts in a line comment is not an example', // 13
      '  return true;', // 14
      '}', // 15
    ].join('\n');
    expect(tsdocSnippets('f.ts', text)).toEqual([{ file: 'f.ts', line: 5, code: 'const x = f();\nif (x) {\n  g();\n}' }]);
  });
});
