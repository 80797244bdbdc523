import { availableParallelism } from 'node:os';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['**/*.test.ts'],
    exclude: ['node_modules/**', '.hourglass/**'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // most of the slow suites wait on processes, brokers and the clock rather than compute: two
    // files at a time even on two cores (vitest's default is one less than the cores)
    maxWorkers: Math.max(2, availableParallelism() - 1),
    globalSetup: ['test/fixtures/global-setup.ts'],
    reporters: ['default'],
  },
});
