import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AckPolicy, jetstream, jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { nkeyAuthenticator, nkeys, type NatsConnection } from '@nats-io/nats-core';
import { connect } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  isPermissionViolation,
  NATS_ROLES,
  natsInboxPrefix,
  natsPasswordVariable,
  natsUserName,
  renderNatsAuthConfig,
  SCHEDULER_SERVICE_NAME,
  serveJobTypes,
  Topology,
  type NatsRole,
} from '@redrive/messaging';
import {
  createTestDatabase,
  freePort,
  readRecords,
  recordFilePath,
  startNatsServer,
  startService,
  uniquePrefix,
  waitFor,
  type PrivateNats,
  type ServiceProcess,
  type TestDatabase,
} from '@redrive/test-support';

// The four services as real processes against a private nats-server that runs the
// authorization rendered from libs/messaging/src/permissions.ts (the same text compose and
// Kubernetes deploy, here for a prefixed installation): each service with its own user
// (dlq-manager with an nkey, the others with passwords the server reads from its environment).
// First they do their whole job without a single permission violation; then every user tries
// what it must not, and the server refuses each, with nothing changed behind the refusal.

const prefix = uniquePrefix('perm');
const topology = new Topology({ prefix });
const s = topology.streams;
const dir = mkdtempSync(join(tmpdir(), 'redrive-nats-perm-'));
const recordFile = recordFilePath('natsperm');
const OPERATOR_TOKEN = 'nats-permissions-operator-token';

const passwords = Object.fromEntries(NATS_ROLES.map((r) => [r, `p${r.replace(/-/g, '')}${Date.now()}x0123456789`]));
const dlqKey = nkeys.createUser();
const dlqSeedFile = join(dir, 'dlq-manager.nk');

let nats: PrivateNats;
let db: TestDatabase;
const services: Record<string, ServiceProcess> = {};
const clients = new Map<NatsRole, NatsConnection>();
let intakePort: number;
let dlqPort: number;

/** A connection as `role`, the way that role's program connects (its own inbox prefix). */
async function as(role: NatsRole): Promise<NatsConnection> {
  const known = clients.get(role);
  if (known) return known;
  const nc = await connect({
    servers: nats.url,
    name: `test-as-${role}`,
    inboxPrefix: natsInboxPrefix(prefix, role),
    ...(role === 'dlq-manager'
      ? { authenticator: nkeyAuthenticator(dlqKey.getSeed()) }
      : { user: natsUserName(prefix, role), pass: passwords[role] }),
  });
  clients.set(role, nc);
  return nc;
}

/** A JetStream manager that does not first ask $JS.API.INFO (not every role may). */
const jsmOf = async (role: NatsRole): Promise<JetStreamManager> =>
  jetstreamManager(await as(role), { checkAPI: false });

/** Resolves with the error `p` was refused with, failing the test when it was not refused for permissions. */
async function refused(p: Promise<unknown>, what: string): Promise<void> {
  const outcome = await p.then(
    (v) => ({ ok: true as const, v }),
    (err: unknown) => ({ ok: false as const, err }),
  );
  expect(outcome.ok, `${what} should be refused, but it went through`).toBe(false);
  if (!outcome.ok) expect(isPermissionViolation(outcome.err), `${what}: ${String(outcome.err)}`).toBe(true);
}

/** A publish the server must refuse: as a request, so the refusal (or a PubAck) comes back. */
const publishRefused = async (role: NatsRole, subject: string, data = '{}') =>
  refused((await as(role)).request(subject, data, { timeout: 3_000 }), `${role} publishing ${subject}`);

/** A subscription the server must refuse; resolves once it did. */
async function subscribeRefused(role: NatsRole, subject: string): Promise<void> {
  const nc = await as(role);
  const sub = nc.subscribe(subject);
  const closed = await Promise.race([sub.closed, new Promise((r) => setTimeout(() => r('still open'), 3_000))]);
  expect(isPermissionViolation(closed), `${role} subscribing to ${subject}: ${String(closed)}`).toBe(true);
}

/**
 * A job that stays in JOBS: on a consumer of its own (made by the worker's user, as the worker
 * makes its consumers) that nobody pulls from.
 */
async function parkedJob(): Promise<number> {
  const worker = await jsmOf('sync-worker');
  await serveJobTypes(worker, topology, ['parked']);
  await worker.consumers.add(s.jobs, {
    durable_name: topology.workerConsumerName('normal', 'parked'),
    filter_subject: topology.jobSubject('normal', 'parked'),
    ack_policy: AckPolicy.Explicit,
  });
  return (await jetstream(await as('producer')).publish(topology.jobSubject('normal', 'parked'), '{}')).seq;
}

const messagesIn = async (stream: string) => (await (await jsmOf('operator')).streams.info(stream)).state.messages;

/** Calls a dlq-manager endpoint over NATS and returns its JSON answer. */
async function endpoint<T>(role: NatsRole, op: string, body: unknown): Promise<T> {
  const m = await (
    await as(role)
  ).request(`${topology.dlqManagerApiRoot}.${op}`, JSON.stringify(body), {
    timeout: 5_000,
  });
  return m.json<T>();
}

async function submit(body: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`http://127.0.0.1:${intakePort}/v1/jobs`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

async function admin<T>(path: string): Promise<T> {
  const res = await fetch(`http://127.0.0.1:${dlqPort}${path}`, {
    headers: { authorization: `Bearer ${OPERATOR_TOKEN}` },
  });
  expect(res.status, `GET ${path}`).toBe(200);
  return (await res.json()) as T;
}

interface Run {
  id: string;
  type: string;
  attempt: number;
  payload: Record<string, unknown>;
}
const runsOf = (jobId: string) => readRecords<Run>(recordFile, jobId);

beforeAll(async () => {
  writeFileSync(dlqSeedFile, new TextDecoder().decode(dlqKey.getSeed()));
  chmodSync(dlqSeedFile, 0o600);
  const config = join(dir, 'auth.conf');
  writeFileSync(
    config,
    renderNatsAuthConfig({
      prefixes: [prefix],
      credential: ({ role }) =>
        role === 'dlq-manager'
          ? { nkey: dlqKey.getPublicKey() }
          : { passwordVariable: natsPasswordVariable(prefix, role) },
    }),
  );
  nats = await startNatsServer({
    config,
    env: Object.fromEntries(NATS_ROLES.map((r) => [natsPasswordVariable(prefix, r), passwords[r]!])),
  });
  db = await createTestDatabase('natsperm');
  intakePort = await freePort();
  dlqPort = await freePort();
  const common = { NATS_URL: nats.url, REDRIVE_PREFIX: prefix };
  const user = (role: NatsRole) => ({ NATS_USER: natsUserName(prefix, role), NATS_PASSWORD: passwords[role]! });
  services.dlq = startService('dlq-manager', {
    ...common,
    NATS_NKEY_SEED_FILE: dlqSeedFile,
    DATABASE_URL: db.url,
    DLQ_PORT: String(dlqPort),
    DLQ_ACK_WAIT: '2s',
    DLQ_TOKENS: JSON.stringify([{ name: 'ops', role: 'operator', token: OPERATOR_TOKEN }]),
  });
  services.scheduler = startService('retry-scheduler', {
    ...common,
    ...user('retry-scheduler'),
    DATABASE_URL: db.url,
    SCHEDULER_PORT: String(await freePort()),
  });
  services.worker = startService('sync-worker', {
    ...common,
    ...user('sync-worker'),
    RECORD_FILE: recordFile,
    WORKER_PORT: String(await freePort()),
    WORKER_HANDLERS: './test/fixtures/retry-handlers.mjs',
    WORKER_TYPES: 'flaky,status',
    // Every retry goes through the retry-scheduler (schedule.retry, then a fire to JOBS).
    RETRY_HANDOFF_THRESHOLD: '0s',
  });
  services.intake = startService('intake', {
    ...common,
    ...user('intake'),
    INTAKE_PORT: String(intakePort),
    INTAKE_ALLOW_ANONYMOUS: 'true',
    // Every delayed job goes to the retry-scheduler (schedule.delay).
    RETRY_HANDOFF_THRESHOLD: '0s',
  });
  await Promise.all([
    services.dlq.waitForLog((l) => l.msg === 'dlq-manager running', 60_000),
    services.scheduler.waitForLog((l) => l.msg === 'retry-scheduler running', 60_000),
    services.worker.waitForLog((l) => l.msg === 'sync-worker running', 60_000),
    services.intake.waitForLog((l) => l.msg === 'intake listening', 60_000),
  ]);
}, 120_000);

afterAll(async () => {
  await Promise.all(Object.values(services).map((p) => p.stop()));
  await Promise.all([...clients.values()].map((nc) => nc.close().catch(() => undefined)));
  await nats?.dispose();
  await db?.drop();
});

describe('with its own NATS user, each service does its whole job', () => {
  it('runs a job submitted through intake, once, and the audit trail shows it', async () => {
    const res = await submit({ type: 'flaky', payload: { failTimes: 0 }, idempotencyKey: `ok-${prefix}` });
    expect(res.status).toBe(202);
    const jobId = res.body.jobId as string;
    await waitFor(() => runsOf(jobId).length === 1, { timeoutMs: 15_000, what: 'the job to run' });
    // intake's job.accepted and the worker's attempt.succeeded, projected by dlq-manager.
    const timeline = await waitFor(
      async () => {
        const t = await fetch(`http://127.0.0.1:${dlqPort}/v1/jobs/${encodeURIComponent(jobId)}/timeline`, {
          headers: { authorization: `Bearer ${OPERATOR_TOKEN}` },
        });
        if (t.status !== 200) return undefined;
        const body = (await t.json()) as { events: { kind: string }[] };
        const kinds = body.events.map((e) => e.kind);
        return kinds.includes('job.accepted') && kinds.includes('attempt.succeeded') ? kinds : undefined;
      },
      { timeoutMs: 15_000, what: 'job.accepted and attempt.succeeded in the audit trail' },
    );
    expect(timeline).toContain('attempt.succeeded');
    // The same key again is a duplicate of the stored job (the worker recorded its completion).
    expect(
      (await submit({ type: 'flaky', payload: { failTimes: 0 }, idempotencyKey: `ok-${prefix}` })).body,
    ).toMatchObject({ jobId, duplicate: true });
  });

  it('retries through the retry-scheduler, and runs a delayed job it fires', async () => {
    const retried = await submit({ type: 'flaky', payload: { failTimes: 1 } });
    const delayed = await submit({ type: 'flaky', payload: { failTimes: 0 }, delay: 1_500 });
    expect(delayed.status).toBe(202);
    expect(delayed.body.scheduleId).toBeDefined();
    // intake asks the scheduler over request/reply; the scheduler answers with its own user.
    const schedules = await fetch(`http://127.0.0.1:${intakePort}/v1/schedules`);
    expect(schedules.status).toBe(200);
    await waitFor(() => runsOf(retried.body.jobId as string).length === 2, {
      timeoutMs: 20_000,
      what: 'the second attempt, fired by the scheduler',
    });
    await waitFor(() => runsOf(delayed.body.jobId as string).length === 1, {
      timeoutMs: 20_000,
      what: 'the delayed job, fired by the scheduler',
    });
  }, 30_000);

  it('dead-letters a failing job, visible through dlq-manager over HTTP and to the operator over NATS', async () => {
    const res = await submit({ type: 'status', payload: { status: 400 } });
    const jobId = res.body.jobId as string;
    const listed = await waitFor(
      async () => {
        const page = await admin<{ items: { id: number; jobId: string; reason: string }[] }>(
          '/v1/admin/dead-letters?type=status',
        );
        return page.items.find((d) => d.jobId === jobId);
      },
      { timeoutMs: 15_000, what: 'the dead letter in the admin API' },
    );
    expect(listed.reason).toBe('non_retryable');
    const overNats = await endpoint<{ items: { id: number; jobId: string }[] }>('operator', 'list', { type: 'status' });
    expect(overNats.items.map((d) => d.jobId)).toContain(jobId);
    // The viewer reads too.
    expect((await endpoint<{ items: unknown[] }>('viewer', 'list', { type: 'status' })).items.length).toBeGreaterThan(
      0,
    );
    // The operator redrives it with a payload that succeeds: dlq-manager publishes it to JOBS.
    await endpoint('operator', 'redrive', { id: listed.id, payload: { status: 400, failTimes: 0 } });
    await waitFor(() => runsOf(jobId).length === 2, { timeoutMs: 15_000, what: 'the redriven job to run' });
  });

  it('dead-letters a job the server gave up on, and dlq-manager (alone) removes it from JOBS', async () => {
    // A worker that crashes on the job every time, seen from the wire: the worker's user makes
    // JOBS capture the type, creates its consumer and takes the job twice without an ack.
    const worker = await jsmOf('sync-worker');
    await serveJobTypes(worker, topology, ['stuck']);
    const name = topology.workerConsumerName('normal', 'stuck');
    await worker.consumers.add(s.jobs, {
      durable_name: name,
      filter_subject: topology.jobSubject('normal', 'stuck'),
      ack_policy: AckPolicy.Explicit,
      ack_wait: 1_000_000_000,
      max_deliver: 2,
    });
    const ack = await jetstream(await as('producer')).publish(topology.jobSubject('normal', 'stuck'), '{"n":1}');
    const consumer = await jetstream(await as('sync-worker')).consumers.get(s.jobs, name);
    for (let i = 0; i < 3; i++) await consumer.next({ expires: 2_500 });
    const dlq = await jsmOf('dlq-manager');
    await waitFor(async () => (await dlq.streams.getMessage(s.jobs, { seq: ack.seq })) === null, {
      timeoutMs: 15_000,
      what: 'dlq-manager to remove the max-delivered original from JOBS',
    });
    const page = await endpoint<{ items: { reason: string; originalSeq: number }[] }>('operator', 'list', {
      type: 'stuck',
    });
    expect(page.items).toEqual([expect.objectContaining({ reason: 'max_deliveries', originalSeq: ack.seq })]);
  }, 30_000);

  it('pauses and resumes a type over NATS as the operator: the worker watches the bucket, the change is audited', async () => {
    const worker = services.worker!;
    const from = worker.logs.length;
    const saw = (paused: boolean) =>
      waitFor(
        () =>
          worker.logs
            .slice(from)
            .some((l) => l.msg === 'pauses changed' && ((l.paused as string[]) ?? []).includes('flaky') === paused),
        { timeoutMs: 10_000, what: `the worker to see flaky ${paused ? 'paused' : 'resumed'}` },
      );
    expect(await endpoint('operator', 'pause', { type: 'flaky' })).toMatchObject({ paused: true });
    await saw(true);
    const stats = await endpoint<{ types: { type: string; paused: boolean }[] }>('viewer', 'queues', { type: 'flaky' });
    expect(stats.types).toEqual([expect.objectContaining({ type: 'flaky', paused: true })]);
    await publishRefused('viewer', `${topology.dlqManagerApiRoot}.pause`, '{"type":"flaky"}');
    expect(await endpoint('operator', 'resume', { type: 'flaky' })).toMatchObject({ paused: false });
    await saw(false);
    const audit = await waitFor(
      async () => {
        const t = await endpoint<{ events?: { kind: string; actor?: string }[] }>('viewer', 'timeline', {
          id: 'queue:flaky',
        });
        return (t.events?.length ?? 0) >= 2 ? t.events : undefined;
      },
      { timeoutMs: 10_000, what: 'the pause and resume in the audit trail' },
    );
    expect(audit.map((e) => e.kind)).toEqual(['queue.paused', 'queue.resumed']);
    expect(audit.every((e) => e.actor?.startsWith('nats:'))).toBe(true);
  }, 30_000);

  it('needed nothing it was not allowed: no service met a permission violation', () => {
    for (const [name, p] of Object.entries(services)) {
      const violations = p.logs.filter((l) => JSON.stringify(l).toLowerCase().includes('permissions violation'));
      expect(violations, `${name}: ${JSON.stringify(violations.slice(0, 3))}`).toEqual([]);
    }
  });
});

describe('the server refuses what a user must not do', () => {
  it('no user may publish a JetStream advisory (one would make dlq-manager dead-letter and delete a pending job)', async () => {
    const before = await messagesIn(s.advisories);
    const forged = JSON.stringify({
      type: 'io.nats.jetstream.advisory.v1.max_deliver',
      stream: s.jobs,
      consumer: topology.workerConsumerName('normal', 'flaky'),
      stream_seq: 1,
      deliveries: 5,
    });
    for (const role of NATS_ROLES) {
      await publishRefused(role, `$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.${s.jobs}.x`, forged);
      await publishRefused(role, `$JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED.${s.jobs}.x`, forged);
    }
    expect(await messagesIn(s.advisories)).toBe(before);
  });

  it('only dlq-manager may delete a message from JOBS, and nobody may purge, drop or (but the worker) change it', async () => {
    const seq = await parkedJob();
    for (const role of NATS_ROLES.filter((r) => r !== 'dlq-manager'))
      await publishRefused(role, `$JS.API.STREAM.MSG.DELETE.${s.jobs}`, JSON.stringify({ seq }));
    for (const role of NATS_ROLES) {
      await publishRefused(role, `$JS.API.STREAM.PURGE.${s.jobs}`);
      await publishRefused(role, `$JS.API.STREAM.DELETE.${s.jobs}`);
    }
    for (const role of NATS_ROLES.filter((r) => r !== 'sync-worker'))
      await publishRefused(role, `$JS.API.STREAM.UPDATE.${s.jobs}`, JSON.stringify({ name: s.jobs, max_msgs: 1 }));
    const dlq = await jsmOf('dlq-manager');
    expect(await dlq.streams.getMessage(s.jobs, { seq })).not.toBeNull();
    // dlq-manager may (it removes the originals of what it dead-letters).
    expect(await dlq.streams.deleteMessage(s.jobs, seq, false)).toBe(true);
    expect(await dlq.streams.getMessage(s.jobs, { seq })).toBeNull();
  });

  it('lifecycle events come only from the services that emit them, each only its own kinds', async () => {
    const before = await messagesIn(s.events);
    const attempts: [NatsRole, string][] = [
      ['intake', 'attempt.succeeded'],
      ['intake', 'job.dead_lettered'],
      ['sync-worker', 'job.accepted'],
      ['sync-worker', 'job.cancelled'],
      ['retry-scheduler', 'attempt.succeeded'],
      ['dlq-manager', 'job.accepted'],
      ...(['producer', 'operator', 'viewer'] as const).flatMap((r): [NatsRole, string][] => [
        [r, 'job.accepted'],
        [r, 'attempt.succeeded'],
      ]),
    ];
    for (const [role, kind] of attempts) await publishRefused(role, topology.eventSubject(kind));
    expect(await messagesIn(s.events)).toBe(before);
  });

  it("dlq-manager's NATS endpoints answer only its operators (and viewers, for reading)", async () => {
    for (const role of ['intake', 'sync-worker', 'retry-scheduler', 'producer'] as const) {
      await publishRefused(role, `${topology.dlqManagerApiRoot}.list`);
      await publishRefused(role, `${topology.dlqManagerApiRoot}.delete`, '{"id":1}');
      await publishRefused(role, '$SRV.PING');
    }
    for (const op of ['delete', 'redrive', 'resolve', 'bulk-redrive', 'cleanup'])
      await publishRefused('viewer', `${topology.dlqManagerApiRoot}.${op}`, '{"id":1}');
    // The operator may: its request reaches dlq-manager, which answers (here: no such entry).
    const reply = await (await as('operator')).request(`${topology.dlqManagerApiRoot}.get`, '{"id":999999}');
    expect(reply.headers?.get('Nats-Service-Error-Code')).toBe('404');
  });

  it("the retry-scheduler's micro service answers intake and the operator, and is discoverable by the operator only", async () => {
    for (const role of ['sync-worker', 'dlq-manager', 'viewer', 'producer'] as const)
      await publishRefused(role, topology.schedulerApiSubject('list'));
    // Discovery is by service name: the viewer may find dlq-manager, not the scheduler.
    await publishRefused('viewer', `$SRV.INFO.${SCHEDULER_SERVICE_NAME}`);
    const info = await (await as('operator')).request(`$SRV.INFO.${SCHEDULER_SERVICE_NAME}`, '', { timeout: 5_000 });
    expect(info.json<{ name: string; metadata: Record<string, string> }>()).toMatchObject({
      name: SCHEDULER_SERVICE_NAME,
      metadata: { prefix },
    });
    for (const role of ['intake', 'operator'] as const) {
      const reply = await (
        await as(role)
      ).request(topology.schedulerApiSubject('get'), '{"id":"no-such-schedule"}', {
        timeout: 5_000,
      });
      expect(reply.headers?.get('Nats-Service-Error-Code')).toBe('404');
    }
  });

  it('nobody may stand in for a service: answer its requests, or read its replies or its jobs', async () => {
    await subscribeRefused('sync-worker', `${topology.dlqManagerApiRoot}.*`);
    await subscribeRefused('intake', topology.schedulerApiSubject('cancel'));
    await subscribeRefused('producer', '$SRV.>');
    await subscribeRefused('sync-worker', `${natsInboxPrefix(prefix, 'intake')}.>`);
    await subscribeRefused('operator', '_INBOX.>');
    await subscribeRefused('intake', topology.allJobsSubject);
    await subscribeRefused('operator', topology.eventSubject('>'));
    // Nor may a producer pull jobs, or anyone but dlq-manager read JOBS messages.
    await refused(
      (await as('producer')).request(
        `$JS.API.CONSUMER.MSG.NEXT.${s.jobs}.${topology.workerConsumerName('normal', 'flaky')}`,
        '{}',
      ),
      'producer pulling jobs',
    );
    await refused((await jsmOf('intake')).streams.getMessage(s.jobs, { seq: 1 }), 'intake reading JOBS');
  });

  it('nobody forges what the pipeline trusts: dead letters, completions, hand-offs, schedule requests', async () => {
    const forgeries: [NatsRole, string][] = [
      ['intake', topology.dlqSubject('flaky')],
      ['producer', topology.dlqSubject('flaky')],
      ['retry-scheduler', topology.dlqSubject('flaky')],
      ['intake', topology.completionSubject('x')],
      ['producer', topology.completionSubject('x')],
      ['producer', topology.scheduleSubject('retry')],
      ['producer', topology.scheduleSubject('cancel')],
      ['producer', topology.schedulerApiSubject('cancel')],
      ['sync-worker', topology.jobSubject('normal', 'flaky')],
      ['viewer', topology.jobSubject('normal', 'flaky')],
      ['intake', '$SYS.REQ.SERVER.PING'],
    ];
    for (const [role, subject] of forgeries) await publishRefused(role, subject);
  });

  it('refuses a client without a user, and one with a wrong password', async () => {
    await expect(connect({ servers: nats.url, reconnect: false })).rejects.toThrow(/authorization/i);
    await expect(
      connect({
        servers: nats.url,
        user: natsUserName(prefix, 'intake'),
        pass: 'wrong-password-000000',
        reconnect: false,
      }),
    ).rejects.toThrow(/authorization/i);
  });
});
