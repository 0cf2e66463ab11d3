import { readFileSync } from 'node:fs';
import { jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/nats-core';
import { provisionJobTypes, Topology } from '@redrive/messaging';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  connectTestClient,
  createTestDatabase,
  deleteStreams,
  freePort,
  SHARED_NATS_URL,
  startService,
  uniquePrefix,
  waitFor,
  type ServiceProcess,
  type TestDatabase,
} from '@redrive/test-support';
import { documentedMetrics, METRICS_DOC } from '../../scripts/metrics-docs.js';

// The four services against the shared servers, scraped the way Prometheus does after some jobs
// ran: every metric docs/metrics.md lists has a series, and the queue gauges dlq-manager reads
// from JetStream say what the test did (jobs of a type no worker runs are waiting, and age).

const prefix = uniquePrefix('metrics');
const topology = new Topology({ prefix });
let nc: NatsConnection;
let db: TestDatabase;
const services: Record<string, { proc: ServiceProcess; port: number }> = {};

async function start(name: string, portVar: string, env: Record<string, string>, ready: string): Promise<void> {
  const port = await freePort();
  const proc = startService(name, {
    NATS_URL: SHARED_NATS_URL,
    REDRIVE_PREFIX: prefix,
    LOG_LEVEL: 'info',
    [portVar]: String(port),
    ...env,
  });
  services[name] = { proc, port };
  await proc.waitForLog((l) => l.msg === ready, 30_000);
}

async function scrape(service: string): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${services[service]!.port}/metrics`);
  expect(res.status).toBe(200);
  return res.text();
}

/** The value of one series, or undefined when the scrape has no such series. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) return Number(line.split(' ').pop());
  }
  return undefined;
}

/** Whether the scrape has at least one series of `name` (for a histogram, of its _count). */
function hasSeries(text: string, name: string): boolean {
  const histogram = new RegExp(`^# TYPE ${name} histogram$`, 'm').test(text);
  return sample(text, histogram ? `${name}_count` : name) !== undefined;
}

async function submit(body: unknown, path = '/v1/jobs'): Promise<void> {
  const res = await fetch(`http://127.0.0.1:${services.intake!.port}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  expect(res.status, await res.clone().text()).toBe(202);
}

beforeAll(async () => {
  nc = await connectTestClient();
  db = await createTestDatabase('metrics');
  // A type whose consumers exist (so intake accepts it) but whose worker is not running.
  const jsm = await jetstreamManager(nc);
  await start('dlq-manager', 'DLQ_PORT', { DATABASE_URL: db.url }, 'dlq-manager running');
  await provisionJobTypes(jsm, topology, ['idle'], { ackWaitMs: 30_000, maxDeliver: 10, maxAckPending: 1_000 });
  await Promise.all([
    start('retry-scheduler', 'SCHEDULER_PORT', { DATABASE_URL: db.url }, 'retry-scheduler running'),
    start(
      'sync-worker',
      'WORKER_PORT',
      {
        WORKER_HANDLERS: './test/fixtures/observe-handlers.mjs',
        WORKER_CONCURRENCY: '4',
        REDIS_URL: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
      },
      'sync-worker running',
    ),
    start('intake', 'INTAKE_PORT', { INTAKE_ALLOW_ANONYMOUS: 'true' }, 'intake listening'),
  ]);
}, 90_000);

afterAll(async () => {
  await Promise.all(Object.values(services).map((s) => s.proc.stop()));
  await deleteStreams(nc, prefix);
  await db?.drop();
  await nc?.close();
});

describe('a live scrape', () => {
  it('has every metric docs/metrics.md lists, and queue gauges that match what ran', async () => {
    for (let i = 0; i < 3; i++) await submit({ type: 'idle', payload: { i } });
    await submit({ type: 'idle', priority: 'high', payload: {} });
    await submit(
      {
        jobs: [
          { type: 'ok', payload: {} },
          { type: 'ok', payload: {} },
        ],
      },
      '/v1/jobs:batch',
    );
    await submit({ type: 'doomed', payload: {} });
    await submit({ type: 'later', payload: {} });

    // What ran is visible: the jobs finished, the dead letter is recorded, the retry waits.
    await waitFor(
      async () =>
        sample(await scrape('sync-worker'), 'redrive_worker_jobs_total', { type: 'ok', outcome: 'succeeded' }) === 2,
      { timeoutMs: 20_000, what: 'the worker to count two successes' },
    );
    const dlq = await waitFor(
      async () => {
        const text = await scrape('dlq-manager');
        return sample(text, 'redrive_dlq_unresolved', { type: 'doomed', reason: 'non_retryable' }) === 1 &&
          sample(text, 'redrive_queue_waiting', { type: 'idle', lane: 'normal' }) === 3
          ? text
          : undefined;
      },
      { timeoutMs: 20_000, what: 'dlq-manager to report the dead letter and the waiting jobs' },
    );
    const scheduler = await waitFor(
      async () => {
        const text = await scrape('retry-scheduler');
        return sample(text, 'redrive_scheduler_schedules_waiting', { kind: 'retry' }) === 1 ? text : undefined;
      },
      { timeoutMs: 20_000, what: 'the scheduler to report the retry it holds' },
    );
    const scrapes: Record<string, string> = {
      intake: await scrape('intake'),
      'sync-worker': await scrape('sync-worker'),
      'retry-scheduler': scheduler,
      'dlq-manager': dlq,
    };

    // Every documented metric has a series where the docs say it lives.
    const documented = documentedMetrics(readFileSync(METRICS_DOC, 'utf8'));
    expect([...documented.keys()]).toEqual([
      'Every service: Node.js process metrics',
      'intake',
      'sync-worker',
      'retry-scheduler',
      'dlq-manager',
    ]);
    const missing: string[] = [];
    for (const [section, names] of documented) {
      const where = section in scrapes ? [section] : Object.keys(scrapes);
      for (const service of where)
        for (const name of names) if (!hasSeries(scrapes[service]!, name)) missing.push(`${service}: ${name}`);
    }
    expect(missing).toEqual([]);

    // The queue gauges say what happened on JOBS.
    expect(sample(dlq, 'redrive_queue_waiting', { type: 'idle', lane: 'high' })).toBe(1);
    expect(sample(dlq, 'redrive_queue_waiting', { type: 'idle', lane: 'low' })).toBe(0);
    expect(sample(dlq, 'redrive_queue_oldest_waiting_seconds', { type: 'idle', lane: 'normal' })).toBeGreaterThan(0);
    expect(sample(dlq, 'redrive_queue_oldest_waiting_seconds', { type: 'idle', lane: 'low' })).toBe(0);
    expect(sample(dlq, 'redrive_queue_waiting', { type: 'ok', lane: 'normal' })).toBe(0);
    expect(sample(dlq, 'redrive_queue_running', { type: 'ok', lane: 'normal' })).toBe(0);
    expect(sample(dlq, 'redrive_audit_lag_events')).toBeGreaterThanOrEqual(0);
    // Standard names for Node's metrics, and the route as callers write it.
    expect(scrapes.intake).not.toMatch(/^redrive_(process|nodejs)_/m);
    expect(sample(scrapes.intake!, 'redrive_intake_request_seconds_count', { route: '/v1/jobs:batch' })).toBe(1);
    expect(scrapes.intake).not.toContain('::batch');
    // Counters exist at zero before their first increment; both worker metrics use one set of outcomes.
    expect(sample(scrapes.intake!, 'redrive_intake_jobs_accepted_total', { type: 'ok', duplicate: 'true' })).toBe(0);
    expect(
      sample(scrapes['sync-worker']!, 'redrive_worker_jobs_total', { type: 'later', outcome: 'dead_lettered' }),
    ).toBe(0);
    expect(
      sample(scrapes['sync-worker']!, 'redrive_worker_job_seconds_count', { type: 'doomed', outcome: 'dead_lettered' }),
    ).toBe(1);
    expect(sample(scrapes['sync-worker']!, 'redrive_worker_capacity')).toBe(4);
    // Both succeeded jobs of type ok are in the end-to-end latency, each a positive time.
    expect(sample(scrapes['sync-worker']!, 'redrive_worker_job_latency_seconds_count', { type: 'ok' })).toBe(2);
    expect(sample(scrapes['sync-worker']!, 'redrive_worker_job_latency_seconds_sum', { type: 'ok' })).toBeGreaterThan(
      0,
    );
  }, 60_000);

  it('reads the queue gauges with a few JetStream API calls per scrape, none per job', async () => {
    // Every JetStream API request this installation makes while dlq-manager answers one scrape
    // whose readings are older than its cache (5 s).
    await new Promise((r) => setTimeout(r, 5_500));
    const calls: string[] = [];
    const sub = nc.subscribe('$JS.API.>', {
      callback: (_err, m) => {
        if (m.subject.includes(`${prefix}_`)) calls.push(m.subject.slice('$JS.API.'.length));
      },
    });
    await nc.flush();
    const started = performance.now();
    await scrape('dlq-manager');
    const coldMs = performance.now() - started;
    await nc.flush();
    const coldCalls = calls.length;
    const again = performance.now();
    await scrape('dlq-manager');
    const cachedMs = performance.now() - again;
    await nc.flush();
    sub.unsubscribe();
    const cachedCalls = calls.splice(coldCalls).filter((c) => !c.startsWith('CONSUMER.MSG.NEXT')).length;
    // Figures for the record, not asserted.
    console.log(
      `one dlq-manager scrape: ${calls.length} JetStream API calls, ${coldMs.toFixed(1)} ms; ` +
        `the next one, from the cache: ${cachedCalls} calls, ${cachedMs.toFixed(1)} ms`,
      calls,
    );
    // One consumer list of JOBS, a message read per lane with jobs outstanding (idle: normal,
    // high), and the audit consumer's state (and its oldest event, if it lags). The pull loops'
    // own requests (CONSUMER.MSG.NEXT) are not the scrape's.
    const scrapeCalls = calls.filter((c) => !c.startsWith('CONSUMER.MSG.NEXT'));
    expect(scrapeCalls.filter((c) => c.startsWith('CONSUMER.LIST'))).toEqual([
      `CONSUMER.LIST.${topology.streams.jobs}`,
    ]);
    expect(scrapeCalls.filter((c) => c === `STREAM.MSG.GET.${topology.streams.jobs}`)).toHaveLength(2);
    expect(scrapeCalls.length).toBeLessThanOrEqual(5);
  }, 30_000);
});
