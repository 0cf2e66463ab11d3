import { defaultServerConditions } from 'vite';
import { defineConfig } from 'vitest/config';

const conditions = ['source', ...defaultServerConditions];

// `pnpm test:lifecycle`: the lifecycle model suite at full size (2,000 generated jobs unless
// LIFECYCLE_JOBS says otherwise); `pnpm test` runs the same files at a CI-sized count.
export default defineConfig({
  resolve: { conditions },
  ssr: { resolve: { conditions, externalConditions: conditions } },
  test: {
    include: ['test/lifecycle/**/*.test.ts'],
    testTimeout: 3_600_000,
    hookTimeout: 300_000,
    pool: 'forks',
    env: { LIFECYCLE_DEFAULT_JOBS: '2000' },
  },
});
