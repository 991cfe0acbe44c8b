import { defineConfig } from 'tsup';

// Ships ESM (.mjs, .d.mts) and CommonJS (.js, .d.ts), each with its own declarations, like @azure/msal-node.
export default defineConfig({
  entry: { index: 'src/index.ts', testing: 'src/testing/index.ts' },
  format: ['esm', 'cjs'],
  dts: true,
  sourcemap: true,
  clean: true,
  target: 'node20',
  platform: 'node',
  splitting: false,
});
