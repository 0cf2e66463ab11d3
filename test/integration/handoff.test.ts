import { jetstream, jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/nats-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createHeaders,
  createSchedulerClient,
  decodeEvents,
  H,
  publishJob,
  publishScheduleRequest,
  Topology,
  type LifecycleEvent,
} from '@redrive/messaging';
import {
  connectTestClient,
  createTestDatabase,
  deleteStreams,
  freePort,
  readRecords,
  recordFilePath,
  SHARED_NATS_URL,
  startService,
  uniquePrefix,
  waitFor,
  type ServiceProcess,
  type TestDatabase,
} from '@redrive/test-support';

// Retries that leave the worker for the retry-scheduler, end to end: a sync-worker that hands
// every retry off (RETRY_HANDOFF_THRESHOLD below the smallest backoff), a retry-scheduler and a
// dlq-manager, as real processes on the shared servers. Each case is a job that a hop used to
// lose: one already fired by the scheduler, handed off again (its copied Redrive-Schedule-Id
// made the scheduler take the request for the earlier one), and a redriven job whose first
// hand-off repeated its first life's message id.

interface Run {
  id: string;
  attempt: number;
  payload: { status: number; failTimes?: number };
}

const prefix = uniquePrefix('handoff');
const topology = new Topology({ prefix });
const recordFile = recordFilePath('handoff');
const OPERATOR = 'handoff-operator-token';
let nc: NatsConnection;
let jsm: JetStreamManager;
let db: TestDatabase;
let dlqUrl: string;
const services: ServiceProcess[] = [];
let counter = 0;

const runs = (id: string) => readRecords<Run>(recordFile, id);

async function events(kind: string, jobId: string): Promise<LifecycleEvent[]> {
  const info = await jsm.streams.info(topology.streams.events);
  const out: LifecycleEvent[] = [];
  for (let seq = info.state.first_seq; seq <= info.state.last_seq && info.state.messages > 0; seq++) {
    const m = await jsm.streams.getMessage(topology.streams.events, { seq }).catch(() => null);
    if (m && m.subject === topology.eventSubject(kind))
      out.push(...decodeEvents(m.data).filter((e) => e.jobId === jobId));
  }
  return out;
}

async function submit(payload: Run['payload'] & { pad?: string }, maxAttempts?: number): Promise<string> {
  const jobId = `job-${++counter}-${prefix}`;
  await publishJob(jetstream(nc), {
    subject: topology.jobSubject('normal', 'status'),
    payload: new TextEncoder().encode(JSON.stringify(payload)),
    jobId,
    msgId: jobId,
    attempt: 0,
    ...(maxAttempts ? { maxAttempts } : {}),
  });
  return jobId;
}

async function admin<T>(method: string, path: string, body?: unknown): Promise<{ status: number; body: T }> {
  const res = await fetch(`${dlqUrl}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${OPERATOR}`,
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  return { status: res.status, body: (await res.json()) as T };
}

const succeeded = (jobId: string) =>
  waitFor(async () => (await events('attempt.succeeded', jobId))[0], {
    timeoutMs: 30_000,
    what: `${jobId} to succeed`,
  });

async function deadLetterOf(jobId: string, redriveCount = 0) {
  return waitFor(
    async () => {
      const r = await admin<{ items: { id: number; reason: string; attempts: number; redriveCount: number }[] }>(
        'GET',
        `/v1/admin/dead-letters?jobId=${encodeURIComponent(jobId)}`,
      );
      return r.body.items?.find((d) => d.redriveCount === redriveCount);
    },
    { timeoutMs: 30_000, what: `the dead letter of ${jobId}` },
  );
}

beforeAll(async () => {
  nc = await connectTestClient();
  jsm = await jetstreamManager(nc);
  db = await createTestDatabase('handoff');
  const common = { NATS_URL: SHARED_NATS_URL, REDRIVE_PREFIX: prefix, DATABASE_URL: db.url };
  const [wPort, sPort, dPort] = await Promise.all([freePort(), freePort(), freePort()]);
  dlqUrl = `http://127.0.0.1:${dPort}`;
  const worker = startService('sync-worker', {
    NATS_URL: SHARED_NATS_URL,
    REDRIVE_PREFIX: prefix,
    WORKER_PORT: String(wPort),
    WORKER_HANDLERS: './test/fixtures/retry-handlers.mjs',
    RECORD_FILE: recordFile,
    // Every server-error retry waits 300 ms, longer than the hand-off threshold: each one goes
    // through the retry-scheduler.
    RETRY_CLASSES: JSON.stringify({ server: { baseMs: 300, maxMs: 300, jitter: 0 } }),
    RETRY_HANDOFF_THRESHOLD: '100ms',
    RETRY_LOCAL_DELAY_MAX: '50ms',
  });
  const scheduler = startService('retry-scheduler', { ...common, SCHEDULER_PORT: String(sPort) });
  const dlq = startService('dlq-manager', {
    ...common,
    DLQ_PORT: String(dPort),
    DLQ_TOKENS: JSON.stringify([{ name: 'ops', role: 'operator', token: OPERATOR }]),
  });
  services.push(worker, scheduler, dlq);
  await Promise.all([
    worker.waitForLog((l) => l.msg === 'sync-worker running', 45_000),
    scheduler.waitForLog((l) => l.msg === 'retry-scheduler running', 45_000),
    dlq.waitForLog((l) => l.msg === 'dlq-manager running', 45_000),
  ]);
}, 90_000);

afterAll(async () => {
  await Promise.all(services.map((s) => s.stop()));
  await deleteStreams(nc, prefix);
  await nc.close();
  await db.drop();
});

describe('retries through the retry-scheduler', () => {
  it('runs a job that fails 503 three times four times, each retry handed off, and it succeeds', async () => {
    const jobId = await submit({ status: 503, failTimes: 3 });
    const success = await succeeded(jobId);
    expect(success.attempt).toBe(4);
    expect(runs(jobId).map((r) => r.attempt)).toEqual([1, 2, 3, 4]);
    expect((await events('retry.scheduled', jobId)).map((e) => e.attempt)).toEqual([1, 2, 3]);
  });

  it('dead-letters a job that always answers 503 after its 4 attempts, as retries_exhausted', async () => {
    const jobId = await submit({ status: 503 }, 4);
    const dl = await deadLetterOf(jobId);
    expect(dl).toMatchObject({ reason: 'retries_exhausted', attempts: 4 });
    expect(runs(jobId)).toHaveLength(4);
  });

  it('retries a job the scheduler fired (a delayed job) through the scheduler again', async () => {
    const jobId = `delayed-${prefix}`;
    await publishScheduleRequest(jetstream(nc), topology, {
      kind: 'delay',
      scheduleId: `sched-${jobId}`,
      subject: topology.jobSubject('normal', 'status'),
      payload: new TextEncoder().encode(JSON.stringify({ status: 503, failTimes: 2 })),
      jobId,
      attempt: 0,
      dueAt: new Date(Date.now() + 500),
    });
    expect((await succeeded(jobId)).attempt).toBe(3);
    expect(runs(jobId)).toHaveLength(3);
  });

  it.each([
    ['now', {}],
    ['after a delay', { delay: '1s' }],
  ])('runs a redriven job (%s) again after its hand-off, which its first life had handed off too', async (_, when) => {
    // First life: 503, handed off, 503 again, dead-lettered (retries_exhausted after 2).
    const jobId = await submit({ status: 503 }, 2);
    const dl = await deadLetterOf(jobId);
    expect(runs(jobId)).toHaveLength(2);
    // Second life, inside the SCHEDULE stream's duplicate window of the first hand-off: 503
    // once more (handed off with attempt 1, as in the first life), then it succeeds.
    const redriven = await admin('POST', `/v1/admin/dead-letters/${dl.id}/redrive`, {
      ...when,
      payload: { status: 503, failTimes: 1 },
    });
    expect(redriven.status).toBe(202);
    const success = await succeeded(jobId);
    expect(success.attempt).toBe(2);
    expect(runs(jobId).map((r) => r.attempt)).toEqual([1, 2, 1, 2]);
    expect((await events('retry.scheduled', jobId)).map((e) => e.attempt)).toEqual([1, 1]);
  });

  it.each(['api', 'request'] as const)(
    'ends a cancelled schedule (through the %s) in the audit trail as cancelled',
    async (how) => {
      const jobId = `cancel-${how}-${prefix}`;
      const scheduleId = `sched-${jobId}`;
      await publishScheduleRequest(jetstream(nc), topology, {
        kind: 'delay',
        scheduleId,
        subject: topology.jobSubject('normal', 'status'),
        payload: new TextEncoder().encode(JSON.stringify({ status: 200 })),
        jobId,
        attempt: 0,
        dueAt: new Date(Date.now() + 3_600_000),
      });
      const scheduler = createSchedulerClient(nc, topology);
      await waitFor(() => scheduler.get(scheduleId).catch(() => undefined), { what: 'the schedule to be stored' });
      if (how === 'api') await scheduler.cancel(scheduleId, 'no longer wanted');
      else {
        const h = createHeaders();
        h.set(H.scheduleId, scheduleId);
        h.set(H.reason, 'no longer wanted');
        await jetstream(nc).publish(topology.scheduleSubject('cancel'), new Uint8Array(), { headers: h });
      }
      const [event] = await waitFor(
        async () => {
          const found = await events('job.cancelled', jobId);
          return found.length > 0 ? found : undefined;
        },
        { what: 'the job.cancelled event' },
      );
      expect(event).toMatchObject({ type: 'status', reason: 'no longer wanted' });
      const timeline = await waitFor(
        async () => {
          const t = await admin<{ summary: { status: string } | null }>('GET', `/v1/jobs/${jobId}/timeline`);
          return t.body.summary?.status === 'cancelled' ? t.body : undefined;
        },
        { what: 'the summary to say cancelled' },
      );
      expect(timeline.summary).toMatchObject({ status: 'cancelled' });
    },
  );

  describe('a job published straight to JetStream just under max_payload', () => {
    // No room is left for the dead-letter or hand-off headers on top of the body.
    const pad = () => 'x'.repeat(nc.info!.max_payload - 200);

    it('is dead-lettered all the same, its body marked unavailable, instead of NAKed forever', async () => {
      const jobId = await submit({ status: 400, pad: pad() });
      const dl = await deadLetterOf(jobId);
      expect(dl).toMatchObject({ reason: 'non_retryable', attempts: 1 });
      const full = await admin<{ payloadAvailable: boolean; error: string }>('GET', `/v1/admin/dead-letters/${dl.id}`);
      expect(full.body.payloadAvailable).toBe(false);
      expect(full.body.error).toMatch(/too large to copy into the DLQ/);
    });

    it('waits out its retry on the consumer when it cannot be handed off, and runs again', async () => {
      const jobId = await submit({ status: 503, failTimes: 1, pad: pad() });
      expect((await succeeded(jobId)).attempt).toBe(2);
      expect(await events('retry.scheduled', jobId)).toHaveLength(0);
    });
  });

  it('dead-letters a job with a malformed header under the job id it gave', async () => {
    const jobId = `malformed-${prefix}`;
    const h = createHeaders();
    h.set(H.jobId, jobId);
    h.set(H.maxAttempts, 'three');
    await jetstream(nc).publish(topology.jobSubject('normal', 'status'), JSON.stringify({ status: 200 }), {
      headers: h,
    });
    const dl = await deadLetterOf(jobId);
    expect(dl).toMatchObject({ reason: 'non_retryable' });
    expect(runs(jobId)).toHaveLength(0);
  });

  it('hands a job whose Redrive-Not-Before is far off to the scheduler instead of holding it', async () => {
    const jobId = `not-before-${prefix}`;
    const h = createHeaders();
    h.set(H.jobId, jobId);
    h.set(H.notBefore, new Date(Date.now() + 3_600_000).toISOString());
    await jetstream(nc).publish(topology.jobSubject('normal', 'status'), JSON.stringify({ status: 200 }), {
      headers: h,
    });
    const scheduler = createSchedulerClient(nc, topology);
    const page = await waitFor(
      async () => {
        const p = await scheduler.list({ status: 'active', kind: 'retry' });
        return p.schedules.some((v) => v.jobId === jobId) ? p : undefined;
      },
      { what: 'the job to wait with the scheduler' },
    );
    const view = page.schedules.find((v) => v.jobId === jobId)!;
    // It waits without using an attempt, and without an ack-pending slot on the consumer.
    expect(view.attempt).toBe(0);
    const consumer = await jsm.consumers.info(topology.streams.jobs, topology.workerConsumerName('normal', 'status'));
    expect(consumer.num_ack_pending).toBe(0);
    expect(runs(jobId)).toHaveLength(0);
    await scheduler.cancel(view.id);
  });
});
