import { createServer } from 'node:http';
import { jetstream, jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/nats-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  decodeEvents,
  provisionJobTypes,
  ensureStreams,
  publishJob,
  readDeadLetterHeaders,
  Topology,
} from '@redrive/messaging';
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
  type ServiceProcess,
  streamMessages,
} from '@redrive/test-support';

// The retry engine end to end: a real sync-worker process with handlers that fail on purpose,
// against the shared NATS under a prefix of its own. Delays are scaled down by configuration
// (network: 100 ms base, no jitter) so the sequences run in seconds.

interface Run {
  id: string;
  type: string;
  attempt: number;
  at: number;
  pid: number;
  event?: string;
}

const prefix = uniquePrefix('retry');
const topology = new Topology({ prefix });
const recordFile = recordFilePath('retry');
let nc: NatsConnection;
let jsm: JetStreamManager;
let worker: ServiceProcess;
let counter = 0;
// The http targets' ports are chosen before the worker starts: its `http` type sends to these
// origins only (scheme, host and port), as internal origins, each signed with the test secret.
const targetPorts: number[] = [];
let targetsStarted = 0;
const HTTP_SECRET = 'whsec_dGVzdC1zZWNyZXQtZm9yLXJlZHJpdmU=';
const targetOrigins = () => targetPorts.map((p) => `http://127.0.0.1:${p}`);

const runs = (id: string): Run[] => readRecords<Run>(recordFile, id);

const workerEnv = (extra: Record<string, string> = {}) => ({
  NATS_URL: SHARED_NATS_URL,
  REDRIVE_PREFIX: prefix,
  RECORD_FILE: recordFile,
  WORKER_HANDLERS: './test/fixtures/retry-handlers.mjs',
  RETRY_CLASSES: JSON.stringify({ network: { baseMs: 100, jitter: 0 }, server: { baseMs: 100, jitter: 0 } }),
  RETRY_HANDOFF_THRESHOLD: '10s',
  HTTP_TYPES: JSON.stringify({ http: { internalOrigins: targetOrigins() } }),
  HTTP_SIGNING_SECRETS: JSON.stringify(Object.fromEntries(targetOrigins().map((o) => [o, HTTP_SECRET]))),
  ...extra,
});

async function startWorker(extra: Record<string, string> = {}): Promise<ServiceProcess> {
  const w = startService('sync-worker', { ...workerEnv(extra), WORKER_PORT: String(await freePort()) });
  await w.waitForLog((l) => l.msg === 'sync-worker running');
  return w;
}

async function submit(
  type: string,
  payload: unknown,
  opts: { maxAttempts?: number } = {},
): Promise<{ jobId: string; seq: number }> {
  const jobId = `${type}-${++counter}-${prefix}`;
  const ack = await publishJob(jetstream(nc), {
    subject: topology.jobSubject('normal', type),
    payload: new TextEncoder().encode(JSON.stringify(payload)),
    jobId,
    msgId: jobId,
    attempt: 0,
    ...(opts.maxAttempts ? { maxAttempts: opts.maxAttempts } : {}),
  });
  return { jobId, seq: ack.seq };
}

async function deadLetters(): Promise<{ jobId: string; headers: ReturnType<typeof readDeadLetterHeaders> }[]> {
  const info = await jsm.streams.info(topology.streams.dlq);
  const out = [];
  for (let seq = info.state.first_seq; seq <= info.state.last_seq && info.state.messages > 0; seq++) {
    const m = await jsm.streams.getMessage(topology.streams.dlq, { seq }).catch(() => null);
    if (m) out.push({ jobId: m.header.get('Redrive-Job-Id'), headers: readDeadLetterHeaders(m.header) });
  }
  return out;
}

async function events(
  kind: string,
): Promise<{ jobId: string; kind: string; errorClass?: string; reason?: string; attempt?: number }[]> {
  const info = await jsm.streams.info(topology.streams.events);
  const out = [];
  for (let seq = info.state.first_seq; seq <= info.state.last_seq && info.state.messages > 0; seq++) {
    const m = await jsm.streams.getMessage(topology.streams.events, { seq }).catch(() => null);
    if (m && m.subject === topology.eventSubject(kind)) out.push(...decodeEvents(m.data));
  }
  return out;
}

/**
 * An HTTP target that answers with the scripted statuses in turn (the last one repeats), on the
 * next of the ports the worker's `http` type names, or on another port when `configured` is false.
 */
async function startTarget(script: { status: number; headers?: Record<string, string> }[], configured = true) {
  const hits: { at: number; body: string; webhookId: string | undefined }[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8').on('data', (c: string) => (body += c));
    req.on('end', () => {
      hits.push({ at: Date.now(), body, webhookId: req.headers['webhook-id'] as string | undefined });
      const answer = script[Math.min(hits.length - 1, script.length - 1)]!;
      res.writeHead(answer.status, answer.headers ?? {}).end();
    });
  });
  const port = configured ? targetPorts[targetsStarted++]! : await freePort();
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${port}/hook`, hits, close: () => server.close() };
}

beforeAll(async () => {
  nc = await connectTestClient();
  jsm = await jetstreamManager(nc);
  targetPorts.push(await freePort(), await freePort());
  worker = await startWorker();
}, 60_000);

afterAll(async () => {
  await worker?.stop();
  await deleteStreams(nc, prefix);
  await nc.close();
});

describe('retries by error class', () => {
  it('retries a network failure that clears after 2 attempts, with growing gaps, and succeeds on the 3rd', async () => {
    const { jobId } = await submit('flaky', { failTimes: 2 });
    const done = await waitFor(() => (runs(jobId).length >= 3 ? runs(jobId) : undefined), { what: '3 attempts' });
    expect(done.map((r) => r.attempt)).toEqual([1, 2, 3]);
    const gap1 = done[1]!.at - done[0]!.at;
    const gap2 = done[2]!.at - done[1]!.at;
    // 100 ms then 200 ms of backoff, plus redelivery: never sooner, and not much later.
    expect(gap1).toBeGreaterThanOrEqual(100);
    expect(gap2).toBeGreaterThanOrEqual(200);
    expect(gap2).toBeGreaterThan(gap1);
    expect(gap2).toBeLessThan(1_000);
    await waitFor(async () => (await events('attempt.succeeded')).some((e) => e.jobId === jobId), {
      what: 'the success event',
    });
    expect(runs(jobId)).toHaveLength(3);
  });

  it('dead-letters a network failure that never clears after exactly 1 + 5 attempts, reason retries_exhausted', async () => {
    const { jobId, seq } = await submit('flaky', { failTimes: 1_000 });
    const dl = await waitFor(async () => (await deadLetters()).find((d) => d.jobId === jobId), {
      timeoutMs: 20_000,
      what: 'the dead letter',
    });
    expect(dl.headers).toMatchObject({
      reason: 'retries_exhausted',
      errorClass: 'network',
      attempts: 6,
      originalSeq: seq,
    });
    expect(dl.headers.originalSubject).toBe(topology.jobSubject('normal', 'flaky'));
    expect(runs(jobId).map((r) => r.attempt)).toEqual([1, 2, 3, 4, 5, 6]);
    const gaps = runs(jobId)
      .slice(1)
      .map((r, i) => r.at - runs(jobId)[i]!.at);
    for (const [i, gap] of gaps.entries()) expect(gap).toBeGreaterThanOrEqual(100 * 2 ** i);
    // The original is terminated, so interest retention has removed it from JOBS.
    await waitFor(
      async () => (await jsm.streams.getMessage(topology.streams.jobs, { seq }).catch(() => null)) === null,
      {
        what: 'the original to be gone',
      },
    );
    expect((await events('job.dead_lettered')).filter((e) => e.jobId === jobId)).toHaveLength(1);
  }, 30_000);

  it('retries a 429 with Retry-After: 2 from a real HTTP target no sooner than 2 s later', async () => {
    const target = await startTarget([{ status: 429, headers: { 'retry-after': '2' } }, { status: 200 }]);
    try {
      const { jobId } = await submit('http', { url: target.url, body: { order: 7 } });
      await waitFor(() => target.hits.length >= 2, { timeoutMs: 10_000, what: 'two deliveries' });
      const gap = target.hits[1]!.at - target.hits[0]!.at;
      expect(gap).toBeGreaterThanOrEqual(2_000);
      expect(gap).toBeLessThan(2_700);
      expect(target.hits.map((h) => h.body)).toEqual(['{"order":7}', '{"order":7}']);
      expect(target.hits[1]!.webhookId).toBe(jobId);
      await waitFor(async () => (await events('attempt.succeeded')).some((e) => e.jobId === jobId && e.attempt === 2));
    } finally {
      target.close();
    }
  });

  it('dead-letters a 400 from a real HTTP target after exactly 1 attempt as non_retryable, class client', async () => {
    const target = await startTarget([{ status: 400 }]);
    try {
      const { jobId } = await submit('http', { url: target.url, body: { bad: true } });
      const dl = await waitFor(async () => (await deadLetters()).find((d) => d.jobId === jobId), {
        what: 'the dead letter',
      });
      expect(dl.headers).toMatchObject({ reason: 'non_retryable', errorClass: 'client', attempts: 1 });
      expect(target.hits).toHaveLength(1);
    } finally {
      target.close();
    }
  });

  it('dead-letters an http job naming a URL its type does not send to as validation, never sending it', async () => {
    const target = await startTarget([{ status: 200 }], false);
    try {
      const { jobId } = await submit('http', { url: target.url, body: { forged: true } });
      const dl = await waitFor(async () => (await deadLetters()).find((d) => d.jobId === jobId), {
        what: 'the dead letter',
      });
      expect(dl.headers).toMatchObject({ reason: 'non_retryable', errorClass: 'validation', attempts: 1 });
      expect(target.hits).toHaveLength(0);
    } finally {
      target.close();
    }
  });

  it('lets Redrive-Max-Attempts cut the class budget', async () => {
    const { jobId } = await submit('status', { status: 503 }, { maxAttempts: 2 });
    const dl = await waitFor(async () => (await deadLetters()).find((d) => d.jobId === jobId), {
      what: 'the dead letter',
    });
    expect(dl.headers).toMatchObject({ reason: 'retries_exhausted', errorClass: 'server', attempts: 2 });
    expect(runs(jobId)).toHaveLength(2);
  });
});

describe('long backoffs', () => {
  it('hands a backoff longer than the threshold to schedule.retry and leaves nothing pending on JOBS', async () => {
    const before = Date.now();
    const { jobId } = await submit('ratelimited', { retryAfterMs: 60_000 });
    const sched = await waitFor(
      async () => {
        const info = await jsm.streams.info(topology.streams.schedule);
        if (info.state.messages === 0) return undefined;
        for (let seq = info.state.first_seq; seq <= info.state.last_seq; seq++) {
          const m = await jsm.streams.getMessage(topology.streams.schedule, { seq }).catch(() => null);
          if (m?.header.get('Redrive-Job-Id') === jobId) return m;
        }
        return undefined;
      },
      { what: 'the hand-off on schedule.retry' },
    );
    expect(sched.subject).toBe(topology.scheduleSubject('retry'));
    expect(sched.header.get('Redrive-Attempt')).toBe('1');
    expect(sched.header.get('Redrive-Original-Subject')).toBe(topology.jobSubject('normal', 'ratelimited'));
    const due = Date.parse(sched.header.get('Redrive-Due-At'));
    expect(due).toBeGreaterThanOrEqual(before + 60_000);
    expect(due).toBeLessThan(Date.now() + 60_000 + 1_000);
    await waitFor(
      async () => (await jsm.consumers.info(topology.streams.jobs, 'worker-normal-ratelimited')).num_ack_pending === 0,
      {
        what: 'no ack pending',
      },
    );
    expect(runs(jobId)).toHaveLength(1);
  });
});

/**
 * A job of type `crash` (it kills its worker on every run) in a topology of its own, and
 * workers started one after another, as a supervisor would restart them, until `done` says the
 * job has been dealt with (at most 8 workers).
 */
async function crashLoop(
  own: string,
  env: Record<string, string>,
  maxDeliver: number,
  done: (topo: Topology) => Promise<boolean>,
): Promise<{ topo: Topology; jobId: string }> {
  const topo = new Topology({ prefix: own });
  await ensureStreams(jsm, topo.streamConfigs());
  await provisionJobTypes(jsm, topo, ['crash'], { ackWaitMs: 1_000, maxDeliver, maxAckPending: 100 });
  const jobId = `crash-${own}`;
  await publishJob(jetstream(nc), {
    subject: topo.jobSubject('normal', 'crash'),
    payload: new TextEncoder().encode('{}'),
    jobId,
    msgId: jobId,
    attempt: 0,
  });
  for (let i = 0; i < 8 && !(await done(topo)); i++) {
    const w = startService('sync-worker', {
      ...workerEnv({ REDRIVE_PREFIX: own, WORKER_ACK_WAIT: '1s', WORKER_MAX_DELIVER: String(maxDeliver), ...env }),
      WORKER_PORT: String(await freePort()),
    });
    const code = await Promise.race([w.exited, new Promise<'alive'>((r) => setTimeout(() => r('alive'), 6_000))]);
    if (code === 'alive') await w.stop();
  }
  return { topo, jobId };
}

describe('the server-side safety net', () => {
  it('ends a job that kills its worker every time with a MAX_DELIVERIES advisory, not an endless loop', async () => {
    const own = uniquePrefix('crash');
    try {
      const advisoryCount = async (topo: Topology) => (await jsm.streams.info(topo.streams.advisories)).state.messages;
      const { topo, jobId } = await crashLoop(own, {}, 2, async (t) => (await advisoryCount(t)) > 0);
      // The server gave up after max_deliver deliveries. (A delivery can land on a pull request
      // of the worker that just died, so the handler may have run only once; and nats-server 2.9
      // reports such a job's next delivery with count 1, so the attempt number can lag — the
      // server's own count, which drives max_deliver, is right.)
      expect(runs(jobId).length).toBeGreaterThanOrEqual(1);
      expect(runs(jobId).length).toBeLessThanOrEqual(2);
      const advisories = await jsm.streams.info(topo.streams.advisories);
      expect(advisories.state.messages).toBe(1);
      const adv = await jsm.streams.getMessage(topo.streams.advisories, { seq: advisories.state.first_seq });
      expect(adv!.subject).toBe(`$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.${topo.streams.jobs}.worker-normal-crash`);
      expect(JSON.parse(new TextDecoder().decode(adv!.data))).toMatchObject({
        stream: topo.streams.jobs,
        deliveries: 2,
      });
    } finally {
      await deleteStreams(nc, own);
    }
  }, 60_000);
});

describe('a job that kills its worker', () => {
  it('is dead-lettered as a crash after WORKER_MAX_CRASHES runs cut short, long before max_deliver', async () => {
    const own = uniquePrefix('poison');
    try {
      // The shared Redis counts the runs (keys under this run's own prefix).
      const env = { WORKER_MAX_CRASHES: '2', REDIS_URL: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379' };
      const deadLetters = async (topo: Topology) => (await jsm.streams.info(topo.streams.dlq)).state.messages;
      const { topo, jobId } = await crashLoop(own, env, 10, async (t) => (await deadLetters(t)) > 0);
      const [dl] = await streamMessages(jsm, topo.streams.dlq);
      expect(dl?.header.get('Redrive-Job-Id')).toBe(jobId);
      expect(dl?.header.get('Redrive-Reason')).toBe('retries_exhausted');
      expect(dl?.header.get('Redrive-Error-Class')).toBe('crash');
      // It killed a worker at most twice (the first run is presumed, then one counted run),
      // and the server never had to give up on it.
      expect(runs(jobId).length).toBeLessThanOrEqual(2);
      const advisories = await streamMessages(jsm, topo.streams.advisories);
      expect(advisories.filter((a) => a.subject.includes('.MAX_DELIVERIES.'))).toEqual([]);
    } finally {
      await deleteStreams(nc, own);
    }
  }, 90_000);
});

describe('jobs that died beside a poison job', () => {
  it('are never dead-lettered for it: a suspect runs only while no other suspect runs on its worker', async () => {
    const own = uniquePrefix('victims');
    try {
      const topo = new Topology({ prefix: own });
      await ensureStreams(jsm, topo.streamConfigs());
      await provisionJobTypes(jsm, topo, ['crash', 'sleepy'], { ackWaitMs: 1_000, maxDeliver: 30, maxAckPending: 100 });
      const publish = (type: string, jobId: string, payload: unknown) =>
        publishJob(jetstream(nc), {
          subject: topo.jobSubject('normal', type),
          payload: new TextEncoder().encode(JSON.stringify(payload)),
          jobId,
          msgId: jobId,
          attempt: 0,
        });
      // Three ordinary jobs that are still running when the poison job kills their worker: all
      // four are suspects when they come back, every time the poison job runs beside them.
      const victims = [1, 2, 3].map((i) => `victim-${i}-${own}`);
      for (const id of victims) await publish('sleepy', id, { ms: 1_500 });
      const poison = `poison-${own}`;
      await publish('crash', poison, {});
      const env = {
        REDRIVE_PREFIX: own,
        WORKER_ACK_WAIT: '1s',
        WORKER_MAX_DELIVER: '30',
        WORKER_MAX_CRASHES: '3',
        WORKER_CONCURRENCY: '8',
        REDIS_URL: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
      };
      const finished = (id: string) => runs(id).some((r) => r.event === 'finished');
      const deadLettered = async () => (await jsm.streams.info(topo.streams.dlq)).state.messages > 0;
      // A supervisor: a worker is started again whenever the poison job kills it.
      for (let i = 0; i < 15 && !((await deadLettered()) && victims.every(finished)); i++) {
        const w = startService('sync-worker', { ...workerEnv(env), WORKER_PORT: String(await freePort()) });
        const code = await Promise.race([w.exited, new Promise<'alive'>((r) => setTimeout(() => r('alive'), 6_000))]);
        if (code === 'alive') await w.stop();
      }
      const dead = await streamMessages(jsm, topo.streams.dlq);
      expect(dead.map((m) => m.header.get('Redrive-Job-Id'))).toEqual([poison]);
      expect(dead[0]!.header.get('Redrive-Error-Class')).toBe('crash');
      for (const id of victims) expect(finished(id), id).toBe(true);
    } finally {
      await deleteStreams(nc, own);
    }
  }, 180_000);
});

describe('SIGTERM with jobs in flight', () => {
  it('acks, NAKs or hands back every one of 20 running jobs before exit; none is lost or completed twice', async () => {
    // nats-server 2.9 can deliver a handed-back message to a pull request of the worker that just
    // left; it then comes back after the ack wait, so the ack wait is short here.
    const w = await startWorker({ SHUTDOWN_GRACE: '1500ms', WORKER_CONCURRENCY: '20', WORKER_ACK_WAIT: '3s' });
    await worker.stop();
    const ids: string[] = [];
    // Half finish within the grace period, half do not.
    for (let i = 0; i < 20; i++) ids.push((await submit('sleepy', { ms: i % 2 === 0 ? 500 : 4_000 })).jobId);
    await waitFor(() => ids.every((id) => runs(id).some((r) => r.event === 'started')), { what: '20 jobs running' });
    expect(await w.stop('SIGTERM')).toBe(0);
    const handedBack = w.logs.find((l) => l.msg === 'handed back unfinished jobs');
    expect(handedBack?.handedBack).toBe(10);

    worker = await startWorker({ WORKER_CONCURRENCY: '20', WORKER_ACK_WAIT: '3s' });
    await waitFor(
      () => ids.every((id) => runs(id).some((r) => r.event === 'finished' && !('aborted' in r && r.aborted))),
      {
        timeoutMs: 30_000,
        what: 'every job to finish',
      },
    );
    for (const id of ids) {
      const finished = runs(id).filter((r) => r.event === 'finished');
      // A job cut off by the exit never records "finished"; each completes exactly once.
      expect(finished).toHaveLength(1);
    }
    const info = await jsm.consumers.info(topology.streams.jobs, 'worker-normal-sleepy');
    await waitFor(
      async () => (await jsm.consumers.info(topology.streams.jobs, 'worker-normal-sleepy')).num_ack_pending === 0,
    );
    expect(info.num_pending).toBe(0);
  }, 60_000);
});
