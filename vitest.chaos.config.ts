import { defaultServerConditions } from 'vite';
import { defineConfig } from 'vitest/config';

const conditions = ['source', ...defaultServerConditions];

// `pnpm test:chaos`: the chaos suite alone (private servers, minutes of load), on one nats-server;
// `pnpm test:chaos --cluster` (scripts/chaos.ts sets CHAOS_CLUSTER) the same round on a
// three-node cluster instead.
const cluster = Boolean(process.env.CHAOS_CLUSTER);

export default defineConfig({
  resolve: { conditions },
  ssr: { resolve: { conditions, externalConditions: conditions } },
  test: {
    include: [cluster ? 'test/chaos/cluster.test.ts' : 'test/chaos/chaos.test.ts'],
    testTimeout: cluster ? 1_200_000 : 600_000,
    hookTimeout: 300_000,
    pool: 'forks',
  },
});
