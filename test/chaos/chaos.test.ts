import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureInfra, type Infra } from '../../scripts/infra.js';
import {
  freePort,
  startFaultProxy,
  startService,
  waitFor,
  type FaultProxy,
  type ServiceProcess,
} from '@redrive/test-support';

// Steady load with faults, against private NATS, Postgres and Redis that the suite starts on
// free ports (the shared servers are never touched), then a reconciliation of every job that
// intake accepted against the audit trail. CHAOS_SECONDS sets the length of the load.

const LOAD_SECONDS = Number(process.env.CHAOS_SECONDS ?? 45);
const RATE = 20;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let infra: Infra;
let pgProxy: FaultProxy;
let redisProxy: FaultProxy;
let ports: { nats: number; postgres: number; redis: number };
const dataDir = mkdtempSync(join(tmpdir(), 'redrive-chaos-'));
const services = new Map<string, ServiceProcess>();
let keepWorkersUp = true;

function env(): Record<string, string> {
  return {
    NATS_URL: `nats://127.0.0.1:${ports.nats}`,
    DATABASE_URL: `postgres://postgres@127.0.0.1:${pgProxy.port}/redrive_chaos`,
    REDIS_URL: `redis://127.0.0.1:${redisProxy.port}`,
    LOG_LEVEL: 'info',
  };
}

async function start(name: string, service: string, extra: Record<string, string> = {}): Promise<ServiceProcess> {
  const portVar = {
    intake: 'INTAKE_PORT',
    'sync-worker': 'WORKER_PORT',
    'retry-scheduler': 'SCHEDULER_PORT',
    'dlq-manager': 'DLQ_PORT',
  }[service]!;
  const s = startService(service, { ...env(), [portVar]: String(await freePort()), ...extra });
  services.set(name, s);
  await s.waitForLog(
    (l) => (typeof l.msg === 'string' && l.msg.endsWith('running')) || l.msg === 'intake listening',
    60_000,
  );
  return s;
}

const workerEnv = {
  WORKER_HANDLERS: './test/fixtures/chaos-handlers.mjs',
  WORKER_MAX_DELIVER: '3',
  WORKER_ACK_WAIT: '3s',
  RETRY_CLASSES: JSON.stringify({ network: { baseMs: 500, jitter: 0 } }),
};

const DLQ_ENV = { DLQ_TOKENS: '[{"name":"chaos","role":"operator","token":"chaos-operator-token"}]' };

/**
 * Restarts a service whenever it dies or cannot start (a crashing job kills its worker on
 * purpose, and a service killed while Postgres is cut off cannot start until it is back),
 * as Kubernetes or systemd would.
 */
async function supervise(name: string, service: string, extra: Record<string, string>): Promise<void> {
  while (keepWorkersUp) {
    try {
      const w = await start(name, service, extra);
      await Promise.race([w.exited, waitFor(() => !keepWorkersUp, { timeoutMs: 3_600_000, intervalMs: 200 })]);
    } catch {
      // It could not start (NATS was down, say): like a real supervisor, try again.
      services.get(name)?.proc.kill('SIGKILL');
      await sleep(1_000);
    }
  }
}

beforeAll(async () => {
  ports = { nats: await freePort(), postgres: await freePort(), redis: await freePort() };
  infra = await ensureInfra({ dataDir, ports, log: () => undefined });
  pgProxy = await startFaultProxy({ port: ports.postgres });
  redisProxy = await startFaultProxy({ port: ports.redis });
  void supervise('dlq-manager', 'dlq-manager', DLQ_ENV);
  void supervise('retry-scheduler', 'retry-scheduler', {});
  void supervise('worker-1', 'sync-worker', workerEnv);
  void supervise('worker-2', 'sync-worker', workerEnv);
  await waitFor(() => ['dlq-manager', 'retry-scheduler', 'worker-1', 'worker-2'].every((n) => services.has(n)), {
    timeoutMs: 120_000,
  });
  await start('intake', 'intake', { INTAKE_PUBLISH_TIMEOUT: '2s' });
}, 180_000);

afterAll(async () => {
  keepWorkersUp = false;
  await Promise.all([...services.values()].map((s) => s.stop().catch(() => undefined)));
  await pgProxy?.close();
  await redisProxy?.close();
  for (const h of infra?.started ?? []) await h.stop();
});

describe('chaos', () => {
  it('ends every accepted job in exactly one terminal state through kills, restarts and outages', async () => {
    const accepted = new Map<string, string>();
    let refused = 0;
    const intakePort = () =>
      (services.get('intake')!.logs.find((l) => l.msg === 'intake listening')!.address as { port: number }).port;
    const modes = (i: number) => (i % 200 === 7 ? 'crash' : i % 20 === 3 ? 'always' : i % 10 === 5 ? 'once' : 'ok');

    const load = (async () => {
      const until = Date.now() + LOAD_SECONDS * 1000;
      for (let i = 0; Date.now() < until; i++) {
        const keyed = i % 10 === 0;
        const body = {
          type: 'chaos',
          payload: { i, mode: modes(i) },
          ...(keyed ? { idempotencyKey: `chaos-${i}` } : {}),
        };
        try {
          const res = await fetch(`http://127.0.0.1:${intakePort()}/v1/jobs`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify(body),
          });
          if (res.status === 202) accepted.set(((await res.json()) as { jobId: string }).jobId, body.payload.mode);
          else refused++;
        } catch {
          refused++;
        }
        await sleep(1000 / RATE);
      }
    })();

    const at = (fraction: number) => sleep(LOAD_SECONDS * 1000 * fraction);
    const faults = (async () => {
      await at(0.1);
      await services.get('worker-1')!.stop('SIGKILL');
      await at(0.1);
      await services.get('worker-2')!.stop('SIGKILL');
      await at(0.1);
      const nats = infra.started.find((h) => h.name === 'nats')!;
      await nats.stop();
      await sleep(2_000);
      infra = {
        ...infra,
        started: [
          ...infra.started.filter((h) => h.name !== 'nats'),
          ...(await ensureInfra({ dataDir, ports, log: () => undefined })).started,
        ],
      };
      await at(0.05);
      pgProxy.pause();
      await sleep(5_000);
      await services.get('dlq-manager')!.stop('SIGKILL');
      await sleep(10_000);
      pgProxy.resume();
      await services.get('retry-scheduler')!.stop('SIGKILL');
      redisProxy.pause();
      await sleep(15_000);
      redisProxy.resume();
    })();
    await Promise.all([load, faults]);

    // Reconcile against the audit trail.
    const db = new pg.Client({ connectionString: `postgres://postgres@127.0.0.1:${ports.postgres}/redrive_chaos` });
    await db.connect();
    const ids = [...accepted.keys()];
    const terminal = async () =>
      (
        await db.query<{ job_id: string; succeeded: string; dead: string }>(
          `SELECT job_id,
                  count(*) FILTER (WHERE kind = 'attempt.succeeded') AS succeeded,
                  count(*) FILTER (WHERE kind = 'job.dead_lettered') AS dead
             FROM audit_events WHERE job_id = ANY($1) GROUP BY job_id`,
          [ids],
        )
      ).rows;
    let rows = await terminal();
    const deadline = Date.now() + 180_000;
    while (Date.now() < deadline && rows.filter((r) => Number(r.succeeded) + Number(r.dead) > 0).length < ids.length) {
      await sleep(2_000);
      rows = await terminal();
    }
    const byId = new Map(rows.map((r) => [r.job_id, { succeeded: Number(r.succeeded), dead: Number(r.dead) }]));
    const succeeded = ids.filter((id) => (byId.get(id)?.succeeded ?? 0) > 0 && !(byId.get(id)?.dead ?? 0));
    const dead = ids.filter((id) => (byId.get(id)?.dead ?? 0) > 0 && !(byId.get(id)?.succeeded ?? 0));
    const both = ids.filter((id) => (byId.get(id)?.dead ?? 0) > 0 && (byId.get(id)?.succeeded ?? 0) > 0);
    const lost = ids.filter((id) => !byId.has(id) || (byId.get(id)!.succeeded === 0 && byId.get(id)!.dead === 0));
    const duplicates = ids.reduce((n, id) => n + Math.max(0, (byId.get(id)?.succeeded ?? 0) - 1), 0);
    const keyedDuplicates = ids.filter((id) => id.startsWith('chaos-') && (byId.get(id)?.succeeded ?? 0) > 1).length;
    const wrongDeath = dead.filter((id) => accepted.get(id) !== 'always' && accepted.get(id) !== 'crash');
    await db.end();
    console.log(
      `accepted ${ids.length}, succeeded ${succeeded.length}, dead-lettered ${dead.length}, lost ${lost.length}, duplicates ${duplicates}` +
        ` (refused with 5xx during outages: ${refused}; keyed duplicates: ${keyedDuplicates}; both states: ${both.length})`,
    );
    if (lost.length > 0)
      console.log(
        'lost:',
        lost
          .slice(0, 20)
          .map((id) => `${id}:${accepted.get(id)}`)
          .join(' '),
      );
    expect(ids.length).toBeGreaterThan(LOAD_SECONDS * RATE * 0.5);
    expect(lost).toEqual([]);
    expect(both).toEqual([]);
    expect(keyedDuplicates).toBe(0);
    expect(wrongDeath).toEqual([]);
  }, 600_000);
});
