// Queue stats (issue 14): how long dlq-manager's GET /v1/admin/queues takes with a large audit
// trail, against GET /healthz on the same process (the HTTP floor). A dlq-manager as built runs
// on a database of its own seeded with `auditRows` audit events over a week, two days of the
// 10-second activity buckets for every type (what the cleanup keeps at most), dead letters and
// active schedules; JOBS has the worker consumers of every type (three lanes each) and jobs
// waiting in some. The stats never read audit_events: the figure shows they do not slow down
// as it grows. Served requests are timed for a while at a steady rate (readings are refreshed
// behind them every 1.5 s); an uncached reading is timed after a quiet spell longer than the
// 10 s a stale reading is served for, so the request waits for JetStream and Postgres.
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/nats-core';
import { provisionJobTypes } from '@redrive/messaging';
import { percentile, round, sleep } from './stats.js';
import { withServiceAndDatabase } from './services.js';

const TOKEN = 'bench-viewer-token-000000000001';

export interface QueueStatsResult {
  served: { p50: number; p99: number; max: number; n: number };
  healthz: { p50: number; p99: number; max: number };
  uncached: number[];
  seedMs: number;
  types: number;
}

async function timed(url: string, headers: Record<string, string> = {}): Promise<number> {
  const t = performance.now();
  const res = await fetch(url, { headers });
  await res.arrayBuffer();
  if (!res.ok) throw new Error(`${url}: ${res.status}`);
  return performance.now() - t;
}

const summary = (ms: number[]) => ({
  p50: round(percentile(ms, 50), 2),
  p99: round(percentile(ms, 99), 2),
  max: round(Math.max(...ms), 2),
});

export async function queueStatsLatency(
  nc: NatsConnection,
  opts: { auditRows: number; types: number; requests: number; uncachedSamples: number },
): Promise<QueueStatsResult> {
  return withServiceAndDatabase(
    nc,
    'dlq-manager',
    'qstats',
    { DLQ_TOKENS: JSON.stringify([{ name: 'bench', role: 'viewer', token: TOKEN }]) },
    async ({ prefix, topology, db, service }) => {
      const seedStart = performance.now();
      for (let done = 0; done < opts.auditRows; done += 500_000) {
        await db.query(
          `INSERT INTO audit_events (id, job_id, type, kind, attempt, at)
           SELECT 'e' || ($1::bigint + g), 'job-' || (($1::bigint + g) / 4), 'type' || (g % $3),
                  (ARRAY['job.accepted','attempt.started','attempt.succeeded','attempt.failed'])[1 + g % 4], 1,
                  now() - (g % 604800) * interval '1 second'
             FROM generate_series(1, $2::int) g`,
          [done, Math.min(500_000, opts.auditRows - done), opts.types],
        );
      }
      await db.query(
        `INSERT INTO audit_activity (bucket, type, succeeded, failed, dead_lettered)
         SELECT to_timestamp(floor(extract(epoch FROM now()) / 10) * 10) - b * interval '10 seconds', 'type' || t, 30, 2, 1
           FROM generate_series(0, 17279) b, generate_series(0, $1::int - 1) t`,
        [opts.types],
      );
      await db.query(
        `INSERT INTO dead_letters (job_id, type, original_stream, original_subject, original_seq, dlq_stream, dlq_seq,
           reason, attempts, payload_available, headers, created_at, resolved_at)
         SELECT 'dl' || g, 'type' || (g % $1), 'JOBS', 'jobs.normal.x', g, 'DLQ', g, 'retries_exhausted', 3, false,
                '{}', now() - g * interval '1 second', CASE WHEN g % 10 = 0 THEN NULL ELSE now() END
           FROM generate_series(1, 100000) g`,
        [opts.types],
      );
      await db.query(
        `INSERT INTO schedules (namespace, id, request_id, kind, subject, job_id, payload, starts_at, next_due_at)
         SELECT $1, 's' || g, 'r' || g, (ARRAY['delay','retry','redrive'])[1 + g % 3],
                $1 || '.jobs.normal.type' || (g % $2), 'sj' || g, '\\x7b7d', now(), now() + interval '1 hour'
           FROM generate_series(1, 50000) g`,
        [prefix, opts.types],
      );
      await db.query('ANALYZE');
      const jsm = await jetstreamManager(nc);
      const typeNames = Array.from({ length: opts.types }, (_, i) => `type${i}`);
      await provisionJobTypes(jsm, topology, typeNames, { ackWaitMs: 30_000, maxDeliver: 5, maxAckPending: 1_000 });
      const js = jetstream(nc);
      // Jobs waiting in a fifth of the lanes: each costs the reading one message read.
      for (const type of typeNames.filter((_, i) => i % 5 === 0))
        for (let i = 0; i < 10; i++) await js.publish(topology.jobSubject('normal', type), '{}');
      const seedMs = performance.now() - seedStart;

      const base = `http://127.0.0.1:${service.port}`;
      const auth = { authorization: `Bearer ${TOKEN}` };
      // The first reading, made while nothing is cached, then served requests at 40/s.
      await timed(`${base}/v1/admin/queues`, auth);
      const served: number[] = [];
      const healthz: number[] = [];
      for (let i = 0; i < opts.requests; i++) {
        served.push(await timed(`${base}/v1/admin/queues`, auth));
        healthz.push(await timed(`${base}/healthz`));
        await sleep(25);
      }
      const uncached: number[] = [];
      for (let i = 0; i < opts.uncachedSamples; i++) {
        await sleep(11_000);
        uncached.push(round(await timed(`${base}/v1/admin/queues`, auth), 1));
      }
      return {
        served: { ...summary(served), n: served.length },
        healthz: summary(healthz),
        uncached,
        seedMs,
        types: opts.types,
      };
    },
  );
}
