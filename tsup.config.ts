import { join, resolve, sep } from 'node:path';
import { defineConfig } from 'tsup';

const testingDirectory = join(__dirname, 'src', 'testing');
const errorsModule = join(__dirname, 'src', 'errors');

// Ships ESM (.mjs, .d.mts) and CommonJS (.js, .d.ts), each with its own declarations, like @azure/msal-node.
export default defineConfig({
  entry: { index: 'src/index.ts', testing: 'src/testing/index.ts' },
  format: ['esm', 'cjs'],
  dts: true,
  // src/ is not published: the maps carry the TypeScript sources inline (sourcesContent), so
  // debuggers and `node --enable-source-maps` show them; `sources` ("../src/…") are only names.
  sourcemap: true,
  esbuildOptions(options) {
    options.sourcesContent = true;
  },
  clean: true,
  target: 'node20',
  platform: 'node',
  splitting: false,
  // `__filename` in the ESM build too: src/telemetry/otel-api.ts loads the optional
  // @opentelemetry/api with createRequire(__filename). A banner rather than tsup's `shims`, whose
  // shim module would be a source from node_modules in the source maps (and CommonJS needs none).
  banner: ({ format }) =>
    format === 'esm'
      ? { js: "import { fileURLToPath as __mdcFileURLToPath } from 'node:url';\nconst __filename = __mdcFileURLToPath(import.meta.url);" }
      : undefined,
  // The testing entry uses the main entry's error classes (src/testing/lock-store-contract.ts checks
  // a store's errors with instanceof, as redeem-once does), so it must load dist/index.* rather than
  // bundle copies of them: its imports of src/errors become imports of 'msal-distributed-cache' (the
  // package itself), and its type imports of 'msal-distributed-cache' stay imports in the .d.ts.
  // In the sources, src/errors stays a relative import: jest, tsx and Node need no dist/ for it.
  external: ['msal-distributed-cache'],
  esbuildPlugins: [
    {
      name: 'testing-loads-the-main-entry',
      setup(build) {
        build.onResolve({ filter: /\/errors$/ }, (args) =>
          args.importer.startsWith(testingDirectory + sep) && resolve(args.resolveDir, args.path) === errorsModule
            ? { path: 'msal-distributed-cache', external: true }
            : undefined,
        );
      },
    },
  ],
});
