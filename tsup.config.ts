import { defineConfig } from 'tsup';

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
});
