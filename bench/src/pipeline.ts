// Redrive's full path: jobs in (straight to NATS, or over HTTP in batches), a no-op handler
// in sync-worker, acks, lifecycle events, and dlq-manager projecting them into audit rows in
// Postgres. Throughput counts a job when its success row is in audit_events (polled on one
// connection; nothing subscribes to the events meanwhile, so measuring costs the pipeline no NATS
// traffic); latency, when its attempt.succeeded event is stored (the audit row follows in the
// next projection batch).
import { jetstream } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/nats-core';
import { decodeEvents, publishJob, Topology } from '@redrive/messaging';
import pg from 'pg';
import {
  createTestDatabase,
  deleteStreams,
  SHARED_NATS_URL,
  uniquePrefix,
  waitFor,
  type TestDatabase,
} from '@redrive/test-support';
import type { MeasuredWindow } from './cpu.js';
import { startBenchService, type BenchService } from './services.js';
import { atRate, percentile, round, sleep } from './stats.js';

export interface PipelineRun {
  nc: NatsConnection;
  topology: Topology;
  services: BenchService[];
  intakePort?: number;
  /** This run's database, and the backend pid of the bench's own connection to it (its probe). */
  database: string;
  probePid: number;
  /** Resolves when `count` jobs have succeeded; records when each job id succeeded. */
  successes(count: number): { done: Promise<void>; at: Map<string, number> };
  /** Resolves when audit_events holds the success rows of `count` more jobs (counted across calls). */
  audited(count: number): Promise<void>;
  peakRssMb(): Record<string, number>;
  close(): Promise<void>;
}

export async function startPipeline(
  nc: NatsConnection,
  opts: {
    http: boolean;
    concurrency: number;
    /** More environment for the worker (REDIS_URL, say). */
    workerEnv?: Record<string, string>;
    countLogLines?: boolean;
  },
): Promise<PipelineRun> {
  const prefix = uniquePrefix('bench');
  const topology = new Topology({ prefix });
  const common = { NATS_URL: SHARED_NATS_URL, REDRIVE_PREFIX: prefix };
  const services: BenchService[] = [];
  const count = { countLogLines: opts.countLogLines ?? false };
  const db: TestDatabase = await createTestDatabase('benchpipe');
  const sql = new pg.Client({ connectionString: db.url });
  await sql.connect();
  const probePid = (await sql.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
  services.push(await startBenchService('dlq-manager', { ...common, DATABASE_URL: db.url, LOG_LEVEL: 'warn' }, count));
  services.push(
    await startBenchService(
      'sync-worker',
      {
        ...common,
        WORKER_HANDLERS: './test/fixtures/noop-handler.mjs',
        WORKER_CONCURRENCY: String(opts.concurrency),
        WORKER_MAX_ACK_PENDING: '20000',
        ...opts.workerEnv,
      },
      count,
    ),
  );
  if (opts.http) {
    const intakeEnv = { ...common, INTAKE_MAX_BATCH: '1000', INTAKE_ALLOW_ANONYMOUS: 'true' };
    services.push(await startBenchService('intake', intakeEnv, count));
  }
  const audits = { seen: 0 };
  const peaks: Record<string, number> = {};
  const sampler = setInterval(() => {
    for (const s of services) peaks[s.name] = Math.max(peaks[s.name] ?? 0, s.rssMb());
  }, 200);
  return {
    nc,
    topology,
    services,
    ...(opts.http ? { intakePort: services.find((x) => x.name === 'intake')!.port } : {}),
    database: db.name,
    probePid,
    successes(count) {
      const at = new Map<string, number>();
      const sub = nc.subscribe(topology.eventSubject('attempt.succeeded'));
      const done = (async () => {
        for await (const m of sub) {
          const now = performance.now();
          for (const e of decodeEvents(m.data)) at.set(e.jobId, now);
          if (at.size >= count) break;
        }
      })();
      return { done, at };
    },
    async audited(n) {
      const rows = async () =>
        (await sql.query<{ n: number }>("SELECT count(*)::int AS n FROM audit_events WHERE kind = 'attempt.succeeded'"))
          .rows[0]!.n;
      const target = audits.seen + n;
      await waitFor(async () => (await rows()) >= target, {
        timeoutMs: 300_000,
        intervalMs: 20,
        what: `${n} audit rows`,
      });
      audits.seen = target;
    },
    peakRssMb: () => ({ ...peaks }),
    async close() {
      clearInterval(sampler);
      for (const s of [...services].reverse()) await s.stop();
      await sql.end().catch(() => undefined);
      await deleteStreams(nc, prefix);
      await db.drop();
    },
  };
}

/**
 * Jobs per second through the whole path, published straight to JOBS (PubAck pipelined);
 * `meter` (a CPU meter) is marked around the timed part.
 */
export async function pipelineNatsThroughput(
  run: PipelineRun,
  count: number,
  size: number,
  meter?: MeasuredWindow,
): Promise<number> {
  const js = jetstream(run.nc);
  const body = new TextEncoder().encode(JSON.stringify({ pad: 'x'.repeat(Math.max(0, size - 10)) }));
  await run.nc.flush();
  await meter?.begin();
  const started = performance.now();
  const inflight = new Set<Promise<unknown>>();
  for (let i = 0; i < count; i++) {
    const id = `n${i}`;
    const p = publishJob(js, {
      subject: run.topology.jobSubject('normal', 'noop'),
      payload: body,
      jobId: id,
      msgId: id,
      attempt: 0,
    }).finally(() => inflight.delete(p));
    inflight.add(p);
    if (inflight.size >= 1_000) await Promise.race(inflight);
  }
  await run.audited(count);
  const rate = round(count / ((performance.now() - started) / 1000), 0);
  await meter?.end();
  return rate;
}

/** Jobs per second submitted over HTTP in batches of `batch`, `parallel` requests at a time. */
export async function pipelineHttpThroughput(
  run: PipelineRun,
  count: number,
  size: number,
  meter?: MeasuredWindow,
  batch = 100,
  parallel = 4,
): Promise<number> {
  const payload = { pad: 'x'.repeat(Math.max(0, size - 10)) };
  await run.nc.flush();
  await meter?.begin();
  const started = performance.now();
  let next = 0;
  const sender = async () => {
    while (next < count) {
      const n = Math.min(batch, count - next);
      next += n;
      const res = await fetch(`http://127.0.0.1:${run.intakePort}/v1/jobs:batch`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ jobs: Array.from({ length: n }, () => ({ type: 'noop', payload })) }),
      });
      if (res.status !== 202) throw new Error(`batch answered ${res.status}: ${await res.text()}`);
    }
  };
  await Promise.all(Array.from({ length: parallel }, sender));
  await run.audited(count);
  const rate = round(count / ((performance.now() - started) / 1000), 0);
  await meter?.end();
  return rate;
}

/** End-to-end latency (publish → handler succeeded event) at a fixed offered load; `meter` is marked around it. */
export async function pipelineLatency(
  run: PipelineRun,
  count: number,
  rate: number,
  size: number,
  meter?: MeasuredWindow,
) {
  const js = jetstream(run.nc);
  const body = new TextEncoder().encode(JSON.stringify({ pad: 'x'.repeat(Math.max(0, size - 10)) }));
  const { done, at } = run.successes(count);
  await run.nc.flush();
  await sleep(200);
  await meter?.begin();
  const sent = new Map<string, number>();
  await atRate(count, rate, (i) => {
    const id = `l${i}`;
    sent.set(id, performance.now());
    void publishJob(js, {
      subject: run.topology.jobSubject('normal', 'noop'),
      payload: body,
      jobId: id,
      msgId: id,
      attempt: 0,
    });
  });
  await done;
  await run.audited(count);
  await meter?.end();
  const latencies = [...sent].map(([id, t]) => at.get(id)! - t);
  return {
    p50: round(percentile(latencies, 50), 2),
    p99: round(percentile(latencies, 99), 2),
    max: round(percentile(latencies, 100), 2),
  };
}
