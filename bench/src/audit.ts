// Audit projection: lifecycle events per second that a real dlq-manager projects from EVENTS
// into audit_events (and the job summaries). The events are all in the stream before the clock
// starts, so this measures projection, not publishing: the bench holds a SHARE lock on
// audit_events while it publishes (the projector's first INSERT waits on it, nothing more is
// pulled meanwhile), and the clock runs from the lock's release to the last row. The baseline
// is the bare insert: the same rows, in batches of the same size, as multi-row INSERTs from this
// process into a plain table with the same columns and indexes (the mean of a run before the
// projection and one after).
import { jetstream } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/nats-core';
import type { LifecycleEvent } from '@redrive/messaging';
import type pg from 'pg';
import { waitFor } from '@redrive/test-support';
import { CpuMeter, meanCpu, postgresBackends, processes, type CpuPerJob } from './cpu.js';
import { withServiceAndDatabase } from './services.js';
import { round } from './stats.js';

/** A job's life in four events: accepted, a failed attempt, its retry, a successful attempt. */
function lifecycleEvents(count: number, start: number): LifecycleEvent[] {
  return Array.from({ length: count }, (_, i): LifecycleEvent => {
    const job = Math.floor(i / 4);
    const base = {
      id: `e${String(i).padStart(9, '0')}`,
      jobId: `job-${job}`,
      type: 'webhook',
      at: new Date(start + i).toISOString(),
      traceId: job.toString(16).padStart(32, '0'),
    };
    switch (i % 4) {
      case 0:
        return { ...base, kind: 'job.accepted' };
      case 1:
        return {
          ...base,
          kind: 'attempt.failed',
          attempt: 0,
          errorClass: 'network',
          error: 'ECONNRESET',
          durationMs: 12,
        };
      case 2:
        return {
          ...base,
          kind: 'retry.scheduled',
          attempt: 1,
          delayMs: 2_000,
          dueAt: new Date(start + i + 2_000).toISOString(),
        };
      default:
        return { ...base, kind: 'attempt.succeeded', attempt: 1, durationMs: 8 };
    }
  });
}

const COLUMNS = [
  'id',
  'job_id',
  'type',
  'kind',
  'attempt',
  'error_class',
  'error',
  'delay_ms',
  'duration_ms',
  'trace_id',
  'actor',
  'at',
  'extra',
] as const;

/** The audit row an event becomes, column by column (fields audit_events has no column for go to extra). */
function rowOf(e: LifecycleEvent): unknown[] {
  return [
    e.id,
    e.jobId,
    e.type,
    e.kind,
    e.attempt ?? null,
    e.errorClass ?? null,
    e.error ?? null,
    e.delayMs ?? null,
    e.durationMs ?? null,
    e.traceId ?? null,
    null,
    e.at,
    e.dueAt ? JSON.stringify({ dueAt: e.dueAt }) : null,
  ];
}

/** Rows per second for plain multi-row INSERTs of `batch` rows each, one after another. */
async function bareInsert(
  db: pg.Client,
  events: readonly LifecycleEvent[],
  batch: number,
  meter?: CpuMeter,
): Promise<number> {
  await db.query('CREATE TABLE bench_bare_audit (LIKE audit_events INCLUDING ALL)');
  try {
    await meter?.begin();
    const started = performance.now();
    for (let i = 0; i < events.length; i += batch) {
      const chunk = events.slice(i, i + batch);
      const tuples = chunk.map((_, r) => `(${COLUMNS.map((_, c) => `$${r * COLUMNS.length + c + 1}`).join(', ')})`);
      await db.query(
        `INSERT INTO bench_bare_audit (${COLUMNS.join(', ')}) VALUES ${tuples.join(', ')}`,
        chunk.flatMap(rowOf),
      );
    }
    const rate = events.length / ((performance.now() - started) / 1000);
    await meter?.end();
    return rate;
  } finally {
    await db.query('DROP TABLE bench_bare_audit');
  }
}

/**
 * Events per second projected by dlq-manager, and the bare-insert rate of the same rows; with
 * `cpu`, the CPU per event of each: dlq-manager, nats-server and the database's backends for the
 * projection (this process and its connection only watch: shown aside, not counted); this
 * process and its backend for the bare insert.
 */
export async function auditThroughput(
  nc: NatsConnection,
  count: number,
  batch: number,
  cpu?: { admin: pg.Client; natsPid?: number },
): Promise<{ projected: number; bare: number; projectedCpu?: CpuPerJob; bareCpu?: CpuPerJob }> {
  const events = lifecycleEvents(count, Date.now());
  const env = { DLQ_AUDIT_BATCH: String(batch) };
  return withServiceAndDatabase(
    nc,
    'dlq-manager',
    'benchaudit',
    env,
    async ({ topology, db: client, database, service: dlq }) => {
      const clientPid = (await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
      const bareMeter = () => new CpuMeter([processes('postgres', clientPid)]);
      const bareMeters = cpu ? [bareMeter(), bareMeter()] : [];
      const projectionMeter = cpu
        ? new CpuMeter(
            [
              processes('dlq-manager', dlq.proc.pid),
              processes('nats-server', cpu.natsPid),
              postgresBackends(cpu.admin, database, [clientPid]),
            ],
            [processes('postgres probe', clientPid)],
            true,
          )
        : undefined;
      // The baseline runs once before the projection and once after, and the mean is reported:
      // other load on the machine drifts, and this way it weighs on both sides alike.
      const bareBefore = await bareInsert(client, events, batch, bareMeters[0]);

      // The gate: INSERT needs ROW EXCLUSIVE, which SHARE blocks until this transaction ends.
      await client.query('BEGIN');
      await client.query('LOCK TABLE audit_events IN SHARE MODE');
      const js = jetstream(nc);
      const encoder = new TextEncoder();
      const inflight = new Set<Promise<unknown>>();
      for (const e of events) {
        // The wire format of the event publisher: one event (a JSON object) per message here,
        // so a batch of `batch` messages is `batch` rows, as in the baseline.
        const p = js
          .publish(topology.eventSubject(e.kind), encoder.encode(JSON.stringify(e)), { msgID: e.id })
          .finally(() => inflight.delete(p));
        inflight.add(p);
        if (inflight.size >= 1_000) await Promise.race(inflight);
      }
      await Promise.all(inflight);

      await projectionMeter?.begin();
      const started = performance.now();
      await client.query('COMMIT');
      const last = events[events.length - 1]!.id;
      // The last event's row comes with the last batch; the count catches a batch still in flight
      // beside it (dlq-manager writes two at once) or one delivered again.
      await waitFor(
        async () => (await client.query('SELECT 1 FROM audit_events WHERE id = $1', [last])).rowCount === 1,
        {
          timeoutMs: 120_000,
          intervalMs: 10,
          what: 'the last event to be projected',
        },
      );
      let ended = performance.now();
      const rows = async () =>
        (await client.query<{ n: number }>('SELECT count(*)::int AS n FROM audit_events')).rows[0]!.n;
      if ((await rows()) < count) {
        await waitFor(async () => (await rows()) >= count, {
          timeoutMs: 120_000,
          intervalMs: 50,
          what: `${count} rows`,
        });
        ended = performance.now();
      }
      const projected = round(count / ((ended - started) / 1000), 0);
      await projectionMeter?.end();
      await dlq.stop();
      const bare = round((bareBefore + (await bareInsert(client, events, batch, bareMeters[1]))) / 2, 0);
      if (!projectionMeter) return { projected, bare };
      return {
        projected,
        bare,
        projectedCpu: projectionMeter.perJob(count),
        bareCpu: meanCpu(bareMeters.map((m) => m.perJob(count))),
      };
    },
  );
}
