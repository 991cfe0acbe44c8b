/** Jest: TypeScript through @swc/jest; one real redis-server and one test CA per run (see __tests__/setup). */
module.exports = {
  testEnvironment: '<rootDir>/__tests__/setup/environment.ts',
  roots: ['<rootDir>/__tests__'],
  testMatch: ['**/*.test.ts'],
  transform: { '^.+\\.ts$': ['@swc/jest', { jsc: { parser: { syntax: 'typescript' }, target: 'es2022' }, module: { type: 'commonjs' } }] },
  // Examples and docs import the package by name, as users do (tsconfig.json paths, same mapping).
  moduleNameMapper: {
    '^msal-distributed-cache$': '<rootDir>/src/index.ts',
    '^msal-distributed-cache/testing$': '<rootDir>/src/testing/index.ts',
    // The real plugin, loaded by Node instead of Jest: see the file.
    '^@fastify/cookie$': '<rootDir>/__tests__/setup/fastify-cookie.cjs',
  },
  globalSetup: '<rootDir>/__tests__/setup/global-setup.ts',
  globalTeardown: '<rootDir>/__tests__/setup/global-teardown.ts',
  testTimeout: 60000,
  reporters: ['default', '<rootDir>/__tests__/setup/summary-reporter.js'],
};
