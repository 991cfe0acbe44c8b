// Code examples in the documentation, type-checked: every ```ts block of the Markdown docs and every
// ```ts block in a TSDoc comment (@example) of src/ becomes its own module in a temp directory, and all
// of them are checked in one TypeScript program with the repository's compiler options (but a block
// that augments a module, such as a complete app declaring its session fields: in a program of its own).
//
// What a block may use without declaring it (the "prelude", one import line prepended to each block):
// - every export of `msal-distributed-cache` and `msal-distributed-cache/testing` (resolved to src/);
// - every export of snippet-globals.d.ts: the free variables docs use (clientId, code, req, ...) and
//   a few third-party names (Keyv, KeyvRedis, ConfidentialClientApplication).
// A name the block imports or declares itself is left out of the prelude. Anything else must be
// imported; packages resolve from the repository's node_modules (only those in SNIPPET_PACKAGES).
// A Markdown block preceded by `<!-- not-checked: reason -->` is not checked.
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, sep } from 'node:path';
import ts from 'typescript';

export const REPO_ROOT = join(__dirname, '..', '..');
export const SNIPPET_GLOBALS = join(__dirname, 'snippet-globals.d.ts');
/**
 * The express-session fields the examples use (`req.session.homeAccountId`, ...), for the blocks
 * checked together; a block that declares its own `SessionData` (a complete app, such as the one in
 * docs/express.md) is checked without it, so the two never conflict. Written to the temp directory,
 * not kept as a .d.ts here, where `tsc -p tsconfig.json` would apply it to the whole repository.
 */
const SNIPPET_SESSION = `import 'express-session';

declare module 'express-session' {
  interface SessionData {
    /** Who signed in: result.account.homeAccountId, the key of their partition of the token cache. */
    homeAccountId: string;
    /** The PKCE verifier of the sign-in in progress (CryptoProvider.generatePkceCodes()). */
    pkceVerifier: string;
  }
}
`;

/** Packages a block may import (besides the library itself and node: modules); `@types/*` come along. */
export const SNIPPET_PACKAGES = [
  '@azure/msal-node',
  'keyv',
  '@keyv/redis',
  '@keyv/postgres',
  'redis',
  'express',
  'express-session',
  'connect-redis',
  'fastify',
  '@fastify/session',
  '@fastify/cookie',
  'undici',
  '@opentelemetry/api',
  '@opentelemetry/sdk-metrics',
  '@opentelemetry/sdk-trace-base',
  '@opentelemetry/context-async-hooks',
  '@opentelemetry/resources',
  '@opentelemetry/exporter-metrics-otlp-http',
  '@opentelemetry/exporter-trace-otlp-http',
];

/**
 * TS1309, top-level `await` in a CommonJS module: blocks are checked as CommonJS, as src/ is (the
 * package is `"type": "commonjs"`; checked as ES modules, their imports of keyv would resolve to other
 * declaration files than src/'s), and a block's top-level `await` stands for code in an async function.
 */
const IGNORED_DIAGNOSTICS = new Set([1309]);

const LIBRARY_MODULES = ['msal-distributed-cache', 'msal-distributed-cache/testing'];

/** One ```ts block. */
export interface Snippet {
  /** Repository-relative path, with `/`. */
  file: string;
  /** 1-based line of the opening fence. */
  line: number;
  code: string;
  /** The reason of a `<!-- not-checked: reason -->` comment; `''` when the comment has none. */
  notChecked?: string;
}

/** One TypeScript error in a block, at its line in the documentation file. */
export interface SnippetDiagnostic {
  snippet: Snippet;
  /** 1-based line in `snippet.file`. */
  line: number;
  code: number;
  message: string;
}

const toPosix = (path: string): string => path.split(sep).join('/');

function walk(directory: string, accept: (path: string) => boolean, skip: (path: string) => boolean = () => false): string[] {
  let entries: import('node:fs').Dirent[];
  try {
    entries = readdirSync(directory, { withFileTypes: true });
  } catch {
    return [];
  }
  return entries
    .sort((a, b) => a.name.localeCompare(b.name))
    .flatMap((entry) => {
      const path = join(directory, entry.name);
      if (skip(path) || entry.name === 'node_modules') return [];
      if (entry.isDirectory()) return walk(path, accept, skip);
      return entry.isFile() && accept(path) ? [path] : [];
    });
}

/** README.md, docs/**\/*.md but the generated docs/api, examples/**\/README.md, src/**\/*.ts. */
export function documentationFiles(root = REPO_ROOT): { markdown: string[]; source: string[] } {
  const markdown = [
    join(root, 'README.md'),
    ...walk(
      join(root, 'docs'),
      (path) => path.endsWith('.md'),
      (path) => path === join(root, 'docs', 'api'),
    ),
    ...walk(join(root, 'examples'), (path) => path.endsWith(`${sep}README.md`)),
  ];
  const source = walk(join(root, 'src'), (path) => path.endsWith('.ts'));
  return { markdown, source };
}

const FENCE_OPEN = /^(\s*)(`{3,})\s*(ts|typescript)\s*$/;
/** A fence of any language (CommonMark: the info string of a backtick fence has no backtick; else it is inline code). */
const OTHER_FENCE_OPEN = /^\s*(`{3,}(?=[^`]*$)|~{3,})/;
const NOT_CHECKED = /^\s*<!--\s*not-checked:?(.*?)-->\s*$/;

/** The ```ts blocks of a Markdown file, with the `not-checked` reason of those that have one. */
export function markdownSnippets(file: string, text: string): Snippet[] {
  const lines = text.split(/\r?\n/);
  const snippets: Snippet[] = [];
  let fence: { indent: number; marker: string; line: number } | undefined;
  let code: string[] = [];
  for (let index = 0; index < lines.length; index++) {
    const line = lines[index]!;
    if (fence) {
      if (/^`{3,}$/.test(line.trim()) && line.trim().length >= fence.marker.length) {
        const snippet: Snippet = { file, line: fence.line, code: code.join('\n') };
        const notChecked = precedingNotChecked(lines, fence.line - 1);
        if (notChecked !== undefined) snippet.notChecked = notChecked;
        snippets.push(snippet);
        fence = undefined;
      } else {
        code.push(line.slice(Math.min(fence.indent, line.length - line.trimStart().length)));
      }
      continue;
    }
    const open = FENCE_OPEN.exec(line);
    if (open) {
      fence = { indent: open[1]!.length, marker: open[2]!, line: index + 1 };
      code = [];
    } else if (OTHER_FENCE_OPEN.test(line)) {
      // Another language's block: skip to its closing fence (the same character, at least as many,
      // nothing else on the line), so that its content is never taken for a fence.
      const marker = OTHER_FENCE_OPEN.exec(line)![1]!;
      const closing = new RegExp(`^\\s*${marker[0] === '`' ? '`' : '~'}{${marker.length},}\\s*$`);
      while (++index < lines.length && !closing.test(lines[index]!));
    }
  }
  return snippets;
}

/** The reason of a `<!-- not-checked: ... -->` line right above line index `fenceIndex` (blank lines between allowed). */
function precedingNotChecked(lines: string[], fenceIndex: number): string | undefined {
  for (let index = fenceIndex - 1; index >= 0; index--) {
    const line = lines[index]!;
    if (line.trim() === '') continue;
    const match = NOT_CHECKED.exec(line);
    return match ? match[1]!.trim() : undefined;
  }
  return undefined;
}

/** The ```ts blocks inside the `/** ... *\/` comments (TSDoc `@example`) of a TypeScript file. */
export function tsdocSnippets(file: string, text: string): Snippet[] {
  const lines = text.split(/\r?\n/);
  const snippets: Snippet[] = [];
  let inComment = false;
  let fence: { line: number; code: string[] } | undefined;
  for (let index = 0; index < lines.length; index++) {
    const line = lines[index]!;
    if (!inComment) {
      if (/^\s*\/\*\*/.test(line) && !line.includes('*/')) inComment = true;
      continue;
    }
    if (line.includes('*/')) {
      inComment = false;
      fence = undefined;
      continue;
    }
    const content = line.replace(/^\s*\*( |$)/, '');
    if (fence) {
      if (/^\s*```\s*$/.test(content)) {
        snippets.push({ file, line: fence.line, code: fence.code.join('\n') });
        fence = undefined;
      } else {
        fence.code.push(content);
      }
    } else if (/^\s*```(ts|typescript)\s*$/.test(content)) {
      fence = { line: index + 1, code: [] };
    }
  }
  return snippets;
}

/** Every ```ts block of the documentation, in a stable order. */
export function collectSnippets(root = REPO_ROOT): Snippet[] {
  const { markdown, source } = documentationFiles(root);
  const relativeName = (path: string): string => toPosix(relative(root, path));
  return [
    ...markdown.flatMap((path) => markdownSnippets(relativeName(path), readFileSync(path, 'utf8'))),
    ...source.flatMap((path) => tsdocSnippets(relativeName(path), readFileSync(path, 'utf8'))),
  ];
}

/** Names a block imports or declares at its top level (left out of the prelude). */
function topLevelNames(code: string): Set<string> {
  const names = new Set<string>();
  const source = ts.createSourceFile('block.ts', code, ts.ScriptTarget.Latest, false, ts.ScriptKind.TS);
  const addBinding = (name: ts.BindingName): void => {
    if (ts.isIdentifier(name)) names.add(name.text);
    else for (const element of name.elements) if (!ts.isOmittedExpression(element)) addBinding(element.name);
  };
  for (const statement of source.statements) {
    if (ts.isImportDeclaration(statement)) {
      const clause = statement.importClause;
      if (clause?.name) names.add(clause.name.text);
      const bindings = clause?.namedBindings;
      if (bindings && ts.isNamespaceImport(bindings)) names.add(bindings.name.text);
      if (bindings && ts.isNamedImports(bindings)) for (const element of bindings.elements) names.add(element.name.text);
    } else if (ts.isImportEqualsDeclaration(statement)) {
      names.add(statement.name.text);
    } else if (ts.isVariableStatement(statement)) {
      for (const declaration of statement.declarationList.declarations) addBinding(declaration.name);
    } else if (
      (ts.isFunctionDeclaration(statement) ||
        ts.isClassDeclaration(statement) ||
        ts.isInterfaceDeclaration(statement) ||
        ts.isTypeAliasDeclaration(statement) ||
        ts.isEnumDeclaration(statement) ||
        ts.isModuleDeclaration(statement)) &&
      statement.name &&
      ts.isIdentifier(statement.name)
    ) {
      names.add(statement.name.text);
    }
  }
  return names;
}

/** The repository's compiler options (tsconfig.json: strictness, `paths` to src/), for a program of blocks. */
function compilerOptions(root: string): ts.CompilerOptions {
  const configPath = join(root, 'tsconfig.json');
  const { config, error } = ts.readConfigFile(configPath, ts.sys.readFile);
  if (error) throw new Error(ts.flattenDiagnosticMessageText(error.messageText, '\n'));
  const parsed = ts.parseJsonConfigFileContent(config, ts.sys, root, undefined, configPath);
  return { ...parsed.options, noEmit: true, moduleDetection: ts.ModuleDetectionKind.Force };
}

/** A compiler host that parses each file once, for every program (the exports probe and the blocks). */
function cachingHost(options: ts.CompilerOptions): ts.CompilerHost {
  const host = ts.createCompilerHost(options, true);
  const cache = new Map<string, ts.SourceFile | undefined>();
  const getSourceFile = host.getSourceFile.bind(host);
  host.getSourceFile = (fileName, languageVersion, onError, shouldCreate) => {
    const key = `${fileName}\0${typeof languageVersion === 'object' ? JSON.stringify(languageVersion) : languageVersion}`;
    if (!cache.has(key)) cache.set(key, getSourceFile(fileName, languageVersion, onError, shouldCreate));
    return cache.get(key);
  };
  return host;
}

/** A temp directory that resolves like a consumer's project: CommonJS, with the allowed packages in node_modules. */
function snippetDirectory(root: string): string {
  const directory = mkdtempSync(join(tmpdir(), 'mdc-doc-snippets-'));
  writeFileSync(join(directory, 'package.json'), JSON.stringify({ name: 'doc-snippets', private: true, type: 'commonjs' }));
  for (const name of [...SNIPPET_PACKAGES, '@types']) {
    const link = join(directory, 'node_modules', name);
    mkdirSync(dirname(link), { recursive: true });
    symlinkSync(join(root, 'node_modules', name), link, 'junction');
  }
  return directory;
}

/** Whether a block augments a module or the global scope (it is then checked in a program of its own). */
function augments(code: string): boolean {
  const source = ts.createSourceFile('block.ts', code, ts.ScriptTarget.Latest, false, ts.ScriptKind.TS);
  return source.statements.some(
    (statement) => ts.isModuleDeclaration(statement) && !!(statement.modifiers ?? []).some((m) => m.kind === ts.SyntaxKind.DeclareKeyword),
  );
}

/** The names each prelude module exports: the library's two entry points, then snippet-globals.d.ts. */
function preludeExports(
  directory: string,
  options: ts.CompilerOptions,
  host: ts.CompilerHost,
): { program: ts.Program; exports: Map<string, string[]> } {
  const specifiers = [...LIBRARY_MODULES, toPosix(SNIPPET_GLOBALS).replace(/\.d\.ts$/, '.js')];
  const probeFile = join(directory, 'prelude-probe.ts');
  writeFileSync(probeFile, specifiers.map((specifier, index) => `import * as m${index} from '${specifier}';`).join('\n') + '\n');
  const program = ts.createProgram([probeFile], options, host);
  const checker = program.getTypeChecker();
  const exports = new Map<string, string[]>();
  const seen = new Set<string>();
  for (const statement of program.getSourceFile(probeFile)!.statements) {
    if (!ts.isImportDeclaration(statement)) continue;
    const specifier = (statement.moduleSpecifier as ts.StringLiteral).text;
    const symbol = checker.getSymbolAtLocation(statement.moduleSpecifier);
    if (!symbol) throw new Error(`the snippet prelude cannot resolve '${specifier}'`);
    const names = checker
      .getExportsOfModule(symbol)
      .map((exported) => exported.name)
      .filter((name) => name !== 'default' && !seen.has(name))
      .sort();
    names.forEach((name) => seen.add(name));
    exports.set(specifier, names);
  }
  return { program, exports };
}

/**
 * Type-checks the blocks not marked not-checked: all in one program, except blocks that augment a
 * module or the global scope (`declare module`, `declare global`), each checked in a program of its
 * own so that its declarations reach no other block.
 *
 * @returns every error, at its line in the documentation file, and how many blocks were checked
 */
export function checkSnippets(snippets: Snippet[], root = REPO_ROOT): { diagnostics: SnippetDiagnostic[]; checked: number } {
  const options = compilerOptions(root);
  const host = cachingHost(options);
  const directory = snippetDirectory(root);
  try {
    const probe = preludeExports(directory, options, host);
    const session = join(directory, 'snippet-session.d.ts');
    writeFileSync(session, SNIPPET_SESSION);
    // One module per block: the prelude on its first line, then the block as written.
    const checked = snippets.filter((snippet) => snippet.notChecked === undefined);
    const shared = new Map<string, Snippet>();
    const isolated: Map<string, Snippet>[] = [];
    checked.forEach((snippet, index) => {
      const own = topLevelNames(snippet.code);
      const prelude = [...probe.exports]
        .map(([specifier, names]) => [specifier, names.filter((name) => !own.has(name))] as const)
        .filter(([, names]) => names.length > 0)
        .map(([specifier, names]) => `import { ${names.join(', ')} } from '${specifier}';`)
        .join(' ');
      const path = join(directory, `block-${String(index).padStart(3, '0')}.ts`);
      writeFileSync(path, `${prelude}\n${snippet.code}\n`);
      if (augments(snippet.code)) isolated.push(new Map([[path, snippet]]));
      else shared.set(path, snippet);
    });
    const diagnostics: SnippetDiagnostic[] = [];
    let oldProgram = probe.program;
    for (const [files, extraRoots] of [[shared, [session]], ...isolated.map((files) => [files, []] as const)] as const) {
      if (files.size === 0) continue;
      const program = ts.createProgram({ rootNames: [...files.keys(), ...extraRoots], options, host, oldProgram });
      oldProgram = program;
      for (const diagnostic of [...program.getOptionsDiagnostics(), ...program.getGlobalDiagnostics()]) {
        throw new Error(`the snippet program is misconfigured: ${ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n')}`);
      }
      for (const [path, snippet] of files) {
        const source = program.getSourceFile(path)!;
        for (const diagnostic of [...program.getSyntacticDiagnostics(source), ...program.getSemanticDiagnostics(source)]) {
          if (IGNORED_DIAGNOSTICS.has(diagnostic.code)) continue;
          const blockLine = diagnostic.start === undefined ? 0 : source.getLineAndCharacterOfPosition(diagnostic.start).line;
          diagnostics.push({
            snippet,
            // Line 0 is the prelude; line k of the block (1-based) is k lines below the opening fence.
            line: snippet.line + Math.max(blockLine, 1),
            code: diagnostic.code,
            message: ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n'),
          });
        }
      }
    }
    return { diagnostics, checked: checked.length };
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
}

/** `file:line: TSxxxx message`, one per error, grouped under their block. */
export function formatDiagnostics(diagnostics: SnippetDiagnostic[]): string {
  const byBlock = new Map<Snippet, SnippetDiagnostic[]>();
  for (const diagnostic of diagnostics) byBlock.set(diagnostic.snippet, [...(byBlock.get(diagnostic.snippet) ?? []), diagnostic]);
  return [...byBlock]
    .map(
      ([snippet, errors]) =>
        `${snippet.file}:${snippet.line}: the \`\`\`ts block starting here does not type-check:\n` +
        errors
          .map((error) => `  ${snippet.file}:${error.line}: error TS${error.code}: ${error.message.replace(/\n/g, '\n    ')}`)
          .join('\n'),
    )
    .join('\n\n');
}
