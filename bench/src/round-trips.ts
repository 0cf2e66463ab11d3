// What one job costs: CPU time, system calls and log lines of each service, NATS messages by
// kind and Redis commands, per job, on the pipeline's two paths (straight to NATS, and HTTP
// batches through intake). Counts and CPU time rather than wall-clock rates, so a machine busy
// with other work blurs them far less than it blurs the throughput figures.
//
//   pnpm -s build && pnpm exec tsx --conditions=source bench/src/round-trips.ts [--jobs 5000] [--redis]
//
// --redis gives the worker a private redis-server (completion markers on, as in most
// deployments; the pipeline bench runs without Redis). NATS messages are counted by a plain
// subscriber on this run's subjects (acks and pull requests go to `$JS.ACK.<stream>.…` and
// `$JS.API.CONSUMER.MSG.NEXT.<stream>.…`); replies (deliveries, PubAcks) are not counted.
import { parseArgs } from 'node:util';
import type { NatsConnection, Subscription } from '@nats-io/nats-core';
import { Redis } from 'ioredis';
import { decodeEvents } from '@redrive/messaging';
import {
  connectTestClient,
  SHARED_NATS_URL,
  startRedisServer,
  uniquePrefix,
  type PrivateRedis,
} from '@redrive/test-support';
import { pipelineHttpThroughput, pipelineNatsThroughput, startPipeline, type PipelineRun } from './pipeline.js';
import { rawThroughput } from './raw-jetstream.js';
import { cpuMsOf, natsServerPid } from './cpu.js';
import { sleep } from './stats.js';

const { values } = parseArgs({
  options: { jobs: { type: 'string', default: '5000' }, redis: { type: 'boolean', default: false } },
});
const N = Number(values.jobs);
const SIZE = 300;

type Counts = Map<string, number>;

const NATS_PID = natsServerPid(SHARED_NATS_URL);

/** CPU ms (user + system) of this bench process and of nats-server so far. */
function cpuOfBenchAndServer(): { bench: number; server: number } {
  const { user, system } = process.cpuUsage();
  const server = NATS_PID ? cpuMsOf(NATS_PID) : { user: Number.NaN, system: Number.NaN };
  return { bench: (user + system) / 1000, server: server.user + server.system };
}

const us = (ms: number) => ((ms * 1000) / N).toFixed(0).padStart(4);

function printSharedCpu(before: { bench: number; server: number }): void {
  const after = cpuOfBenchAndServer();
  console.log(
    `bench process CPU µs ${us(after.bench - before.bench)}   nats-server CPU µs ${us(after.server - before.server)} (shared: others' load counts too)`,
  );
}

/** Counts this run's NATS traffic by kind. */
function countTraffic(nc: NatsConnection, run: PipelineRun): { counts: Counts; stop(): void } {
  const counts: Counts = new Map();
  const bump = (k: string, n = 1) => counts.set(k, (counts.get(k) ?? 0) + n);
  const jobs = run.topology.streams.jobs;
  const prefix = run.topology.options.prefix;
  const subs: Subscription[] = [];
  const on = (subject: string, kind: (subject: string, data: Uint8Array) => string | undefined) => {
    const sub = nc.subscribe(subject, {
      callback: (_err, m) => {
        const k = kind(m.subject, m.data);
        if (k) bump(k);
      },
    });
    subs.push(sub);
  };
  const text = new TextDecoder();
  on(`$JS.ACK.${jobs}.>`, (_s, d) => `ack ${text.decode(d.subarray(0, 4)).trim() || '+ACK'}`);
  on(`$JS.API.>`, (s) => {
    if (!s.includes(prefix)) return undefined;
    return s.startsWith(`$JS.API.CONSUMER.MSG.NEXT.`) ? 'pull request' : `api ${s.split('.').slice(2, 4).join('.')}`;
  });
  on(`${prefix}.jobs.>`, () => 'job publish');
  on(`${prefix}.events.>`, (s, d) => {
    bump('events (inside event messages)', decodeEvents(d).length);
    return `event message ${s.slice(prefix.length + '.events.'.length)}`;
  });
  // Anything else on this run's subjects (completion records, schedule requests, dead letters).
  on(`${prefix}.>`, (s) => (/^[^.]+\.(jobs|events)\./.test(s) ? undefined : `publish ${s.split('.')[1]}`));
  return { counts, stop: () => subs.forEach((s) => s.unsubscribe()) };
}

async function redisCalls(redis: Redis | undefined): Promise<Counts> {
  const out: Counts = new Map();
  if (!redis) return out;
  const info = await redis.info('commandstats');
  for (const m of info.matchAll(/cmdstat_(\w+):calls=(\d+)/g)) out.set(m[1]!, Number(m[2]));
  return out;
}

async function measure(
  nc: NatsConnection,
  label: string,
  http: boolean,
  redis: { server: PrivateRedis; client: Redis } | undefined,
) {
  const run = await startPipeline(nc, {
    http,
    concurrency: 64,
    workerEnv: redis ? { REDIS_URL: redis.server.url } : {},
    countLogLines: true,
  });
  try {
    await sleep(500);
    const traffic = countTraffic(nc, run);
    await nc.flush();
    const before = run.services.map((s) => ({ ...s.syscalls(), ...s.cpuMs(), lines: s.logLines() }));
    const redisBefore = await redisCalls(redis?.client);
    const shared = cpuOfBenchAndServer();
    const rate = http ? await pipelineHttpThroughput(run, N, SIZE) : await pipelineNatsThroughput(run, N, SIZE);
    await sleep(500); // the last acks
    await nc.flush();
    traffic.stop();
    const per = (n: number) => (n / N).toFixed(2).padStart(7);
    console.log(`\n## ${label}: ${N} jobs (${rate} jobs/s, per job)`);
    for (const [i, s] of run.services.entries()) {
      const now = { ...s.syscalls(), ...s.cpuMs() };
      const b = before[i]!;
      console.log(
        `${s.name.padEnd(12)} CPU µs user ${us(now.user - b.user)} system ${us(now.system - b.system)}  read syscalls ${per(now.reads - b.reads)}  write syscalls ${per(now.writes - b.writes)}  log lines ${per(s.logLines() - b.lines)}`,
      );
    }
    printSharedCpu(shared);
    for (const [k, n] of [...traffic.counts].sort()) console.log(`nats  ${per(n)}  ${k}`);
    const redisAfter = await redisCalls(redis?.client);
    for (const [k, n] of redisAfter) {
      const d = n - (redisBefore.get(k) ?? 0) - (k === 'info' ? 1 : 0);
      if (d > 0) console.log(`redis ${per(d)}  ${k}`);
    }
  } finally {
    await run.close();
  }
}

const nc = await connectTestClient(SHARED_NATS_URL);
let redis: { server: PrivateRedis; client: Redis } | undefined;
try {
  if (values.redis) {
    const server = await startRedisServer();
    redis = { server, client: new Redis(server.url) };
  }
  // The baseline: a bare nats.js client publishing and consuming in this process.
  const shared = cpuOfBenchAndServer();
  const rate = await rawThroughput(nc, `${uniquePrefix('rawrt')}_RAW`, N, SIZE);
  console.log(`\n## raw-jetstream: ${N} messages (${rate} msgs/s, per message)`);
  printSharedCpu(shared);
  await measure(nc, 'pipeline-nats (published straight to JOBS)', false, redis);
  await measure(nc, 'pipeline-http (intake, batches of 100)', true, redis);
} finally {
  redis?.client.disconnect();
  await redis?.server.kill();
  await nc.close();
}
