import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

// A service image holds that service's production dependencies only (deploy/Dockerfile runs
// `pnpm deploy --prod` for it). This runs the Dockerfile's own deploy command for intake into
// a temporary directory and reads what it installed.

const ROOT = join(import.meta.dirname, '..', '..');
const DOCKERFILE = readFileSync(join(ROOT, 'deploy', 'Dockerfile'), 'utf8');
const out = mkdtempSync(join(tmpdir(), 'redrive-image-'));
afterAll(() => rmSync(out, { recursive: true, force: true }));

describe('deploy/Dockerfile', () => {
  it('copies only the deployed tree into the runtime image', () => {
    const runtime = DOCKERFILE.slice(DOCKERFILE.indexOf('AS runtime'));
    expect([...runtime.matchAll(/^COPY .*$/gm)].map((m) => m[0])).toEqual(['COPY --from=build /out ./']);
  });

  it("installs intake's own dependencies and nothing of the other services or the benchmark", () => {
    const m = /pnpm --filter "@redrive\/\$\{SERVICE\}" (.*) deploy (.*) \/out/.exec(DOCKERFILE);
    expect(m, 'the pnpm deploy line of deploy/Dockerfile').not.toBeNull();
    const args = [
      '--filter',
      '@redrive/intake',
      ...m![1]!.split(' '),
      'deploy',
      ...m![2]!.split(' '),
      join(out, 'intake'),
    ];
    execFileSync('pnpm', args, { cwd: ROOT, stdio: 'pipe', env: { ...process.env, CI: 'true' } });
    const modules = join(out, 'intake', 'node_modules');
    const installed = readdirSync(join(modules, '.pnpm'));
    const intake = JSON.parse(readFileSync(join(ROOT, 'services', 'intake', 'package.json'), 'utf8')) as {
      dependencies: Record<string, string>;
    };
    const workspace = Object.keys(intake.dependencies).filter((d) => d.startsWith('@redrive/'));
    expect(readdirSync(join(modules, '@redrive')).map((d) => `@redrive/${d}`)).toEqual(workspace);
    // Postgres and Redis clients (worker, scheduler, dlq-manager), bullmq (bench), test and build tools.
    for (const foreign of ['pg@', 'ioredis@', 'bullmq@', 'fast-check@', 'vitest@', 'typescript@', 'tsx@']) {
      expect(installed.filter((p) => p.startsWith(foreign))).toEqual([]);
    }
  }, 120_000);
});
