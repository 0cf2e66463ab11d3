import { jetstream, jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/nats-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keyedJobId, publishJob, Topology, type Priority } from '@redrive/messaging';
import {
  connectTestClient,
  consumersSettled,
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

// Operators' queues (issue 14): pausing a type across three worker replicas against the shared
// NATS and Postgres (nothing starts while paused, running jobs finish, nothing is redelivered as
// a failure, a restarted replica stays paused, everything runs after the resume), with the
// queue stats, the paused metric and the audit trail saying so; then the job lookup.

interface Run {
  id: string;
  event: 'started' | 'finished' | 'failed';
  attempt: number;
  pid: number;
  at: number;
}

const prefix = uniquePrefix('queues');
const topology = new Topology({ prefix });
const recordFile = recordFilePath('queues');
const OPERATOR = 'operator-token-for-queue-tests';
const VIEWER = 'viewer-token-for-queue-tests-1';
const TRACE_TEMPLATE = 'https://jaeger.example/trace/{traceId}';
let nc: NatsConnection;
let jsm: JetStreamManager;
let db: TestDatabase;
let dlq: ServiceProcess;
let workerEnv: Record<string, string>;
const workers: ServiceProcess[] = [];
let base: string;
let counter = 0;

const runs = (id?: string) => readRecords<Run>(recordFile, id);

async function api<T = Record<string, unknown>>(
  method: string,
  path: string,
  opts: { token?: string; body?: unknown } = {},
): Promise<{ status: number; body: T }> {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${opts.token ?? OPERATOR}`,
      ...(opts.body !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    ...(opts.body !== undefined ? { body: JSON.stringify(opts.body) } : {}),
  });
  const text = await res.text();
  return { status: res.status, body: (text ? JSON.parse(text) : {}) as T };
}

async function submit(type: string, payload: Record<string, unknown>, lane: Priority = 'normal'): Promise<string> {
  const jobId = `${type}-${++counter}`;
  await publishJob(jetstream(nc), {
    subject: topology.jobSubject(lane, type),
    payload: new TextEncoder().encode(JSON.stringify(payload)),
    jobId,
    msgId: jobId,
    attempt: 0,
  });
  return jobId;
}

async function startWorker(): Promise<ServiceProcess> {
  const w = startService('sync-worker', { ...workerEnv, WORKER_PORT: String(await freePort()) });
  workers.push(w);
  return w;
}

/** Waits until `w` has applied a change of the pauses after its log line `from`. */
const sawPauses = (w: ServiceProcess, from: number, paused: boolean) =>
  waitFor(
    () =>
      w.logs
        .slice(from)
        .some((l) => l.msg === 'pauses changed' && ((l.paused as string[]) ?? []).includes('pausable') === paused),
    { timeoutMs: 10_000, what: `a worker to see pausable ${paused ? 'paused' : 'resumed'}` },
  );

interface LaneStats {
  lane: string;
  waiting: number;
  running: number;
  paused: boolean;
  workers: number;
  pause?: { by: string };
}
interface TypeStats {
  type: string;
  paused: boolean;
  pause?: { by: string; note?: string };
  waiting: number;
  running: number;
  lastMinute: { succeeded: number; failed: number; deadLettered: number };
  lastHour: { succeeded: number; failed: number; deadLettered: number };
  deadLetters: { unresolved: number };
  lanes: LaneStats[];
}

async function statsOf(type: string): Promise<TypeStats | undefined> {
  const r = await api<{ types: TypeStats[] }>('GET', `/v1/admin/queues?type=${type}`, { token: VIEWER });
  expect(r.status).toBe(200);
  return r.body.types.find((t) => t.type === type);
}

async function metric(name: string, labels: string): Promise<number | undefined> {
  const text = await (await fetch(`${base}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name}{`) && l.includes(labels));
  return line ? Number(line.split(' ').pop()) : undefined;
}

interface TimelineEvent {
  kind: string;
  actor?: string;
}

const timelineOf = async (jobId: string) =>
  (await api<{ events: TimelineEvent[] }>('GET', `/v1/jobs/${encodeURIComponent(jobId)}/timeline`, { token: VIEWER }))
    .body.events ?? [];

async function settled(): Promise<void> {
  await consumersSettled(jsm, [[topology.streams.events, 'dlq-manager-audit']], {
    timeoutMs: 15_000,
    what: 'the audit trail to catch up',
  });
}

beforeAll(async () => {
  nc = await connectTestClient();
  jsm = await jetstreamManager(nc);
  db = await createTestDatabase('queues');
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  dlq = startService('dlq-manager', {
    NATS_URL: SHARED_NATS_URL,
    REDRIVE_PREFIX: prefix,
    DATABASE_URL: db.url,
    DLQ_PORT: String(port),
    DLQ_TOKENS: JSON.stringify([
      { name: 'ops', role: 'operator', token: OPERATOR },
      { name: 'grafana', role: 'viewer', token: VIEWER },
    ]),
    DLQ_TRACE_URL_TEMPLATE: TRACE_TEMPLATE,
  });
  await dlq.waitForLog((l) => l.msg === 'dlq-manager running', 30_000);
  workerEnv = {
    NATS_URL: SHARED_NATS_URL,
    REDRIVE_PREFIX: prefix,
    RECORD_FILE: recordFile,
    DATABASE_URL: db.url,
    WORKER_HANDLERS: './test/fixtures/pause-handlers.mjs',
    WORKER_CONCURRENCY: '2',
  };
  for (let i = 0; i < 3; i++) await startWorker();
  await Promise.all(workers.map((w) => w.waitForLog((l) => l.msg === 'sync-worker running', 30_000)));
}, 90_000);

afterAll(async () => {
  await Promise.all([...workers.map((w) => w.stop()), dlq?.stop()]);
  await deleteStreams(nc, prefix);
  await nc.close();
  await db.drop();
});

describe('pause and resume', () => {
  it('refuses a viewer, a bad lane and an unknown job type, and answers 404 for a route that is not there', async () => {
    const viewer = await api('POST', '/v1/admin/queues/pausable/pause', { token: VIEWER, body: {} });
    expect(viewer.status).toBe(403);
    const lane = await api<{ message: string }>('POST', '/v1/admin/queues/pausable/urgent/pause', { body: {} });
    expect(lane.status).toBe(400);
    expect(lane.body.message).toMatch(/lane/);
    const type = await api<{ message: string }>('POST', '/v1/admin/queues/Not.A.Type/pause', { body: {} });
    expect(type.status).toBe(400);
    const stats = await api<{ message: string }>('GET', '/v1/admin/queues?type=NOPE', { token: VIEWER });
    expect(stats.status).toBe(400);
  });

  it('starts no job of a paused type on any replica, lets the running one finish, and runs them all after the resume', async () => {
    // One job running when the pause comes.
    const long = await submit('pausable', { ms: 2_000, n: 0 });
    await waitFor(() => runs(long).some((r) => r.event === 'started'), { timeoutMs: 15_000, what: 'the long job' });

    const marks = workers.map((w) => w.logs.length);
    const paused = await api<{ paused: boolean; pause: { by: string } }>('POST', '/v1/admin/queues/pausable/pause', {
      body: { note: 'incident 42' },
    });
    expect(paused.status).toBe(200);
    expect(paused.body).toMatchObject({ paused: true, pause: { by: 'ops' } });
    await Promise.all(workers.map((w, i) => sawPauses(w, marks[i]!, true)));
    const pausedAt = Date.now();

    // Jobs of the paused type, in two lanes, and of another type that keeps running.
    const held = [
      ...(await Promise.all([1, 2, 3, 4, 5, 6].map((n) => submit('pausable', { n })))),
      ...(await Promise.all([7, 8, 9].map((n) => submit('pausable', { n }, 'high')))),
    ];
    const others = await Promise.all([1, 2, 3].map((n) => submit('other', { n })));

    // The running job finishes; the other type runs.
    await waitFor(() => runs(long).some((r) => r.event === 'finished'), { timeoutMs: 15_000, what: 'the long job' });
    await waitFor(() => others.every((id) => runs(id).some((r) => r.event === 'finished')), {
      timeoutMs: 15_000,
      what: 'the other type to run',
    });
    // The queue says paused, and holds all nine.
    const during = await waitFor(
      async () => {
        const s = await statsOf('pausable');
        return s && s.waiting + s.running === held.length ? s : undefined;
      },
      { timeoutMs: 10_000, what: 'the stats to show the held jobs' },
    );
    expect(during.paused).toBe(true);
    expect(during.pause).toMatchObject({ by: 'ops', note: 'incident 42' });
    expect(during.lanes.every((l) => l.paused)).toBe(true);
    expect(await metric('redrive_queue_paused', 'type="pausable",lane="normal"')).toBe(1);
    expect(await metric('redrive_queue_paused', 'type="other",lane="normal"')).toBe(0);

    // A replica restarted while paused starts paused.
    const restarted = workers.shift()!;
    await restarted.stop();
    const fresh = await startWorker();
    await fresh.waitForLog((l) => l.msg === 'sync-worker running', 30_000);
    expect(fresh.logs.some((l) => l.msg === 'pauses changed' && (l.paused as string[]).includes('pausable'))).toBe(
      true,
    );
    // Time for a replica to misbehave: nothing of the paused type starts, on any replica.
    await new Promise((r) => setTimeout(r, 1_500));
    expect(runs().filter((r) => held.includes(r.id))).toEqual([]);
    expect(
      runs().filter((r) => r.event === 'started' && r.id !== long && r.at > pausedAt && r.id.startsWith('pausable')),
    ).toEqual([]);

    // A lane cannot be resumed apart from its paused type.
    const lane = await api<{ code: string }>('POST', '/v1/admin/queues/pausable/high/resume', { body: {} });
    expect(lane.status).toBe(409);
    expect(lane.body.code).toBe('TYPE_PAUSED');

    const marks2 = workers.map((w) => w.logs.length);
    const resumed = await api('POST', '/v1/admin/queues/pausable/resume', { body: {} });
    expect(resumed.status).toBe(200);
    expect(resumed.body).toMatchObject({ type: 'pausable', paused: false });
    await Promise.all(workers.map((w, i) => sawPauses(w, marks2[i]!, false)));

    await waitFor(() => held.every((id) => runs(id).some((r) => r.event === 'finished')), {
      timeoutMs: 30_000,
      what: 'every held job to run after the resume',
    });
    await settled();
    for (const id of held) {
      // Each ran once, and succeeded: no failure, no retry, no dead letter.
      expect(runs(id).filter((r) => r.event === 'started')).toHaveLength(1);
      const events = await timelineOf(id);
      expect(events.map((e) => e.kind)).not.toContain('attempt.failed');
      expect(events.map((e) => e.kind)).toContain('attempt.succeeded');
    }
    expect(await metric('redrive_queue_paused', 'type="pausable",lane="normal"')).toBe(0);

    // Both changes are in the audit trail with who made them.
    const audit = await timelineOf('queue:pausable');
    expect(audit.map((e) => [e.kind, e.actor])).toEqual([
      ['queue.paused', 'ops'],
      ['queue.resumed', 'ops'],
    ]);
    const after = await waitFor(
      async () => {
        const s = await statsOf('pausable');
        return s && s.lastMinute.succeeded >= held.length + 1 ? s : undefined;
      },
      { timeoutMs: 10_000, what: 'the stats to count the successes' },
    );
    expect(after.paused).toBe(false);
    expect(after.waiting + after.running).toBe(0);
    expect(after.lastHour.succeeded).toBe(held.length + 1);
    expect(after.lastMinute.failed).toBe(0);
  }, 120_000);

  it('pauses one lane only: the other lanes of the type keep running', async () => {
    const marks = workers.map((w) => w.logs.length);
    expect((await api('POST', '/v1/admin/queues/pausable/low/pause', { body: {} })).status).toBe(200);
    await Promise.all(
      workers.map((w, i) =>
        waitFor(
          () =>
            w.logs
              .slice(marks[i])
              .some((l) => l.msg === 'pauses changed' && ((l.paused as string[]) ?? []).includes('pausable.low')),
          { timeoutMs: 10_000, what: 'the lane pause' },
        ),
      ),
    );
    const low = await submit('pausable', { n: 100 }, 'low');
    const normal = await submit('pausable', { n: 101 });
    await waitFor(() => runs(normal).some((r) => r.event === 'finished'), {
      timeoutMs: 15_000,
      what: 'the normal lane',
    });
    const s = await statsOf('pausable');
    expect(s?.paused).toBe(false);
    expect(s?.lanes.find((l) => l.lane === 'low')).toMatchObject({ paused: true });
    expect(s?.lanes.find((l) => l.lane === 'normal')).toMatchObject({ paused: false });
    expect(runs(low)).toEqual([]);
    expect((await api('POST', '/v1/admin/queues/pausable/low/resume', { body: {} })).status).toBe(200);
    await waitFor(() => runs(low).some((r) => r.event === 'finished'), { timeoutMs: 15_000, what: 'the low lane' });
  }, 60_000);
});

describe('a wait that ends while paused', () => {
  it('holds a job whose Not-Before comes while its type is paused, and runs it after the resume', async () => {
    const id = `pausable-later-${prefix}`;
    const due = Date.now() + 3_000;
    await publishJob(jetstream(nc), {
      subject: topology.jobSubject('high', 'pausable'),
      payload: new TextEncoder().encode('{"n":5}'),
      jobId: id,
      msgId: id,
      attempt: 0,
      notBefore: new Date(due),
    });
    // A worker has it, waiting for its time.
    await waitFor(async () => (await statsOf('pausable'))?.lanes.find((l) => l.lane === 'high')?.running === 1, {
      what: 'a worker to hold the job until its time',
    });
    const marks = workers.map((w) => w.logs.length);
    expect((await api('POST', '/v1/admin/queues/pausable/pause', { body: {} })).status).toBe(200);
    await Promise.all(workers.map((w, i) => sawPauses(w, marks[i]!, true)));
    expect(Date.now()).toBeLessThan(due);
    // Its time passes while paused: it does not start.
    await new Promise((r) => setTimeout(r, due - Date.now() + 1_500));
    expect(runs(id)).toEqual([]);
    expect((await api('POST', '/v1/admin/queues/pausable/resume', { body: {} })).status).toBe(200);
    await waitFor(() => runs(id).some((r) => r.event === 'finished'), { timeoutMs: 15_000, what: 'the job to run' });
    expect(runs(id).filter((r) => r.event === 'started')).toHaveLength(1);
  }, 30_000);
});

describe('job lookup', () => {
  interface Detail {
    jobId: string;
    summary: { status: string; type: string } | null;
    attempts: { outcome: string; errorClass?: string; error?: string }[];
    logs: { message: unknown; fields?: unknown }[];
    progress: { value: unknown }[];
    steps: { step: string; result: unknown }[];
    deadLetters: { id: number; reason: string }[];
    payloadSource: string | null;
    payload?: unknown;
    headers?: Record<string, string>;
    traceId: string | null;
    traceUrl: string | null;
    timeline: { kind: string }[];
  }

  it('shows a job: attempts with error and class, logs, progress, steps, dead letters, payload and the trace link', async () => {
    const ok = await submit('other', { n: 41 });
    const bad = await submit('other', { n: 42, fail: true });
    await waitFor(() => runs(bad).some((r) => r.event === 'failed'), { timeoutMs: 15_000, what: 'the failing job' });
    await waitFor(
      async () => (await api<{ items: unknown[] }>('GET', `/v1/admin/dead-letters?jobId=${bad}`)).body.items?.length,
      {
        timeoutMs: 15_000,
        what: 'the dead letter',
      },
    );
    await settled();

    const good = await api<Detail>('GET', `/v1/jobs/${ok}`, { token: VIEWER });
    expect(good.status).toBe(200);
    expect(good.body.summary).toMatchObject({ status: 'succeeded', type: 'other' });
    expect(good.body.attempts).toMatchObject([{ outcome: 'succeeded' }]);
    expect(good.body.logs).toMatchObject([{ message: 'working on it', fields: { n: 41 } }]);
    expect(good.body.progress).toMatchObject([{ value: { done: 1, of: 2 } }]);
    // A success removes its checkpoints; the dead-lettered job keeps them.
    expect(good.body.steps).toEqual([]);
    expect(good.body.traceId).toMatch(/^[0-9a-f]{32}$/);
    expect(good.body.traceUrl).toBe(`https://jaeger.example/trace/${good.body.traceId}`);

    const dead = await api<Detail>('GET', `/v1/jobs/${bad}`, { token: VIEWER });
    expect(dead.status).toBe(200);
    expect(dead.body.summary?.status).toBe('dead_lettered');
    expect(dead.body.attempts).toMatchObject([{ outcome: 'failed', errorClass: 'unknown' }]);
    expect(dead.body.attempts[0]?.error).toContain('other refused');
    expect(dead.body.steps).toMatchObject([{ step: 'sum', result: 43 }]);
    expect(dead.body.deadLetters).toMatchObject([{ reason: 'non_retryable' }]);
    expect(dead.body.payloadSource).toBe('dead_letter');
    expect(dead.body.payload).toEqual({ n: 42, fail: true });
    expect(dead.body.headers?.['Redrive-Job-Id']).toBe(bad);

    const missing = await api<{ code: string }>('GET', '/v1/jobs/no-such-job', { token: VIEWER });
    expect(missing.status).toBe(404);
  }, 60_000);

  it("shows a waiting job's payload from JOBS", async () => {
    // A paused lane keeps the job in JOBS; intake's job.accepted names its sequence (sent here by hand).
    expect((await api('POST', '/v1/admin/queues/other/low/pause', { body: {} })).status).toBe(200);
    await waitFor(async () => (await statsOf('other'))?.lanes.find((l) => l.lane === 'low')?.paused, {
      what: 'the pause',
    });
    await Promise.all(
      workers.map((w) =>
        waitFor(() => w.logs.some((l) => l.msg === 'pauses changed' && (l.paused as string[]).includes('other.low')), {
          what: 'the workers to see the pause',
        }),
      ),
    );
    const id = `other-waiting-${prefix}`;
    const ack = await publishJob(jetstream(nc), {
      subject: topology.jobSubject('low', 'other'),
      payload: new TextEncoder().encode(JSON.stringify({ n: 7 })),
      jobId: id,
      msgId: id,
      attempt: 0,
    });
    await jetstream(nc).publish(
      topology.eventSubject('job.accepted'),
      JSON.stringify({
        id: `acc-${id}`,
        kind: 'job.accepted',
        jobId: id,
        type: 'other',
        at: new Date().toISOString(),
        data: { seq: ack.seq },
      }),
    );
    await settled();
    const detail = await api<Detail>('GET', `/v1/jobs/${id}`, { token: VIEWER });
    expect(detail.status).toBe(200);
    expect(detail.body).toMatchObject({ payloadSource: 'jobs', payload: { n: 7 } });
    expect(detail.body.summary?.status).toBe('accepted');
    expect((await api('POST', '/v1/admin/queues/other/low/resume', { body: {} })).status).toBe(200);
    await waitFor(() => runs(id).some((r) => r.event === 'finished'), { timeoutMs: 15_000, what: 'the job to run' });
  }, 60_000);

  it('finds jobs by type, status, time range and idempotency key, a page at a time', async () => {
    await settled();
    const first = await api<{ items: { jobId: string; status: string }[]; nextCursor: string | null }>(
      'GET',
      '/v1/jobs?type=pausable&status=succeeded&limit=4',
      { token: VIEWER },
    );
    expect(first.status).toBe(200);
    expect(first.body.items).toHaveLength(4);
    expect(first.body.items.every((j) => j.status === 'succeeded')).toBe(true);
    const seen = new Set(first.body.items.map((j) => j.jobId));
    let cursor = first.body.nextCursor;
    while (cursor) {
      const page = await api<{ items: { jobId: string }[]; nextCursor: string | null }>(
        'GET',
        `/v1/jobs?type=pausable&status=succeeded&limit=4&cursor=${cursor}`,
        { token: VIEWER },
      );
      for (const j of page.body.items) {
        expect(seen.has(j.jobId)).toBe(false);
        seen.add(j.jobId);
      }
      cursor = page.body.nextCursor;
    }
    // The 10 of the pause test, the 2 of the lane test and the one that waited.
    expect(seen.size).toBe(13);
    expect([...seen].every((id) => id.startsWith('pausable-'))).toBe(true);

    const future = await api<{ items: unknown[] }>(
      'GET',
      `/v1/jobs?type=pausable&from=${new Date(Date.now() + 3_600_000).toISOString()}`,
      {
        token: VIEWER,
      },
    );
    expect(future.body.items).toEqual([]);
    const byId = await api<{ items: { jobId: string }[] }>('GET', '/v1/jobs?id=pausable-1', { token: VIEWER });
    expect(byId.body.items.map((j) => j.jobId)).toEqual(['pausable-1']);

    const keyed = keyedJobId('other', 'order:7');
    await publishJob(jetstream(nc), {
      subject: topology.jobSubject('normal', 'other'),
      payload: new TextEncoder().encode('{"n":1}'),
      jobId: keyed,
      msgId: keyed,
      idempotencyKey: 'order:7',
      attempt: 0,
    });
    await waitFor(() => runs(keyed).some((r) => r.event === 'finished'), { timeoutMs: 15_000, what: 'the keyed job' });
    await settled();
    const byKey = await api<{ items: { jobId: string }[] }>('GET', '/v1/jobs?type=other&idempotencyKey=order%3A7', {
      token: VIEWER,
    });
    expect(byKey.body.items.map((j) => j.jobId)).toEqual([keyed]);

    const noType = await api<{ message: string }>('GET', '/v1/jobs?idempotencyKey=x', { token: VIEWER });
    expect(noType.status).toBe(400);
    expect(noType.body.message).toMatch(/needs type/);
    expect((await api('GET', '/v1/jobs?cursor=nonsense', { token: VIEWER })).status).toBe(400);
    expect((await api('GET', '/v1/jobs?status=lost', { token: VIEWER })).status).toBe(400);
    expect((await api('GET', '/v1/jobs?from=yesterday', { token: VIEWER })).status).toBe(400);
  }, 60_000);
});

describe('sign-in for people', () => {
  async function signIn(token: string) {
    const res = await fetch(`${base}/v1/session`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ token }),
    });
    const setCookie = res.headers.get('set-cookie') ?? '';
    return {
      status: res.status,
      setCookie,
      cookie: setCookie.split(';')[0]!,
      body: (await res.json()) as { name: string; role: string; csrfToken: string; expiresAt: string; code?: string },
    };
  }

  const withCookie = async (method: string, path: string, cookie: string, headers: Record<string, string> = {}) => {
    const res = await fetch(`${base}${path}`, {
      method,
      headers: { cookie, ...(method === 'POST' ? { 'content-type': 'application/json' } : {}), ...headers },
      ...(method === 'POST' ? { body: '{}' } : {}),
    });
    return {
      status: res.status,
      body: (await res.json()) as Record<string, unknown>,
      setCookie: res.headers.get('set-cookie'),
    };
  };

  it('trades a token for an HttpOnly, SameSite=Strict cookie that expires', async () => {
    expect((await signIn('not-a-token-of-ours-at-all')).status).toBe(401);
    const viewer = await signIn(VIEWER);
    expect(viewer.status).toBe(200);
    expect(viewer.body).toMatchObject({ name: 'grafana', role: 'viewer' });
    expect(Date.parse(viewer.body.expiresAt)).toBeGreaterThan(Date.now());
    expect(viewer.setCookie).toMatch(/HttpOnly/);
    expect(viewer.setCookie).toMatch(/SameSite=Strict/);
    expect(viewer.setCookie).toMatch(/Max-Age=28800/);
    expect(viewer.setCookie).not.toContain(VIEWER);

    const me = await withCookie('GET', '/v1/session', viewer.cookie);
    expect(me.body).toMatchObject({
      name: 'grafana',
      role: 'viewer',
      via: 'session',
      csrfToken: viewer.body.csrfToken,
    });
    expect((await withCookie('GET', '/v1/admin/queues', viewer.cookie)).status).toBe(200);
    // A viewer's session changes nothing, CSRF token or not.
    const refused = await withCookie('POST', '/v1/admin/queues/pausable/pause', viewer.cookie, {
      'x-csrf-token': viewer.body.csrfToken,
    });
    expect(refused.status).toBe(403);
    expect(refused.body.code).toBe('FORBIDDEN');
    // Without a cookie or a token: 401.
    expect((await withCookie('GET', '/v1/admin/queues', 'other=1')).status).toBe(401);
  });

  it("needs the session's CSRF token for every change made with the cookie, and audits the change with its actor", async () => {
    const ops = await signIn(OPERATOR);
    const without = await withCookie('POST', '/v1/admin/queues/other/pause', ops.cookie);
    expect(without.status).toBe(403);
    expect(without.body.code).toBe('CSRF_TOKEN_INVALID');
    const other = await signIn(OPERATOR);
    // Another session's token is not this one's.
    const crossed = await withCookie('POST', '/v1/admin/queues/other/pause', ops.cookie, {
      'x-csrf-token': other.body.csrfToken,
    });
    expect(crossed.status).toBe(403);
    expect((await statsOf('other'))?.paused).toBe(false);

    const csrf = { 'x-csrf-token': ops.body.csrfToken };
    const paused = await withCookie('POST', '/v1/admin/queues/other/pause', ops.cookie, csrf);
    expect(paused.status).toBe(200);
    expect(paused.body).toMatchObject({ paused: true, pause: { by: 'ops' } });
    expect((await withCookie('POST', '/v1/admin/queues/other/resume', ops.cookie, csrf)).status).toBe(200);
    await settled();
    const audit = await timelineOf('queue:other');
    expect(audit.filter((e) => e.kind.startsWith('queue.')).slice(-2)).toEqual([
      expect.objectContaining({ kind: 'queue.paused', actor: 'ops' }),
      expect.objectContaining({ kind: 'queue.resumed', actor: 'ops' }),
    ]);

    // Signing out is a change too; afterwards the cookie is cleared.
    expect((await withCookie('DELETE', '/v1/session', ops.cookie)).status).toBe(403);
    const out = await withCookie('DELETE', '/v1/session', ops.cookie, csrf);
    expect(out.status).toBe(200);
    expect(out.setCookie).toMatch(/Max-Age=0/);
  });
});
