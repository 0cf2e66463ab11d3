// Retry timing under load: N jobs that fail once with a 200 ms backoff, published at a fixed
// rate, through a real sync-worker. Lateness = (second attempt start − first attempt start) −
// 200 ms. Run twice in the same run: with the worker timing short delays itself and NAKing
// when due (Redrive's default), and with plain NAK-delay redelivery by the server (the
// baseline: RETRY_LOCAL_DELAY_MAX=0).
//
//   pnpm --filter @redrive/bench retry [jobs] [rate/s ...]
import { jetstream } from '@nats-io/jetstream';
import { publishJob, Topology } from '@redrive/messaging';
import {
  connectTestClient,
  deleteStreams,
  freePort,
  readRecords,
  recordFilePath,
  SHARED_NATS_URL,
  startService,
  uniquePrefix,
  waitFor,
} from '@redrive/test-support';

const jobs = Number(process.argv[2] ?? 2000);
const rates = process.argv.slice(3).map(Number);
const BACKOFF_MS = 200;

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

async function run(rate: number, localDelayMaxMs: string) {
  const prefix = uniquePrefix('benchretry');
  const topology = new Topology({ prefix });
  const recordFile = recordFilePath('bench');
  const worker = startService('sync-worker', {
    NATS_URL: SHARED_NATS_URL,
    REDRIVE_PREFIX: prefix,
    RECORD_FILE: recordFile,
    LOG_LEVEL: 'warn',
    WORKER_PORT: String(await freePort()),
    WORKER_HANDLERS: './test/fixtures/retry-handlers.mjs',
    WORKER_TYPES: 'flaky',
    WORKER_CONCURRENCY: '64',
    WORKER_MAX_ACK_PENDING: '10000',
    RETRY_CLASSES: JSON.stringify({ network: { baseMs: BACKOFF_MS, jitter: 0 } }),
    RETRY_LOCAL_DELAY_MAX: localDelayMaxMs,
  });
  await waitFor(() => readRecords(recordFile).length >= 0 && worker.logs.length >= 0, { timeoutMs: 100 });
  await new Promise((r) => setTimeout(r, 2500));
  const nc = await connectTestClient();
  const js = jetstream(nc);
  const body = new TextEncoder().encode(JSON.stringify({ failTimes: 1, pad: 'x'.repeat(256) }));
  const start = Date.now();
  for (let i = 0; i < jobs; i++) {
    const due = start + (i * 1000) / rate;
    const wait = due - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    void publishJob(js, {
      subject: topology.jobSubject('normal', 'flaky'),
      payload: body,
      jobId: `j${i}`,
      msgId: `j${i}`,
      attempt: 0,
    });
  }
  await waitFor(() => readRecords(recordFile).length >= 2 * jobs, {
    timeoutMs: 120_000,
    intervalMs: 250,
    what: 'all retries',
  });
  const byId = new Map<string, number[]>();
  for (const r of readRecords<{ id: string; at: number }>(recordFile))
    byId.set(r.id, [...(byId.get(r.id) ?? []), r.at]);
  const lateness = [...byId.values()].map((t) => t[1]! - t[0]! - BACKOFF_MS).sort((a, b) => a - b);
  await worker.stop();
  await deleteStreams(nc, prefix);
  await nc.close();
  return { p50: pct(lateness, 50), p99: pct(lateness, 99), max: lateness[lateness.length - 1]! };
}

for (const rate of rates.length ? rates : [100, 1000]) {
  const local = await run(rate, '10s');
  const server = await run(rate, '0');
  console.log(
    `retry lateness at ${rate} retries/s, ${jobs} jobs: worker-timed p50 ${local.p50} ms p99 ${local.p99} ms max ${local.max} ms; ` +
      `NAK-delay baseline p50 ${server.p50} ms p99 ${server.p99} ms max ${server.max} ms; p99 ratio ${(local.p99 / Math.max(1, server.p99)).toFixed(2)}`,
  );
}
