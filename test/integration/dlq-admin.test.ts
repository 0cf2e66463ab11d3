import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jetstream, jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { headers as natsHeaders, type NatsConnection } from '@nats-io/nats-core';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { publishJob, Topology, writeDeadLetterHeaders } from '@redrive/messaging';
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
  streamMessages,
  uniquePrefix,
  waitFor,
  type ServiceProcess,
  type TestDatabase,
} from '@redrive/test-support';

// The operator's side of dlq-manager: the admin API and the NATS endpoints, against a real
// dlq-manager and sync-worker (handlers that stay broken until "fixed"), the shared NATS under
// a prefix of its own, and a fresh database.

interface Run {
  id: string;
  type: string;
  attempt: number;
  payload: Record<string, unknown>;
  headers: Record<string, string>;
  outcome: 'succeeded' | 'failed';
}

const prefix = uniquePrefix('dlqadmin');
const topology = new Topology({ prefix });
const recordFile = recordFilePath('dlqadmin');
const fixDir = mkdtempSync(join(tmpdir(), 'redrive-dlqfix-'));
const OPERATOR = 'operator-token-for-tests-0001';
const VIEWER = 'viewer-token-for-tests-00002';
let nc: NatsConnection;
let jsm: JetStreamManager;
let db: TestDatabase;
let sql: pg.Pool;
let dlq: ServiceProcess;
let worker: ServiceProcess;
let base: string;
let counter = 0;

const runs = (id: string) => readRecords<Run>(recordFile, id);

async function api<T = Record<string, unknown>>(
  method: string,
  path: string,
  opts: { token?: string | null; body?: unknown } = {},
): Promise<{ status: number; body: T }> {
  const token = opts.token === undefined ? OPERATOR : opts.token;
  const res = await fetch(`${base}${path}`, {
    method,
    headers: {
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...(opts.body !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    ...(opts.body !== undefined ? { body: JSON.stringify(opts.body) } : {}),
  });
  const text = await res.text();
  return { status: res.status, body: (text ? JSON.parse(text) : {}) as T };
}

async function submit(type: string, payload: unknown): Promise<string> {
  const jobId = `${type}-${++counter}-${prefix}`;
  await publishJob(jetstream(nc), {
    subject: topology.jobSubject('normal', type),
    payload: new TextEncoder().encode(JSON.stringify(payload)),
    jobId,
    msgId: jobId,
    attempt: 0,
  });
  return jobId;
}

interface View {
  id: number;
  jobId: string;
  type: string;
  reason: string;
  resolved: boolean;
  resolvedBy: string | null;
  redriveCount: number;
  lastRedrivenBy: string | null;
}

async function deadLetterOf(jobId: string): Promise<View> {
  return waitFor(
    async () => {
      const r = await api<{ items: View[] }>('GET', `/v1/admin/dead-letters?jobId=${encodeURIComponent(jobId)}`, {
        token: VIEWER,
      });
      return r.body.items?.[0];
    },
    { timeoutMs: 15_000, what: `the dead letter of ${jobId}` },
  );
}

interface TimelineEvent {
  kind: string;
  life: number;
  attempt?: number;
  actor?: string;
}

async function timelineOf(jobId: string) {
  return (
    await api<{ events: TimelineEvent[]; summary: { status: string; lives: number } | null }>(
      'GET',
      `/v1/jobs/${encodeURIComponent(jobId)}/timeline`,
      { token: VIEWER },
    )
  ).body;
}

interface Operation {
  id: string;
  status: string;
  counts: {
    matched: number;
    selected: number;
    redriven: number;
    failed: number;
    remaining: number;
    beyondLimit: number;
  };
  errors: { id: number; code: string; message: string }[];
  cancelRequestedBy: string | null;
  error: string | null;
}

/** Waits until a tracked operation is no longer running; returns its last view. */
async function operationDone(id: string): Promise<Operation> {
  return waitFor(
    async () => {
      const r = await api<Operation>('GET', `/v1/admin/operations/${id}`, { token: VIEWER });
      return r.body.status !== 'running' ? r.body : undefined;
    },
    { timeoutMs: 20_000, what: `operation ${id} to finish` },
  );
}

/** Waits until dlq-manager has projected every event and recorded every dead letter so far. */
async function settled(): Promise<void> {
  await consumersSettled(
    jsm,
    [
      [topology.streams.events, 'dlq-manager-audit'],
      [topology.streams.dlq, 'dlq-manager-recorder'],
      [topology.streams.advisories, 'dlq-manager-advisories'],
    ],
    { timeoutMs: 15_000, what: 'dlq-manager to settle' },
  );
}

beforeAll(async () => {
  nc = await connectTestClient();
  jsm = await jetstreamManager(nc);
  db = await createTestDatabase('dlqadmin');
  sql = new pg.Pool({ connectionString: db.url, max: 2 });
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
    // The retention schedule runs every second here (30 days of retention, the default).
    DLQ_CLEANUP_INTERVAL: '1s',
    // A small cap, so a test reaches it with a handful of entries.
    DLQ_BULK_REDRIVE_MAX: '5',
  });
  worker = startService('sync-worker', {
    NATS_URL: SHARED_NATS_URL,
    REDRIVE_PREFIX: prefix,
    RECORD_FILE: recordFile,
    FIX_DIR: fixDir,
    WORKER_PORT: String(await freePort()),
    WORKER_HANDLERS: './test/fixtures/dlq-handlers.mjs',
  });
  await Promise.all([
    dlq.waitForLog((l) => l.msg === 'dlq-manager running', 30_000),
    worker.waitForLog((l) => l.msg === 'sync-worker running', 30_000),
  ]);
}, 90_000);

afterAll(async () => {
  await worker?.stop();
  await dlq?.stop();
  await sql?.end();
  await deleteStreams(nc, prefix);
  await db?.drop();
  await nc?.close();
});

describe('redrive', () => {
  it('runs a redriven dead letter again with its attempts reset; fixed, it succeeds, and its timeline shows both lives', async () => {
    const jobId = await submit('fixable', { order: 1 });
    const entry = await deadLetterOf(jobId);
    expect(entry).toMatchObject({ type: 'fixable', reason: 'non_retryable', resolved: false, redriveCount: 0 });
    const full = await api<{ payload: unknown; headers: Record<string, string> }>(
      'GET',
      `/v1/admin/dead-letters/${entry.id}`,
      { token: VIEWER },
    );
    expect(full.status).toBe(200);
    expect(full.body.payload).toEqual({ order: 1 });
    expect(full.body.headers['Redrive-Reason']).toBe('non_retryable');

    writeFileSync(join(fixDir, 'fixable'), 'fixed in v2');
    const redriven = await api('POST', `/v1/admin/dead-letters/${entry.id}/redrive`, {
      body: { note: 'handler fixed in v2' },
    });
    expect(redriven.status).toBe(202);
    expect(redriven.body).toMatchObject({ jobId, target: topology.jobSubject('normal', 'fixable'), duplicate: false });

    const [first, second] = await waitFor(() => (runs(jobId).length >= 2 ? runs(jobId) : undefined), {
      what: 'the second run',
    });
    expect(first).toMatchObject({ attempt: 1, outcome: 'failed' });
    // Attempts start again from zero; the job keeps its id.
    expect(second).toMatchObject({ id: jobId, attempt: 1, outcome: 'succeeded', payload: { order: 1 } });
    expect(second!.headers['Redrive-Attempt']).toBe('0');
    expect(second!.headers['Redrive-Reason']).toBeUndefined();

    const timeline = await waitFor(
      async () => {
        const t = await timelineOf(jobId);
        return t.events?.some((e) => e.kind === 'attempt.succeeded') ? t : undefined;
      },
      { what: 'the second life in the timeline' },
    );
    const lives = (life: number) => timeline.events.filter((e) => e.life === life).map((e) => e.kind);
    expect(lives(1)).toEqual(['attempt.failed', 'job.dead_lettered']);
    expect(lives(2)).toEqual(['job.redriven', 'attempt.succeeded']);
    expect(timeline.events.find((e) => e.kind === 'job.redriven')).toMatchObject({ actor: 'ops', attempt: 0 });
    expect(timeline.events.find((e) => e.kind === 'attempt.succeeded')?.attempt).toBe(1);
    expect(timeline.summary).toMatchObject({ status: 'succeeded', lives: 2 });

    const after = await api<View & { resolutionNote: string }>('GET', `/v1/admin/dead-letters/${entry.id}`);
    expect(after.body).toMatchObject({
      redriveCount: 1,
      lastRedrivenBy: 'ops',
      resolved: true,
      resolvedBy: 'ops',
      resolutionNote: 'handler fixed in v2',
    });
  });

  it('redrives with an edited payload, now or through the retry-scheduler after a delay', async () => {
    const later = await deadLetterOf(await submit('broken', { order: 2 }));
    const before = Date.now();
    const delayed = await api('POST', `/v1/admin/dead-letters/${later.id}/redrive`, {
      body: { delay: '1h', payload: { order: 2, fixed: true } },
    });
    expect(delayed.status).toBe(202);
    expect(delayed.body.subject).toBe(topology.scheduleSubject('redrive'));
    const [request] = (await streamMessages(jsm, topology.streams.schedule)).filter(
      (m) => m.header.get('Redrive-Job-Id') === later.jobId,
    );
    expect(request).toBeDefined();
    expect(request!.header.get('Redrive-Original-Subject')).toBe(topology.jobSubject('normal', 'broken'));
    expect(request!.header.get('Redrive-Attempt')).toBe('0');
    expect(request!.header.get('Nats-Msg-Id')).toMatch(/^redrive:/);
    const due = Date.parse(request!.header.get('Redrive-Due-At'));
    expect(due).toBeGreaterThanOrEqual(before + 3_600_000);
    expect(due).toBeLessThan(Date.now() + 3_600_000 + 1_000);
    expect(JSON.parse(request!.string())).toEqual({ order: 2, fixed: true });

    const now = await deadLetterOf(await submit('broken', { order: 3 }));
    const res = await api('POST', `/v1/admin/dead-letters/${now.id}/redrive`, {
      body: { payload: { order: 3, fixed: true } },
    });
    expect(res.status).toBe(202);
    await waitFor(() => runs(now.jobId).some((r) => r.outcome === 'succeeded'), { what: 'the edited job to succeed' });
    expect(runs(now.jobId).at(-1)!.payload).toEqual({ order: 3, fixed: true });
  });

  it('redrives keeping the step checkpoints by default, or resetting them, and the audit row says which', async () => {
    const kept = await deadLetterOf(await submit('broken', { order: 'keep-steps' }));
    const reset = await deadLetterOf(await submit('broken', { order: 'reset-steps' }));
    for (const { jobId } of [kept, reset])
      await sql.query(
        `INSERT INTO job_steps (job_id, step, result) VALUES ($1, 'charge', '"ch_1"'), ($1, 'ship', '"sh_1"')`,
        [jobId],
      );
    const stepsOf = async (jobId: string) =>
      (await sql.query('SELECT step FROM job_steps WHERE job_id = $1 ORDER BY step', [jobId])).rows.map(
        (r: { step: string }) => r.step,
      );

    const a = await api('POST', `/v1/admin/dead-letters/${kept.id}/redrive`, { body: {} });
    expect(a.status).toBe(202);
    expect(a.body).toMatchObject({ steps: 'keep' });
    expect(a.body.stepsCleared).toBeUndefined();
    expect(await stepsOf(kept.jobId)).toEqual(['charge', 'ship']);

    const b = await api('POST', `/v1/admin/dead-letters/${reset.id}/redrive`, { body: { steps: 'reset' } });
    expect(b.status).toBe(202);
    expect(b.body).toMatchObject({ steps: 'reset', stepsCleared: 2 });
    expect(await stepsOf(reset.jobId)).toEqual([]);

    const bad = await api('POST', `/v1/admin/dead-letters/${reset.id}/redrive`, { body: { steps: 'forget' } });
    expect(bad.status).toBe(400);

    const audit = await sql.query<{ job_id: string; extra: { steps?: string; stepsCleared?: number } }>(
      `SELECT job_id, extra FROM audit_events WHERE kind = 'job.redriven' AND job_id = ANY($1)`,
      [[kept.jobId, reset.jobId]],
    );
    const byJob = new Map(audit.rows.map((r) => [r.job_id, r.extra]));
    expect(byJob.get(kept.jobId)).toMatchObject({ steps: 'keep' });
    expect(byJob.get(kept.jobId)!.stepsCleared).toBeUndefined();
    expect(byJob.get(reset.jobId)).toMatchObject({ steps: 'reset', stepsCleared: 2 });
  });

  it('bulk-redrives by filter after a dry run: the count matches, every matching entry runs again and no other', async () => {
    const fixableIds = [
      await submit('bulkfix', { n: 1 }),
      await submit('bulkfix', { n: 2 }),
      await submit('bulkfix', { n: 3 }),
    ];
    const otherIds = [await submit('broken', { n: 4 }), await submit('broken', { n: 5 })];
    for (const id of [...fixableIds, ...otherIds]) await deadLetterOf(id);
    writeFileSync(join(fixDir, 'bulkfix'), 'fixed');

    const dry = await api('POST', '/v1/admin/dead-letters:redrive', {
      body: { filter: { type: 'bulkfix' }, dryRun: true },
    });
    expect(dry.status).toBe(200);
    expect(dry.body).toMatchObject({ dryRun: true, matched: 3, payloadUnavailable: 0 });
    // A dry run changes nothing.
    for (const id of fixableIds) expect(runs(id)).toHaveLength(1);
    expect((await deadLetterOf(fixableIds[0]!)).redriveCount).toBe(0);

    // A bulk redrive is a tracked operation: 202 at once, its progress at /v1/admin/operations/:id.
    const run = await api<Operation>('POST', '/v1/admin/dead-letters:redrive', {
      body: { filter: { type: 'bulkfix' } },
    });
    expect(run.status).toBe(202);
    const done = await operationDone(run.body.id);
    expect(done).toMatchObject({ status: 'completed', counts: { matched: 3, redriven: 3, failed: 0, remaining: 0 } });
    expect(done.errors).toEqual([]);
    await waitFor(() => fixableIds.every((id) => runs(id).some((r) => r.outcome === 'succeeded')), {
      what: 'every matching job to run again and succeed',
    });
    await settled();
    for (const id of fixableIds) expect(runs(id).map((r) => r.outcome)).toEqual(['failed', 'succeeded']);
    for (const id of otherIds) {
      expect(runs(id)).toHaveLength(1);
      expect((await deadLetterOf(id)).redriveCount).toBe(0);
    }
    // Redriven entries are resolved, so a second bulk redrive of the same filter finds none.
    const again = await api('POST', '/v1/admin/dead-letters:redrive', {
      body: { filter: { type: 'bulkfix' }, dryRun: true },
    });
    expect(again.body.matched).toBe(0);
  });
});

describe('bulk redrive operations', () => {
  /** `n` broken jobs dead-lettered with `marker` in their error, so `q` matches them alone. */
  async function brokenEntries(marker: string, n: number): Promise<View[]> {
    const ids: string[] = [];
    for (let i = 0; i < n; i++) ids.push(await submit('broken', { marker, i }));
    const out: View[] = [];
    for (const id of ids) out.push(await deadLetterOf(id));
    return out;
  }

  it('refuses more matches than the cap without a limit (400 saying how many and the cap); with one, redrives the first in id order and says how many were left out', async () => {
    const marker = `cap-${prefix}`;
    const entries = await brokenEntries(marker, 7);
    const filter = { type: 'broken', q: marker };
    const dry = await api('POST', '/v1/admin/dead-letters:redrive', { body: { filter, dryRun: true } });
    expect(dry.body).toMatchObject({ dryRun: true, matched: 7, cap: 5 });

    const refused = await api<{ code: string; message: string }>('POST', '/v1/admin/dead-letters:redrive', {
      body: { filter },
    });
    expect(refused.status).toBe(400);
    expect(refused.body.code).toBe('VALIDATION_ERROR');
    expect(refused.body.message).toContain('7 dead letters match');
    expect(refused.body.message).toContain('cap of 5');
    const above = await api('POST', '/v1/admin/dead-letters:redrive', { body: { filter, limit: 6 } });
    expect(above.status).toBe(400);
    // Nothing ran.
    for (const e of entries) expect((await deadLetterOf(e.jobId)).redriveCount).toBe(0);

    const limited = await api<Operation>('POST', '/v1/admin/dead-letters:redrive', { body: { filter, limit: 2 } });
    expect(limited.status).toBe(202);
    const done = await operationDone(limited.body.id);
    expect(done).toMatchObject({
      status: 'completed',
      counts: { matched: 7, selected: 2, redriven: 2, failed: 0, remaining: 0, beyondLimit: 5 },
    });
    const sorted = [...entries].sort((a, b) => a.id - b.id);
    const counts = await sql.query<{ id: string; redrive_count: number }>(
      'SELECT id, redrive_count FROM dead_letters WHERE id = ANY($1) ORDER BY id',
      [sorted.map((e) => e.id)],
    );
    expect(counts.rows.map((r) => r.redrive_count)).toEqual([1, 1, 0, 0, 0, 0, 0]);
  });

  it('shows progress while it runs, and a cancel stops it between entries', async () => {
    const marker = `cancel-${prefix}`;
    await brokenEntries(marker, 5);
    const started = await api<Operation>('POST', '/v1/admin/dead-letters:redrive', {
      body: { filter: { type: 'broken', q: marker }, perSecond: 1 },
    });
    expect(started.status).toBe(202);
    expect(started.body).toMatchObject({ status: 'running', counts: { matched: 5, selected: 5 } });
    const id = started.body.id;

    const midway = await waitFor(
      async () => {
        const r = await api<Operation>('GET', `/v1/admin/operations/${id}`, { token: VIEWER });
        return r.body.counts.redriven >= 1 ? r.body : undefined;
      },
      { what: 'the operation to show progress' },
    );
    expect(midway.status).toBe('running');
    expect(midway.counts.remaining).toBe(5 - midway.counts.redriven);

    expect((await api('POST', `/v1/admin/operations/${id}/cancel`, { token: VIEWER })).status).toBe(403);
    const cancelled = await api<Operation>('POST', `/v1/admin/operations/${id}/cancel`);
    expect(cancelled.status).toBe(200);
    expect(cancelled.body).toMatchObject({ status: 'cancelled', cancelRequestedBy: 'ops' });
    expect(cancelled.body.counts.redriven).toBeLessThan(5);
    expect(cancelled.body.counts.remaining).toBe(5 - cancelled.body.counts.redriven);

    // Stopped: nothing more is redriven.
    await new Promise((r) => setTimeout(r, 2_500));
    const later = await api<Operation>('GET', `/v1/admin/operations/${id}`, { token: VIEWER });
    expect(later.body).toMatchObject({ status: 'cancelled', counts: cancelled.body.counts });
    const redriven = await sql.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM audit_events WHERE kind = 'job.redriven' AND extra->>'bulk' = $1`,
      [id],
    );
    expect(redriven.rows[0]!.n).toBe(cancelled.body.counts.redriven);

    const again = await api<{ code: string }>('POST', `/v1/admin/operations/${id}/cancel`);
    expect(again.status).toBe(409);
    expect(again.body.code).toBe('OPERATION_FINISHED');
    expect((await api('GET', '/v1/admin/operations/no-such-operation', { token: VIEWER })).status).toBe(404);
  });

  it('shows a running operation whose dlq-manager stopped driving it as interrupted', async () => {
    const id = `orphan-${prefix}`;
    await sql.query(
      `INSERT INTO admin_operations (id, kind, status, actor, request, matched, selected, upto_id, redriven, updated_at)
       VALUES ($1, 'bulk-redrive', 'running', 'ops', '{}', 10, 10, 100, 4, now() - interval '1 minute')`,
      [id],
    );
    const r = await api<Operation>('GET', `/v1/admin/operations/${id}`, { token: VIEWER });
    expect(r.body).toMatchObject({ status: 'interrupted', counts: { redriven: 4, remaining: 6 } });
    expect(r.body.error).toContain('run the request again');
  });
});

describe('reading', () => {
  it('lists with filters and cursor pagination, newest first', async () => {
    const page1 = await api<{ items: View[]; nextCursor: string | null }>(
      'GET',
      '/v1/admin/dead-letters?type=bulkfix&limit=2',
      { token: VIEWER },
    );
    expect(page1.status).toBe(200);
    expect(page1.body.items).toHaveLength(2);
    expect(page1.body.items[0]!.id).toBeGreaterThan(page1.body.items[1]!.id);
    const page2 = await api<{ items: View[]; nextCursor: string | null }>(
      'GET',
      `/v1/admin/dead-letters?type=bulkfix&limit=2&cursor=${page1.body.nextCursor}`,
      { token: VIEWER },
    );
    expect(page2.body.items).toHaveLength(1);
    expect(page2.body.nextCursor).toBeNull();
    const byText = await api<{ items: View[] }>('GET', '/v1/admin/dead-letters?q=BULKFIX%20is%20broken&resolved=true');
    expect(byText.body.items.map((i) => i.type)).toEqual(['bulkfix', 'bulkfix', 'bulkfix']);
    const open = await api<{ items: View[] }>('GET', '/v1/admin/dead-letters?type=broken&resolved=false');
    expect(open.body.items.length).toBeGreaterThanOrEqual(2);
    const range = await api<{ items: View[] }>(
      'GET',
      `/v1/admin/dead-letters?reason=non_retryable&errorClass=unknown&from=${encodeURIComponent(new Date(Date.now() + 60_000).toISOString())}`,
    );
    expect(range.body.items).toEqual([]);
    const bad = await api('GET', '/v1/admin/dead-letters?reason=sideways');
    expect(bad.status).toBe(400);
    expect(bad.body).toMatchObject({ statusCode: 400, code: 'VALIDATION_ERROR' });
  });

  it('counts by type, reason and class, with the unresolved count, the oldest unresolved age and entries per hour', async () => {
    const stats = await api<{
      total: number;
      unresolved: number;
      oldestUnresolvedAgeSeconds: number;
      byType: { type: string; count: number; unresolved: number }[];
      byReason: { reason: string; count: number }[];
      perHour: { hour: string; count: number }[];
    }>('GET', '/v1/admin/stats?hours=6', { token: VIEWER });
    expect(stats.status).toBe(200);
    const { rows } = await sql.query<{ total: number; unresolved: number }>(
      'SELECT count(*)::int AS total, count(*) FILTER (WHERE resolved_at IS NULL)::int AS unresolved FROM dead_letters',
    );
    expect(stats.body).toMatchObject(rows[0]!);
    expect(stats.body.byType.find((t) => t.type === 'bulkfix')).toEqual({ type: 'bulkfix', count: 3, unresolved: 0 });
    expect(stats.body.byReason).toEqual([
      { reason: 'non_retryable', count: rows[0]!.total, unresolved: rows[0]!.unresolved },
    ]);
    expect(stats.body.oldestUnresolvedAgeSeconds).toBeGreaterThanOrEqual(0);
    expect(stats.body.perHour).toHaveLength(6);
    expect(stats.body.perHour.reduce((n, h) => n + h.count, 0)).toBe(rows[0]!.total);
  });
});

describe('authorisation', () => {
  it('answers 401 without a valid token on every admin route and 403 to a viewer on every change, leaving no trace', async () => {
    await settled();
    const some = await deadLetterOf(`broken-${counter}-${prefix}`);
    const snapshot = async () => ({
      deadLetters: (await sql.query('SELECT * FROM dead_letters ORDER BY id')).rows,
      audit: (await sql.query('SELECT id FROM audit_events ORDER BY id')).rows,
      summaries: (await sql.query('SELECT * FROM job_summaries ORDER BY job_id')).rows,
      streams: await Promise.all(
        [topology.streams.jobs, topology.streams.dlq, topology.streams.schedule, topology.streams.events].map(
          async (s) => (await jsm.streams.info(s)).state.last_seq,
        ),
      ),
    });
    const before = await snapshot();
    const reads: [string, string][] = [
      ['GET', '/v1/admin/dead-letters'],
      ['GET', `/v1/admin/dead-letters/${some.id}`],
      ['GET', '/v1/admin/stats'],
      ['GET', `/v1/jobs/${some.jobId}/timeline`],
    ];
    const changes: [string, string, unknown][] = [
      ['POST', `/v1/admin/dead-letters/${some.id}/resolve`, { note: 'x' }],
      ['POST', `/v1/admin/dead-letters/${some.id}/redrive`, {}],
      ['POST', '/v1/admin/dead-letters:redrive', { filter: {} }],
      ['DELETE', `/v1/admin/dead-letters/${some.id}`, undefined],
      ['POST', '/v1/admin/cleanup', { olderThan: '1ms' }],
    ];
    for (const [method, path, body] of [...reads.map(([m, p]) => [m, p, undefined] as const), ...changes]) {
      for (const token of [null, 'not-a-token-at-all-00000000', `${OPERATOR}x`]) {
        const res = await api(method, path, { token, body });
        expect(res.status, `${method} ${path} with ${token ?? 'no token'}`).toBe(401);
        expect(res.body).toMatchObject({ statusCode: 401, code: 'UNAUTHORIZED' });
      }
    }
    for (const [method, path, body] of changes) {
      const res = await api(method, path, { token: VIEWER, body });
      expect(res.status, `${method} ${path} as a viewer`).toBe(403);
      expect(res.body).toMatchObject({ statusCode: 403, code: 'FORBIDDEN' });
    }
    for (const [method, path] of reads) {
      expect((await api(method, path, { token: VIEWER })).status, `${method} ${path} as a viewer`).toBe(200);
    }
    await new Promise((r) => setTimeout(r, 300));
    await settled();
    expect(await snapshot()).toEqual(before);
  });
});

describe('changes', () => {
  it('resolves with a note and deletes, each recorded in the audit trail with who did it', async () => {
    const a = await deadLetterOf(await submit('broken', { order: 'resolve-me' }));
    const resolved = await api('POST', `/v1/admin/dead-letters/${a.id}/resolve`, {
      body: { note: 'customer refunded' },
    });
    expect(resolved.status).toBe(200);
    expect(resolved.body).toMatchObject({ resolved: true, resolvedBy: 'ops', resolutionNote: 'customer refunded' });
    const b = await deadLetterOf(await submit('broken', { order: 'delete-me' }));
    const b0 = await api<{ dlqStream: string; dlqSeq: number }>('GET', `/v1/admin/dead-letters/${b.id}`);
    expect((await api('DELETE', `/v1/admin/dead-letters/${b.id}`)).status).toBe(200);
    expect((await api('GET', `/v1/admin/dead-letters/${b.id}`)).status).toBe(404);
    expect(await jsm.streams.getMessage(b0.body.dlqStream, { seq: b0.body.dlqSeq })).toBeNull();
    const audit = await sql.query<{ job_id: string; kind: string; actor: string; extra: { note?: string } }>(
      `SELECT job_id, kind, actor, extra FROM audit_events WHERE kind LIKE 'dead_letter.%' AND job_id = ANY($1) ORDER BY at`,
      [[a.jobId, b.jobId]],
    );
    expect(audit.rows).toMatchObject([
      { job_id: a.jobId, kind: 'dead_letter.resolved', actor: 'ops', extra: { note: 'customer refunded' } },
      { job_id: b.jobId, kind: 'dead_letter.deleted', actor: 'ops' },
    ]);
  });

  it('cleanup removes resolved entries past the age, on its schedule and on demand, and nothing else', async () => {
    const js = jetstream(nc);
    const jobIds: string[] = [];
    for (const name of ['old-resolved', 'day-old-resolved', 'old-unresolved', 'fresh-resolved']) {
      const jobId = `cleanup-${name}-${prefix}`;
      jobIds.push(jobId);
      const h = writeDeadLetterHeaders({
        originalSubject: topology.jobSubject('normal', 'cleanup'),
        originalSeq: 1_000_000 + jobIds.length,
        reason: 'non_retryable',
        errorClass: 'validation',
        error: `bad input (${name})`,
        attempts: 1,
      });
      h.set('Redrive-Job-Id', jobId);
      await js.publish(topology.dlqSubject('cleanup'), JSON.stringify({ name }), {
        headers: h,
        msgID: `dlq:${topology.streams.jobs}:${1_000_000 + jobIds.length}`,
      });
    }
    const [oldResolved, dayOld, oldOpen, fresh] = await Promise.all(jobIds.map((id) => deadLetterOf(id)));
    await sql.query(
      `UPDATE dead_letters SET created_at = now() - interval '41 days', resolved_at = now() - interval '40 days',
         resolved_by = 'someone' WHERE id = $1`,
      [oldResolved!.id],
    );
    await sql.query(
      `UPDATE dead_letters SET resolved_at = now() - interval '1 day', resolved_by = 'someone' WHERE id = $1`,
      [dayOld!.id],
    );
    await sql.query(`UPDATE dead_letters SET created_at = now() - interval '60 days' WHERE id = $1`, [oldOpen!.id]);
    await api('POST', `/v1/admin/dead-letters/${fresh!.id}/resolve`, { body: {} });
    const alive = async () =>
      (
        await sql.query<{ id: string }>('SELECT id FROM dead_letters WHERE type = $1 ORDER BY id', ['cleanup'])
      ).rows.map((r) => Number(r.id));

    // The schedule (every second here) applies the configured retention, 30 days.
    await waitFor(async () => !(await alive()).includes(oldResolved!.id), {
      what: 'the scheduled cleanup to remove the entry resolved 40 days ago',
    });
    expect(await alive()).toEqual([dayOld!.id, oldOpen!.id, fresh!.id]);

    const onDemand = await api('POST', '/v1/admin/cleanup', { body: { olderThan: '12h' } });
    expect(onDemand.status).toBe(200);
    expect(onDemand.body.deleted).toBe(1);
    expect(await alive()).toEqual([oldOpen!.id, fresh!.id]);

    const audit = await sql.query<{ job_id: string; actor: string }>(
      `SELECT job_id, actor FROM audit_events WHERE kind = 'dead_letter.expired' ORDER BY at`,
    );
    expect(audit.rows).toEqual([
      { job_id: oldResolved!.jobId, actor: 'retention' },
      { job_id: dayOld!.jobId, actor: 'ops' },
    ]);
  });
});

describe('NATS service endpoints', () => {
  it('are listed by the micro protocol and answer the same operations on request subjects', async () => {
    // What `nats micro info redrive-dlq-manager` asks: every instance answers (other test
    // files run their own, under other prefixes).
    const infos: { metadata?: Record<string, string>; endpoints: { subject: string }[] }[] = [];
    for await (const m of await nc.requestMany('$SRV.INFO.redrive-dlq-manager', '', {
      strategy: 'timer',
      maxWait: 1_000,
    }))
      infos.push(JSON.parse(m.string()));
    const mine = infos.find((i) => i.metadata?.prefix === prefix);
    expect(mine).toBeDefined();
    expect(mine!.endpoints.map((e) => e.subject).sort()).toEqual(
      [
        'bulk-redrive',
        'cancel-operation',
        'cleanup',
        'delete',
        'get',
        'job',
        'jobs',
        'list',
        'operation',
        'pause',
        'queues',
        'redrive',
        'resolve',
        'resume',
        'stats',
        'timeline',
      ]
        .map((op) => `${prefix}.dlq-manager.${op}`)
        .sort(),
    );

    const req = async (op: string, body: unknown, actor?: string) => {
      const h = natsHeaders();
      if (actor) h.set('Redrive-Actor', actor);
      const m = await nc.request(`${prefix}.dlq-manager.${op}`, JSON.stringify(body), { timeout: 5_000, headers: h });
      return { error: m.headers?.get('Nats-Service-Error-Code'), body: JSON.parse(m.string()) };
    };
    const list = await req('list', { type: 'bulkfix' });
    expect(list.error).toBeUndefined();
    expect(list.body.items).toHaveLength(3);
    const stats = await req('stats', {});
    expect(stats.body.byType.some((t: { type: string }) => t.type === 'bulkfix')).toBe(true);

    const target = await deadLetterOf(await submit('broken', { order: 'over-nats' }));
    const resolved = await req('resolve', { id: target.id, note: 'seen over NATS' }, 'alice');
    expect(resolved.body).toMatchObject({ resolved: true, resolvedBy: 'nats:alice' });
    const missing = await req('get', { id: 999_999 });
    expect(missing.error).toBe('404');
    expect(missing.body).toMatchObject({ statusCode: 404, code: 'NOT_FOUND' });
    const invalid = await req('resolve', { id: 'one' });
    expect(invalid.error).toBe('400');
  });
});
