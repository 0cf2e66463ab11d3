import { join } from 'node:path';
import { ensureInfra, type InfraHandle } from '../../scripts/infra/index.js';
import { freePort } from '@redrive/test-support';
import { chaosRound, sleep, type NatsUnderTest } from './harness.js';

// The chaos round on one nats-server (what CI runs, CHAOS_JOBS=600): the round itself, its load,
// its other faults and its reconciliation are in harness.ts; here NATS is one private server on
// a free port, restarted (SIGTERM, then started again on the same store) once 30% of the jobs
// are submitted. `pnpm test:chaos --cluster` runs the same round on three nodes (cluster.test.ts).

interface SingleNats extends NatsUnderTest {
  restart(): Promise<void>;
}

chaosRound<SingleNats>({
  title: 'ends every accepted job in exactly one terminal state through kills, restarts and outages',
  jobs: Number(process.env.CHAOS_JOBS ?? 1_000),
  startNats: async (dataDir) => {
    const port = await freePort();
    const startOne = async () =>
      (await ensureInfra({ dataDir, ports: { nats: port }, only: ['nats'], log: () => undefined })).started[0]!;
    let server: InfraHandle = await startOne();
    return {
      url: () => `nats://127.0.0.1:${port}`,
      clientUrl: () => `nats://127.0.0.1:${port}`,
      replicas: 1,
      logFiles: () => [{ name: 'nats', file: join(dataDir, 'nats.log') }],
      stop: () => server.stop(),
      restart: async () => {
        await server.stop();
        await sleep(2_000);
        server = await startOne();
      },
    };
  },
  natsFaults: ({ nats }) => nats.restart(),
});
