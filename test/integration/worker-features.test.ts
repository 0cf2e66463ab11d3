import { jetstream, jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/nats-core';
import { Redis } from 'ioredis';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCompletionStore, decodeEvents, publishJob, Topology } from '@redrive/messaging';
import {
  connectTestClient,
  createTestDatabase,
  deleteStreams,
  freePort,
  SHARED_NATS_URL,
  startService,
  readRecords,
  recordFilePath,
  startRedisServer,
  streamMessages,
  uniquePrefix,
  waitFor,
  type PrivateRedis,
  type ServiceProcess,
  type TestDatabase,
} from '@redrive/test-support';

// Steps in Postgres, limits and idempotency markers in Redis, and Redis going away: a real
// worker process against the shared NATS, a fresh database and a private redis-server.

interface Run {
  id: string;
  attempt: number;
  at: number;
  event?: string;
}

const prefix = uniquePrefix('feat');
const topology = new Topology({ prefix });
const recordFile = recordFilePath('feat');
let nc: NatsConnection;
let jsm: JetStreamManager;
let db: TestDatabase;
let redis: PrivateRedis;
let worker: ServiceProcess;
let counter = 0;

const runs = (id: string): Run[] => readRecords<Run>(recordFile, id);

async function submit(
  type: string,
  payload: unknown,
  jobId = `${type}-${++counter}-${prefix}`,
  idempotencyKey?: string,
): Promise<string> {
  await publishJob(jetstream(nc), {
    subject: topology.jobSubject('normal', type),
    payload: new TextEncoder().encode(JSON.stringify(payload)),
    jobId,
    msgId: `${jobId}-${Date.now()}`,
    attempt: 0,
    ...(idempotencyKey ? { idempotencyKey } : {}),
  });
  return jobId;
}

async function eventsOf(jobId: string) {
  const all = (await streamMessages(jsm, topology.streams.events)).flatMap((m) => decodeEvents(m.data));
  return all.filter((e) => e.jobId === jobId);
}

beforeAll(async () => {
  nc = await connectTestClient();
  jsm = await jetstreamManager(nc);
  db = await createTestDatabase('feat');
  redis = await startRedisServer();
  worker = startService('sync-worker', {
    NATS_URL: SHARED_NATS_URL,
    REDRIVE_PREFIX: prefix,
    RECORD_FILE: recordFile,
    WORKER_PORT: String(await freePort()),
    WORKER_HANDLERS: './test/fixtures/retry-handlers.mjs',
    WORKER_TYPES: 'steps,limited,flaky,sleepy',
    REDIS_URL: redis.url,
    DATABASE_URL: db.url,
    WORKER_RATE_LIMITS: JSON.stringify({ limited: { perSecond: 5 } }),
    RETRY_CLASSES: JSON.stringify({ network: { baseMs: 100, jitter: 0 } }),
  });
  await worker.waitForLog((l) => l.msg === 'sync-worker running', 30_000);
}, 60_000);

afterAll(async () => {
  await worker?.stop();
  await redis?.kill();
  await deleteStreams(nc, prefix);
  await nc.close();
  await db?.drop();
});

describe('resumable steps', () => {
  it('runs steps 1 and 2 exactly once when step 3 fails once and the job is retried', async () => {
    const id = await submit('steps', {});
    await waitFor(() => runs(id).filter((r) => r.event === 'step-three').length === 2, { what: 'step three twice' });
    const events = runs(id).map((r) => `${r.event}@${r.attempt}`);
    expect(events).toEqual(['step-one@1', 'step-two@1', 'step-three@1', 'step-three@2']);
  });

  it("removes the job's checkpoints once it succeeded", async () => {
    const id = await submit('steps', {});
    await waitFor(() => runs(id).filter((r) => r.event === 'step-three').length === 2, { what: 'step three twice' });
    const sql = new pg.Pool({ connectionString: db.url, max: 1 });
    try {
      await waitFor(
        async () => (await sql.query('SELECT 1 FROM job_steps WHERE job_id = $1', [id])).rowCount === 0 || undefined,
        { what: 'the checkpoints of the finished job to be removed' },
      );
    } finally {
      await sql.end();
    }
  });
});

describe('rate limits', () => {
  it('keeps 50 jobs to at most 5 per second, and all 50 succeed with no dead letters', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 50; i++) ids.push(await submit('limited', { i }));
    await waitFor(() => ids.every((id) => runs(id).length > 0), { timeoutMs: 20_000, what: 'all 50 jobs to run' });
    const times = ids.map((id) => runs(id)[0]!.at).sort((a, b) => a - b);
    // Evenly spaced: no one-second window holds more than 5 (6 with both ends in it).
    for (let i = 0; i < times.length; i++) {
      const inWindow = times.filter((t) => t >= times[i]! && t < times[i]! + 1_000).length;
      expect(inWindow).toBeLessThanOrEqual(6);
    }
    expect(times[times.length - 1]! - times[0]!).toBeGreaterThanOrEqual(9_000);
    for (const id of ids) expect(runs(id)).toHaveLength(1);
    // Held back, not failed: every run is attempt 1 and nothing was dead-lettered.
    expect(ids.every((id) => runs(id)[0]!.attempt === 1)).toBe(true);
    expect((await jsm.streams.info(topology.streams.dlq)).state.messages).toBe(0);
  }, 40_000);
});

describe('idempotency markers', () => {
  it('does not run again a job whose success is recorded (an ack that was lost)', async () => {
    const id = await submit('flaky', { failTimes: 0 });
    await waitFor(() => runs(id).length === 1, { what: 'the first run' });
    await waitFor(() => worker.logs.some((l) => l.msg === 'job succeeded' && l.jobId === id));
    // The same job delivered again, as after a lost ack.
    await submit('flaky', { failTimes: 0 }, id);
    await waitFor(
      () => worker.logs.some((l) => l.msg === 'job already completed, acked without running' && l.jobId === id),
      {
        what: 'the redelivery to be skipped',
      },
    );
    expect(runs(id)).toHaveLength(1);
    const client = new Redis(redis.port, '127.0.0.1');
    try {
      expect(await client.exists(`redrive:${prefix}:done:${id}`)).toBe(1);
    } finally {
      client.disconnect();
    }
  });
});

describe('Redis outage', () => {
  it('still completes jobs with Redis stopped, and counts the degradation', async () => {
    await redis.kill();
    const ids: string[] = [];
    for (let i = 0; i < 10; i++) ids.push(await submit('limited', { i, down: true }));
    ids.push(await submit('flaky', { failTimes: 1 }));
    await waitFor(() => ids.every((id) => runs(id).length > 0) && runs(ids[10]!).length === 2, {
      timeoutMs: 20_000,
      what: 'jobs to complete without Redis',
    });
    const { port } = worker.logs.find((l) => l.msg === 'sync-worker running')!.address as { port: number };
    const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    expect(metrics).toMatch(/redrive_redis_degraded_total\{[^}]*feature="rate_limit"[^}]*\} [1-9]/);
    await redis.start();
  }, 40_000);
});

describe('completion records of idempotency-keyed jobs', () => {
  it('keeps a keyed job from running twice while Redis is down: the record is in NATS', async () => {
    await redis.kill();
    try {
      const id = await submit('flaky', { failTimes: 0 }, `keyed-${prefix}`, `keyed-${prefix}`);
      await waitFor(() => worker.logs.some((l) => l.msg === 'job succeeded' && l.jobId === id), {
        what: 'the keyed job to succeed',
      });
      // Delivered again (a lost ack, or the same key submitted after the duplicate window).
      await submit('flaky', { failTimes: 0 }, id, id);
      await waitFor(
        () => worker.logs.some((l) => l.msg === 'job already completed, acked without running' && l.jobId === id),
        { what: 'the second delivery to be skipped' },
      );
      expect(runs(id)).toHaveLength(1);
      expect(await createCompletionStore(jetstream(nc), jsm, topology).get(id)).toMatchObject({
        jobId: id,
        attempt: 1,
      });
      // One success in the audit trail: the skip sends the same success event (same id) again.
      const events = await eventsOf(id);
      expect(new Set(events.filter((e) => e.kind === 'attempt.succeeded').map((e) => e.id))).toEqual(
        new Set([`succeeded:${id}`]),
      );
      expect(events.filter((e) => e.kind === 'job.skipped').map((e) => e.reason)).toEqual(['already_completed']);
    } finally {
      await redis.start();
    }
  }, 30_000);

  it('records only the first success when another run of the job completed while this one ran', async () => {
    const id = `keyed-slow-${prefix}`;
    await submit('sleepy', { ms: 1_500 }, id, id);
    await waitFor(() => runs(id).some((r) => r.event === 'started'), { what: 'the run to start' });
    // Another run (a redelivery to another worker, say) finishes first and records the success.
    const otherAt = new Date().toISOString();
    const other = await createCompletionStore(jetstream(nc), jsm, topology).record({
      jobId: id,
      attempt: 1,
      at: otherAt,
    });
    expect(other.recorded).toBe(true);
    await waitFor(
      () => worker.logs.some((l) => l.jobId === id && /only the first success counts/.test(String(l.msg))),
      { what: 'the late success to be refused' },
    );
    const events = await waitFor(
      async () => ((await eventsOf(id)).some((e) => e.kind === 'job.skipped') ? eventsOf(id) : undefined),
      { what: 'the skip event', intervalMs: 300 },
    );
    // The success in the audit trail is the other run's (its attempt and time), under the one id.
    expect(events.filter((e) => e.kind === 'attempt.succeeded').map((e) => [e.id, e.at])).toEqual([
      [`succeeded:${id}`, otherAt],
    ]);
    expect(events.filter((e) => e.kind === 'job.skipped').map((e) => e.reason)).toEqual(['completed_by_another_run']);
  }, 30_000);
});
