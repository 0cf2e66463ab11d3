import { afterEach, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { Counter, Registry } from 'prom-client';
import type { FastifyInstance } from 'fastify';
import { createHttpApp, registerProbes } from '@redrive/http';
import { memoryLogger } from './memory-logger.js';

let app: FastifyInstance | undefined;
afterEach(async () => {
  await app?.close();
  app = undefined;
});

async function build(readiness: () => Promise<string[]>, registry = new Registry()) {
  app = createHttpApp({ logger: pino({ level: 'silent' }) });
  registerProbes(app, { registry, readiness });
  await app.ready();
  return app;
}

async function buildLogged(readiness: () => Promise<string[]>) {
  const { logger, lines } = memoryLogger('info');
  app = createHttpApp({ logger });
  registerProbes(app, { registry: new Registry(), readiness });
  await app.ready();
  return { app, lines };
}

describe('registerProbes', () => {
  it('answers /healthz 200 even while dependencies are down', async () => {
    const a = await build(async () => ['NATS is not connected']);
    const res = await a.inject({ method: 'GET', url: '/healthz' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ status: 'ok' });
  });

  it('answers /readyz 200 when readiness reports no problems', async () => {
    const res = await (await build(async () => [])).inject({ method: 'GET', url: '/readyz' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ status: 'ready' });
  });

  it.each([
    ['one problem', async () => ['NATS is not connected'], ['NATS is not connected']],
    [
      'two problems',
      async () => ['NATS is not connected', 'stream JOBS missing'],
      ['NATS is not connected', 'stream JOBS missing'],
    ],
    [
      'problems with details',
      async () => [
        'Postgres is not reachable: password authentication failed for user "redrive" at 10.0.0.7:5432',
        'stream JOBS is not reachable: TimeoutError: timeout',
      ],
      ['Postgres is not reachable', 'stream JOBS is not reachable'],
    ],
    [
      'a readiness check that throws',
      async (): Promise<string[]> => {
        throw new Error('postgres: connection refused at 10.0.0.7');
      },
      ['readiness check'],
    ],
  ])('answers /readyz 503 with the names of the failing checks only, for %s', async (_label, readiness, problems) => {
    const { app: a, lines } = await buildLogged(readiness);
    const res = await a.inject({ method: 'GET', url: '/readyz' });
    expect(res.statusCode).toBe(503);
    expect(res.json()).toEqual({ status: 'not ready', problems });
    expect(res.body).not.toContain('10.0.0.7');
    expect(res.body).not.toContain('timeout');
    // The details are in the log, for the operator.
    expect(JSON.stringify(lines)).toMatch(/10\.0\.0\.7|not connected|missing/);
  });

  it('asks readiness again on every /readyz request', async () => {
    let problems = ['starting'];
    const a = await build(async () => problems);
    expect((await a.inject({ method: 'GET', url: '/readyz' })).statusCode).toBe(503);
    problems = [];
    expect((await a.inject({ method: 'GET', url: '/readyz' })).statusCode).toBe(200);
  });

  it("serves the registry's metrics in the Prometheus text format on /metrics", async () => {
    const registry = new Registry();
    const counter = new Counter({
      name: 'redrive_test_jobs_total',
      help: 'jobs seen by the test',
      labelNames: ['type'],
      registers: [registry],
    });
    counter.inc({ type: 'webhook' }, 3);
    const res = await (await build(async () => [], registry)).inject({ method: 'GET', url: '/metrics' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe(registry.contentType);
    expect(res.body).toBe(await registry.metrics());
    expect(res.body).toContain('redrive_test_jobs_total{type="webhook"} 3');
  });
});
