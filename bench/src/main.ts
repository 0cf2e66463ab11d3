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
import { CLK_TCK, CpuMeter, idleLoad, natsServerPid, postgresBackends, processes, type CpuPerJob } from './cpu.js';
import {
  pipelineHttpThroughput,
  pipelineLatency,
  pipelineNatsThroughput,
  startPipeline,
  type PipelineRun,
} from './pipeline.js';
import { rawLatency, rawThroughput } from './raw-jetstream.js';
import { figure, printFigure, type Figure } from './report.js';
import { round } from './stats.js';
import { retryLateness } from './retry.js';
import { schedulerTiming } from './scheduler.js';
import { queueStatsLatency } from './queue-stats.js';

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
// The issue's headline is 10,000 due in one second; the quick run keeps it (about 40 s).
const SCHEDULE_N = 10_000;
const AUDIT_N = quick ? 5_000 : 20_000;
const AUDIT_BATCH = 500;
// The issue's bound: queue stats under 50 ms with 10 million audit rows (quick: one million).
const QSTATS_AUDIT_ROWS = quick ? 1_000_000 : 10_000_000;
const QSTATS_TYPES = 50;

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

// CPU per job: the processes of each scenario, read before and after its measured window (cpu.ts).
const natsPid = natsServerPid(SHARED_NATS_URL);
const admin = new pg.Client({ connectionString: SHARED_PG_URL });
await admin.connect();
const cpuNote = (cpu: CpuPerJob) =>
  cpu.vanished > 0 ? ` (${cpu.vanished} processes ended inside the window: their CPU is missing)` : '';
/** One scenario's CPU per job, split by process, with no baseline. */
const cpuFigure = (name: string, cpu: CpuPerJob, note?: string) =>
  figure({
    name,
    metric: 'cpu_per_job',
    unit: 'µs',
    value: cpu.total,
    breakdown: cpu.byProcess,
    ...(note || cpu.vanished ? { note: `${note ?? ''}${cpuNote(cpu)}` } : {}),
  });
/**
 * The pipeline's processes: each service, the shared nats-server, this run's Postgres backends;
 * the backend of the bench's own probe (counting audit rows) is shown aside, not in the total.
 */
const pipelineMeter = (run: PipelineRun) =>
  new CpuMeter(
    [
      ...run.services.map((s) => processes(s.name, s.proc.pid)),
      processes('nats-server', natsPid),
      postgresBackends(admin, run.database, [run.probePid]),
    ],
    [processes('postgres probe', run.probePid)],
  );
let natsIdle: number | undefined;
if (want('pipeline') || want('baselines')) {
  natsIdle = await idleLoad(natsPid);
  log(
    `cpu per job: /proc/<pid>/stat utime+stime (CLK_TCK ${CLK_TCK}) and the bench's process.cpuUsage(); nats-server pid ${natsPid ?? 'not found (not counted)'} is shared, others' load on it with the bench idle: ${natsIdle ?? '?'} ms CPU/s; postgres = the backends of the scenario's own database (pg_stat_activity), less the bench's probe connection`,
  );
}

try {
  let raw: number | undefined;
  let bull: number | undefined;
  let bullAudit: number | undefined;
  let rawCpu: CpuPerJob | undefined;
  let bullCpu: CpuPerJob | undefined;
  let bullAuditCpu: CpuPerJob | undefined;
  if (want('pipeline') || want('baselines')) {
    const rawMeter = new CpuMeter([processes('nats-server', natsPid)]);
    raw = await rawThroughput(nc, `${uniquePrefix('raw')}_RAW`, N, SIZE, rawMeter);
    rawCpu = rawMeter.perJob(N);
    const bare = await bullmqThroughput(N, SIZE, 64);
    const audited = await bullmqThroughput(N, SIZE, 64, { auditRows: { admin } });
    [bull, bullCpu, bullAudit, bullAuditCpu] = [bare.jobsPerSec, bare.cpu, audited.jobsPerSec, audited.cpu];
    add(figure({ name: 'raw-jetstream', metric: 'throughput', unit: 'msgs/s', value: raw }));
    add(cpuFigure('raw-jetstream', rawCpu, 'bench = publisher and consumer'));
    add(figure({ name: 'bullmq', metric: 'throughput', unit: 'jobs/s', value: bull }));
    add(cpuFigure('bullmq', bullCpu, 'bench = producer and worker'));
    add(
      figure({
        name: 'bullmq-audit',
        metric: 'throughput',
        unit: 'jobs/s',
        value: bullAudit,
        baseline: { name: 'bullmq', value: bull },
        note: 'one INSERT into sync_operations per completed job, by the worker',
      }),
    );
    add(cpuFigure('bullmq-audit', bullAuditCpu));
  }
  if (want('pipeline')) {
    /** A pipeline path's throughput and CPU per job against every baseline of this run. */
    const againstBaselines = (
      name: string,
      rate: number,
      cpu: CpuPerJob,
      targets: { raw?: number; bull?: number; bullAudit?: number; rawCpu?: number },
      note?: string,
    ) => {
      const n = note ? { note } : {};
      const bases: { name: string; value: number; unit?: string; target?: number }[] = [
        ...(targets.raw !== undefined
          ? [{ name: 'raw-jetstream', value: raw!, unit: 'msgs/s', target: targets.raw }]
          : []),
        { name: 'bullmq', value: bull!, target: targets.bull },
        { name: 'bullmq-audit', value: bullAudit!, target: targets.bullAudit },
      ];
      for (const { target, ...baseline } of bases)
        add(
          figure({
            name,
            metric: 'throughput',
            unit: 'jobs/s',
            value: rate,
            baseline,
            ...(target !== undefined ? { target } : {}),
            ...n,
          }),
        );
      const cpuNoteText = cpuNote(cpu);
      for (const [base, value, target, first] of [
        ['raw-jetstream', rawCpu!.total, targets.rawCpu, true],
        ['bullmq', bullCpu!.total, undefined, false],
        ['bullmq-audit', bullAuditCpu!.total, undefined, false],
      ] as const)
        add(
          figure({
            name,
            metric: 'cpu_per_job',
            unit: 'µs',
            value: cpu.total,
            baseline: { name: base, value },
            ...(target !== undefined ? { target } : {}),
            ...(first ? { breakdown: cpu.byProcess } : {}),
            ...(first && cpuNoteText ? { note: cpuNoteText.trim() } : {}),
          }),
        );
    };
    const natsRun = await startPipeline(nc, { http: false, concurrency: 64 });
    try {
      const idle = Object.fromEntries(natsRun.services.map((s) => [s.name, s.rssMb()]));
      const natsMeter = pipelineMeter(natsRun);
      const nats = await pipelineNatsThroughput(natsRun, N, SIZE, natsMeter);
      againstBaselines('pipeline-nats', nats, natsMeter.perJob(N), { raw: 0.75, bull: 1.2, bullAudit: 1.5, rawCpu: 2 });
      const latMeter = pipelineMeter(natsRun);
      const lat = await pipelineLatency(natsRun, LATENCY_N, 1_000, SIZE, latMeter);
      const rawLatMeter = new CpuMeter([processes('nats-server', natsPid)]);
      const rawLat = await rawLatency(nc, `${uniquePrefix('rawlat')}_RAW`, LATENCY_N, 1_000, SIZE, rawLatMeter);
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
      const latCpu = latMeter.perJob(LATENCY_N);
      add(
        figure({
          name: 'pipeline-latency',
          metric: 'cpu_per_job',
          unit: 'µs',
          value: latCpu.total,
          baseline: { name: 'raw-jetstream', value: rawLatMeter.perJob(LATENCY_N).total },
          breakdown: latCpu.byProcess,
          note: `at 1,000 jobs/s (the bench subscribes to attempt.succeeded to time each job)${cpuNote(latCpu)}`,
        }),
      );
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
      const httpMeter = pipelineMeter(httpRun);
      const http = await pipelineHttpThroughput(httpRun, N, SIZE, httpMeter);
      againstBaselines('pipeline-http', http, httpMeter.perJob(N), { bull: 1, bullAudit: 1.5 }, 'batches of 100');
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
    const { projected, bare, projectedCpu, bareCpu } = await auditThroughput(nc, AUDIT_N, AUDIT_BATCH, {
      admin,
      natsPid,
    });
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
    add(
      figure({
        name: 'audit-projection',
        metric: 'cpu_per_event',
        unit: 'µs',
        value: projectedCpu!.total,
        baseline: { name: 'bare-insert', value: bareCpu!.total },
        breakdown: projectedCpu!.byProcess,
        note: `bare insert: ${Object.entries(bareCpu!.byProcess)
          .map(([k, v]) => `${k} ${v}`)
          .join(', ')} µs${cpuNote(projectedCpu!)}`,
      }),
    );
  }
  if (want('queue-stats')) {
    const r = await queueStatsLatency(nc, {
      auditRows: QSTATS_AUDIT_ROWS,
      types: QSTATS_TYPES,
      requests: quick ? 120 : 400,
      uncachedSamples: quick ? 1 : 3,
    });
    const note = `GET /v1/admin/queues with ${QSTATS_AUDIT_ROWS.toLocaleString('en')} audit rows, ${r.types} types × 3 lanes, two days of activity buckets, 100,000 dead letters, 50,000 active schedules (seeded in ${round(r.seedMs / 1000)} s); ${r.served.n} requests at about 40/s, readings refreshed behind them every 1.5 s; baseline: GET /healthz on the same dlq-manager`;
    for (const p of ['p50', 'p99', 'max'] as const)
      add(
        figure({
          name: 'queue-stats',
          metric: `latency_${p}`,
          unit: 'ms',
          value: r.served[p],
          baseline: { name: 'healthz', value: r.healthz[p] },
          ...(p === 'p99' ? { target: 50 } : {}),
          note,
        }),
      );
    add(
      figure({
        name: 'queue-stats',
        metric: 'uncached_ms',
        unit: 'ms',
        value: Math.max(...r.uncached),
        note: `a request after 11 s of quiet waits for a whole reading (one CONSUMER.LIST, a message read per lane with jobs, three grouped counts in Postgres); samples ${r.uncached.join(', ')} ms`,
      }),
    );
  }
} finally {
  await admin.end().catch(() => undefined);
  await nc.close();
}

if (values.json)
  console.log(
    JSON.stringify({
      machine: { cores: availableParallelism() },
      versions,
      cpu: { clkTck: CLK_TCK, natsServerPid: natsPid ?? null, natsServerIdleMsPerSec: natsIdle ?? null },
      scenarios: figures,
    }),
  );
