import { jetstream } from '@nats-io/jetstream';
import { headers as natsHeaders, type NatsConnection } from '@nats-io/nats-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSchedulerClient, MicroError, msgIds, SCHEDULER_SERVICE_NAME, Topology } from '@redrive/messaging';
import { firstFire, parseRepeatSpec } from '@redrive/recurrence';
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

// The retry-scheduler end to end: intake, a sync-worker and one scheduler as real processes,
// against the shared NATS (under a prefix of their own) and a fresh Postgres database. Intake
// hands delays over 2 s to the scheduler (RETRY_HANDOFF_THRESHOLD), so a 3 s delay takes the
// scheduler's path; the handlers record every run with the schedule headers they saw.

interface Run {
  id: string;
  type: string;
  attempt: number;
  at: number;
  payload: { n?: number; stopAt?: number } | null;
  scheduleId?: string;
  fire?: number;
  headerAttempt?: string;
}

const prefix = uniquePrefix('sched');
const topology = new Topology({ prefix });
const recordFile = recordFilePath('sched');
const KEY = 'sched-test-key';
let nc: NatsConnection;
let db: TestDatabase;
let intake: ServiceProcess;
let worker: ServiceProcess;
let scheduler: ServiceProcess;
let intakeUrl: string;
let counter = 0;

const runs = (pred: (r: Run) => boolean = () => true) => readRecords<Run>(recordFile).filter(pred);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function api(method: string, path: string, body?: unknown, key: string | null = KEY) {
  const res = await fetch(`${intakeUrl}${path}`, {
    method,
    headers: {
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      ...(key ? { authorization: `Bearer ${key}` } : {}),
    },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> & { message?: string } };
}

const submit = (job: Record<string, unknown>) =>
  api('POST', '/v1/jobs', { type: 'tick', payload: { n: ++counter }, ...job });

beforeAll(async () => {
  nc = await connectTestClient();
  db = await createTestDatabase('sched');
  const common = { NATS_URL: SHARED_NATS_URL, REDRIVE_PREFIX: prefix };
  const [wPort, sPort, iPort] = await Promise.all([freePort(), freePort(), freePort()]);
  intakeUrl = `http://127.0.0.1:${iPort}`;
  worker = startService('sync-worker', {
    ...common,
    WORKER_PORT: String(wPort),
    WORKER_HANDLERS: './test/fixtures/schedule-handlers.mjs',
    RECORD_FILE: recordFile,
  });
  scheduler = startService('retry-scheduler', { ...common, SCHEDULER_PORT: String(sPort), DATABASE_URL: db.url });
  intake = startService('intake', {
    ...common,
    INTAKE_PORT: String(iPort),
    INTAKE_API_KEYS: KEY,
    RETRY_HANDOFF_THRESHOLD: '2s',
  });
  await Promise.all([
    worker.waitForLog((l) => l.msg === 'sync-worker running', 30_000),
    scheduler.waitForLog((l) => l.msg === 'retry-scheduler running', 30_000),
    intake.waitForLog((l) => l.msg === 'intake listening', 30_000),
  ]);
}, 60_000);

afterAll(async () => {
  const codes = await Promise.all([intake?.stop(), worker?.stop(), scheduler?.stop()]);
  await deleteStreams(nc, prefix);
  await nc.close();
  await db?.drop();
  // Every service drains and exits 0 on SIGTERM.
  expect(codes).toEqual([0, 0, 0]);
});

describe('delayed jobs', () => {
  // How late a fire comes is measured by the bench (scheduler-timing), never asserted here: a
  // busy machine must not fail a correctness test.
  it('starts a job with delay: 3000 no earlier than 3 s after it was accepted, through the scheduler', async () => {
    const sent = Date.now();
    const res = await submit({ delay: 3_000 });
    const accepted = Date.now();
    expect(res.status).toBe(202);
    // Over the 2 s threshold: stored as a schedule, not on JOBS.
    expect(res.body).toMatchObject({ stream: topology.streams.schedule, duplicate: false });
    expect(res.body.scheduleId).toEqual(expect.any(String));
    const due = Date.parse(res.body.runAt as string);
    expect(due).toBeGreaterThanOrEqual(sent + 3_000);
    expect(due).toBeLessThanOrEqual(accepted + 3_000);

    const run = await waitFor(() => runs((r) => r.id === res.body.jobId)[0], { timeoutMs: 8_000, what: 'the run' });
    expect(run.at).toBeGreaterThanOrEqual(sent + 3_000);
    expect(run.at).toBeGreaterThanOrEqual(due);
    expect(run).toMatchObject({ attempt: 1, scheduleId: res.body.scheduleId, fire: 1 });
    // The fire is published before its row advances: the job can run before the schedule completes.
    const view = await waitFor(
      async () => {
        const v = await api('GET', `/v1/schedules/${res.body.scheduleId as string}`);
        return v.body.status === 'completed' ? v : undefined;
      },
      { what: 'the delay schedule to complete' },
    );
    expect(view.body).toMatchObject({ status: 'completed', kind: 'delay', fireCount: 1, nextDueAt: null });
  });

  it('sends a delay under the threshold straight to JOBS with Redrive-Not-Before, not before it is due', async () => {
    const sent = Date.now();
    const res = await submit({ delay: 1_200 });
    expect(res.status).toBe(202);
    expect(res.body.stream).toBe(topology.streams.jobs);
    expect(res.body.scheduleId).toBeUndefined();
    const run = await waitFor(() => runs((r) => r.id === res.body.jobId)[0], { timeoutMs: 6_000 });
    expect(run.at).toBeGreaterThanOrEqual(sent + 1_200);
    expect(run.scheduleId).toBeUndefined();
  });

  it('lists a job with runAt an hour ahead, and cancelling it means it never runs', async () => {
    const runAt = new Date(Date.now() + 3_600_000).toISOString();
    const res = await submit({ runAt, payload: { hour: true } });
    expect(res.status).toBe(202);
    const id = res.body.scheduleId as string;
    expect(res.body.runAt).toBe(runAt);

    const listed = await waitFor(
      async () => {
        const page = await api('GET', '/v1/schedules?status=active&limit=500');
        return (page.body.schedules as { id: string; nextDueAt: string }[]).find((s) => s.id === id);
      },
      { what: 'the schedule in the list' },
    );
    expect(listed).toMatchObject({
      kind: 'delay',
      status: 'active',
      nextDueAt: runAt,
      type: 'tick',
      priority: 'normal',
    });
    expect((await api('GET', `/v1/schedules/${id}`)).body).toMatchObject({ id, payload: { hour: true } });

    const cancelled = await api('DELETE', `/v1/schedules/${id}`);
    expect(cancelled.status).toBe(200);
    expect(cancelled.body).toMatchObject({ id, status: 'cancelled', nextDueAt: null, fireCount: 0 });
    // Cancelling again changes nothing; the schedule is gone from the active list.
    expect((await api('DELETE', `/v1/schedules/${id}`)).body).toMatchObject({ status: 'cancelled' });
    const active = await api('GET', '/v1/schedules?status=active&limit=500');
    expect((active.body.schedules as { id: string }[]).some((s) => s.id === id)).toBe(false);

    // The same, due 2.5 s from now: cancelled at once, it is still not run once its time has passed.
    const soon = await submit({ delay: 2_500 });
    expect(
      (
        await waitFor(async () => {
          const r = await api('DELETE', `/v1/schedules/${soon.body.scheduleId as string}`);
          return r.status === 200 ? r : undefined;
        })
      ).body,
    ).toMatchObject({ status: 'cancelled' });
    await sleep(Math.max(0, Date.parse(soon.body.runAt as string) + 1_500 - Date.now()));
    expect(runs((r) => r.id === res.body.jobId || r.id === soon.body.jobId)).toEqual([]);
  });

  it('schedules jobs of a batch, and answers a repeated idempotent submission with the same schedule', async () => {
    const key = `key-${prefix}`;
    const batch = await api('POST', '/v1/jobs:batch', {
      jobs: [
        { type: 'tick', payload: {}, runAt: new Date(Date.now() + 3_600_000).toISOString(), idempotencyKey: key },
        { type: 'tick', payload: {}, repeat: { cron: '0 0 1 1 *', tz: 'Asia/Tokyo' } },
      ],
    });
    expect(batch.status).toBe(202);
    const [first, second] = batch.body.results as Record<string, unknown>[];
    expect(first).toMatchObject({ jobId: `tick:${key}`, scheduleId: `tick:${key}`, stream: topology.streams.schedule });
    expect(second!.scheduleId).toEqual(expect.any(String));
    const again = await submit({ runAt: new Date(Date.now() + 3_600_000).toISOString(), idempotencyKey: key });
    expect(again.body).toMatchObject({ scheduleId: `tick:${key}`, duplicate: true });
    for (const id of [`tick:${key}`, second!.scheduleId as string]) {
      await waitFor(async () => (await api('DELETE', `/v1/schedules/${id}`)).status === 200);
    }
  });

  it('answers 404 for an unknown schedule and 401 without the API key', async () => {
    expect((await api('GET', '/v1/schedules/no-such-schedule')).status).toBe(404);
    expect((await api('DELETE', '/v1/schedules/no-such-schedule')).status).toBe(404);
    expect((await api('GET', '/v1/schedules', undefined, null)).status).toBe(401);
    expect((await api('DELETE', '/v1/schedules/x', undefined, null)).status).toBe(401);
  });

  it.each([
    [{ repeat: { cron: '61 * * * *' } }, 'repeat.cron "61 * * * *" is not a valid cron expression'],
    [
      { repeat: { cron: '0 9 * * *', tz: 'Europe/Atlantis' } },
      'repeat.tz "Europe/Atlantis" is not a known IANA time zone',
    ],
    [{ runAt: new Date(Date.now() - 60_000).toISOString() }, 's in the past'],
    [{ delay: 5_000, runAt: new Date(Date.now() + 60_000).toISOString() }, 'give either delay'],
    [{ runAt: 'next tuesday' }, 'is not an RFC 3339 time'],
    [{ repeat: { every: 500 } }, 'repeat.every must be a whole number of milliseconds from 1000'],
    [{ repeat: { every: 1_000, until: new Date(Date.now() - 1_000).toISOString() } }, 'is before the first fire'],
  ])('refuses %j with a 400 that says why', async (job, message) => {
    const res = await submit(job);
    expect(res.status).toBe(400);
    expect(res.body.code).toBe('VALIDATION_ERROR');
    expect(res.body.message).toContain(message);
  });
});

describe.concurrent('repeating jobs', () => {
  it('fires "every 1 s, limit 5" exactly 5 times', async () => {
    const res = await submit({ repeat: { every: 1_000, limit: 5 } });
    expect(res.status).toBe(202);
    const id = res.body.scheduleId as string;
    const mine = () => runs((r) => r.scheduleId === id);
    await waitFor(() => mine().length >= 5, { timeoutMs: 10_000, what: '5 fires' });
    await sleep(1_500);
    const all = mine();
    expect(all.map((r) => r.fire)).toEqual([1, 2, 3, 4, 5]);
    expect(all.map((r) => r.id)).toEqual([1, 2, 3, 4, 5].map((n) => `${res.body.jobId as string}:${n}`));
    for (let i = 1; i < all.length; i++) expect(all[i]!.at - all[i - 1]!.at).toBeGreaterThan(700);
    expect((await api('GET', `/v1/schedules/${id}`)).body).toMatchObject({
      status: 'completed',
      kind: 'repeat',
      fireCount: 5,
      repeat: { every: 1_000, limit: 5, missed: 'once' },
    });
  }, 20_000);

  it('ends the repeat when the handler calls stopRepeat() on its 3rd run', async () => {
    const res = await api('POST', '/v1/jobs', { type: 'stopper', payload: { stopAt: 3 }, repeat: { every: 1_000 } });
    expect(res.status).toBe(202);
    const id = res.body.scheduleId as string;
    const mine = () => runs((r) => r.scheduleId === id);
    await waitFor(() => mine().length >= 3, { timeoutMs: 10_000, what: '3 fires' });
    const view = await waitFor(async () => {
      const v = await api('GET', `/v1/schedules/${id}`);
      return v.body.status === 'cancelled' ? v.body : undefined;
    });
    expect(view).toMatchObject({ fireCount: 3, cancelReason: 'stop_repeat', nextDueAt: null });
    await sleep(2_000);
    expect(mine().map((r) => r.fire)).toEqual([1, 2, 3]);
  }, 20_000);

  it('stores a cron schedule in its time zone at the instant the pure function computes', async () => {
    const repeat = { cron: '0 9 * * *', tz: 'Europe/Berlin' };
    const before = new Date();
    const res = await submit({ repeat });
    expect(res.status).toBe(202);
    expect(res.body.runAt).toBe(firstFire(parseRepeatSpec(repeat), before)!.toISOString());
    const id = res.body.scheduleId as string;
    const view = await waitFor(async () => {
      const v = await api('GET', `/v1/schedules/${id}`);
      return v.status === 200 ? v.body : undefined;
    });
    expect(view).toMatchObject({
      kind: 'cron',
      nextDueAt: res.body.runAt,
      repeat: { cron: '0 9 * * *', tz: 'Europe/Berlin' },
    });
    expect((await api('DELETE', `/v1/schedules/${id}`)).body).toMatchObject({ status: 'cancelled' });
  });
});

describe('long retries handed off by the worker', () => {
  it('publishes a job from schedule.retry back to its original subject at its due time, where it runs as attempt N+1', async () => {
    const jobId = `handed-off-${prefix}`;
    const due = new Date(Date.now() + 1_500);
    // What the worker's outcomes.handOff publishes after attempt 2 failed with a long backoff.
    const h = natsHeaders();
    h.set('Redrive-Job-Id', jobId);
    h.set('Redrive-Attempt', '2');
    h.set('Redrive-Max-Attempts', '5');
    h.set('Redrive-Due-At', due.toISOString());
    h.set('Redrive-Original-Subject', topology.jobSubject('normal', 'tick'));
    await jetstream(nc).publish(topology.scheduleSubject('retry'), JSON.stringify({ n: 'retry' }), {
      headers: h,
      msgID: msgIds.handOff(jobId, '', 2, 1),
    });
    const run = await waitFor(() => runs((r) => r.id === jobId)[0], { timeoutMs: 8_000, what: 'the retried run' });
    expect(run.attempt).toBe(3);
    expect(run.headerAttempt).toBe('2');
    expect(run.payload).toEqual({ n: 'retry' });
    expect(run.at).toBeGreaterThanOrEqual(due.getTime());
    // The fire is published before its row is advanced (a crash in between fires it again under
    // the same message id): the job can run before the schedule says completed.
    const view = await waitFor(
      async () => {
        const v = await api('GET', `/v1/schedules/${run.scheduleId!}`);
        return v.body.status === 'completed' ? v : undefined;
      },
      { what: 'the retry schedule to complete' },
    );
    expect(view.body).toMatchObject({ kind: 'retry', status: 'completed', jobId, attempt: 2, fireCount: 1 });
    await sleep(500);
    expect(runs((r) => r.id === jobId)).toHaveLength(1);
  });
});

describe('the NATS micro service', () => {
  it('is listed as redrive-retry-scheduler and answers its endpoints, refusals as micro errors with codes', async () => {
    // What `nats micro info redrive-retry-scheduler` asks: every instance answers (other test
    // files run their own, under other prefixes).
    const infos: { metadata?: Record<string, string>; endpoints: { subject: string }[] }[] = [];
    for await (const m of await nc.requestMany(`$SRV.INFO.${SCHEDULER_SERVICE_NAME}`, '', {
      strategy: 'timer',
      maxWait: 1_000,
    }))
      infos.push(m.json());
    const mine = infos.find((i) => i.metadata?.prefix === prefix);
    expect(mine).toBeDefined();
    expect(mine!.endpoints.map((e) => e.subject).sort()).toEqual(
      ['cancel', 'get', 'list'].map((op) => `${prefix}.scheduler.${op}`),
    );

    const client = createSchedulerClient(nc, topology);
    expect((await client.list({ limit: 1 })).schedules.length).toBeLessThanOrEqual(1);
    const missing = await client.get('no-such-schedule').catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(MicroError);
    expect(missing).toMatchObject({ statusCode: 404, code: 'NOT_FOUND' });
    const raw = await nc.request(topology.schedulerApiSubject('list'), JSON.stringify({ limit: 0 }), {
      timeout: 5_000,
    });
    expect(raw.headers?.get('Nats-Service-Error-Code')).toBe('400');
    expect(raw.json()).toMatchObject({ statusCode: 400, code: 'VALIDATION_ERROR' });
  });
});
