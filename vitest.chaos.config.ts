import { defaultServerConditions } from 'vite';
import { defineConfig } from 'vitest/config';

const conditions = ['source', ...defaultServerConditions];

// `pnpm test:chaos`: the chaos suite alone (private servers, minutes of load).
export default defineConfig({
  resolve: { conditions },
  ssr: { resolve: { conditions, externalConditions: conditions } },
  test: { include: ['test/chaos/**/*.test.ts'], testTimeout: 600_000, hookTimeout: 300_000, pool: 'forks' },
});
