import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import pg from 'pg';
import { expect, it } from 'vitest';
import { decodeEvents, publishJob, Topology } from '@redrive/messaging';
import {
  connectTestClient,
  createTestDatabase,
  deleteStreams,
  freePort,
  SHARED_NATS_URL,
  SHARED_PG_URL,
  startFaultProxy,
  startService,
  streamMessages,
  uniquePrefix,
  waitFor,
  type ServiceProcess,
} from '@redrive/test-support';

// The audit projection through a Postgres outage: dlq-manager reaches Postgres only through
// a TCP proxy the test controls, and the proxy cuts it off for 10 s while a real worker runs
// 1,000 jobs. Events wait in EVENTS and are caught up afterwards, each stored exactly once.

const JOBS = 1_000;
const OUTAGE_MS = 10_000;

it('stores every lifecycle event of 1,000 jobs exactly once although Postgres was cut off for 10 s while they ran', async () => {
  const nc = await connectTestClient();
  const jsm = await jetstreamManager(nc);
  const prefix = uniquePrefix('dlqaudit');
  const topology = new Topology({ prefix });
  const db = await createTestDatabase('dlqaudit');
  const pgPort = Number(new URL(SHARED_PG_URL).port || 5432);
  const proxy = await startFaultProxy({ host: new URL(SHARED_PG_URL).hostname, port: pgPort });
  const viaProxy = new URL(db.url);
  viaProxy.host = `127.0.0.1:${proxy.port}`;
  const sql = new pg.Pool({ connectionString: db.url, max: 2 });
  const processes: ServiceProcess[] = [];
  try {
    const dlq = startService('dlq-manager', {
      NATS_URL: SHARED_NATS_URL,
      REDRIVE_PREFIX: prefix,
      DATABASE_URL: viaProxy.toString(),
      DLQ_PORT: String(await freePort()),
      // Debug: one line per written batch, with its size and time, for the rate printed below.
      LOG_LEVEL: 'debug',
    });
    const worker = startService('sync-worker', {
      NATS_URL: SHARED_NATS_URL,
      REDRIVE_PREFIX: prefix,
      WORKER_PORT: String(await freePort()),
      WORKER_HANDLERS: './test/fixtures/noop-handler.mjs',
      WORKER_CONCURRENCY: '32',
      LOG_LEVEL: 'info',
    });
    processes.push(dlq, worker);
    await Promise.all([
      dlq.waitForLog((l) => l.msg === 'dlq-manager running', 30_000),
      worker.waitForLog((l) => l.msg === 'sync-worker running', 30_000),
    ]);
    const count = async () =>
      (await sql.query<{ n: number }>('SELECT count(*)::int AS n FROM audit_events')).rows[0]!.n;

    // Jobs are submitted at a steady pace over about 8 s, so they are still running while
    // Postgres is away.
    const js = jetstream(nc);
    const jobIds = Array.from({ length: JOBS }, (_, i) => `audit-${i}-${prefix}`);
    const submitting = (async () => {
      for (let i = 0; i < JOBS; i += 25) {
        await Promise.all(
          jobIds.slice(i, i + 25).map((jobId) =>
            publishJob(js, {
              subject: topology.jobSubject('normal', 'noop'),
              payload: new TextEncoder().encode(JSON.stringify({ i })),
              jobId,
              msgId: jobId,
              attempt: 0,
            }),
          ),
        );
        await new Promise((r) => setTimeout(r, 200));
      }
    })();

    await waitFor(async () => (await count()) >= 50, { timeoutMs: 15_000, what: 'the projection to start' });
    proxy.pause();
    const cutAt = Date.now();
    const atCut = await count();
    // The pipeline goes on: jobs keep succeeding while the audit trail cannot be written.
    const eventsAtCut = (await jsm.streams.info(topology.streams.events)).state.last_seq;
    await new Promise((r) => setTimeout(r, OUTAGE_MS));
    const eventsDuringOutage = (await jsm.streams.info(topology.streams.events)).state.last_seq - eventsAtCut;
    expect(eventsDuringOutage).toBeGreaterThan(0);
    expect(await count()).toBe(atCut);
    proxy.resume();
    const resumedAt = Date.now();
    await submitting;

    await waitFor(
      async () => {
        const c = await jsm.consumers.info(topology.streams.events, 'dlq-manager-audit');
        const jobsDone = await jsm.consumers.info(topology.streams.jobs, 'worker-normal-noop');
        return (
          jobsDone.num_pending === 0 && jobsDone.num_ack_pending === 0 && c.num_pending === 0 && c.num_ack_pending === 0
        );
      },
      { timeoutMs: 60_000, intervalMs: 200, what: 'the jobs to finish and the projection to catch up' },
    );
    const caughtUpMs = Date.now() - resumedAt;

    const published = (await streamMessages(jsm, topology.streams.events)).flatMap((m) => decodeEvents(m.data));
    const stored = (
      await sql.query<{ id: string; job_id: string; kind: string }>('SELECT id, job_id, kind FROM audit_events')
    ).rows;
    // Every event once: the same ids, and as many rows as events.
    expect(stored).toHaveLength(published.length);
    expect(new Set(stored.map((r) => r.id))).toEqual(new Set(published.map((e) => e.id)));
    // Every job ran once and succeeded once, and its summary says so.
    const succeeded = stored.filter((r) => r.kind === 'attempt.succeeded');
    expect(succeeded).toHaveLength(JOBS);
    expect(new Set(succeeded.map((r) => r.job_id))).toEqual(new Set(jobIds));
    const summaries = await sql.query<{ status: string; n: number; attempts: number }>(
      'SELECT status, attempts, count(*)::int AS n FROM job_summaries GROUP BY status, attempts',
    );
    expect(summaries.rows).toEqual([{ status: 'succeeded', attempts: 1, n: JOBS }]);

    const backlog = published.length - atCut;
    const retries = dlq.logs.filter((l) => l.msg === 'projecting lifecycle events: Postgres unavailable, waiting');
    expect(retries.length).toBeGreaterThan(0);
    const batches = dlq.logs.filter((l) => l.msg === 'audit batch written') as unknown as {
      inserted: number;
      statementMs: number;
    }[];
    const written = batches.reduce((n, b) => n + b.inserted, 0);
    const writingMs = batches.reduce((n, b) => n + b.statementMs, 0);
    const largest = batches.reduce((a, b) => (b.inserted > a.inserted ? b : a), { inserted: 0, statementMs: 0 });
    console.log(
      `audit outage: ${batches.length} batches wrote ${written} rows in ${writingMs} ms of statements ` +
        `(${Math.round((written / Math.max(1, writingMs)) * 1000)} rows/s); largest batch ${largest.inserted} rows in ${largest.statementMs} ms`,
    );
    console.log(
      `audit outage: ${published.length} events in ${
        (await jsm.streams.info(topology.streams.events)).state.messages
      } EVENTS messages; ${atCut} stored before the cut, ${eventsDuringOutage} messages published during the ` +
        `${Math.round((resumedAt - cutAt) / 1000)} s outage; caught up ${backlog} events ${caughtUpMs} ms after Postgres returned`,
    );
  } finally {
    await Promise.all(processes.map((p) => p.stop()));
    await proxy.close();
    await sql.end();
    await deleteStreams(nc, prefix);
    await db.drop();
    await nc.close();
  }
}, 120_000);
