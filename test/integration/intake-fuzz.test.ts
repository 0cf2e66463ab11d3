import { jetstream, jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/nats-core';
import fc from 'fast-check';
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { provisionJobTypes, ensureStreams, Topology } from '@redrive/messaging';
import { createMetricsRegistry } from '@redrive/telemetry';
import { connectTestClient, deleteStreams, SHARED_NATS_URL, uniquePrefix } from '@redrive/test-support';
import { buildIntakeApp } from '../../services/intake/src/app.js';
import { loadIntakeConfig } from '../../services/intake/src/config.js';

// Property-based: thousands of malformed, oversized, deeply nested and wrongly typed requests.
// Every answer is a 4xx with the uniform JSON error body, intake never fails, and nothing
// reaches JOBS.

const prefix = uniquePrefix('fuzz');
let nc: NatsConnection;
let jsm: JetStreamManager;
let app: FastifyInstance;
let topology: Topology;

beforeAll(async () => {
  nc = await connectTestClient();
  jsm = await jetstreamManager(nc);
  topology = new Topology({ prefix });
  await ensureStreams(jsm, topology.streamConfigs());
  await provisionJobTypes(jsm, topology, ['known'], { ackWaitMs: 30_000, maxDeliver: 5, maxAckPending: 100 });
  const config = loadIntakeConfig({
    NATS_URL: SHARED_NATS_URL,
    REDRIVE_PREFIX: prefix,
    INTAKE_MAX_PAYLOAD: '4KiB',
    INTAKE_MAX_BATCH: '10',
    INTAKE_ALLOW_ANONYMOUS: 'true',
  });
  app = await buildIntakeApp({
    config,
    js: jetstream(nc),
    jsm,
    topology,
    registry: createMetricsRegistry('fuzz', { defaults: false }),
    logger: pino({ level: 'silent' }),
  });
});

afterAll(async () => {
  await app?.close();
  await deleteStreams(nc, prefix);
  await nc.close();
});

// Values that are never a valid job request: a wrong type somewhere, a bad field, or junk.
const badType = fc.oneof(
  fc.string().filter((s) => !/^[a-z0-9][a-z0-9_-]{0,63}$/.test(s)),
  fc.integer(),
  fc.constant(null),
  fc.array(fc.string()),
  fc.constant({}),
);
const deep = fc.letrec((tie) => ({
  node: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.jsonValue(),
    fc.array(tie('node')),
    fc.dictionary(fc.string(), tie('node')),
  ),
})).node;
const invalidJob = fc.oneof(
  fc.record({ type: badType, payload: deep }),
  fc.record({
    type: fc.constant('known'),
    payload: deep,
    priority: fc.string().filter((p) => !['high', 'normal', 'low'].includes(p)),
  }),
  fc.record({
    type: fc.constant('known'),
    payload: deep,
    maxAttempts: fc.oneof(fc.string(), fc.double(), fc.integer({ max: 0 }), fc.integer({ min: 1001 })),
  }),
  fc.record({
    type: fc.constant('known'),
    payload: deep,
    idempotencyKey: fc.oneof(fc.constant(''), fc.integer(), fc.string({ minLength: 256, maxLength: 300 })),
  }),
  fc.record({ type: fc.constant('known') }),
  fc.record({ type: fc.constant('known'), payload: deep, unexpected: fc.anything().filter((v) => v !== undefined) }),
  fc.record({ type: fc.constant('known'), payload: fc.string({ minLength: 5_000, maxLength: 6_000 }) }),
  fc.anything().filter((v) => typeof v !== 'object' || v === null || Array.isArray(v)),
);
const rawBody = fc.oneof(
  invalidJob.map((v) => JSON.stringify(v) ?? 'undefined'),
  fc.string(), // usually not JSON at all
  fc
    .string()
    .map((s) => `{"type":"known","payload":${s}`)
    .filter((s) => {
      try {
        JSON.parse(s);
        return false;
      } catch {
        return true; // truncated: never valid JSON
      }
    }),
  fc.nat({ max: 3_000 }).map((n) => `${'['.repeat(n)}${']'.repeat(n)}`), // deeply nested arrays
);
const contentType = fc.oneof(
  { weight: 5, arbitrary: fc.constant('application/json') },
  fc.constantFrom(
    'text/plain',
    'application/x-www-form-urlencoded',
    'multipart/form-data; boundary=x',
    'application/xml',
    '',
  ),
);

describe('intake under malformed input', () => {
  it('answers every malformed request with a 4xx JSON error body, and stores nothing', async () => {
    const before = (await jsm.streams.info(topology.streams.jobs)).state.messages;
    await fc.assert(
      fc.asyncProperty(rawBody, contentType, fc.boolean(), async (body, ct, batch) => {
        const payload = batch && body.startsWith('{') ? `{"jobs":[${body}]}` : body;
        const res = await app.inject({
          method: 'POST',
          url: batch ? '/v1/jobs:batch' : '/v1/jobs',
          payload,
          headers: ct ? { 'content-type': ct } : {},
        });
        expect(res.statusCode).toBeGreaterThanOrEqual(400);
        expect(res.statusCode).toBeLessThan(500);
        const err = res.json();
        expect(Object.keys(err).sort()).toEqual(['code', 'error', 'message', 'statusCode']);
        expect(err.statusCode).toBe(res.statusCode);
        expect(err.message.length).toBeGreaterThan(0);
      }),
      { numRuns: 3_000 },
    );
    expect((await jsm.streams.info(topology.streams.jobs)).state.messages).toBe(before);
    expect((await app.inject('/healthz')).statusCode).toBe(200);
  }, 120_000);
});
