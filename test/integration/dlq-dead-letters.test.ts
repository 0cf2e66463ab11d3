import { AckPolicy, jetstream, jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/nats-core';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEventPublisher, publishJob, serveJobTypes, Topology } from '@redrive/messaging';
import {
  connectTestClient,
  consumersSettled,
  createTestDatabase,
  deleteStreams,
  freePort,
  recordFilePath,
  SHARED_NATS_URL,
  startService,
  streamMessages,
  uniquePrefix,
  waitFor,
  type ServiceProcess,
  type TestDatabase,
} from '@redrive/test-support';

// Dead letters from every path, exactly once: a real dlq-manager and sync-worker against the
// shared NATS (own prefix) and a fresh database, with jobs the worker dead-letters and jobs
// the server gives up on, replayed advisories, and dlq-manager killed at the worst moments.

const prefix = uniquePrefix('dlqpaths');
const topology = new Topology({ prefix });
const recordFile = recordFilePath('dlqpaths');
let nc: NatsConnection;
let jsm: JetStreamManager;
let db: TestDatabase;
let sql: pg.Pool;
let dlq: ServiceProcess | undefined;
let worker: ServiceProcess;
let counter = 0;

const dlqEnv = (extra: Record<string, string> = {}) => ({
  NATS_URL: SHARED_NATS_URL,
  REDRIVE_PREFIX: prefix,
  DATABASE_URL: db.url,
  // Messages a killed dlq-manager held come back after this.
  DLQ_ACK_WAIT: '2s',
  ...extra,
});

async function startDlq(extra: Record<string, string> = {}): Promise<ServiceProcess> {
  const p = startService('dlq-manager', { ...dlqEnv(extra), DLQ_PORT: String(await freePort()) });
  await p.waitForLog((l) => l.msg === 'dlq-manager running', 30_000);
  return p;
}

async function submit(type: string, payload: unknown): Promise<{ jobId: string; seq: number }> {
  const jobId = `${type}-${++counter}-${prefix}`;
  const ack = await publishJob(jetstream(nc), {
    subject: topology.jobSubject('normal', type),
    payload: new TextEncoder().encode(JSON.stringify(payload)),
    jobId,
    msgId: jobId,
    attempt: 0,
  });
  return { jobId, seq: ack.seq };
}

interface Row {
  id: string;
  job_id: string;
  reason: string;
  error_class: string | null;
  attempts: number;
  original_seq: string;
  payload: Buffer | null;
  payload_available: boolean;
  headers: Record<string, string>;
}

const rowsOf = async (jobId: string) =>
  (await sql.query<Row>('SELECT * FROM dead_letters WHERE job_id = $1', [jobId])).rows;
const dlqMessagesOf = async (jobId: string) =>
  (await streamMessages(jsm, topology.streams.dlq)).filter((m) => m.header.get('Redrive-Job-Id') === jobId);
const auditOf = async (jobId: string, kind: string) =>
  (await sql.query('SELECT * FROM audit_events WHERE job_id = $1 AND kind = $2', [jobId, kind])).rows;

/** Waits until dlq-manager has settled every advisory and every DLQ message so far. */
async function settled(): Promise<void> {
  await consumersSettled(
    jsm,
    [
      [topology.streams.advisories, 'dlq-manager-advisories'],
      [topology.streams.dlq, 'dlq-manager-recorder'],
    ],
    { timeoutMs: 20_000, what: 'dlq-manager to settle its consumers' },
  );
}

/** Publishes a copy of a stored advisory, as a replay (or a second server notice) would. */
async function replayAdvisory(kind: 'MAX_DELIVERIES' | 'MSG_TERMINATED', seq: number): Promise<void> {
  const adv = (await streamMessages(jsm, topology.streams.advisories)).find(
    (m) => m.subject.includes(`.${kind}.`) && JSON.parse(m.string()).stream_seq === seq,
  );
  expect(adv, `a ${kind} advisory for seq ${seq}`).toBeDefined();
  nc.publish(adv!.subject, adv!.data);
  await nc.flush();
  await waitFor(
    async () =>
      (await streamMessages(jsm, topology.streams.advisories)).filter(
        (m) => m.subject.includes(`.${kind}.`) && JSON.parse(m.string()).stream_seq === seq,
      ).length >= 2,
    { what: 'the replayed advisory to be stored' },
  );
}

/**
 * Makes the server give up on a job: a consumer like the worker's (max_deliver 2, ack wait
 * 1 s) receives it twice without acknowledging, and keeps a pull request open so the server
 * gets to the point of giving up and publishing MAX_DELIVERIES.
 */
async function exhaustDeliveries(type: string): Promise<{ jobId: string; seq: number }> {
  const name = topology.workerConsumerName('normal', type);
  // No worker serves this type: JOBS captures its subjects for this consumer alone.
  await serveJobTypes(jsm, topology, [type]);
  await jsm.consumers.add(topology.streams.jobs, {
    durable_name: name,
    filter_subject: topology.jobSubject('normal', type),
    ack_policy: AckPolicy.Explicit,
    ack_wait: 1_000_000_000,
    max_deliver: 2,
  });
  const job = await submit(type, { order: counter, note: 'crashes its worker' });
  const consumer = await jetstream(nc).consumers.get(topology.streams.jobs, name);
  for (let i = 0; i < 3; i++) await consumer.next({ expires: 2_500 });
  return job;
}

beforeAll(async () => {
  nc = await connectTestClient();
  jsm = await jetstreamManager(nc);
  db = await createTestDatabase('dlqpaths');
  sql = new pg.Pool({ connectionString: db.url, max: 2 });
  dlq = await startDlq();
  worker = startService('sync-worker', {
    NATS_URL: SHARED_NATS_URL,
    REDRIVE_PREFIX: prefix,
    RECORD_FILE: recordFile,
    WORKER_PORT: String(await freePort()),
    WORKER_HANDLERS: './test/fixtures/retry-handlers.mjs',
    WORKER_TYPES: 'status',
  });
  await worker.waitForLog((l) => l.msg === 'sync-worker running', 30_000);
}, 90_000);

afterAll(async () => {
  await worker?.stop();
  await dlq?.stop();
  await sql?.end();
  await deleteStreams(nc, prefix);
  await db?.drop();
  await nc?.close();
});

describe('a job the worker dead-letters', () => {
  it('gives exactly one DLQ message and one row, also when its MSG_TERMINATED advisory is delivered twice', async () => {
    const { jobId, seq } = await submit('status', { status: 400, order: 'a' });
    const [row] = await waitFor(async () => ((await rowsOf(jobId)).length > 0 ? rowsOf(jobId) : undefined), {
      what: 'the dead letter row',
    });
    expect(row).toMatchObject({ reason: 'non_retryable', error_class: 'client', attempts: 1, payload_available: true });
    expect(Number(row!.original_seq)).toBe(seq);
    expect(JSON.parse(row!.payload!.toString('utf8'))).toEqual({ status: 400, order: 'a' });
    expect(row!.headers['Redrive-Job-Id']).toBe(jobId);
    // The worker terminated the original: the server's MSG_TERMINATED advisory must not
    // become a second entry, not even when it arrives twice.
    await waitFor(
      async () =>
        (await streamMessages(jsm, topology.streams.advisories)).some(
          (m) => m.subject.includes('.MSG_TERMINATED.') && JSON.parse(m.string()).stream_seq === seq,
        ),
      { what: 'the MSG_TERMINATED advisory' },
    );
    await replayAdvisory('MSG_TERMINATED', seq);
    await settled();
    expect(await rowsOf(jobId)).toHaveLength(1);
    expect(await dlqMessagesOf(jobId)).toHaveLength(1);
    await waitFor(async () => (await auditOf(jobId, 'job.dead_lettered')).length === 1, {
      what: "the worker's job.dead_lettered event in the audit trail",
    });
  });

  it('is recorded once when dlq-manager is killed (SIGKILL) after inserting the row and before committing it', async () => {
    await dlq!.stop();
    const doomed = await startDlq({ DLQ_FAULT: 'exit-before-record-commit' });
    const { jobId } = await submit('status', { status: 422, order: 'b' });
    await doomed.waitForLog((l) => l.msg === 'fault injected: killing the process', 15_000);
    expect(await doomed.exited).toBeNull(); // killed by a signal, not exited
    // The DLQ message is stored; its row never committed.
    expect(await dlqMessagesOf(jobId)).toHaveLength(1);
    expect(await rowsOf(jobId)).toHaveLength(0);
    dlq = await startDlq();
    await waitFor(async () => (await rowsOf(jobId)).length === 1, { timeoutMs: 15_000, what: 'the row after restart' });
    await settled();
    expect(await rowsOf(jobId)).toHaveLength(1);
    expect(await dlqMessagesOf(jobId)).toHaveLength(1);
  }, 60_000);
});

describe('a job the server gave up on (max deliveries)', () => {
  it('is not dead-lettered when it had already succeeded (its acks were lost): it only leaves JOBS', async () => {
    const type = 'acklost';
    // The handler succeeded and its success reached the audit trail, but no ack reached the
    // server (the worker died, NATS restarted): the server delivers it until max_deliver.
    const jobId = `${type}-${counter + 1}-${prefix}`;
    await createEventPublisher(jetstream(nc), topology).publish({
      kind: 'attempt.succeeded',
      jobId,
      type,
      attempt: 1,
      traceId: '',
      durationMs: 3,
    });
    const { seq } = await exhaustDeliveries(type);
    await waitFor(async () => (await jsm.streams.getMessage(topology.streams.jobs, { seq })) === null, {
      timeoutMs: 15_000,
      what: 'the original to leave JOBS',
    });
    await settled();
    expect(await rowsOf(jobId)).toEqual([]);
    expect(await dlqMessagesOf(jobId)).toEqual([]);
    expect(await auditOf(jobId, 'job.dead_lettered')).toEqual([]);
    expect(await auditOf(jobId, 'attempt.succeeded')).toHaveLength(1);
  }, 30_000);

  it('gives exactly one DLQ message and one row with its payload, leaves JOBS, and a replayed advisory adds nothing', async () => {
    const { jobId, seq } = await exhaustDeliveries('stuck');
    const [row] = await waitFor(async () => ((await rowsOf(jobId)).length > 0 ? rowsOf(jobId) : undefined), {
      timeoutMs: 15_000,
      what: 'the dead letter row',
    });
    expect(row).toMatchObject({ reason: 'max_deliveries', attempts: 2, payload_available: true, error_class: null });
    expect(Number(row!.original_seq)).toBe(seq);
    expect(JSON.parse(row!.payload!.toString('utf8'))).toMatchObject({ note: 'crashes its worker' });
    const [msg] = await dlqMessagesOf(jobId);
    expect(msg!.subject).toBe(topology.dlqSubject('stuck'));
    expect(msg!.header.get('Redrive-Reason')).toBe('max_deliveries');
    expect(msg!.header.get('Redrive-Original-Subject')).toBe(topology.jobSubject('normal', 'stuck'));
    expect(msg!.header.get('Nats-Msg-Id')).toBe(`dlq:${topology.streams.jobs}:${seq}`);
    // Interest retention would keep a max-delivered message forever: dlq-manager removed it.
    await waitFor(async () => (await jsm.streams.getMessage(topology.streams.jobs, { seq })) === null, {
      what: 'the original to leave JOBS',
    });
    // dlq-manager dead-lettered it, so it wrote the job.dead_lettered event itself.
    expect(await auditOf(jobId, 'job.dead_lettered')).toHaveLength(1);

    await replayAdvisory('MAX_DELIVERIES', seq);
    await settled();
    expect(await rowsOf(jobId)).toHaveLength(1);
    expect(await dlqMessagesOf(jobId)).toHaveLength(1);
    expect(await auditOf(jobId, 'job.dead_lettered')).toHaveLength(1);
  }, 30_000);

  it('is recorded once when dlq-manager is killed (SIGKILL) between publishing to the DLQ and committing the row', async () => {
    await dlq!.stop();
    const doomed = await startDlq({ DLQ_FAULT: 'exit-after-dlq-publish' });
    const { jobId, seq } = await exhaustDeliveries('stuck2');
    await doomed.waitForLog((l) => l.msg === 'fault injected: killing the process', 15_000);
    expect(await doomed.exited).toBeNull();
    expect(await dlqMessagesOf(jobId)).toHaveLength(1);
    // The advisory is redelivered to the next dlq-manager, which finds the DLQ message
    // (recorded by then) instead of publishing another.
    dlq = await startDlq();
    await waitFor(async () => (await rowsOf(jobId)).length === 1, { timeoutMs: 15_000, what: 'the row after restart' });
    await settled();
    expect(await rowsOf(jobId)).toHaveLength(1);
    expect(await dlqMessagesOf(jobId)).toHaveLength(1);
    expect(await auditOf(jobId, 'job.dead_lettered')).toHaveLength(1);
    await waitFor(async () => (await jsm.streams.getMessage(topology.streams.jobs, { seq })) === null, {
      what: 'the original to leave JOBS',
    });
  }, 60_000);

  it('records a job whose original is already gone, with reason and pointer and the payload marked unavailable', async () => {
    const name = topology.workerConsumerName('normal', 'vanished');
    await serveJobTypes(jsm, topology, ['vanished']);
    await jsm.consumers.add(topology.streams.jobs, {
      durable_name: name,
      filter_subject: topology.jobSubject('normal', 'vanished'),
      ack_policy: AckPolicy.Explicit,
      ack_wait: 1_000_000_000,
      max_deliver: 1,
    });
    const { jobId, seq } = await submit('vanished', { gone: true });
    const consumer = await jetstream(nc).consumers.get(topology.streams.jobs, name);
    await consumer.next({ expires: 2_000 });
    // Gone before dlq-manager could copy it (deleted by hand, or a limit of the stream).
    await jsm.streams.deleteMessage(topology.streams.jobs, seq);
    await consumer.next({ expires: 2_500 });
    const rows = await waitFor(
      async () => {
        const r = await sql.query<Row>('SELECT * FROM dead_letters WHERE original_seq = $1 AND type = $2', [
          seq,
          'vanished',
        ]);
        return r.rows.length > 0 ? r.rows : undefined;
      },
      { timeoutMs: 15_000, what: 'the dead letter row' },
    );
    expect(rows).toHaveLength(1);
    // nats-server 2.9 reports a pending message deleted from under its consumer as
    // terminated; a server that waits for the next delivery reports max_deliveries.
    expect(['max_deliveries', 'terminated']).toContain(rows[0]!.reason);
    expect(rows[0]).toMatchObject({ payload_available: false, payload: null });
    expect(rows[0]!.headers['Redrive-Payload-Unavailable']).toBe('true');
    // Without the original its job id is unknown: the entry is keyed by its pointer.
    expect(rows[0]!.job_id).toBe(`${topology.streams.jobs}:${seq}`);
    expect(jobId).not.toBe(rows[0]!.job_id);
  }, 30_000);
});
