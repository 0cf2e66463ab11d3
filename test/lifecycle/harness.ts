// Over 400 lines on purpose: the whole run against the real services (start, submit, operate, observe, reconcile) in one place, next to the model it checks.
import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import { headers as natsHeaders, type NatsConnection } from '@nats-io/nats-core';
import { Redis } from 'ioredis';
import pg from 'pg';
import { createCompletionStore, Topology } from '@redrive/messaging';
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
import { COMPRESSED, CRASH_LANES, MODEL_CONFIG } from './compressed.js';
import {
  predict,
  type CanonicalEvent,
  type JobPrediction,
  type JobRef,
  type Script,
  type ScriptPrediction,
  type Unit,
  type UnitPrediction,
} from './model.js';

// Runs job scripts against the real services (intake, two sync-workers, crash-lane workers that
// are restarted when a job kills them, the retry-scheduler and dlq-manager, each its own
// process) on the shared NATS, Postgres and Redis under a private prefix and database, and
// reconciles every job with the model through the public interfaces: the audit trail (the
// timeline API, and the audit tables while it waits), the dead-letter API, the schedule API,
// COMPLETIONS, and intake's answers.

const SHARED_REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

const OPERATOR_TOKEN = 'lifecycle-operator-token-0001';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface Stack {
  prefix: string;
  topology: Topology;
  nc: NatsConnection;
  js: JetStreamClient;
  jsm: JetStreamManager;
  sql: pg.Pool;
  redis: Redis;
  intake: string;
  dlq: string;
  services: () => { name: string; proc: ServiceProcess }[];
  stop(): Promise<void>;
}

async function waitReady(name: string, proc: ServiceProcess, url: string): Promise<void> {
  await waitFor(
    async () => {
      // A crash lane's worker killed by SIGKILL while starting is seen at once, not after the timeout.
      if (proc.gone())
        throw new Error(
          `${name} exited with ${proc.proc.exitCode ?? proc.proc.signalCode}: ${JSON.stringify(proc.logs.slice(-3))} ${proc.stderr().slice(-1_000)}`,
        );
      const res = await fetch(url).catch(() => undefined);
      return res?.status === 200;
    },
    { timeoutMs: 120_000, intervalMs: 200, what: `${name} to be ready` },
  );
}

/** Starts every service on a fresh prefix and database. */
export async function startStack(opts: { standby?: boolean } = {}): Promise<Stack> {
  const prefix = uniquePrefix('lifecycle');
  const topology = new Topology({ prefix });
  const db: TestDatabase = await createTestDatabase('lifecycle');
  const nc = await connectTestClient();
  const history: { name: string; proc: ServiceProcess }[] = [];
  const running = new Map<string, ServiceProcess>();
  let keepUp = true;

  const retryEnv = {
    RETRY_CLASSES: JSON.stringify(COMPRESSED.classes),
    RETRY_LOCAL_DELAY_MAX: `${COMPRESSED.localDelayMaxMs}ms`,
    RETRY_HANDOFF_THRESHOLD: `${COMPRESSED.handoffThresholdMs}ms`,
  };
  const common = { NATS_URL: SHARED_NATS_URL, REDRIVE_PREFIX: prefix, LOG_LEVEL: 'warn' };
  // A process that exits while starting is started again (twice at most), saying why: ten
  // processes starting at once on a busy machine is not what this suite is about.
  const spawn = async (
    name: string,
    service: string,
    portVar: string,
    env: Record<string, string>,
  ): Promise<{ proc: ServiceProcess; port: number }> => {
    for (let attempt = 1; ; attempt++) {
      const port = await freePort();
      const proc = startService(service, { ...common, ...env, [portVar]: String(port) });
      history.push({ name, proc });
      running.set(name, proc);
      try {
        await waitReady(name, proc, `http://127.0.0.1:${port}/readyz`);
        return { proc, port };
      } catch (err) {
        if (attempt >= 3 || !proc.gone() || !keepUp) throw err;
        console.log(`lifecycle: ${name} did not start, starting it again: ${String(err).slice(0, 3_000)}`);
      }
    }
  };

  const dlqStarted = spawn('dlq-manager', 'dlq-manager', 'DLQ_PORT', {
    DATABASE_URL: db.url,
    DLQ_TOKENS: JSON.stringify([{ name: 'lifecycle', role: 'operator', token: OPERATOR_TOKEN }]),
  });
  const schedulerStarted = spawn('retry-scheduler', 'retry-scheduler', 'SCHEDULER_PORT', {
    DATABASE_URL: db.url,
    SCHEDULER_POLL_MAX: '1s',
  });
  const workerEnv = {
    ...retryEnv,
    WORKER_HANDLERS: './test/fixtures/lifecycle-handlers.mjs',
    WORKER_MAX_CRASHES: String(COMPRESSED.maxCrashes),
    // Far above any script's deliveries of one message: the server's limit must never decide.
    WORKER_MAX_DELIVER: '50',
    REDIS_URL: SHARED_REDIS_URL,
    LC_REDIS_URL: SHARED_REDIS_URL,
    LC_PREFIX: prefix,
  };
  const workers = Promise.all([
    spawn('worker-1', 'sync-worker', 'WORKER_PORT', { ...workerEnv, WORKER_TYPES: 'lc', WORKER_CONCURRENCY: '32' }),
    spawn('worker-2', 'sync-worker', 'WORKER_PORT', { ...workerEnv, WORKER_TYPES: 'lc', WORKER_CONCURRENCY: '32' }),
  ]);
  // A crash lane holds one message at a time (max_ack_pending 1, one slot, no prefetch), so a
  // job that kills its worker takes no other job's run with it; a killed worker is restarted.
  const crashEnv = (lane: number) => ({
    ...workerEnv,
    WORKER_TYPES: `lc-crash-${lane}`,
    WORKER_CONCURRENCY: '1',
    WORKER_PREFETCH: '1',
    WORKER_MAX_ACK_PENDING: '1',
    WORKER_ACK_WAIT: '2s',
  });
  // With `standby`, two processes per lane: while one runs a job the other waits (the lane's
  // one ack-pending slot is taken, so it holds nothing), and takes the job's redelivery when the
  // first dies, without waiting for the dead one to be restarted (worth it for large runs).
  const supervised: Promise<void>[] = [];
  const supervise = async (name: string, lane: number) => {
    await spawn(name, 'sync-worker', 'WORKER_PORT', crashEnv(lane));
    supervised.push(
      (async () => {
        while (keepUp) {
          const current = running.get(name)!;
          await Promise.race([current.exited, waitFor(() => !keepUp, { timeoutMs: 86_400_000, intervalMs: 200 })]);
          if (!keepUp) return;
          try {
            await spawn(name, 'sync-worker', 'WORKER_PORT', crashEnv(lane));
          } catch {
            await sleep(500);
          }
        }
      })(),
    );
  };
  const lanes: Promise<void>[] = [];
  for (let lane = 1; lane <= CRASH_LANES; lane++)
    for (const n of opts.standby ? ['a', 'b'] : ['a']) lanes.push(supervise(`crash-worker-${lane}${n}`, lane));
  const teardown = async () => {
    keepUp = false;
    await Promise.all([...running.values()].map((p) => p.stop().catch(() => null)));
    await Promise.allSettled(supervised);
    await deleteStreams(nc, prefix).catch(() => undefined);
    await nc.close();
    await db.drop().catch(() => undefined);
  };
  let dlq: { port: number };
  let intake: { port: number };
  try {
    [dlq] = await Promise.all([dlqStarted, schedulerStarted, workers, ...lanes]);
    intake = await spawn('intake', 'intake', 'INTAKE_PORT', {
      RETRY_HANDOFF_THRESHOLD: retryEnv.RETRY_HANDOFF_THRESHOLD,
      // The suite is every producer at once; keys and scopes are tested elsewhere.
      INTAKE_ALLOW_ANONYMOUS: 'true',
    });
  } catch (err) {
    await Promise.allSettled([dlqStarted, schedulerStarted, workers, ...lanes]);
    await teardown();
    throw err;
  }

  const sql = new pg.Pool({ connectionString: db.url, max: 4 });
  const redis = new Redis(SHARED_REDIS_URL, { maxRetriesPerRequest: 20 });
  return {
    prefix,
    topology,
    nc,
    js: jetstream(nc),
    jsm: await jetstreamManager(nc),
    sql,
    redis,
    intake: `http://127.0.0.1:${intake.port}`,
    dlq: `http://127.0.0.1:${dlq.port}`,
    services: () => history,
    async stop() {
      await sql.end().catch(() => undefined);
      let cursor = '0';
      do {
        const [next, keys] = await redis.scan(cursor, 'MATCH', `lifecycle:${prefix}:*`, 'COUNT', 1_000);
        if (keys.length > 0) await redis.del(...keys);
        cursor = next;
      } while (cursor !== '0');
      redis.disconnect();
      await teardown();
    },
  };
}

// ---------------------------------------------------------------------------------------------
// HTTP
// ---------------------------------------------------------------------------------------------

interface Answer<T = Record<string, unknown>> {
  status: number;
  body: T;
}

/** One request; 503s (nothing was stored, try again) and refused connections are tried again. */
async function call<T = Record<string, unknown>>(
  method: string,
  url: string,
  bodyOrFactory?: unknown,
  opts: { token?: boolean; retryOn?: number[] } = {},
): Promise<Answer<T>> {
  const retryOn = opts.retryOn ?? [503];
  inFlight.requests++;
  try {
    return await tryCall<T>(method, url, bodyOrFactory, opts, retryOn);
  } finally {
    inFlight.requests--;
    inFlight.lastEnded = Date.now();
  }
}

/**
 * Requests on their way (to intake, dlq-manager, JetStream): while one is, or just was, the
 * system is not idle, however quiet the audit trail is (a busy intake may take seconds).
 */
const inFlight = { requests: 0, lastEnded: 0 };

async function tryCall<T>(
  method: string,
  url: string,
  bodyOrFactory: unknown,
  opts: { token?: boolean },
  retryOn: number[],
): Promise<Answer<T>> {
  for (let attempt = 0; ; attempt++) {
    // A body given as a function is written again for each try (a runAt is relative to the send).
    const body = typeof bodyOrFactory === 'function' ? (bodyOrFactory as () => unknown)() : bodyOrFactory;
    try {
      const res = await fetch(url, {
        method,
        headers: {
          ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
          ...(opts.token ? { authorization: `Bearer ${OPERATOR_TOKEN}` } : {}),
        },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      });
      const text = await res.text();
      const parsed = (text ? JSON.parse(text) : {}) as T;
      if (retryOn.includes(res.status) && attempt < 60) {
        await sleep(250 + attempt * 50);
        continue;
      }
      return { status: res.status, body: parsed };
    } catch (err) {
      if (attempt >= 20) throw err;
      await sleep(250);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Observation of the audit trail while the scripts run
// ---------------------------------------------------------------------------------------------

interface AuditRow {
  id: string;
  job_id: string;
  kind: string;
  attempt: number | null;
  error_class: string | null;
  delay_ms: string | null;
  extra: Record<string, unknown> | null;
  at: Date;
}

interface DeadLetterRow {
  id: string;
  job_id: string;
  dlq_stream: string;
  dlq_seq: string;
  resolved_at: Date | null;
}

/** An audit event as the model writes it; undefined for events the model leaves out. */
export function canonical(e: {
  kind: string;
  attempt?: number | null;
  errorClass?: string | null;
  extra?: Record<string, unknown> | null;
}): CanonicalEvent | undefined {
  const x = e.extra ?? {};
  switch (e.kind) {
    case 'attempt.started':
      return undefined;
    case 'job.accepted':
    case 'dead_letter.resolved':
      return e.kind;
    case 'attempt.failed':
      return `attempt.failed@${e.attempt}:${e.errorClass}`;
    case 'attempt.succeeded':
    case 'retry.scheduled':
      return `${e.kind}@${e.attempt}`;
    case 'job.dead_lettered':
      return `job.dead_lettered@${e.attempt}:${String(x.reason)}:${e.errorClass}`;
    case 'job.redriven':
      return ['job.redriven', x.dueAt ? 'later' : '', x.payloadEdited ? 'edit' : '', x.bulk ? 'bulk' : '']
        .filter(Boolean)
        .join(':');
    case 'job.log': {
      const data = x.data as { fields?: { edit?: unknown } } | undefined;
      return `job.log@${e.attempt}:e${String(data?.fields?.edit)}`;
    }
    case 'job.skipped':
      return `job.skipped@${e.attempt}:${String(x.reason)}`;
    default:
      // However the schedule's end is named, a cancellation reads as one event.
      return /cancel/i.test(e.kind) ? 'schedule.cancelled' : e.kind;
  }
}

/** Canonical events by life, numbering lives as the timeline API does (a redrive starts the next). */
export function livesOf(events: { kind: string; canonical: CanonicalEvent | undefined }[]): CanonicalEvent[][] {
  const lives: CanonicalEvent[][] = [[]];
  for (const e of events) {
    if (e.kind === 'job.redriven') lives.push([]);
    if (e.canonical !== undefined) lives[lives.length - 1]!.push(e.canonical);
  }
  return lives;
}

const sorted = (a: readonly string[]) => [...a].sort();
const sameMultiset = (a: readonly string[], b: readonly string[]) =>
  JSON.stringify(sorted(a)) === JSON.stringify(sorted(b));
/** True when every event of `part` is in `whole` (as many times). */
function within(part: readonly string[], whole: readonly string[]): boolean {
  const left = new Map<string, number>();
  for (const e of whole) left.set(e, (left.get(e) ?? 0) + 1);
  for (const e of part) {
    const n = left.get(e) ?? 0;
    if (n === 0) return false;
    left.set(e, n - 1);
  }
  return true;
}

/** The histories a prediction allows: the one, or one of its alternatives. */
export function histories(p: JobPrediction): UnitPrediction[] {
  return [p, ...(p.alternatives ?? [])];
}

export function livesMatch(observed: CanonicalEvent[][], predicted: CanonicalEvent[][]): boolean {
  return observed.length === predicted.length && observed.every((l, i) => sameMultiset(l, predicted[i]!));
}
/** False once the observed events can no longer become the predicted ones (events never go away). */
export function livesCompatible(observed: CanonicalEvent[][], predicted: CanonicalEvent[][]): boolean {
  return observed.length <= predicted.length && observed.every((l, i) => within(l, predicted[i]!));
}

class Observer {
  private readonly watched = new Map<string, number>();
  private readonly events = new Map<string, CanonicalEvent[][]>();
  private readonly dead = new Map<string, DeadLetterRow[]>();
  private waiters: (() => void)[] = [];
  private fingerprint = '';
  lastChange = Date.now();
  private stopped = false;
  private loop: Promise<void> | undefined;

  constructor(private readonly sql: pg.Pool) {}

  watch(jobId: string): void {
    this.watched.set(jobId, (this.watched.get(jobId) ?? 0) + 1);
  }
  unwatch(jobId: string): void {
    const n = (this.watched.get(jobId) ?? 1) - 1;
    if (n <= 0) this.watched.delete(jobId);
    else this.watched.set(jobId, n);
  }
  lives(jobId: string): CanonicalEvent[][] {
    return this.events.get(jobId) ?? [[]];
  }
  deadLetters(jobId: string): DeadLetterRow[] {
    return this.dead.get(jobId) ?? [];
  }
  /** Resolves after the next poll. */
  tick(): Promise<void> {
    return new Promise((resolve) => this.waiters.push(resolve));
  }
  /** Marks progress that the audit trail does not show yet (an operator's action). */
  touch(): void {
    this.lastChange = Date.now();
  }

  start(): void {
    this.loop = (async () => {
      while (!this.stopped) {
        await this.poll().catch(() => undefined);
        const w = this.waiters;
        this.waiters = [];
        for (const r of w) r();
        await sleep(400);
      }
    })();
  }
  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop;
    for (const r of this.waiters) r();
  }

  private async poll(): Promise<void> {
    const ids = [...this.watched.keys()];
    if (ids.length === 0) return;
    const [audit, dls] = await Promise.all([
      this.sql.query<AuditRow>(
        `SELECT id, job_id, kind, attempt, error_class, extra, at FROM audit_events
          WHERE job_id = ANY($1) ORDER BY at, id`,
        [ids],
      ),
      this.sql.query<DeadLetterRow>(
        `SELECT id, job_id, dlq_stream, dlq_seq, resolved_at FROM dead_letters WHERE job_id = ANY($1) ORDER BY id`,
        [ids],
      ),
    ]);
    const byJob = new Map<string, { kind: string; canonical: CanonicalEvent | undefined }[]>();
    for (const r of audit.rows) {
      const list = byJob.get(r.job_id) ?? [];
      list.push({
        kind: r.kind,
        canonical: canonical({ kind: r.kind, attempt: r.attempt, errorClass: r.error_class, extra: r.extra }),
      });
      byJob.set(r.job_id, list);
    }
    for (const id of ids) this.events.set(id, livesOf(byJob.get(id) ?? []));
    const dead = new Map<string, DeadLetterRow[]>();
    for (const r of dls.rows) dead.set(r.job_id, [...(dead.get(r.job_id) ?? []), r]);
    for (const id of ids) this.dead.set(id, dead.get(id) ?? []);
    const fingerprint = `${audit.rows.length}/${dls.rows.length}/${dls.rows.filter((r) => r.resolved_at).length}`;
    if (fingerprint !== this.fingerprint) {
      this.fingerprint = fingerprint;
      this.lastChange = Date.now();
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Driving one script
// ---------------------------------------------------------------------------------------------

export type Category =
  'lost' | 'unexpected' | 'delay' | 'summary' | 'dlq' | 'runs' | 'completion' | 'answer' | 'schedule' | 'operator';

export interface Mismatch {
  category: Category;
  ref: JobRef | 'schedule' | 'submit';
  jobId?: string;
  expected: unknown;
  observed: unknown;
  /** Where the observed history stopped following the prediction, in words. */
  hint?: string;
}

/** Says where a job's observed events stop short of the predicted ones. */
export function lostHint(observed: CanonicalEvent[][], predicted: CanonicalEvent[][]): string {
  const missing = predicted.flatMap((l, i) => l.filter((e) => !(observed[i] ?? []).includes(e)));
  if (missing.length === 1 && missing[0] === 'schedule.cancelled') return 'the cancellation left no event';
  if (observed.flat().length === 0) return 'no event at all';
  const last = observed[observed.length - 1]!;
  const tail = last[last.length - 1] ?? '';
  if (last.length === 1 && tail.startsWith('job.redriven'))
    return `the redriven job never ran (life ${observed.length}, ${tail})`;
  if (tail.startsWith('retry.scheduled'))
    return `a retry handed to the scheduler never came back (life ${observed.length}, ${tail})`;
  if (observed.length < predicted.length && tail.startsWith('job.dead_lettered'))
    return `dead-lettered as predicted, but no redrive followed (life ${observed.length})`;
  return `stopped after ${tail || 'nothing'} (life ${observed.length})`;
}

export interface ScriptResult {
  index: number;
  script: Script;
  prediction: ScriptPrediction;
  ids: Partial<Record<JobRef, string>>;
  mismatches: Mismatch[];
  /** From its submission until its jobs settled (or nothing moved any more). */
  ms: number;
}

interface Accepted {
  jobId: string;
  seq: number;
  duplicate: boolean;
  scheduleId?: string;
  runAt?: string;
}

interface RunContext {
  stack: Stack;
  observer: Observer;
  tag: string;
  /** Set once nothing moves any more: drivers still waiting give up. */
  stalled: () => boolean;
  batch: (job: () => Record<string, unknown>) => Promise<Answer<Accepted & { error?: unknown }>>;
}

const TYPE = (s: Script) => (s.crashLane > 0 ? `lc-crash-${s.crashLane}` : 'lc');

function payloadOf(s: Script): Record<string, unknown> {
  return { lc: { units: s.units.map((u) => u.outcomes), repeat: s.timing.kind === 'repeat' } };
}

/** Intake's request body for a script. */
function requestOf(s: Script, key: string | undefined): Record<string, unknown> {
  const t = s.timing;
  return {
    type: TYPE(s),
    payload: payloadOf(s),
    priority: s.priority,
    ...(key ? { idempotencyKey: key } : {}),
    ...(s.maxAttempts !== undefined ? { maxAttempts: s.maxAttempts } : {}),
    ...(t.kind === 'delay'
      ? t.runAt
        ? { runAt: new Date(Date.now() + t.ms).toISOString() }
        : { delay: t.ms }
      : t.kind === 'repeat'
        ? { delay: t.startMs, repeat: { every: t.every, limit: s.units.length } }
        : {}),
  };
}

/** A producer publishing straight to JetStream: the job, or a schedule request for a long delay or a repeat. */
async function publishRaw(
  ctx: RunContext,
  s: Script,
  ids: { jobId: string; scheduleId: string },
): Promise<{ jobId: string; seq: number; duplicate: boolean; firstDue?: number }> {
  inFlight.requests++;
  try {
    return await publishRawNow(ctx, s, ids);
  } finally {
    inFlight.requests--;
    inFlight.lastEnded = Date.now();
  }
}

async function publishRawNow(
  ctx: RunContext,
  s: Script,
  ids: { jobId: string; scheduleId: string },
): Promise<{ jobId: string; seq: number; duplicate: boolean; firstDue?: number }> {
  const { stack } = ctx;
  const subject = stack.topology.jobSubject(s.priority, TYPE(s));
  const data = new TextEncoder().encode(JSON.stringify(payloadOf(s)));
  const h = natsHeaders();
  const t = s.timing;
  if (s.entry === 'bare') {
    const ack = await stack.js.publish(subject, data, { timeout: 10_000 });
    return { jobId: `${stack.topology.streams.jobs}:${ack.seq}`, seq: ack.seq, duplicate: ack.duplicate };
  }
  if (s.entry === 'bare-id') {
    const ack = await stack.js.publish(subject, data, { msgID: ids.jobId, timeout: 10_000 });
    return { jobId: ids.jobId, seq: ack.seq, duplicate: ack.duplicate };
  }
  h.set('Redrive-Job-Id', ids.jobId);
  h.set('Redrive-Attempt', '0');
  if (s.entry === 'raw-bad') h.set('Redrive-Max-Attempts', 'three');
  if (s.maxAttempts !== undefined) h.set('Redrive-Max-Attempts', String(s.maxAttempts));
  if (s.key) h.set('Redrive-Idempotency-Key', ids.jobId);
  const scheduled =
    t.kind === 'repeat' || (t.kind === 'delay' && t.ms > MODEL_CONFIG.handoffThresholdMs) ? t : undefined;
  if (scheduled) {
    const first = Date.now() + (scheduled.kind === 'repeat' ? scheduled.startMs : scheduled.ms);
    h.set('Redrive-Schedule-Id', ids.scheduleId);
    h.set('Redrive-Original-Subject', subject);
    h.set('Redrive-Due-At', new Date(first).toISOString());
    if (scheduled.kind === 'repeat')
      h.set('Redrive-Repeat', JSON.stringify({ every: scheduled.every, limit: s.units.length }));
    const ack = await stack.js.publish(
      stack.topology.scheduleSubject(scheduled.kind === 'repeat' ? 'repeat' : 'delay'),
      data,
      { headers: h, msgID: `${ids.scheduleId}-request`, timeout: 10_000 },
    );
    return { jobId: ids.jobId, seq: ack.seq, duplicate: ack.duplicate, firstDue: first };
  }
  if (t.kind === 'delay') h.set('Redrive-Not-Before', new Date(Date.now() + t.ms).toISOString());
  const ack = await stack.js.publish(subject, data, { headers: h, msgID: ids.jobId, timeout: 10_000 });
  return { jobId: ids.jobId, seq: ack.seq, duplicate: ack.duplicate };
}

/** Submits through intake (one request, or a batch shared with other scripts). */
async function submitIntake(
  ctx: RunContext,
  s: Script,
  body: () => Record<string, unknown>,
): Promise<Answer<Accepted>> {
  // A runAt is refused once it is 5 s in the past: on a machine so busy that the request took
  // that long, the producer writes it again (a batch with one is refused whole).
  const stale = (a: Answer<Accepted & { error?: unknown }>) =>
    a.status === 400 && /in the past/.test(JSON.stringify(a.body));
  for (let i = 0; ; i++) {
    const a =
      s.entry === 'batch' ? await ctx.batch(body) : await call<Accepted>('POST', `${ctx.stack.intake}/v1/jobs`, body);
    if (a.status === 202 && !(a.body as { error?: unknown }).error) return a;
    if (i >= 20 || (s.entry !== 'batch' && !stale(a))) return a;
    await sleep(250);
  }
}

interface Schedule {
  id: string;
  status: 'active' | 'completed' | 'cancelled';
  fireCount: number;
  cancelReason?: string;
}

async function scheduleOf(ctx: RunContext, id: string): Promise<Answer<Schedule>> {
  return call<Schedule>('GET', `${ctx.stack.intake}/v1/schedules/${encodeURIComponent(id)}`);
}

/** Waits until the schedule has ended (cancelled or completed), as long as anything still moves. */
async function scheduleEnded(ctx: RunContext, id: string): Promise<Schedule | undefined> {
  for (;;) {
    const a = await scheduleOf(ctx, id);
    if (a.status === 200 && a.body.status !== 'active') return a.body;
    if (ctx.stalled()) return a.status === 200 ? a.body : undefined;
    await ctx.observer.tick();
  }
}

/** Applies an operator's action to a dead letter; returns a problem, if any. */
async function operate(
  ctx: RunContext,
  s: Script,
  jobId: string,
  dl: DeadLetterRow,
  op: string,
): Promise<string | undefined> {
  const { dlq } = ctx.stack;
  const [name, arg] = op.split(':');
  const delay = arg !== undefined ? { delay: `${arg}ms` } : {};
  const note = { note: `lifecycle ${op}` };
  let res: Answer;
  if (name === 'resolve') {
    res = await call('POST', `${dlq}/v1/admin/dead-letters/${dl.id}/resolve`, note, { token: true });
    return res.status === 200 ? undefined : `resolve answered ${res.status} ${JSON.stringify(res.body)}`;
  }
  if (name === 'bulk' || name === 'bulklater') {
    res = await call(
      'POST',
      `${dlq}/v1/admin/dead-letters:redrive`,
      { filter: { jobId, type: TYPE(s) }, ...delay, ...note },
      { token: true },
    );
    // A bulk redrive is a tracked operation: 202 at once, then its progress at /operations/<id>.
    if (res.status !== 202) return `bulk redrive answered ${res.status} ${JSON.stringify(res.body)}`;
    const id = (res.body as { id?: string }).id;
    for (;;) {
      const op = await call<{ status?: string; counts?: { redriven?: number } }>(
        'GET',
        `${dlq}/v1/admin/operations/${id}`,
        undefined,
        { token: true },
      );
      if (op.status === 200 && op.body.status !== 'running')
        return op.body.status === 'completed' && op.body.counts?.redriven === 1
          ? undefined
          : `bulk redrive operation ended ${JSON.stringify(op.body)}`;
      if (ctx.stalled()) return `bulk redrive operation ${id} did not end: ${JSON.stringify(op.body)}`;
      await ctx.observer.tick();
    }
  }
  let payload: Record<string, unknown> | undefined;
  if (name === 'edit' || name === 'editlater') {
    const full = await call<{ payload?: Record<string, unknown> }>(
      'GET',
      `${dlq}/v1/admin/dead-letters/${dl.id}`,
      undefined,
      { token: true },
    );
    const original = full.body.payload ?? payloadOf(s);
    payload = { ...original, lcEdit: Number(original.lcEdit ?? 0) + 1 };
  }
  res = await call(
    'POST',
    `${dlq}/v1/admin/dead-letters/${dl.id}/redrive`,
    { ...delay, ...(payload ? { payload } : {}), ...note },
    { token: true },
  );
  const b = res.body as { duplicate?: boolean };
  if (res.status !== 202) return `redrive answered ${res.status} ${JSON.stringify(res.body)}`;
  if (b.duplicate) return `redrive of dead letter ${dl.id} was stored as a duplicate (${JSON.stringify(res.body)})`;
  return undefined;
}

/**
 * Follows one job id until its events are the predicted ones (or can no longer become them, or
 * nothing moves any more), applying the operator's action to each new dead letter.
 */
async function followUnit(
  ctx: RunContext,
  s: Script,
  jobId: string,
  unit: Unit,
  predicted: JobPrediction,
  problems: Mismatch[],
  beforeFirstOp?: (dl: DeadLetterRow) => Promise<void>,
): Promise<void> {
  const { observer } = ctx;
  observer.watch(jobId);
  let applied = 0;
  try {
    for (;;) {
      await observer.tick();
      const lives = observer.lives(jobId);
      if (histories(predicted).some((h) => livesMatch(lives, h.lives))) return;
      if (!histories(predicted).some((h) => livesCompatible(lives, h.lives))) return;
      const dls = observer.deadLetters(jobId);
      if (dls.length > applied && applied < unit.ops.length) {
        const dl = dls[applied]!;
        if (applied === 0) await beforeFirstOp?.(dl);
        const problem = await operate(ctx, s, jobId, dl, unit.ops[applied]!);
        if (problem)
          problems.push({ category: 'operator', ref: predicted.ref, jobId, expected: 'accepted', observed: problem });
        applied++;
        observer.touch();
        continue;
      }
      if (ctx.stalled()) return;
    }
  } finally {
    observer.unwatch(jobId);
  }
}

interface Drive {
  ids: Partial<Record<JobRef, string>>;
  problems: Mismatch[];
  scheduleId?: string;
  /** When the first fire (or the delayed job) was due. */
  firstDue?: number;
  /** The schedule as it ended, and when the cancel answer came back (cancel scripts). */
  ended?: Schedule;
  cancelledAt?: number;
}

async function driveScript(ctx: RunContext, s: Script, index: number, prediction: ScriptPrediction): Promise<Drive> {
  const { stack, observer } = ctx;
  const d: Drive = { ids: {}, problems: [] };
  const own = `${ctx.tag}-${index}`;
  const key = s.key ? `${own}-key` : undefined;
  const repeat = s.timing.kind === 'repeat';
  const answerProblem = (expected: unknown, observed: unknown) =>
    d.problems.push({ category: 'answer', ref: 'submit', expected, observed });

  // Submit.
  let jobId: string;
  if (s.entry === 'http' || s.entry === 'batch') {
    // The request is written when it is sent (a runAt is a time from then on); a producer
    // trying again sends the same job.
    const body = () => requestOf(s, key);
    const a = await submitIntake(ctx, s, body);
    if (a.status !== 202 || a.body.duplicate !== false) {
      answerProblem({ status: 202, duplicate: false }, a);
      if (a.status !== 202) return d;
    }
    jobId = a.body.jobId;
    if (a.body.scheduleId) d.scheduleId = a.body.scheduleId;
    if (a.body.runAt) d.firstDue = Date.parse(a.body.runAt);
    if (s.dup) {
      const again = await submitIntake(
        ctx,
        s,
        s.dupNow ? () => requestOf({ ...s, timing: { kind: 'now' } }, key) : body,
      );
      if (again.status !== 202 || again.body.duplicate !== true || again.body.jobId !== jobId)
        answerProblem({ status: 202, duplicate: true, jobId }, again);
    }
  } else {
    const ids = { jobId: key ?? `${own}-${s.entry}`, scheduleId: `${own}-schedule` };
    const a = await publishRaw(ctx, s, ids);
    if (a.duplicate) answerProblem({ duplicate: false }, a);
    jobId = a.jobId;
    if (a.firstDue !== undefined) {
      d.firstDue = a.firstDue;
      d.scheduleId = ids.scheduleId;
    }
    if (s.dup) {
      const again = await publishRaw(ctx, s, ids);
      if (!again.duplicate) answerProblem({ duplicate: true }, again);
    }
  }

  // Another producer's key equal to an id Redrive mints for this job.
  const collider = async (body: Record<string, unknown>) => {
    const a = await call<Accepted>('POST', `${stack.intake}/v1/jobs`, body);
    if (a.status !== 202 || a.body.duplicate !== false)
      answerProblem({ status: 202, duplicate: false, collider: body }, a);
    if (a.status === 202) d.ids.collider = a.body.jobId;
  };
  const plain = (k: string) => ({ type: 'lc', payload: { lc: { units: [[]], repeat: false } }, idempotencyKey: k });
  if (s.collide === 'fire' && d.scheduleId) await collider(plain(`${d.scheduleId}:2`));
  if (s.collide === 'schedule' && d.scheduleId && s.timing.kind === 'delay')
    await collider({ ...plain(d.scheduleId), delay: s.timing.ms });

  const follows: Promise<void>[] = [];
  const follow = (ref: JobRef, id: string, unit: Unit, before?: (dl: DeadLetterRow) => Promise<void>) => {
    const p = prediction.jobs.find((j) => j.ref === ref)!;
    d.ids[ref] = id;
    follows.push(followUnit(ctx, s, id, unit, p, d.problems, before));
  };
  const redriveCollider =
    s.collide === 'redrive'
      ? async (dl: DeadLetterRow) => collider(plain(`redrive:${dl.dlq_stream}:${dl.dlq_seq}:1`))
      : undefined;

  if (!repeat) {
    d.ids.job = jobId;
    if (s.cancel) await cancel(ctx, s, d);
    follow('job', jobId, s.units[0]!, redriveCollider);
  } else {
    d.ids.job = jobId;
    const fireId = (n: number) => `${jobId}:${n}`;
    if (s.cancel) {
      // Cancel once fire `after` has run.
      const after = s.cancel.after;
      if (after > 0) {
        observer.watch(fireId(after));
        try {
          await waitUntil(ctx, () =>
            observer
              .lives(fireId(after))
              .flat()
              .some((e) => e.startsWith('attempt.')),
          );
        } finally {
          observer.unwatch(fireId(after));
        }
      }
      await cancel(ctx, s, d);
    }
    const stopFire = prediction.stopFire;
    const ends = d.ended;
    for (const [i, unit] of s.units.entries()) {
      const n = i + 1;
      const p = prediction.jobs.find((j) => j.ref === `fire:${n}`)!;
      if (p.presence === 'afterCancel' && (!ends || n > ends.fireCount)) continue;
      if (p.presence === 'afterStop') continue;
      follow(`fire:${n}`, fireId(n), unit);
    }
    if (stopFire !== undefined) {
      await Promise.all(follows);
      d.ended = await scheduleEnded(ctx, d.scheduleId!);
      for (let n = stopFire + 1; n <= Math.min(d.ended?.fireCount ?? 0, s.units.length); n++)
        follow(`fire:${n}`, fireId(n), s.units[n - 1]!);
    }
  }
  if ((s.collide === 'fire' || s.collide === 'schedule') && d.ids.collider)
    follow('collider', d.ids.collider, { outcomes: [], ops: [] });
  await Promise.all(follows);
  // A redrive collision's job is submitted just before the first redrive.
  if (s.collide === 'redrive' && d.ids.collider) {
    follow('collider', d.ids.collider, { outcomes: [], ops: [] });
    await Promise.all(follows);
  }
  if (repeat && !d.ended && d.scheduleId) d.ended = await scheduleEnded(ctx, d.scheduleId);
  return d;
}

async function waitUntil(ctx: RunContext, check: () => boolean): Promise<void> {
  while (!check() && !ctx.stalled()) await ctx.observer.tick();
}

/** Cancels the script's schedule (through intake's API, or a raw request on schedule.cancel). */
async function cancel(ctx: RunContext, s: Script, d: Drive): Promise<void> {
  const { stack } = ctx;
  const id = d.scheduleId;
  if (!id) return;
  if (s.cancel!.via === 'nats') {
    const h = natsHeaders();
    h.set('Redrive-Schedule-Id', id);
    await stack.js.publish(stack.topology.scheduleSubject('cancel'), new Uint8Array(), { headers: h, timeout: 10_000 });
    ctx.observer.touch();
    d.ended = await scheduleEnded(ctx, id);
    // The cancel took effect at the latest when the schedule was seen to have ended.
    d.cancelledAt = Date.now();
    return;
  }
  // The request may still be on its way to the scheduler: 404 until it is stored.
  for (;;) {
    const a = await call<Schedule>('DELETE', `${stack.intake}/v1/schedules/${encodeURIComponent(id)}`);
    if (a.status === 404 && !ctx.stalled()) {
      await ctx.observer.tick();
      continue;
    }
    d.cancelledAt = Date.now();
    ctx.observer.touch();
    if (a.status === 200) d.ended = a.body;
    else if (a.status === 409) {
      d.ended = (await scheduleOf(ctx, id)).body;
      // 409 says it has completed; if it is still active, the cancel was lost.
      if (d.ended.status === 'active')
        d.problems.push({
          category: 'schedule',
          ref: 'schedule',
          expected: 'DELETE answers 200 (cancelled) for an active schedule',
          observed: { answer: a, schedule: d.ended },
          hint: 'the cancel answered 409 (already completed) for an active schedule',
        });
    } else d.problems.push({ category: 'schedule', ref: 'schedule', expected: 'cancelled', observed: a });
    return;
  }
}

// ---------------------------------------------------------------------------------------------
// Reconciliation
// ---------------------------------------------------------------------------------------------

interface Timeline {
  summary: { status: string; attempts: number; lives: number } | null;
  events: {
    kind: string;
    life: number;
    attempt?: number;
    errorClass?: string;
    delayMs?: number;
    extra?: Record<string, unknown>;
    at: string;
  }[];
}

interface DeadLetterView {
  id: number;
  jobId: string;
  reason: string;
  errorClass: string | null;
  attempts: number;
  resolved: boolean;
  redriveCount: number;
}

async function readJob(stack: Stack, jobId: string) {
  const t = await call<Timeline>('GET', `${stack.dlq}/v1/jobs/${encodeURIComponent(jobId)}/timeline`, undefined, {
    token: true,
  });
  const d = await call<{ items: DeadLetterView[] }>(
    'GET',
    `${stack.dlq}/v1/admin/dead-letters?jobId=${encodeURIComponent(jobId)}&limit=100`,
    undefined,
    { token: true },
  );
  const timeline = t.status === 200 ? t.body : { summary: null, events: [] };
  const deadLetters = [...(d.body.items ?? [])].sort((a, b) => a.id - b.id);
  return { timeline, deadLetters };
}

function reconcileJob(
  prediction: JobPrediction,
  jobId: string,
  seen: Awaited<ReturnType<typeof readJob>>,
  runs: number,
  completion: { attempt: number } | undefined | 'unchecked',
): Mismatch[] {
  const out: Mismatch[] = [];
  const { timeline, deadLetters } = seen;
  const lives: CanonicalEvent[][] = [];
  for (const e of timeline.events) {
    while (lives.length < e.life) lives.push([]);
    const c = canonical({ kind: e.kind, attempt: e.attempt, errorClass: e.errorClass, extra: e.extra });
    if (c !== undefined) lives[e.life - 1]!.push(c);
  }
  if (lives.length === 0) lives.push([]);
  const base = { ref: prediction.ref, jobId };
  // The history the events follow (another one only after a crash, see ghosts in model.ts).
  const p = { ...prediction, ...histories(prediction).find((h) => livesMatch(lives, h.lives)) };
  if (!livesMatch(lives, p.lives)) {
    const lost = histories(prediction).some((h) => livesCompatible(lives, h.lives));
    out.push({
      ...base,
      category: lost ? 'lost' : 'unexpected',
      expected: p.lives,
      observed: lives,
      ...(lost ? { hint: lostHint(lives, p.lives) } : {}),
    });
    return out;
  }
  for (const dl of p.delays) {
    const e = timeline.events.filter(
      (x) => x.kind === 'attempt.failed' && x.life === dl.life && x.attempt === dl.attempt,
    );
    const ms = e[0]?.delayMs;
    if (ms === undefined || ms < dl.lo || ms > dl.hi)
      out.push({ ...base, category: 'delay', expected: dl, observed: { delayMs: ms } });
  }
  if (
    !timeline.summary ||
    timeline.summary.status !== p.summary.status ||
    timeline.summary.lives !== p.summary.lives ||
    timeline.summary.attempts !== p.summary.attempts
  )
    out.push({ ...base, category: 'summary', expected: p.summary, observed: timeline.summary });
  const expectedDl = p.deadLetters.map((x) => ({
    reason: x.reason,
    errorClass: x.errorClass,
    attempts: x.attempts,
    resolved: x.resolution !== 'open',
    redriveCount: x.resolution === 'redriven' ? 1 : 0,
  }));
  const observedDl = deadLetters.map((x) => ({
    reason: x.reason,
    errorClass: x.errorClass,
    attempts: x.attempts,
    resolved: x.resolved,
    redriveCount: x.redriveCount,
  }));
  if (JSON.stringify(expectedDl) !== JSON.stringify(observedDl))
    out.push({ ...base, category: 'dlq', expected: expectedDl, observed: observedDl });
  if (runs !== p.runs) out.push({ ...base, category: 'runs', expected: p.runs, observed: runs });
  if (completion !== 'unchecked') {
    const expected = p.keyed && p.succeededAttempt !== undefined ? { attempt: p.succeededAttempt } : undefined;
    const observed = completion ? { attempt: completion.attempt } : undefined;
    if (JSON.stringify(expected) !== JSON.stringify(observed))
      out.push({ ...base, category: 'completion', expected, observed });
  }
  return out;
}

async function reconcileScript(
  stack: Stack,
  r: { index: number; script: Script; prediction: ScriptPrediction; drive: Drive },
): Promise<Mismatch[]> {
  const { script: s, prediction, drive: d } = r;
  const out = [...d.problems];
  const missing: Mismatch[] = [];
  const completions = createCompletionStore(stack.js, stack.jsm, stack.topology);
  const every = s.timing.kind === 'repeat' ? s.timing.every : 0;
  const fireCount = d.ended?.fireCount;
  // The stopRepeat request went out during the stopping run, which ended when it succeeded.
  let stoppedAt: number | undefined;
  if (prediction.stopFire !== undefined && d.ids.job) {
    const t = (await readJob(stack, `${d.ids.job}:${prediction.stopFire}`)).timeline;
    const ok = t.events.find((e) => e.kind === 'attempt.succeeded');
    if (ok) stoppedAt = Date.parse(ok.at);
  }
  for (const p of prediction.jobs) {
    const jobId =
      d.ids[p.ref] ?? (p.ref.startsWith('fire:') && d.ids.job ? `${d.ids.job}:${p.ref.slice(5)}` : undefined);
    if (!jobId) {
      // A colliding job is submitted at a point of its target's history; if the target went
      // another way, that is the mismatch to report.
      if (p.presence === 'required')
        missing.push({ category: 'lost', ref: p.ref, expected: 'a job', observed: 'never submitted' });
      continue;
    }
    const seen = await readJob(stack, jobId);
    const exists = seen.timeline.events.length > 0;
    if (p.presence !== 'required') {
      // A fire after a stop or cancel exists exactly when the schedule counts it, and only if
      // it was due before the stop or cancel took effect.
      const n = Number(p.ref.slice(5));
      const counted = fireCount !== undefined && n <= fireCount;
      if (exists !== counted)
        out.push({
          category: 'schedule',
          ref: p.ref,
          jobId,
          expected: { exists: counted, fireCount },
          observed: { exists },
        });
      const limit = p.presence === 'afterStop' ? stoppedAt : d.cancelledAt;
      if (counted && d.firstDue !== undefined && limit !== undefined) {
        const due = d.firstDue + (n - 1) * every;
        if (due > limit + 3_000)
          out.push({
            category: 'schedule',
            ref: p.ref,
            jobId,
            expected: `no fire due after ${new Date(limit).toISOString()}`,
            observed: { due: new Date(due).toISOString() },
          });
      }
      if (!counted) continue;
    }
    const runs = Number((await stack.redis.get(`lifecycle:${stack.prefix}:runs:${jobId}`)) ?? 0);
    const completion = p.keyed ? await completions.get(jobId).catch(() => undefined) : 'unchecked';
    out.push(...reconcileJob(p, jobId, seen, runs, completion));
  }
  // The schedule itself: its cancellation in the audit trail, its fires counted.
  if (prediction.schedule?.route === 'repeat' && d.ids.job) {
    const cancelled = d.ended?.status === 'cancelled';
    const expectCancel = prediction.schedule.cancelled === 'ifCancelled' ? cancelled : false;
    if (prediction.schedule.cancelled === 'no' && d.ended && d.ended.status !== 'completed')
      out.push({ category: 'schedule', ref: 'schedule', expected: 'completed', observed: d.ended });
    const expected = [...prediction.schedule.baseEvents, ...(expectCancel ? ['schedule.cancelled'] : [])];
    const seen = await readJob(stack, d.ids.job);
    const observed = seen.timeline.events
      .map((e) => canonical({ kind: e.kind, attempt: e.attempt, errorClass: e.errorClass, extra: e.extra }))
      .filter((e): e is string => e !== undefined);
    if (!sameMultiset(expected, observed)) {
      const lost = livesCompatible([observed], [expected]);
      out.push({
        category: lost ? 'lost' : 'unexpected',
        ref: 'schedule',
        jobId: d.ids.job,
        expected,
        observed,
        ...(lost ? { hint: lostHint([observed], [expected]) } : {}),
      });
    }
  }
  if (s.cancel && s.timing.kind !== 'repeat' && d.ended?.status !== 'cancelled')
    out.push({ category: 'schedule', ref: 'schedule', expected: 'cancelled', observed: d.ended ?? 'no schedule' });
  return out.length > 0 ? out : missing;
}

// ---------------------------------------------------------------------------------------------
// Running a set of scripts
// ---------------------------------------------------------------------------------------------

/** Waits until no consumer has anything pending and no schedule is active: nothing can move any more. */
async function idle(stack: Stack): Promise<boolean> {
  const t = stack.topology;
  // Every consumer of every stream the jobs pass through, whatever the services name them.
  for (const stream of [t.streams.jobs, t.streams.schedule, t.streams.events, t.streams.dlq, t.streams.advisories]) {
    for await (const c of stack.jsm.consumers.list(stream))
      if (c.num_pending > 0 || c.num_ack_pending > 0) return false;
  }
  // Not counted as a request in flight: this is the one asking whether anything is.
  const active = await tryCall<{ schedules: unknown[] }>(
    'GET',
    `${stack.intake}/v1/schedules?status=active&limit=1`,
    undefined,
    {},
    [503],
  );
  return active.status === 200 && active.body.schedules.length === 0;
}

export interface RunOptions {
  tag: string;
  concurrency: number;
  /** No change at all for this long ends the wait, even if something still looks busy. */
  stallMs: number;
  log?: (line: string) => void;
}

/** Runs the scripts at once (at most `concurrency` in flight) and reconciles each with the model. */
export async function runScripts(stack: Stack, scripts: Script[], opts: RunOptions): Promise<ScriptResult[]> {
  const observer = new Observer(stack.sql);
  observer.start();
  let stalled = false;
  let active = 0;
  let quietSince = 0;
  const watchdog = setInterval(() => {
    void (async () => {
      if (stalled || active === 0) return;
      const quiet = Date.now() - observer.lastChange;
      if (quiet > opts.stallMs) {
        stalled = true;
        return;
      }
      const requestsQuiet = inFlight.requests === 0 && Date.now() - inFlight.lastEnded > 3_000;
      if (quiet > 3_000 && requestsQuiet && (await idle(stack).catch(() => false))) {
        if (!quietSince) quietSince = Date.now();
        // Idle twice, a second apart, with no event in between: nothing is on its way.
        else if (Date.now() - quietSince > 1_000 && Date.now() - observer.lastChange > 4_000) stalled = true;
      } else quietSince = 0;
    })();
  }, 1_000);

  // Batch entries share requests.
  let pending: { body: () => Record<string, unknown>; resolve: (a: Answer<Accepted & { error?: unknown }>) => void }[] =
    [];
  let flushTimer: NodeJS.Timeout | undefined;
  const flush = () => {
    flushTimer = undefined;
    const group = pending.splice(0, 100);
    if (pending.length > 0) flushTimer = setTimeout(flush, 0);
    void call<{ results: (Accepted & { error?: unknown })[] }>('POST', `${stack.intake}/v1/jobs:batch`, () => ({
      jobs: group.map((g) => g.body()),
    })).then(
      (a) =>
        group.forEach((g, i) =>
          g.resolve({ status: a.status === 207 ? 202 : a.status, body: a.body.results?.[i] ?? (a.body as never) }),
        ),
      (err: unknown) => group.forEach((g) => g.resolve({ status: 599, body: { error: String(err) } as never })),
    );
  };
  const ctx: RunContext = {
    stack,
    observer,
    tag: opts.tag,
    stalled: () => stalled,
    batch: (body) =>
      new Promise((resolve) => {
        pending.push({ body, resolve });
        flushTimer ??= setTimeout(flush, 20);
      }),
  };

  const results: { index: number; script: Script; prediction: ScriptPrediction; drive: Drive; ms: number }[] = [];
  let next = 0;
  let done = 0;
  const startedAt = Date.now();
  const worker = async () => {
    for (;;) {
      const index = next++;
      if (index >= scripts.length) return;
      const script = scripts[index]!;
      const prediction = predict(MODEL_CONFIG, script);
      active++;
      const began = Date.now();
      let drive: Drive;
      try {
        drive = await driveScript(ctx, script, index, prediction);
      } catch (err) {
        drive = {
          ids: {},
          problems: [{ category: 'operator', ref: 'submit', expected: 'the script runs', observed: String(err) }],
        };
      } finally {
        active--;
      }
      results.push({ index, script, prediction, drive, ms: Date.now() - began });
      done++;
      if (opts.log && done % 250 === 0)
        opts.log(
          `lifecycle: ${done}/${scripts.length} scripts settled after ${Math.round((Date.now() - startedAt) / 1000)} s`,
        );
    }
  };
  await Promise.all(Array.from({ length: Math.min(opts.concurrency, scripts.length) }, worker));
  clearInterval(watchdog);
  if (flushTimer) clearTimeout(flushTimer);
  pending = [];
  await observer.stop();

  // Whatever is still on its way lands before the final read.
  await waitFor(() => idle(stack).catch(() => false), { timeoutMs: 30_000, intervalMs: 500 }).catch(() => undefined);
  const reconciled: ScriptResult[] = [];
  let i = 0;
  const reader = async () => {
    for (;;) {
      const r = results[i++];
      if (!r) return;
      const mismatches = await reconcileScript(stack, r).catch((err: unknown) => [
        { category: 'operator' as const, ref: 'submit' as const, expected: 'reconciled', observed: String(err) },
      ]);
      reconciled.push({
        index: r.index,
        script: r.script,
        prediction: r.prediction,
        ids: r.drive.ids,
        mismatches,
        ms: r.ms,
      });
    }
  };
  await Promise.all(Array.from({ length: 12 }, reader));
  return reconciled.sort((a, b) => a.index - b.index);
}
