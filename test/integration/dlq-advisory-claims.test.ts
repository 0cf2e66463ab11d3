import { AckPolicy, jetstream, jetstreamManager, type JetStreamManager, type JsMsg } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/nats-core';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serveJobTypes, Topology } from '@redrive/messaging';
import {
  connectTestClient,
  consumersSettled,
  createTestDatabase,
  deleteStreams,
  freePort,
  SHARED_NATS_URL,
  startService,
  streamMessages,
  uniquePrefix,
  waitFor,
  type ServiceProcess,
  type TestDatabase,
} from '@redrive/test-support';

// An advisory is a claim about JOBS ("the server gave up on sequence N"), and dlq-manager acts
// on it by copying the job to the DLQ and deleting it from JOBS. NATS permissions keep clients
// from publishing advisories at all (nats-permissions.test.ts); this is the second line: a real
// dlq-manager on the shared NATS (open, own prefix) is fed forged advisories about jobs that
// are waiting or running, and must leave them where they are. A job the server really gave up
// on is still dead-lettered and removed.

const prefix = uniquePrefix('claims');
const topology = new Topology({ prefix });
const s = topology.streams;
let nc: NatsConnection;
let jsm: JetStreamManager;
let db: TestDatabase;
let sql: pg.Pool;
let dlq: ServiceProcess;

const consumerOf = (type: string) => topology.workerConsumerName('normal', type);

/** A worker-like consumer for `type` (JOBS captures its subjects first, as a worker's start does). */
async function workerConsumer(type: string, opts: { maxDeliver: number; ackWaitMs: number }): Promise<void> {
  await serveJobTypes(jsm, topology, [type]);
  await jsm.consumers.add(s.jobs, {
    durable_name: consumerOf(type),
    filter_subject: topology.jobSubject('normal', type),
    ack_policy: AckPolicy.Explicit,
    ack_wait: opts.ackWaitMs * 1_000_000,
    max_deliver: opts.maxDeliver,
  });
}

async function publishJob(type: string, payload: unknown): Promise<number> {
  return (await jetstream(nc).publish(topology.jobSubject('normal', type), JSON.stringify(payload))).seq;
}

async function pull(type: string): Promise<JsMsg> {
  const m = await (await jetstream(nc).consumers.get(s.jobs, consumerOf(type))).next({ expires: 3_000 });
  expect(m, `a ${type} job to pull`).not.toBeNull();
  return m!;
}

/** Publishes an advisory as nats-server would word it, from a client (which is what a forgery is). */
async function forge(kind: 'MAX_DELIVERIES' | 'MSG_TERMINATED', adv: Record<string, unknown>): Promise<void> {
  const type =
    kind === 'MAX_DELIVERIES'
      ? 'io.nats.jetstream.advisory.v1.max_deliver'
      : 'io.nats.jetstream.advisory.v1.terminated';
  const body = { type, id: `forged-${Math.random()}`, timestamp: new Date().toISOString(), stream: s.jobs, ...adv };
  await jetstream(nc).publish(
    `$JS.EVENT.ADVISORY.CONSUMER.${kind}.${s.jobs}.${String(adv.consumer)}`,
    JSON.stringify(body),
  );
}

/** What dlq-manager decided on each advisory about `seq` so far, from its log, in order. */
const VERDICT =
  /^(advisory contradicted|advisory not confirmed|job dead-lettered from an advisory|job already dead-lettered|max-delivered job had already succeeded)/;
const verdicts = (seq: number) =>
  dlq.logs.filter((l) => l.originalSeq === seq && VERDICT.test(String(l.msg))).map((l) => String(l.msg));
const waitVerdicts = (seq: number, n: number) =>
  waitFor(() => verdicts(seq).length >= n, {
    timeoutMs: 15_000,
    what: `${n} decisions on the advisories about ${seq}`,
  });

const REFUTED = /^advisory contradicted by the consumer it names/;
const UNCONFIRMED = /^advisory not confirmed by its consumer yet/;

async function untouched(seq: number): Promise<void> {
  expect(await jsm.streams.getMessage(s.jobs, { seq }), `JOBS ${seq} still there`).not.toBeNull();
  const rows = await sql.query('SELECT 1 FROM dead_letters WHERE original_seq = $1', [seq]);
  expect(rows.rows, `no dead letter for JOBS ${seq}`).toEqual([]);
  const copies = (await streamMessages(jsm, s.dlq)).filter(
    (m) => m.header.get('Nats-Msg-Id') === `dlq:${s.jobs}:${seq}`,
  );
  expect(copies, `no DLQ copy of JOBS ${seq}`).toEqual([]);
}

beforeAll(async () => {
  nc = await connectTestClient();
  jsm = await jetstreamManager(nc);
  db = await createTestDatabase('claims');
  sql = new pg.Pool({ connectionString: db.url, max: 2 });
  dlq = startService('dlq-manager', {
    NATS_URL: SHARED_NATS_URL,
    REDRIVE_PREFIX: prefix,
    DATABASE_URL: db.url,
    DLQ_PORT: String(await freePort()),
    DLQ_ACK_WAIT: '2s',
  });
  await dlq.waitForLog((l) => l.msg === 'dlq-manager running', 30_000);
  // A worker's consumer that gives up after 3 deliveries, with time to run a job (30 s).
  await workerConsumer('held', { maxDeliver: 3, ackWaitMs: 30_000 });
}, 60_000);

afterAll(async () => {
  await dlq?.stop();
  await sql?.end();
  await deleteStreams(nc, prefix);
  await db?.drop();
  await nc?.close();
});

describe('a forged advisory', () => {
  it('does not dead-letter or delete a job still waiting to be delivered', async () => {
    // Another job ahead of it, taken and not acknowledged: the consumer has delivered up to it only.
    await publishJob('held', { first: true });
    const first = await pull('held');
    const seq = await publishJob('held', { waiting: true });
    await forge('MAX_DELIVERIES', { consumer: consumerOf('held'), stream_seq: seq, deliveries: 3 });
    await forge('MSG_TERMINATED', { consumer: consumerOf('held'), stream_seq: seq, deliveries: 1 });
    await waitVerdicts(seq, 2);
    await untouched(seq);
    expect(verdicts(seq)).toEqual([REFUTED, REFUTED].map((r) => expect.stringMatching(r)));
    await consumersSettled(jsm, [[s.advisories, 'dlq-manager-advisories']], {
      timeoutMs: 15_000,
      what: 'both forged advisories settled (acknowledged, not asked again)',
    });
    first.ack();
    // It is still a job: its consumer delivers it.
    const m = await pull('held');
    expect(m.seq).toBe(seq);
    m.ack();
  });

  it('does not dead-letter or delete a job a worker is running', async () => {
    const seq = await publishJob('held', { running: true });
    const running = await pull('held');
    expect(running.seq).toBe(seq);
    await forge('MAX_DELIVERIES', { consumer: consumerOf('held'), stream_seq: seq, deliveries: 3 });
    // The consumer still awaits the job's ack: not confirmed, and looked at again.
    await waitVerdicts(seq, 2);
    await untouched(seq);
    expect(verdicts(seq).slice(0, 2)).toEqual([UNCONFIRMED, UNCONFIRMED].map((r) => expect.stringMatching(r)));
    running.working();
  }, 20_000);

  it('is refuted when its counts, its consumer or its subject do not match what the consumer says', async () => {
    await workerConsumer('tampered', { maxDeliver: 3, ackWaitMs: 30_000 });
    await workerConsumer('other', { maxDeliver: 3, ackWaitMs: 30_000 });
    const seq = await publishJob('tampered', {});
    const tampered = await pull('tampered');
    await publishJob('other', {});
    const other = await pull('other');
    // Fewer deliveries than the consumer's max_deliver; a consumer that does not exist; one
    // that delivers other subjects (and has delivered past this sequence).
    await forge('MAX_DELIVERIES', { consumer: consumerOf('tampered'), stream_seq: seq, deliveries: 1 });
    await forge('MAX_DELIVERIES', { consumer: consumerOf('nope'), stream_seq: seq, deliveries: 3 });
    await forge('MAX_DELIVERIES', { consumer: consumerOf('other'), stream_seq: seq, deliveries: 3 });
    await waitVerdicts(seq, 3);
    await untouched(seq);
    expect(verdicts(seq)).toEqual([REFUTED, REFUTED, REFUTED].map((r) => expect.stringMatching(r)));
    tampered.ack();
    other.ack();
  });
});

describe('an advisory the consumer bears out', () => {
  it('dead-letters the job and removes it from JOBS', async () => {
    await workerConsumer('crashy', { maxDeliver: 2, ackWaitMs: 1_000 });
    const seq = await publishJob('crashy', { crashes: 'its worker' });
    // Taken twice and never acknowledged; a third pull lets the server give up on it.
    const consumer = await jetstream(nc).consumers.get(s.jobs, consumerOf('crashy'));
    for (let i = 0; i < 3; i++) await consumer.next({ expires: 2_500 });
    await waitFor(async () => (await jsm.streams.getMessage(s.jobs, { seq })) === null, {
      timeoutMs: 15_000,
      what: 'the original to leave JOBS',
    });
    const rows = await waitFor(
      async () => {
        const r = await sql.query<{ reason: string }>('SELECT reason FROM dead_letters WHERE original_seq = $1', [seq]);
        return r.rows.length > 0 ? r.rows : undefined;
      },
      { what: 'the dead letter' },
    );
    expect(rows).toEqual([{ reason: 'max_deliveries' }]);
  }, 30_000);
});
