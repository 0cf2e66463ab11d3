// `pnpm infra:up`: makes sure NATS (JetStream), Postgres and Redis accept connections on
// 127.0.0.1, starting what is missing from the installed binaries with data under .stack/.
// What it starts keeps running after it exits (CI runs the tests next).

import { ensureInfra, InfraError } from './infra/index.js';

try {
  const infra = await ensureInfra({ detached: true });
  const started = infra.statuses.filter((s) => s.state === 'started').map((s) => s.name);
  const running = infra.statuses.filter((s) => s.state === 'running').map((s) => s.name);
  console.log(
    `infra  ready: ${infra.statuses.map((s) => `${s.name} :${s.port}`).join(', ')}` +
      ` (already running: ${running.join(', ') || 'none'}; started: ${started.join(', ') || 'none'})`,
  );
  process.exit(0);
} catch (err) {
  const message = err instanceof InfraError ? err.message : ((err as Error).stack ?? String(err));
  console.error(`infra  NOT READY:\n${message.replace(/^/gm, '  ')}`);
  process.exit(1);
}
