// Retry timing under load: jobs that fail once with a 200 ms backoff, at a fixed rate, through
// a real sync-worker. Lateness = (second attempt − first attempt) − 200 ms. The baseline is the
// same run with plain NAK-delay redelivery by the server (RETRY_LOCAL_DELAY_MAX=0).
import { jetstream } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/nats-core';
import { publishJob, Topology } from '@redrive/messaging';
import {
  deleteStreams,
  readRecords,
  recordFilePath,
  SHARED_NATS_URL,
  uniquePrefix,
  waitFor,
} from '@redrive/test-support';
import { startBenchService } from './services.js';
import { atRate, percentile, round } from './stats.js';

const BACKOFF_MS = 200;

export async function retryLateness(nc: NatsConnection, jobs: number, rate: number, localDelayMax: string) {
  const prefix = uniquePrefix('benchretry');
  const topology = new Topology({ prefix });
  const recordFile = recordFilePath('bench');
  const worker = await startBenchService('sync-worker', {
    NATS_URL: SHARED_NATS_URL,
    REDRIVE_PREFIX: prefix,
    RECORD_FILE: recordFile,
    WORKER_HANDLERS: './test/fixtures/retry-handlers.mjs',
    WORKER_TYPES: 'flaky',
    WORKER_CONCURRENCY: '64',
    WORKER_MAX_ACK_PENDING: '10000',
    RETRY_CLASSES: JSON.stringify({ network: { baseMs: BACKOFF_MS, jitter: 0 } }),
    RETRY_LOCAL_DELAY_MAX: localDelayMax,
  });
  try {
    const js = jetstream(nc);
    const body = new TextEncoder().encode(JSON.stringify({ failTimes: 1, pad: 'x'.repeat(256) }));
    await atRate(jobs, rate, (i) => {
      void publishJob(js, {
        subject: topology.jobSubject('normal', 'flaky'),
        payload: body,
        jobId: `j${i}`,
        msgId: `j${i}`,
        attempt: 0,
      });
    });
    await waitFor(() => readRecords(recordFile).length >= 2 * jobs, {
      timeoutMs: 120_000,
      intervalMs: 250,
      what: 'all retries',
    });
    const byId = new Map<string, number[]>();
    for (const r of readRecords<{ id: string; at: number }>(recordFile))
      byId.set(r.id, [...(byId.get(r.id) ?? []), r.at]);
    const lateness = [...byId.values()].map((t) => t[1]! - t[0]! - BACKOFF_MS);
    return {
      p50: round(percentile(lateness, 50), 0),
      p99: round(percentile(lateness, 99), 0),
      max: round(percentile(lateness, 100), 0),
    };
  } finally {
    await worker.stop();
    await deleteStreams(nc, prefix);
  }
}
