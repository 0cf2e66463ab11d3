// The queue most users would otherwise pick: BullMQ on a Redis with AOF fsync every second,
// the nearest durability to JetStream's file store. With `auditRows`, the fairer comparison for
// a pipeline that keeps an audit trail: BullMQ plus what systems built on it usually did for
// theirs, one INSERT per completed job into a `sync_operations` table, written by the worker's
// processor (so a job completes once its row is committed), in a database of the bench's own.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Queue, QueueEvents, Worker, type Job } from 'bullmq';
import pg from 'pg';
import { createTestDatabase, freePort, waitForPort, type TestDatabase } from '@redrive/test-support';
import { CpuMeter, postgresBackends, processes, type CpuPerJob, type CpuSource } from './cpu.js';
import { round } from './stats.js';

/** The audit table of seed systems: one row per completed job. */
const SYNC_OPERATIONS = `
  CREATE TABLE sync_operations (
    id bigserial PRIMARY KEY,
    job_id text NOT NULL,
    queue text NOT NULL,
    name text NOT NULL,
    status text NOT NULL,
    attempts int NOT NULL,
    duration_ms int NOT NULL,
    finished_at timestamptz NOT NULL DEFAULT now()
  );
  CREATE INDEX sync_operations_job_id ON sync_operations (job_id);`;

/** node-postgres's default pool size, what a worker that did not tune it has. */
const AUDIT_POOL = 10;

/**
 * Jobs per second added (pipelined) and processed together by BullMQ with a no-op processor,
 * and the CPU per job of this process (producer and worker), its redis-server and, with
 * `auditRows`, the Postgres backends of the audit database (listed through `admin`).
 */
export async function bullmqThroughput(
  count: number,
  size: number,
  concurrency: number,
  opts: { auditRows?: { admin: pg.Client } } = {},
): Promise<{ jobsPerSec: number; version: string; cpu: CpuPerJob }> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'redrive-bullmq-'));
  let db: TestDatabase | undefined;
  let pool: pg.Pool | undefined;
  const redis = spawn(
    'redis-server',
    [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--dir',
      dir,
      '--appendonly',
      'yes',
      '--appendfsync',
      'everysec',
      '--save',
      '',
    ],
    { stdio: 'ignore' },
  );
  try {
    await waitForPort(port);
    const connection = { host: '127.0.0.1', port, maxRetriesPerRequest: null };
    const queue = new Queue('bench', { connection });
    const events = new QueueEvents('bench', { connection });
    await events.waitUntilReady();
    let done = 0;
    let resolveAll!: () => void;
    const all = new Promise<void>((r) => (resolveAll = r));
    const sources: CpuSource[] = [processes('redis', redis.pid)];
    let processor: (job: Job) => Promise<void> = async () => undefined;
    if (opts.auditRows) {
      db = await createTestDatabase('benchbull');
      const audit = (pool = new pg.Pool({ connectionString: db.url, max: AUDIT_POOL }));
      // An idle connection's error (a restart, say) fails the next query, not the process.
      audit.on('error', () => undefined);
      await audit.query(SYNC_OPERATIONS);
      // Every connection open before the clock starts: a backend born inside the window would
      // bring its start-up cost with it.
      await Promise.all(Array.from({ length: AUDIT_POOL }, () => audit.query('SELECT 1')));
      processor = async (job) => {
        const started = Date.now();
        await audit.query(
          'INSERT INTO sync_operations (job_id, queue, name, status, attempts, duration_ms) VALUES ($1, $2, $3, $4, $5, $6)',
          [job.id, job.queueName, job.name, 'completed', job.attemptsMade + 1, Date.now() - started],
        );
      };
      sources.push(postgresBackends(opts.auditRows.admin, db.name));
    }
    const meter = new CpuMeter(sources);
    const worker = new Worker('bench', processor, {
      connection,
      concurrency,
      removeOnComplete: { count: 1_000 },
    });
    worker.on('completed', () => {
      if (++done >= count) resolveAll();
    });
    await worker.waitUntilReady();
    const data = { pad: 'x'.repeat(Math.max(0, size - 12)) };
    await meter.begin();
    const started = performance.now();
    const window = 1_000;
    const inflight = new Set<Promise<unknown>>();
    for (let i = 0; i < count; i++) {
      const p = queue.add('job', data, { removeOnComplete: { count: 1_000 } }).finally(() => inflight.delete(p));
      inflight.add(p);
      if (inflight.size >= window) await Promise.race(inflight);
    }
    await Promise.all(inflight);
    await all;
    const jobsPerSec = round(count / ((performance.now() - started) / 1000), 0);
    await meter.end();
    if (opts.auditRows) {
      const rows = (await pool!.query<{ n: number }>('SELECT count(*)::int AS n FROM sync_operations')).rows[0]!.n;
      if (rows < count) throw new Error(`bullmq-audit: ${rows} sync_operations rows for ${count} jobs`);
    }
    await worker.close();
    await events.close();
    await queue.close();
    const { version } = (await import('bullmq/package.json', { with: { type: 'json' } })).default as {
      version: string;
    };
    return { jobsPerSec, version, cpu: meter.perJob(count) };
  } finally {
    redis.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
    await pool?.end().catch(() => undefined);
    await db?.drop();
  }
}
