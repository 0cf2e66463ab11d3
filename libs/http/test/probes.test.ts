import { afterEach, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { Counter, Registry } from 'prom-client';
import type { FastifyInstance } from 'fastify';
import { createHttpApp, registerProbes } from '@redrive/http';

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
      'a readiness check that throws',
      async (): Promise<string[]> => {
        throw new Error('postgres: connection refused');
      },
      ['postgres: connection refused'],
    ],
  ])('answers /readyz 503 listing the problems for %s', async (_label, readiness, problems) => {
    const res = await (await build(readiness)).inject({ method: 'GET', url: '/readyz' });
    expect(res.statusCode).toBe(503);
    expect(res.json()).toEqual({ status: 'not ready', problems });
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
