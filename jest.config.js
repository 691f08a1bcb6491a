/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: { module: 'commonjs', types: ['node', 'jest'] }, diagnostics: { warnOnly: false } }] },
  setupFilesAfterEnv: ['<rootDir>/test/setup/remove-temp-dirs.ts'],
  testTimeout: 120000,
};
