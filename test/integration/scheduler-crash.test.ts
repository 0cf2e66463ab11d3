import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/nats-core';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { publishScheduleRequest, Topology } from '@redrive/messaging';
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

// A scheduler killed with SIGKILL in the middle of firing a due batch, then started again:
// its open transaction dies with it (the rows stay due, unlocked), the new process claims them
// and publishes them again with the same Nats-Msg-Id, and JetStream drops the copies of the
// fires that had already gone out. Nothing is lost and nothing runs twice.

const N = 2_000;
const BATCH = 100;
const prefix = uniquePrefix('schedkill');
const topology = new Topology({ prefix });
const recordFile = recordFilePath('schedkill');
let nc: NatsConnection;
let db: TestDatabase;
let worker: ServiceProcess;
let port: number;

async function scalar(sql: string): Promise<number> {
  const c = new pg.Client({ connectionString: db.url });
  await c.connect();
  try {
    return Number((await c.query<{ n: string }>(sql)).rows[0]!.n);
  } finally {
    await c.end();
  }
}

const startScheduler = async () => {
  const s = startService('retry-scheduler', {
    NATS_URL: SHARED_NATS_URL,
    REDRIVE_PREFIX: prefix,
    SCHEDULER_PORT: String(port),
    DATABASE_URL: db.url,
    SCHEDULER_BATCH: String(BATCH),
  });
  await s.waitForLog((l) => l.msg === 'retry-scheduler running', 30_000);
  return s;
};

beforeAll(async () => {
  nc = await connectTestClient();
  db = await createTestDatabase('schedkill');
  port = await freePort();
  worker = startService('sync-worker', {
    NATS_URL: SHARED_NATS_URL,
    REDRIVE_PREFIX: prefix,
    WORKER_PORT: String(await freePort()),
    WORKER_HANDLERS: './test/fixtures/schedule-handlers.mjs',
    WORKER_CONCURRENCY: '128',
    RECORD_FILE: recordFile,
    LOG_LEVEL: 'info',
  });
  await worker.waitForLog((l) => l.msg === 'sync-worker running', 30_000);
}, 60_000);

afterAll(async () => {
  await worker?.stop();
  await deleteStreams(nc, prefix);
  await nc.close();
  await db?.drop();
});

describe('a scheduler killed mid-batch', () => {
  it('loses nothing and fires nothing twice after SIGKILL and a restart', async () => {
    const first = await startScheduler();
    const js = jetstream(nc);
    const due = new Date(Date.now() + 5_000);
    for (let i = 0; i < N; i += 500) {
      await Promise.all(
        Array.from({ length: Math.min(500, N - i) }, (_, k) =>
          publishScheduleRequest(js, topology, {
            kind: 'delay',
            scheduleId: `k${i + k}-${prefix}`,
            subject: topology.jobSubject('normal', 'tick'),
            payload: new TextEncoder().encode('{}'),
            jobId: `k${i + k}-${prefix}`,
            attempt: 0,
            dueAt: due,
          }),
        ),
      );
    }
    await waitFor(async () => (await scalar('SELECT count(*) AS n FROM schedules')) === N, {
      timeoutMs: 20_000,
      what: 'every request stored',
    });

    // Killed the moment it logs its third claim, while that batch is being published.
    let claims = 0;
    const killed = new Promise<void>((resolve) => {
      first.proc.stdout!.on('data', (chunk: Buffer) => {
        claims += chunk.toString().split('"msg":"claimed due schedules"').length - 1;
        if (claims >= 3 && first.proc.exitCode === null && !first.proc.killed) {
          first.proc.kill('SIGKILL');
          resolve();
        }
      });
    });
    await killed;
    await first.exited;
    const committed = await scalar(`SELECT count(*) AS n FROM schedules WHERE status = 'completed'`);
    // Killed part-way: some batches committed, most of the rows still due.
    expect(committed).toBeGreaterThan(0);
    expect(committed).toBeLessThan(N);

    const second = await startScheduler();
    await waitFor(() => readRecords(recordFile).length >= N, { timeoutMs: 30_000, intervalMs: 200, what: `${N} runs` });
    await new Promise((r) => setTimeout(r, 1_500));
    const runs = readRecords<{ id: string }>(recordFile);
    expect(runs).toHaveLength(N);
    expect(new Set(runs.map((r) => r.id)).size).toBe(N);
    expect(await scalar(`SELECT count(*) AS n FROM schedules WHERE status = 'completed' AND fire_count = 1`)).toBe(N);
    // JOBS stored each fire once: a fire published again after the crash was a duplicate.
    const jobs = await (await jetstreamManager(nc)).streams.info(topology.streams.jobs);
    expect(jobs.state.last_seq).toBe(N);

    const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    const republished = Number(/redrive_scheduler_fires_republished_total\{[^}]*\} (\d+)/.exec(metrics)?.[1] ?? 0);
    console.log(
      `[scheduler-crash] killed after ${committed}/${N} committed; after the restart ${republished} fire(s) were ` +
        'published again and dropped by JetStream as duplicates',
    );
    // SIGTERM: stops claiming, finishes its batch, exits 0.
    expect(await second.stop('SIGTERM')).toBe(0);
  }, 60_000);
});
