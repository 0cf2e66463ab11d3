import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/nats-core';
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createSchedulerClient,
  MicroError,
  SCHEDULER_SERVICE_NAME,
  startMicroService,
  Topology,
  type MicroServer,
  type ScheduleView,
} from '@redrive/messaging';
import { createMetricsRegistry } from '@redrive/telemetry';
import { connectTestClient, SHARED_NATS_URL, uniquePrefix } from '@redrive/test-support';
import { buildIntakeApp } from '../../services/intake/src/app.js';
import { loadIntakeConfig } from '../../services/intake/src/config.js';

// How intake turns the scheduler's micro errors into HTTP, in process (app.inject): a stand-in
// for the retry-scheduler's micro service under this file's own prefix answers what the test
// asks of it, through the real client (createSchedulerClient) and server (micro.ts).

const prefix = uniquePrefix('isched');
const topology = new Topology({ prefix });
let nc: NatsConnection;
let app: FastifyInstance;
let alone: FastifyInstance;
let stand: MicroServer;

const view: ScheduleView = {
  id: 'ok',
  kind: 'delay',
  status: 'active',
  subject: topology.jobSubject('normal', 'tick'),
  jobId: 'job-ok',
  attempt: 0,
  nextDueAt: '2030-01-01T00:00:00.000Z',
  startsAt: '2030-01-01T00:00:00.000Z',
  fireCount: 0,
  createdAt: '2029-01-01T00:00:00.000Z',
  updatedAt: '2029-01-01T00:00:00.000Z',
  lastFiredAt: null,
  finishedAt: null,
};

/** What the stand-in answers for a schedule id. */
async function answer(id: string): Promise<ScheduleView> {
  switch (id) {
    case 'gone':
      throw new MicroError(404, 'NOT_FOUND', 'no schedule "gone"');
    case 'done':
      throw new MicroError(409, 'CONFLICT', 'schedule "done" has already completed');
    case 'boom':
      throw new Error('Postgres is down');
    case 'odd':
      throw new MicroError(418, 'TEAPOT', 'no code the scheduler has');
    default:
      return { ...view, id };
  }
}

async function build(topo: Topology) {
  const config = loadIntakeConfig({
    NATS_URL: SHARED_NATS_URL,
    REDRIVE_PREFIX: prefix,
    INTAKE_ALLOW_ANONYMOUS: 'true',
  });
  const js = jetstream(nc);
  return buildIntakeApp({
    config,
    js,
    jsm: await jetstreamManager(nc),
    topology: topo,
    registry: createMetricsRegistry('intake-schedules-test', { defaults: false }),
    logger: pino({ level: 'silent' }),
    scheduler: createSchedulerClient(nc, topo, { timeoutMs: 2_000 }),
  });
}

beforeAll(async () => {
  nc = await connectTestClient();
  stand = await startMicroService(nc, {
    name: `${SCHEDULER_SERVICE_NAME}-standin`,
    version: '0.0.0',
    description: 'a stand-in for the retry-scheduler',
    metadata: { prefix },
    root: topology.schedulerApiRoot,
    endpoints: {
      list: { run: async () => ({ schedules: [view] }) },
      get: { run: async (req) => answer((req as { id: string }).id) },
      cancel: { run: async (req) => answer((req as { id: string }).id) },
    },
    logger: pino({ level: 'silent' }),
  });
  app = await build(topology);
  // An installation whose scheduler is not running.
  alone = await build(new Topology({ prefix: `${prefix}x` }));
});

afterAll(async () => {
  await app?.close();
  await alone?.close();
  await stand?.stop();
  await nc?.close();
});

const call = (a: FastifyInstance, method: 'GET' | 'DELETE', url: string) => a.inject({ method, url });

describe("/v1/schedules over the scheduler's micro service", () => {
  it('answers what the scheduler answers', async () => {
    const one = await call(app, 'GET', '/v1/schedules/ok');
    expect(one.statusCode).toBe(200);
    expect(one.json()).toMatchObject({ id: 'ok', jobId: 'job-ok' });
    const page = await call(app, 'GET', '/v1/schedules');
    expect(page.json()).toMatchObject({ schedules: [{ id: 'ok' }] });
  });

  it("keeps the meaning of the scheduler's refusals", async () => {
    const missing = await call(app, 'GET', '/v1/schedules/gone');
    expect(missing.statusCode).toBe(404);
    expect(missing.json()).toMatchObject({ code: 'NOT_FOUND', message: 'no schedule "gone"' });
    const finished = await call(app, 'DELETE', '/v1/schedules/done');
    expect(finished.statusCode).toBe(409);
    expect(finished.json()).toMatchObject({ code: 'CONFLICT' });
  });

  it('is unavailable (503, Retry-After) when the scheduler fails inside, or nothing answers', async () => {
    for (const res of [await call(app, 'GET', '/v1/schedules/boom'), await call(alone, 'GET', '/v1/schedules/ok')]) {
      expect(res.statusCode).toBe(503);
      expect(res.headers['retry-after']).toBe('1');
      expect(res.json()).toMatchObject({ code: 'SCHEDULER_UNAVAILABLE' });
      expect(res.json().message).not.toMatch(/Postgres/);
    }
  });

  it('does not pass on a code the scheduler does not have', async () => {
    const res = await call(app, 'GET', '/v1/schedules/odd');
    expect(res.statusCode).toBe(500);
    expect(res.json()).toMatchObject({ code: 'INTERNAL' });
  });
});
