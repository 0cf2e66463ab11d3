import { mkdtempSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/nats-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  connectTestClient,
  deleteStreams,
  freePort,
  SHARED_NATS_URL,
  startService,
  uniquePrefix,
  waitFor,
  type ServiceProcess,
} from '@redrive/test-support';

// One intake and one sync-worker, as real processes, against the shared NATS under a prefix
// of their own. Handlers append what they saw to a file the test reads.

interface Seen {
  event: string;
  pid: number;
  at: number;
  id: string;
  type: string;
  attempt: number;
  payload: unknown;
  raw: string;
  headers: Record<string, string>;
  traceId: string;
  aborted?: boolean;
}

const prefix = uniquePrefix('e2e');
const recordFile = join(mkdtempSync(join(tmpdir(), 'redrive-e2e-')), 'seen.jsonl');
let intakePort: number;
let intake: ServiceProcess;
let worker: ServiceProcess;
let nc: NatsConnection;

const env = () => ({ NATS_URL: SHARED_NATS_URL, REDRIVE_PREFIX: prefix, RECORD_FILE: recordFile });

function seen(): Seen[] {
  if (!existsSync(recordFile)) return [];
  return readFileSync(recordFile, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Seen);
}

async function startWorker(extra: Record<string, string> = {}): Promise<ServiceProcess> {
  const w = startService('sync-worker', {
    ...env(),
    WORKER_PORT: String(await freePort()),
    WORKER_HANDLERS: './test/fixtures/record-handlers.mjs',
    ...extra,
  });
  await w.waitForLog((l) => l.msg === 'sync-worker running');
  return w;
}

async function submit(body: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(`http://127.0.0.1:${intakePort}/v1/jobs`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

beforeAll(async () => {
  nc = await connectTestClient();
  worker = await startWorker();
  intakePort = await freePort();
  intake = startService('intake', { ...env(), INTAKE_PORT: String(intakePort), INTAKE_ALLOW_ANONYMOUS: 'true' });
  await intake.waitForLog((l) => l.msg === 'intake listening');
}, 60_000);

afterAll(async () => {
  await Promise.all([intake?.stop(), worker?.stop()]);
  await deleteStreams(nc, prefix);
  await nc.close();
});

describe('a job from HTTP to its handler', () => {
  it('delivers the payload byte for byte with the contract headers', async () => {
    const payload = { text: 'grüße 🚀', n: 1.5, nested: { list: [1, null, 'x'] }, empty: '' };
    const res = await submit({ type: 'record', payload, maxAttempts: 4 });
    expect(res.status).toBe(202);
    expect(res.body).toMatchObject({ stream: `${prefix}_JOBS`, duplicate: false });
    const jobId = res.body.jobId as string;

    const run = await waitFor(() => seen().find((s) => s.id === jobId), { what: 'the job to run' });
    expect(Buffer.from(run.raw, 'base64').toString('utf8')).toBe(JSON.stringify(payload));
    expect(run.payload).toEqual(payload);
    expect(run.attempt).toBe(1);
    expect(run.headers['Redrive-Job-Id']).toBe(jobId);
    expect(run.headers['Nats-Msg-Id']).toBe(jobId);
    expect(run.headers['Redrive-Attempt']).toBe('0');
    expect(run.headers['Redrive-Max-Attempts']).toBe('4');
    expect(run.headers.traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]$/);
    expect(run.traceId).toBe(res.body.traceId);
  });

  it('gives the handler the trace id the HTTP caller sent in traceparent', async () => {
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
    const res = await submit(
      { type: 'record', payload: { t: 1 } },
      { traceparent: `00-${traceId}-00f067aa0ba902b7-01` },
    );
    expect(res.status).toBe(202);
    const run = await waitFor(() => seen().find((s) => s.id === res.body.jobId));
    expect(run.traceId).toBe(traceId);
    expect(run.headers.traceparent).toContain(traceId);
  });

  it('runs a job published straight to jobs.normal.<type> with no Redrive headers at all', async () => {
    const js = (await import('@nats-io/jetstream')).jetstream(nc);
    const ack = await js.publish(`${prefix}.jobs.normal.record`, JSON.stringify({ raw: true }));
    const run = await waitFor(() => seen().find((s) => (s.payload as { raw?: boolean } | null)?.raw === true), {
      what: 'the raw job to run',
    });
    expect(run.id).toBe(`${prefix}_JOBS:${ack.seq}`);
    expect(run.attempt).toBe(1);
    expect(run.traceId).toMatch(/^[0-9a-f]{32}$/);
  });

  it('runs a job submitted twice with one idempotency key once, and says the second was a duplicate', async () => {
    const key = `order-${prefix}`;
    const first = await submit({ type: 'record', payload: { order: 1 }, idempotencyKey: key });
    const second = await submit({ type: 'record', payload: { order: 1 }, idempotencyKey: key });
    expect(first.status).toBe(202);
    expect(second.status).toBe(202);
    // The job id is the key scoped by the job's type.
    const jobId = `record:${key}`;
    expect(first.body).toMatchObject({ jobId, duplicate: false });
    expect(second.body).toMatchObject({ jobId, duplicate: true, seq: first.body.seq });

    // A later job on the same lane is delivered after the duplicate would have been: once it
    // has run, a second run of the keyed job would have happened too.
    await waitFor(() => seen().some((s) => s.id === jobId));
    const sentinel = await submit({ type: 'record', payload: { sentinel: key } });
    await waitFor(() => seen().some((s) => s.id === sentinel.body.jobId));
    expect(seen().filter((s) => s.id === jobId)).toHaveLength(1);
  });
});

describe('graceful shutdown of the worker', () => {
  it('lets a running job finish and ack before it exits on SIGTERM', async () => {
    const res = await submit({ type: 'slow', payload: { slow: true } });
    const jobId = res.body.jobId as string;
    await waitFor(() => seen().find((s) => s.id === jobId && s.event === 'started'), { what: 'the slow job to start' });
    const code = await worker.stop('SIGTERM');
    expect(code).toBe(0);
    const finished = seen().filter((s) => s.id === jobId && s.event === 'finished');
    expect(finished).toHaveLength(1);
    expect(finished[0]!.aborted).toBe(false);
    expect(worker.logs.some((l) => l.msg === 'job succeeded' && l.jobId === jobId)).toBe(true);

    // Acked, not merely finished: the server holds nothing pending or unacknowledged for it.
    const jsm = await jetstreamManager(nc);
    const info = await jsm.consumers.info(`${prefix}_JOBS`, 'worker-normal-slow');
    expect(info.num_ack_pending).toBe(0);
    expect(info.num_pending).toBe(0);
    expect(info.num_redelivered).toBe(0);

    // A new worker does not get the job again.
    worker = await startWorker();
    const sentinel = await submit({ type: 'slow', payload: { after: true } });
    await waitFor(() => seen().some((s) => s.id === sentinel.body.jobId && s.event === 'finished'), {
      timeoutMs: 15_000,
    });
    expect(seen().filter((s) => s.id === jobId && s.event === 'started')).toHaveLength(1);
  }, 60_000);

  it('hands a job still running at the end of the grace period back, so another worker runs it at once', async () => {
    await worker.stop('SIGTERM');
    worker = await startWorker({ SHUTDOWN_GRACE: '300ms', SLOW_MS: '4000' });
    const res = await submit({ type: 'slow', payload: { handBack: true } });
    const jobId = res.body.jobId as string;
    await waitFor(() => seen().find((s) => s.id === jobId && s.event === 'started'), { what: 'the slow job to start' });
    const stoppedAt = Date.now();
    expect(await worker.stop('SIGTERM')).toBe(0);
    expect(worker.logs.some((l) => l.msg === 'handed back unfinished jobs' && l.handedBack === 1)).toBe(true);

    worker = await startWorker({ SLOW_MS: '10' });
    const rerun = await waitFor(() => seen().find((s) => s.id === jobId && s.event === 'finished'), {
      timeoutMs: 20_000,
      what: 'the handed-back job to run again',
    });
    const first = seen().find((s) => s.id === jobId && s.event === 'started')!;
    expect(rerun.pid).not.toBe(first.pid);
    // nats-server rolls back the delivery of a message NAKed after its pull ended, so a
    // hand-back at shutdown does not always use up an attempt.
    expect([1, 2]).toContain(rerun.attempt);
    expect(seen().filter((s) => s.id === jobId && s.event === 'finished')).toHaveLength(1);
    // Redelivered on the hand-back, long before the 30 s ack wait would have expired.
    expect(rerun.at - stoppedAt).toBeLessThan(15_000);
  }, 60_000);
});
