import { jetstream, jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/nats-core';
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeEvents, provisionJobTypes, ensureStreams, Topology } from '@redrive/messaging';
import { createMetricsRegistry } from '@redrive/telemetry';
import { connectTestClient, deleteStreams, SHARED_NATS_URL, uniquePrefix } from '@redrive/test-support';
import { buildIntakeApp, FORWARD_HEADROOM_BYTES } from '../../services/intake/src/app.js';
import { loadIntakeConfig } from '../../services/intake/src/config.js';

// Intake's HTTP contract, in process (app.inject) against the shared NATS. A consumer exists
// for the type "known" but nobody pulls from it, so the stream shows exactly what was accepted.

const prefix = uniquePrefix('intake');
let nc: NatsConnection;
let jsm: JetStreamManager;
let app: FastifyInstance;
let keyed: FastifyInstance;
let topology: Topology;

async function build(env: Record<string, string>) {
  const config = loadIntakeConfig({
    NATS_URL: SHARED_NATS_URL,
    REDRIVE_PREFIX: prefix,
    INTAKE_MAX_PAYLOAD: '1KiB',
    INTAKE_MAX_BATCH: '5',
    INTAKE_ALLOW_ANONYMOUS: env.INTAKE_API_KEYS ? 'false' : 'true',
    ...env,
  });
  return buildIntakeApp({
    config,
    js: jetstream(nc),
    jsm,
    topology,
    registry: createMetricsRegistry('intake-test', { defaults: false }),
    logger: pino({ level: 'silent' }),
  });
}

async function storedJobs(): Promise<number> {
  return (await jsm.streams.info(topology.streams.jobs)).state.messages;
}

const post = (
  a: FastifyInstance,
  url: string,
  payload: string,
  headers: Record<string, string> = { 'content-type': 'application/json' },
) => a.inject({ method: 'POST', url, payload, headers });

beforeAll(async () => {
  nc = await connectTestClient();
  jsm = await jetstreamManager(nc);
  topology = new Topology({ prefix });
  await ensureStreams(jsm, topology.streamConfigs());
  await provisionJobTypes(jsm, topology, ['known'], { ackWaitMs: 30_000, maxDeliver: 5, maxAckPending: 100 });
  app = await build({});
  keyed = await build({ INTAKE_API_KEYS: 'k-one,k-two' });
});

afterAll(async () => {
  await app?.close();
  await keyed?.close();
  await deleteStreams(nc, prefix);
  await nc.close();
});

describe('bad input gets a 4xx that says what is wrong, and nothing is stored', () => {
  const cases: {
    name: string;
    url?: string;
    body: string;
    headers?: Record<string, string>;
    status: number;
    code: string;
    message: RegExp;
  }[] = [
    { name: 'malformed JSON', body: '{"type":"known",', status: 400, code: 'INVALID_JSON', message: /not valid JSON/ },
    { name: 'an empty JSON body', body: '', status: 400, code: 'INVALID_JSON', message: /empty/ },
    {
      name: 'a text/plain body',
      body: 'hello',
      headers: { 'content-type': 'text/plain' },
      status: 415,
      code: 'UNSUPPORTED_MEDIA_TYPE',
      message: /"text\/plain".*application\/json/,
    },
    {
      name: 'a type with upper case',
      body: '{"type":"Known","payload":{}}',
      status: 400,
      code: 'VALIDATION_ERROR',
      message: /body\.type must match/,
    },
    {
      name: 'a type with a dot',
      body: '{"type":"a.b","payload":{}}',
      status: 400,
      code: 'VALIDATION_ERROR',
      message: /body\.type must match/,
    },
    {
      name: 'a missing type',
      body: '{"payload":{}}',
      status: 400,
      code: 'VALIDATION_ERROR',
      message: /required field "type"/,
    },
    {
      name: 'a missing payload',
      body: '{"type":"known"}',
      status: 400,
      code: 'VALIDATION_ERROR',
      message: /required field "payload"/,
    },
    {
      name: 'an unknown priority',
      body: '{"type":"known","payload":{},"priority":"urgent"}',
      status: 400,
      code: 'VALIDATION_ERROR',
      message: /body\.priority must be one of high, normal, low/,
    },
    {
      name: 'an unknown field',
      body: '{"type":"known","payload":{},"idempotency_key":"x"}',
      status: 400,
      code: 'VALIDATION_ERROR',
      message: /unknown field "idempotency_key"/,
    },
    {
      name: 'maxAttempts as a string',
      body: '{"type":"known","payload":{},"maxAttempts":"3"}',
      status: 400,
      code: 'VALIDATION_ERROR',
      message: /body\.maxAttempts must be integer/,
    },
    {
      name: 'a payload over the limit',
      body: JSON.stringify({ type: 'known', payload: 'x'.repeat(1100) }),
      status: 413,
      code: 'PAYLOAD_TOO_LARGE',
      message: /payload is 1102 bytes encoded, over the limit of 1024 bytes/,
    },
    {
      name: 'a body far over the limit',
      body: JSON.stringify({ type: 'known', payload: 'x'.repeat(200_000) }),
      status: 413,
      code: 'BODY_TOO_LARGE',
      message: /too large/i,
    },
    {
      name: 'a type no worker serves',
      body: '{"type":"unserved","payload":{}}',
      status: 422,
      code: 'NO_WORKER',
      message: /no worker consumes job type "unserved"/,
    },
    {
      name: 'a batch with too many jobs',
      url: '/v1/jobs:batch',
      body: JSON.stringify({ jobs: Array.from({ length: 6 }, () => ({ type: 'known', payload: 1 })) }),
      status: 400,
      code: 'VALIDATION_ERROR',
      message: /body\.jobs must NOT have more than 5 items/,
    },
    {
      name: 'a batch with one bad job',
      url: '/v1/jobs:batch',
      body: JSON.stringify({
        jobs: [
          { type: 'known', payload: 1 },
          { type: 'known', payload: 'x'.repeat(2000) },
        ],
      }),
      status: 413,
      code: 'PAYLOAD_TOO_LARGE',
      message: /jobs\[1\]/,
    },
  ];

  it('keeps room under the server max_payload for the headers of a dead letter or hand-off', async () => {
    const max = nc.info!.max_payload;
    const wide = await buildIntakeApp({
      config: loadIntakeConfig({
        NATS_URL: SHARED_NATS_URL,
        REDRIVE_PREFIX: prefix,
        INTAKE_ALLOW_ANONYMOUS: 'true',
        INTAKE_MAX_PAYLOAD: String(max),
      }),
      js: jetstream(nc),
      jsm,
      topology,
      registry: createMetricsRegistry('intake-test', { defaults: false }),
      logger: pino({ level: 'silent' }),
      serverMaxPayload: max,
    });
    try {
      const before = await storedJobs();
      // A body of exactly max_payload would be stored, then NAKed forever when it fails.
      const res = await post(wide, '/v1/jobs', JSON.stringify({ type: 'known', payload: 'x'.repeat(max - 2) }));
      expect(res.statusCode).toBe(413);
      expect(res.json().message).toContain(`over the limit of ${max - FORWARD_HEADROOM_BYTES} bytes`);
      expect(await storedJobs()).toBe(before);
      const fits = 'x'.repeat(max - FORWARD_HEADROOM_BYTES - 2);
      expect((await post(wide, '/v1/jobs', JSON.stringify({ type: 'known', payload: fits }))).statusCode).toBe(202);
    } finally {
      await wide.close();
    }
  });

  it.each(cases)('$name → $status $code', async (c) => {
    const before = await storedJobs();
    const res = await post(app, c.url ?? '/v1/jobs', c.body, c.headers);
    expect(res.statusCode).toBe(c.status);
    const body = res.json();
    expect(Object.keys(body).sort()).toEqual(['code', 'error', 'message', 'statusCode']);
    expect(body.statusCode).toBe(c.status);
    expect(body.code).toBe(c.code);
    expect(body.message).toMatch(c.message);
    expect(await storedJobs()).toBe(before);
  });
});

describe('producer API keys', () => {
  it('refuses a request without a key or with a wrong key when keys are configured', async () => {
    const before = await storedJobs();
    const none = await post(keyed, '/v1/jobs', '{"type":"known","payload":{}}');
    expect(none.statusCode).toBe(401);
    expect(none.headers['www-authenticate']).toBe('Bearer');
    const wrong = await post(keyed, '/v1/jobs', '{"type":"known","payload":{}}', {
      'content-type': 'application/json',
      authorization: 'Bearer nope',
    });
    expect(wrong.statusCode).toBe(401);
    expect(await storedJobs()).toBe(before);
  });

  it('accepts a configured key as a bearer token or X-Api-Key', async () => {
    const bearer = await post(keyed, '/v1/jobs', '{"type":"known","payload":{}}', {
      'content-type': 'application/json',
      authorization: 'Bearer k-two',
    });
    expect(bearer.statusCode).toBe(202);
    const header = await post(keyed, '/v1/jobs', '{"type":"known","payload":{}}', {
      'content-type': 'application/json',
      'x-api-key': 'k-one',
    });
    expect(header.statusCode).toBe(202);
  });
});

describe('accepting jobs', () => {
  it('answers 202 with the stream sequence only after the job is stored', async () => {
    const res = await post(app, '/v1/jobs', '{"type":"known","payload":{"a":1},"priority":"high"}');
    expect(res.statusCode).toBe(202);
    const body = res.json();
    const stored = await jsm.streams.getMessage(topology.streams.jobs, { seq: body.seq });
    expect(stored?.subject).toBe(`${prefix}.jobs.high.known`);
    expect(stored?.header.get('Redrive-Job-Id')).toBe(body.jobId);
    expect(new TextDecoder().decode(stored?.data)).toBe('{"a":1}');
    // …and the audit trail learns that it was accepted.
    const last = await jsm.streams.getMessage(topology.streams.events, {
      last_by_subj: topology.eventSubject('job.accepted'),
    });
    expect(decodeEvents(last!.data).at(-1)).toMatchObject({
      kind: 'job.accepted',
      jobId: body.jobId,
      type: 'known',
      attempt: 0,
    });
  });

  it('accepts a batch with one result per job, in order', async () => {
    const jobs = [
      { type: 'known', payload: { i: 0 } },
      { type: 'known', payload: { i: 1 }, priority: 'low' },
      { type: 'known', payload: { i: 2 }, idempotencyKey: `b-${prefix}` },
      { type: 'known', payload: { i: 2 }, idempotencyKey: `b-${prefix}` },
    ];
    const res = await post(app, '/v1/jobs:batch', JSON.stringify({ jobs }));
    expect(res.statusCode).toBe(202);
    const body = res.json();
    expect(body.accepted).toBe(4);
    expect(body.failed).toBe(0);
    expect(body.results).toHaveLength(4);
    for (const [i, r] of body.results.entries()) {
      const stored = await jsm.streams.getMessage(topology.streams.jobs, { seq: r.seq });
      expect(JSON.parse(new TextDecoder().decode(stored!.data))).toEqual(jobs[i]!.payload);
    }
    expect(body.results[2].jobId).toBe(`known:b-${prefix}`);
    expect([body.results[2].duplicate, body.results[3].duplicate].sort()).toEqual([false, true]);
  });

  it('answers 503 with Retry-After when the stream is full, instead of dropping older jobs', async () => {
    const small = uniquePrefix('full');
    const topo = new Topology({
      prefix: small,
      jobs: { maxAgeMs: 0, maxBytes: -1, maxMsgs: 2, duplicateWindowMs: 60_000 },
    });
    await ensureStreams(jsm, topo.streamConfigs());
    await provisionJobTypes(jsm, topo, ['known'], { ackWaitMs: 30_000, maxDeliver: 5, maxAckPending: 100 });
    const config = loadIntakeConfig({
      NATS_URL: SHARED_NATS_URL,
      REDRIVE_PREFIX: small,
      JOBS_MAX_MSGS: '2',
      INTAKE_ALLOW_ANONYMOUS: 'true',
    });
    const full = await buildIntakeApp({
      config,
      js: jetstream(nc),
      jsm,
      topology: topo,
      registry: createMetricsRegistry('t', { defaults: false }),
      logger: pino({ level: 'silent' }),
    });
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 3; i++)
        statuses.push((await post(full, '/v1/jobs', JSON.stringify({ type: 'known', payload: { i } }))).statusCode);
      expect(statuses).toEqual([202, 202, 503]);
      const refused = await post(full, '/v1/jobs', JSON.stringify({ type: 'known', payload: { i: 9 } }));
      expect(refused.headers['retry-after']).toBe('1');
      expect(refused.json().message).toMatch(/not accepted/);
      // The two accepted jobs are still there.
      const first = await jsm.streams.getMessage(topo.streams.jobs, { seq: 1 });
      expect(new TextDecoder().decode(first!.data)).toBe('{"i":0}');
    } finally {
      await full.close();
      await deleteStreams(nc, small);
    }
  });
});

describe('probes', () => {
  it('is ready when NATS answers and JOBS exists, and serves metrics', async () => {
    expect((await app.inject('/healthz')).statusCode).toBe(200);
    expect((await app.inject('/readyz')).json()).toEqual({ status: 'ready' });
    const metrics = await app.inject('/metrics');
    expect(metrics.body).toContain('redrive_intake_jobs_accepted_total');
  });
});
