// pnpm bench [--quick] [--json] [--only a,b]: Redrive's figures, each against a baseline
// measured in the same run on the same machine, reported as ratios. Targets are reported,
// never asserted.
import { availableParallelism } from 'node:os';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import pg from 'pg';
import { connectTestClient, SHARED_NATS_URL, SHARED_PG_URL, uniquePrefix } from '@redrive/test-support';
import { auditThroughput } from './audit.js';
import { bullmqThroughput } from './bullmq.js';
import { pipelineHttpThroughput, pipelineLatency, pipelineNatsThroughput, startPipeline } from './pipeline.js';
import { rawLatency, rawThroughput } from './raw-jetstream.js';
import { figure, printFigure, type Figure } from './report.js';
import { round } from './stats.js';
import { retryLateness } from './retry.js';
import { schedulerTiming } from './scheduler.js';

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
    only: { type: 'string' },
  },
});
const quick = values.quick;
const only = values.only?.split(',').map((s) => s.trim());
const want = (name: string) => !only || only.includes(name);
const SIZE = 300;
const N = quick ? 5_000 : 50_000;
const LATENCY_N = quick ? 2_000 : 10_000;
const RETRY_N = 2_000;
// The headline is 10,000 due in one second; the quick run keeps it (about 40 s).
const SCHEDULE_N = 10_000;
const AUDIT_N = quick ? 5_000 : 20_000;
const AUDIT_BATCH = 500;

const log = (...args: unknown[]) => (values.json ? console.error(...args) : console.log(...args));
const figures: Figure[] = [];
const add = (f: Figure) => {
  figures.push(f);
  if (!values.json) printFigure(f);
};

const nc = await connectTestClient(SHARED_NATS_URL);
const versions = await (async () => {
  const redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', {
    lazyConnect: true,
    maxRetriesPerRequest: 1,
  });
  const pgc = new pg.Client({ connectionString: SHARED_PG_URL });
  try {
    await redis.connect();
    await pgc.connect();
    const info = await redis.info('server');
    return {
      nats: nc.info?.version ?? 'unknown',
      postgres: (await pgc.query<{ server_version: string }>('SHOW server_version')).rows[0]!.server_version,
      redis: /redis_version:(\S+)/.exec(info)?.[1] ?? 'unknown',
    };
  } finally {
    redis.disconnect();
    await pgc.end();
  }
})();
log(
  `redrive bench (${quick ? 'quick' : 'full'}): ${availableParallelism()} cores, nats ${versions.nats}, postgres ${versions.postgres}, redis ${versions.redis}, ${SIZE}-byte jobs`,
);

try {
  let raw: number | undefined;
  let bull: number | undefined;
  if (want('pipeline') || want('baselines')) {
    raw = await rawThroughput(nc, `${uniquePrefix('raw')}_RAW`, N, SIZE);
    bull = (await bullmqThroughput(N, SIZE, 64)).jobsPerSec;
    add(figure({ name: 'raw-jetstream', metric: 'throughput', unit: 'msgs/s', value: raw }));
    add(figure({ name: 'bullmq', metric: 'throughput', unit: 'jobs/s', value: bull }));
  }
  if (want('pipeline')) {
    const natsRun = await startPipeline(nc, { http: false, concurrency: 64 });
    try {
      const idle = Object.fromEntries(natsRun.services.map((s) => [s.name, s.rssMb()]));
      const nats = await pipelineNatsThroughput(natsRun, N, SIZE);
      add(
        figure({
          name: 'pipeline-nats',
          metric: 'throughput',
          unit: 'jobs/s',
          value: nats,
          baseline: { name: 'raw-jetstream', value: raw!, unit: 'msgs/s' },
          target: 0.75,
        }),
      );
      add(
        figure({
          name: 'pipeline-nats',
          metric: 'throughput',
          unit: 'jobs/s',
          value: nats,
          baseline: { name: 'bullmq', value: bull! },
          target: 1.2,
        }),
      );
      const lat = await pipelineLatency(natsRun, LATENCY_N, 1_000, SIZE);
      const rawLat = await rawLatency(nc, `${uniquePrefix('rawlat')}_RAW`, LATENCY_N, 1_000, SIZE);
      for (const p of ['p50', 'p99', 'max'] as const) {
        add(
          figure({
            name: 'pipeline-latency',
            metric: `latency_${p}`,
            unit: 'ms',
            value: lat[p],
            baseline: { name: 'raw-jetstream', value: rawLat[p] },
            ...(p === 'p99' ? { target: 10 } : {}),
            note: 'at 1,000 jobs/s',
          }),
        );
      }
      const peak = natsRun.peakRssMb();
      for (const [name, mb] of Object.entries(idle))
        add(figure({ name: `memory-${name}`, metric: 'rss_idle', unit: 'MB', value: mb, target: 120 }));
      for (const [name, mb] of Object.entries(peak))
        add(figure({ name: `memory-${name}`, metric: 'rss_peak', unit: 'MB', value: mb }));
    } finally {
      await natsRun.close();
    }
    const httpRun = await startPipeline(nc, { http: true, concurrency: 64 });
    try {
      const idle = httpRun.services.find((s) => s.name === 'intake')!.rssMb();
      const http = await pipelineHttpThroughput(httpRun, N, SIZE);
      add(
        figure({
          name: 'pipeline-http',
          metric: 'throughput',
          unit: 'jobs/s',
          value: http,
          baseline: { name: 'bullmq', value: bull! },
          target: 1,
          note: 'batches of 100',
        }),
      );
      add(figure({ name: 'memory-intake', metric: 'rss_idle', unit: 'MB', value: idle, target: 120 }));
      add(figure({ name: 'memory-intake', metric: 'rss_peak', unit: 'MB', value: httpRun.peakRssMb().intake ?? 0 }));
    } finally {
      await httpRun.close();
    }
  }
  if (want('retry')) {
    for (const rate of quick ? [100] : [100, 1_000]) {
      const local = await retryLateness(nc, RETRY_N, rate, '10s');
      const server = await retryLateness(nc, RETRY_N, rate, '0');
      for (const p of ['p50', 'p99', 'max'] as const) {
        add(
          figure({
            name: 'retry-timing',
            metric: `lateness_${p}`,
            unit: 'ms',
            value: local[p],
            baseline: { name: 'nak-delay', value: server[p] },
            ...(p === 'p99' ? { target: rate >= 1_000 ? 250 : 50 } : {}),
            note: `at ${rate} retries/s`,
          }),
        );
      }
    }
  }
  if (want('scheduler')) {
    const { scheduler, floor, storedAheadMs } = await schedulerTiming(nc, SCHEDULE_N, SIZE);
    const note = `${SCHEDULE_N.toLocaleString('en')} one-shot schedules due evenly within one second, stored ${round(storedAheadMs / 1000)} s ahead; lateness = JOBS timestamp - due; baseline: a timer loop in the bench process publishing as many jobs over one second with plain nats.js (mean of a run before and one after)`;
    for (const p of ['p50', 'p99', 'max'] as const) {
      add(
        figure({
          name: 'scheduler-timing',
          metric: `lateness_${p}`,
          unit: 'ms',
          value: scheduler[p],
          baseline: { name: 'timer-publisher', value: floor[p] },
          ...(p === 'p99' ? { target: 250 } : {}),
          note,
        }),
      );
    }
    add(
      figure({
        name: 'scheduler-timing',
        metric: 'time_to_all_fired',
        unit: 'ms',
        value: scheduler.allFiredMs,
        baseline: { name: 'timer-publisher', value: floor.allFiredMs },
        note: 'from the first due time to the last fire in JOBS (the due times span 1,000 ms)',
      }),
    );
  }
  if (want('audit')) {
    const { projected, bare } = await auditThroughput(nc, AUDIT_N, AUDIT_BATCH);
    add(
      figure({
        name: 'audit-projection',
        metric: 'throughput',
        unit: 'events/s',
        value: projected,
        baseline: { name: 'bare-insert', value: bare },
        target: 0.7,
        note: `${AUDIT_N.toLocaleString('en')} events waiting in EVENTS (one per message), projected by dlq-manager in batches of ${AUDIT_BATCH} (rows and job summaries); baseline: multi-row INSERTs of the same rows, ${AUDIT_BATCH} at a time, into a plain copy of audit_events (mean of a run before and one after)`,
      }),
    );
  }
} finally {
  await nc.close();
}

if (values.json)
  console.log(JSON.stringify({ machine: { cores: availableParallelism() }, versions, scenarios: figures }));
