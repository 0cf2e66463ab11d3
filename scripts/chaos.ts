// `pnpm test:chaos [--cluster] [vitest arguments]`: the chaos suite (vitest.chaos.config.ts).
// `--cluster` runs it on a three-node NATS cluster (test/chaos/cluster.test.ts) instead of one
// server, by setting CHAOS_CLUSTER for vitest; everything else is passed to vitest as it is.

import { spawn } from 'node:child_process';

const args = process.argv.slice(2);
const cluster = args.includes('--cluster');
const child = spawn('vitest', ['run', '--config', 'vitest.chaos.config.ts', ...args.filter((a) => a !== '--cluster')], {
  stdio: 'inherit',
  env: { ...process.env, ...(cluster ? { CHAOS_CLUSTER: '1' } : {}) },
});
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => child.kill(signal));
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
