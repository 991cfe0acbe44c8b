/** Jest: TypeScript through @swc/jest; one real redis-server and one test CA per run (see __tests__/setup). */
module.exports = {
  testEnvironment: '<rootDir>/__tests__/setup/environment.ts',
  roots: ['<rootDir>/__tests__'],
  testMatch: ['**/*.test.ts'],
  transform: { '^.+\\.ts$': ['@swc/jest', { jsc: { parser: { syntax: 'typescript' }, target: 'es2022' }, module: { type: 'commonjs' } }] },
  globalSetup: '<rootDir>/__tests__/setup/global-setup.ts',
  globalTeardown: '<rootDir>/__tests__/setup/global-teardown.ts',
  testTimeout: 60000,
  reporters: ['default', '<rootDir>/__tests__/setup/summary-reporter.js'],
};
