import type { ConsumerMessages, JetStreamClient, JsMsg } from '@nats-io/jetstream';
import { type Deadline, type Logger, within } from '@redrive/lifecycle';
import {
  createUuidV7,
  deadLetteredEventId,
  fallbackJobId,
  headersToObject,
  jobIdOf,
  readJobHeaders,
  requestStopRepeat,
  type EventInput,
  type EventPublisher,
  type JobHeaders,
  type Priority,
  type Topology,
} from '@redrive/messaging';
import { classify, decideFailure, type Decision, type RetryPolicy } from '@redrive/retry-policy';
import { JobTimeoutError, ValidationError, type HandlerDefinition, type Job, type JobContext } from '@redrive/sdk';
import {
  context,
  ensureTraceContext,
  extractTraceContext,
  SpanKind,
  SpanStatusCode,
  trace,
  traceIdOf,
  tracer,
} from '@redrive/telemetry';
import { LaneSlots } from './lanes.js';
import type { WorkerMetrics } from './metrics.js';
import { createOutcomes, TooLargeToForwardError } from './outcomes.js';
import type { CompletionsPort, GuardsPort, RateLimit, StepsPort } from './ports.js';

export interface DispatcherDeps {
  js: JetStreamClient;
  topology: Topology;
  handlers: ReadonlyMap<string, HandlerDefinition>;
  /** The job types this dispatcher consumes (each has a handler). */
  types: readonly string[];
  concurrency: number;
  prefetch: number;
  lowLaneEvery: number;
  ackWaitMs: number;
  jobTimeoutMs: number;
  policy: RetryPolicy;
  /** Retry delays above this leave the consumer for the retry-scheduler. */
  handoffThresholdMs: number;
  /** Retry delays up to this are timed by the worker, then NAKed for immediate redelivery. */
  localDelayMaxMs: number;
  events: EventPublisher;
  /** The server's max_payload: what leaves the consumer (a hand-off, a dead letter) must fit in it. */
  maxPayload?: number | undefined;
  guards?: GuardsPort | undefined;
  /** Where idempotency-keyed jobs record their one success; without it they use Redis like the rest. */
  completions?: CompletionsPort | undefined;
  steps?: StepsPort | undefined;
  rateLimits?: Readonly<Record<string, RateLimit>>;
  /** How long a completed job's idempotency marker is kept. */
  completedTtlMs: number;
  /** A redelivered job whose runs were cut short this many times is dead-lettered, not run. */
  maxCrashes: number;
  logger: Logger;
  metrics: WorkerMetrics;
  now?: () => number;
}

/** One message this worker holds: running, or waiting on a timer before it goes back. */
interface Delivery {
  msg: JsMsg;
  lane: Priority;
  type: string;
  abort: AbortController;
  /** Set once the message has been acked, naked or termed: it must never be answered twice. */
  settled: boolean;
  done: Promise<void>;
  holder: string;
  /** Set once a suspect (an earlier run of it died) was held back a random moment before running. */
  staggered?: boolean;
}

interface Held {
  delivery: Delivery;
  dueAt: number;
  timer: NodeJS.Timeout;
  keepalive: NodeJS.Timeout;
  then: 'nak' | 'rerun';
}

const decoder = new TextDecoder();

// At shutdown a message is handed back with a short NAK delay rather than none: an immediate
// redelivery can land on this worker's own pull requests before they are gone, and would then
// sit unacknowledged for a whole ack wait. After this delay the process has left.
const HAND_BACK_DELAY_MS = 1_000;

/** The success event of an idempotency-keyed job: one id, whichever run sends it. */
const succeededEventId = (jobId: string) => `succeeded:${jobId}`;

/** The job's life on its lifecycle events, so the audit trail orders a redriven job's lives. */
const lifeField = (meta: JobHeaders) => (meta.life ? { life: meta.life } : {});

/** A suspect job (an earlier run died with its worker) waits up to this long before running. */
const SUSPECT_STAGGER_MS = 2_000;

/** How long the runs of a job that never ended are remembered. */
const RUN_COUNT_TTL_MS = 24 * 3_600_000;

/** A run still going after this gets an attempt.started event of its own. */
const STARTED_EVENT_AFTER_MS = 1_000;

function parsePayload(raw: Uint8Array): unknown {
  if (raw.byteLength === 0) return null;
  try {
    return JSON.parse(decoder.decode(raw));
  } catch (err) {
    throw new ValidationError(`the job body is not JSON: ${(err as Error).message}`, '');
  }
}

/**
 * Pulls jobs from the durable consumers of its types, in every priority lane, runs them with
 * bounded concurrency, and decides each failure's fate with the retry policy: NAK with a
 * delay, hand-off to the retry-scheduler, or dead-letter. `stop` stops pulling, lets running
 * jobs finish until the deadline, and hands back (NAKs) everything it still holds.
 */
export function createDispatcher(deps: DispatcherDeps) {
  const { logger, metrics, topology } = deps;
  const now = deps.now ?? Date.now;
  const slots = new LaneSlots(deps.concurrency, deps.lowLaneEvery);
  const running = new Set<Delivery>();
  const held = new Set<Held>();
  // Stream sequences this worker holds. nats-server 2.9 can deliver one message twice at once
  // (after a NAK of the last message delivered to a pull request that ended); the copy that
  // arrives while the first is held here is ignored, and the first one's ack settles both.
  const holding = new Set<number>();
  const streams: ConsumerMessages[] = [];
  const loops: Promise<void>[] = [];
  const outcomes = createOutcomes({ js: deps.js, topology, maxPayload: deps.maxPayload });
  const keepaliveMs = Math.max(500, Math.floor(deps.ackWaitMs / 2));
  // A success event's id is fixed before its first publish, so a publish tried again keeps it.
  const newEventId = createUuidV7();
  let stopping = false;
  let seq = 0;

  function settle(d: Delivery, how: 'ack' | 'nak' | 'term', arg?: number | string): boolean {
    if (d.settled) return false;
    d.settled = true;
    holding.delete(d.msg.seq);
    if (how === 'ack') d.msg.ack();
    else if (how === 'nak') d.msg.nak(arg as number | undefined);
    // No reason: nats-server 2.9 silently ignores "+TERM <reason>" and leaves the message pending.
    else d.msg.term();
    return true;
  }

  /**
   * Keeps a message and acts on it after `ms`: `nak` hands it back for immediate redelivery
   * (a retry), `rerun` runs it again here (a job held back by a limit, which must not use up
   * an attempt). The message keeps its ack-pending slot meanwhile, and in-progress acks keep
   * the server from redelivering it.
   */
  function hold(d: Delivery, ms: number, then: Held['then']): void {
    const h: Held = {
      delivery: d,
      dueAt: now() + ms,
      then,
      keepalive: setInterval(() => d.msg.working(), keepaliveMs),
      timer: setTimeout(() => {
        held.delete(h);
        clearInterval(h.keepalive);
        if (stopping) return;
        if (then === 'nak') settle(d, 'nak');
        else void rerun(d);
      }, ms),
    };
    d.msg.working();
    held.add(h);
    metrics.held.set(held.size);
  }

  /**
   * A job that is not due yet (Redrive-Not-Before) waits without using an attempt: here for a
   * short wait, as a NAK delay for a middling one, and with the retry-scheduler for a long one,
   * since a NAKed message keeps its ack-pending slot until it comes back and enough of them would
   * stall the lane. The hand-off carries no Not-Before: the scheduler publishes it when due.
   */
  async function waitUntilDue(
    d: Delivery,
    meta: JobHeaders,
    attemptsMade: number,
    due: Date,
    log: Logger,
  ): Promise<void> {
    const wait = due.getTime() - now();
    log.debug({ waitMs: wait }, 'job not due yet');
    if (wait <= deps.localDelayMaxMs) return hold(d, wait, 'rerun');
    if (wait <= deps.handoffThresholdMs) {
      settle(d, 'nak', wait);
      return;
    }
    try {
      await outcomes.handOff(d.msg, meta, attemptsMade, due);
    } catch (err) {
      settle(d, 'nak', err instanceof TooLargeToForwardError ? wait : deps.handoffThresholdMs);
      log.warn({ err }, 'hand-off of a job not yet due failed; NAKed instead');
      return;
    }
    settle(d, 'ack');
  }

  async function rerun(d: Delivery): Promise<void> {
    const granted = await slots.acquire(d.lane);
    if (!granted || stopping) {
      if (granted) slots.release();
      settle(d, 'nak', HAND_BACK_DELAY_MS);
      return;
    }
    start(d);
  }

  function start(d: Delivery): void {
    running.add(d);
    metrics.inFlight.set(running.size);
    d.done = execute(d).finally(() => {
      running.delete(d);
      metrics.inFlight.set(running.size);
      metrics.held.set(held.size);
      slots.release();
    });
  }

  /** Limits that hold a job back; undefined when it may run now. */
  async function heldBackFor(
    job: Job,
    handler: HandlerDefinition,
    d: Delivery,
  ): Promise<{ ms: number; release?: () => Promise<void> } | undefined> {
    const guards = deps.guards;
    if (!guards) return undefined;
    let release: (() => Promise<void>) | undefined;
    const cc = handler.concurrency;
    const key = cc?.key(job);
    if (cc && key) {
      const ckey = `${job.type}:${key}`;
      const lease = Math.max(deps.ackWaitMs, (handler.timeoutMs ?? deps.jobTimeoutMs) + 5_000);
      const got = await guards.concurrency.acquire(ckey, cc.limit, d.holder, lease);
      if (!got.acquired) return { ms: got.retryInMs };
      release = () => guards.concurrency.release(ckey, d.holder);
    }
    const buckets = [job.type, ...(handler.rateLimitKeys?.(job) ?? [])];
    for (const bucket of buckets) {
      const limit = deps.rateLimits?.[bucket];
      if (!limit) continue;
      const t = await guards.rateLimit.take(bucket, limit.perSecond, limit.burst);
      if (!t.allowed) {
        await release?.();
        return { ms: t.retryInMs };
      }
    }
    return release ? { ms: 0, release } : undefined;
  }

  /**
   * Publishes a job's success, trying again until JetStream stores it: a job is acked only once
   * its outcome is in the audit trail, and is kept meanwhile (in-progress acks). The event keeps
   * its id across tries, so a PubAck lost after a store does not make two successes. False when
   * the job was handed back at shutdown before the event was stored.
   */
  async function storeTerminalEvent(d: Delivery, e: EventInput & { id: string }, log: Logger): Promise<boolean> {
    const keepalive = setInterval(() => {
      if (!d.settled) d.msg.working();
    }, keepaliveMs);
    try {
      for (let delay = 250; ; delay = Math.min(delay * 2, 5_000)) {
        try {
          await deps.events.publish(e);
          return true;
        } catch (err) {
          if (d.settled) return false;
          log.warn({ err, kind: e.kind, retryInMs: delay }, 'event not stored; the job is kept until it is');
          await new Promise((r) => setTimeout(r, delay));
          if (d.settled) return false;
        }
      }
    } finally {
      clearInterval(keepalive);
    }
  }

  /**
   * Sends a keyed job's recorded success (its attempt and time) again under its fixed id, in
   * case the run that recorded it died before sending it; the audit trail keeps it once.
   */
  function resendSuccess(
    d: Delivery,
    meta: JobHeaders,
    recorded: { attempt: number; at: string },
    traceId: string,
    log: Logger,
  ): Promise<boolean> {
    const event = {
      kind: 'attempt.succeeded',
      id: succeededEventId(meta.jobId),
      jobId: meta.jobId,
      type: d.type,
      attempt: recorded.attempt,
      traceId,
      at: new Date(recorded.at),
      ...lifeField(meta),
    } as const;
    return storeTerminalEvent(d, event, log);
  }

  /** Acks a job that must not run (or count) again, and says why in the audit trail. */
  async function skip(
    d: Delivery,
    meta: JobHeaders,
    attempt: number,
    traceId: string,
    reason: 'already_completed' | 'completed_by_another_run',
    emit: (e: EventInput) => Promise<unknown>,
  ): Promise<void> {
    settle(d, 'ack');
    metrics.processed.inc({ type: d.type, outcome: 'skipped' });
    await emit({ kind: 'job.skipped', jobId: meta.jobId, type: d.type, attempt, traceId, reason, ...lifeField(meta) });
  }

  async function execute(d: Delivery): Promise<void> {
    const m = d.msg;
    const started = performance.now();
    let startedAt = new Date();
    const parent = ensureTraceContext(extractTraceContext((name) => m.headers?.get(name) || undefined));
    const traceId = traceIdOf(parent) ?? '';
    // The job's own id even when another header turns out malformed: its dead letter and its
    // timeline are then found under the id the producer gave it.
    let meta: JobHeaders = { jobId: jobIdOf(m.headers, fallbackJobId(topology.streams.jobs, m.seq)), attempt: 0 };
    let attempt = m.info.deliveryCount;
    const pending: Promise<unknown>[] = [];
    const emit = (e: EventInput) => {
      const p = deps.events
        .publish(e)
        .catch((err: unknown) => logger.error({ err, jobId: e.jobId, kind: e.kind }, 'event not stored'));
      pending.push(p);
      return p;
    };
    // One child logger per delivery (each one serializes its bindings): made once the headers
    // are read, or in the catch below, with the fallback id, when reading them failed.
    let log: Logger | undefined;
    let release: (() => Promise<void>) | undefined;
    let runCounted = false;
    const span = tracer().startSpan(
      `process ${d.type}`,
      {
        kind: SpanKind.CONSUMER,
        attributes: { 'messaging.system': 'nats', 'messaging.destination.name': m.subject, 'redrive.job.type': d.type },
      },
      parent,
    );
    const ctx = trace.setSpan(parent, span);

    try {
      meta = readJobHeaders(m.headers, meta.jobId);
      attempt = meta.attempt + m.info.deliveryCount;
      log = logger.child({ jobId: meta.jobId, traceId, type: d.type, attempt });
      span.setAttributes({ 'redrive.job.id': meta.jobId, 'redrive.job.attempt': attempt });

      if (meta.notBefore && meta.notBefore.getTime() > now()) {
        await waitUntilDue(d, meta, attempt - 1, meta.notBefore, log);
        return;
      }
      const handler = deps.handlers.get(d.type);
      if (!handler) throw new ValidationError(`no handler for job type "${d.type}"`);
      const job: Job = {
        id: meta.jobId,
        type: d.type,
        priority: d.lane,
        attempt,
        payload: parsePayload(m.data),
        raw: m.data,
        headers: headersToObject(m.headers),
      };

      // A keyed job's completion is recorded durably in NATS; any other job's in Redis, which
      // is fast but fails open (a lost ack during a Redis outage can then run a job twice).
      const keyed = meta.idempotencyKey !== undefined && deps.completions !== undefined;
      const record = keyed ? await deps.completions!.get(meta.jobId) : undefined;
      // One Redis call: did an earlier run complete the job (a lost ack), and how many of its
      // runs started and never ended (they died with their worker)? The count ends with the run.
      const run = deps.guards ? await deps.guards.runs.start(meta.jobId, RUN_COUNT_TTL_MS) : undefined;
      runCounted = run !== undefined;
      if (record || (!keyed && run?.completed)) {
        // The handler succeeded before but the ack was lost: do not run it again. A keyed
        // job's success event has a fixed id, so it is sent again in case the run that
        // recorded it could not store it; the audit trail keeps it once.
        if (record) {
          if (!(await resendSuccess(d, meta, record, traceId, log))) return;
        }
        await skip(d, meta, attempt, traceId, 'already_completed', emit);
        log.info('job already completed, acked without running');
        return;
      }
      // A job whose earlier runs never ended killed their workers: after maxCrashes, it is
      // dead-lettered instead of killing another (max_deliver stays high for unlucky jobs).
      const crashed = (run?.unfinished ?? 0) - 1;
      if (crashed >= deps.maxCrashes) {
        const error = `the job's worker died during ${crashed} of its runs; it is not run again`;
        const base = {
          jobId: meta.jobId,
          type: d.type,
          attempt,
          traceId,
          errorClass: 'crash',
          error,
          ...lifeField(meta),
        };
        metrics.processed.inc({ type: d.type, outcome: 'dead_lettered' });
        const decision = { kind: 'deadLetter', reason: 'retries_exhausted', errorClass: 'crash' } as const;
        await act(d, decision, meta, attempt, base, log, emit, new Error(error));
        return;
      }
      // A job whose earlier run died with its worker is a suspect. Jobs redelivered together
      // with a poison job would die with it every time and be counted as poison themselves,
      // so a suspect first waits a random moment (uncounted): the poison job then dies alone,
      // and its neighbours run before or after it.
      if (crashed >= 1 && !d.staggered) {
        d.staggered = true;
        await deps.guards!.runs.undo(meta.jobId);
        runCounted = false;
        hold(d, Math.floor(Math.random() * SUSPECT_STAGGER_MS), 'rerun');
        log.debug({ crashed }, 'an earlier run died with its worker; held back a moment before running');
        return;
      }
      const limited = await heldBackFor(job, handler, d);
      if (limited && limited.ms > 0) {
        metrics.heldBack.inc({ type: d.type });
        if (limited.ms <= deps.localDelayMaxMs) hold(d, limited.ms, 'rerun');
        else settle(d, 'nak', limited.ms);
        log.debug({ waitMs: limited.ms }, 'job held back by a limit');
        return;
      }
      release = limited?.release;

      // Most attempts end within moments, and their end event carries the start time, so a
      // separate attempt.started event (one more stored publish per job) is only sent for a
      // run that is still going after STARTED_EVENT_AFTER_MS, where an operator wants to see it.
      startedAt = new Date();
      const startedTimer = setTimeout(
        () =>
          void emit({
            kind: 'attempt.started',
            jobId: meta.jobId,
            type: d.type,
            attempt,
            traceId,
            at: startedAt,
            ...lifeField(meta),
          }),
        STARTED_EVENT_AFTER_MS,
      );
      log.debug({ seq: m.seq, deliveries: m.info.deliveryCount }, 'job started');
      try {
        await runHandler(d, handler, job, ctx, log, emit);
      } finally {
        clearTimeout(startedTimer);
      }

      const durationMs = Math.round(performance.now() - started);
      if (keyed) {
        const rec = await deps.completions!.record({ jobId: meta.jobId, attempt, at: new Date().toISOString() });
        if (!rec.recorded) {
          // Another run of this job (a redelivery after this worker looked stalled) succeeded
          // first: its success is the job's one success, this run is recorded as a duplicate.
          // That run's success event is sent again (same id), in case it died before sending it.
          const first = rec.existing ?? { attempt, at: new Date().toISOString() };
          if (!(await resendSuccess(d, meta, first, traceId, log))) return;
          await skip(d, meta, attempt, traceId, 'completed_by_another_run', emit);
          log.warn('job ran again after another run had completed it; only the first success counts');
          return;
        }
      }
      const stored = await storeTerminalEvent(
        d,
        {
          kind: 'attempt.succeeded',
          id: keyed ? succeededEventId(meta.jobId) : newEventId(),
          jobId: meta.jobId,
          type: d.type,
          attempt,
          traceId,
          durationMs,
          ...lifeField(meta),
          data: { startedAt: startedAt.toISOString() },
        },
        log,
      );
      // The Redis marker only after the success is in the audit trail: a worker killed in
      // between runs the job again (at least once) rather than skip a job with no outcome.
      if (stored && runCounted) {
        await deps.guards!.runs.end(meta.jobId, keyed ? undefined : deps.completedTtlMs);
        runCounted = false;
      }
      await Promise.all(pending);
      if (stored && settle(d, 'ack')) {
        metrics.processed.inc({ type: d.type, outcome: 'succeeded' });
        metrics.duration.observe({ type: d.type, outcome: 'succeeded' }, durationMs / 1000);
        log.info({ ms: durationMs }, 'job succeeded');
      }
      span.setStatus({ code: SpanStatusCode.OK });
    } catch (err) {
      const durationMs = Math.round(performance.now() - started);
      span.recordException(err as Error);
      span.setStatus({ code: SpanStatusCode.ERROR, message: (err as Error).message });
      if (d.settled) return; // handed back at shutdown while it ran
      log ??= logger.child({ jobId: meta.jobId, traceId, type: d.type, attempt });
      const classification = classify(err, now());
      const decision = decideFailure(deps.policy, {
        type: d.type,
        classification,
        attempt,
        maxAttempts: meta.maxAttempts,
        handoffThresholdMs: deps.handoffThresholdMs,
        now: now(),
      });
      metrics.processed.inc({ type: d.type, outcome: decision.kind === 'deadLetter' ? 'dead_lettered' : 'retried' });
      metrics.duration.observe({ type: d.type, outcome: 'failed' }, durationMs / 1000);
      const base = {
        jobId: meta.jobId,
        type: d.type,
        attempt,
        traceId,
        errorClass: decision.errorClass,
        error: classification.message,
        ...lifeField(meta),
      };
      await emit({
        kind: 'attempt.failed',
        ...base,
        durationMs,
        ...('delayMs' in decision ? { delayMs: decision.delayMs } : {}),
      });
      await act(d, decision, meta, attempt, base, log, emit, err);
    } finally {
      span.end();
      // The run ended here, whatever its outcome: it was no crash.
      if (runCounted) await deps.guards?.runs.end(meta.jobId);
      await release?.().catch(() => undefined);
      await Promise.all(pending);
    }
  }

  async function runHandler(
    d: Delivery,
    handler: HandlerDefinition,
    job: Job,
    ctx: ReturnType<typeof trace.setSpan>,
    log: Logger,
    emit: (e: EventInput) => Promise<unknown>,
  ): Promise<void> {
    const timeoutMs = handler.timeoutMs ?? deps.jobTimeoutMs;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const err = new JobTimeoutError(timeoutMs);
        d.abort.abort(err);
        reject(err);
      }, timeoutMs);
    });
    // A run longer than half the ack wait tells the server it is still working, so the job
    // is not redelivered to another worker while this one is busy with it.
    const heartbeat = setInterval(() => {
      if (!d.settled) d.msg.working();
    }, keepaliveMs);
    const base = { jobId: job.id, type: job.type, attempt: job.attempt, traceId: traceIdOf(ctx) ?? '' };
    const jobCtx: JobContext = {
      // A getter: node makes an AbortController's signal on first use, and most handlers never
      // look at it (making it was 2.5% of a busy worker's CPU).
      get signal() {
        return d.abort.signal;
      },
      traceId: base.traceId,
      log: (message, fields) => {
        log.info({ ...fields, handlerLog: true }, message);
        void emit({ kind: 'job.log', ...base, data: { message, ...(fields ? { fields } : {}) } });
      },
      progress: (value) => void emit({ kind: 'job.progress', ...base, data: value }),
      step: async <T>(name: string, fn: () => Promise<T> | T): Promise<T> => {
        const steps = deps.steps;
        if (!steps)
          throw new Error(`ctx.step("${name}") needs DATABASE_URL: step results are checkpointed in Postgres`);
        const saved = await steps.get(job.id, name);
        if (saved.found) {
          log.debug({ step: name }, 'step already completed, using its saved result');
          return saved.value as T;
        }
        const value = await fn();
        await steps.save(job.id, name, value === undefined ? null : value);
        return value;
      },
      stopRepeat: () =>
        void requestStopRepeat(deps.js, topology, job.headers).catch((err: unknown) =>
          log.error({ err }, 'stopRepeat request not stored; the schedule fires again'),
        ),
    };
    try {
      await context.with(ctx, () =>
        Promise.race([Promise.resolve().then(() => handler.handle(job, jobCtx)), timedOut]),
      );
    } finally {
      clearTimeout(timer);
      clearInterval(heartbeat);
    }
  }

  async function act(
    d: Delivery,
    decision: Decision,
    meta: JobHeaders,
    attempt: number,
    base: Omit<EventInput, 'kind'>,
    log: Logger,
    emit: (e: EventInput) => Promise<unknown>,
    err: unknown,
  ): Promise<void> {
    const m = d.msg;
    switch (decision.kind) {
      case 'nak':
        // NAK-delay redelivery gets late under load on nats-server 2.9 (p99 1.8 s at 1,000/s);
        // short delays are timed here instead and NAKed without delay when due.
        if (decision.delayMs <= deps.localDelayMaxMs) hold(d, decision.delayMs, 'nak');
        else settle(d, 'nak', decision.delayMs);
        log.warn({ err, errorClass: decision.errorClass, retryInMs: decision.delayMs }, 'job failed, will retry');
        return;
      case 'handoff':
        try {
          await outcomes.handOff(m, meta, attempt, decision.dueAt);
        } catch (publishErr) {
          // A job too large to hand off waits its whole delay on the consumer instead; any other
          // failure (NATS busy, SCHEDULE full) is tried again after the hand-off threshold.
          const wait = publishErr instanceof TooLargeToForwardError ? decision.delayMs : deps.handoffThresholdMs;
          settle(d, 'nak', wait);
          log.error({ err: publishErr, retryInMs: wait }, 'hand-off to the scheduler failed; NAKed instead');
          return;
        }
        await emit({
          kind: 'retry.scheduled',
          ...base,
          delayMs: decision.delayMs,
          dueAt: decision.dueAt.toISOString(),
        });
        settle(d, 'ack');
        log.warn(
          { err, errorClass: decision.errorClass, dueAt: decision.dueAt },
          'job failed, retry handed to the scheduler',
        );
        return;
      case 'deadLetter':
        try {
          await outcomes.deadLetter(m, meta, {
            reason: decision.reason,
            errorClass: decision.errorClass,
            error: String(base.error ?? ''),
            attempts: attempt,
            type: d.type,
          });
        } catch (publishErr) {
          // Never terminate a job whose dead letter is not stored: try again later.
          settle(d, 'nak', 5_000);
          log.error({ err: publishErr }, 'dead-letter publish failed; NAKed to try again');
          return;
        }
        // dlq-manager writes this event too, with the same id, when it records the dead letter.
        await emit({
          kind: 'job.dead_lettered',
          id: deadLetteredEventId(topology.streams.jobs, m.seq, meta.jobId),
          ...base,
          reason: decision.reason,
        });
        settle(d, 'term');
        log.error({ err, errorClass: decision.errorClass, reason: decision.reason }, 'job dead-lettered');
        return;
    }
  }

  async function consumeLane(lane: Priority, type: string): Promise<void> {
    const name = topology.workerConsumerName(lane, type);
    const consumer = await deps.js.consumers.get(topology.streams.jobs, name);
    const messages = await consumer.consume({ max_messages: deps.prefetch });
    streams.push(messages);
    for await (const m of messages) {
      if (stopping) {
        // Closing the iterator still yields what was already buffered: hand it straight back.
        m.nak(HAND_BACK_DELAY_MS);
        continue;
      }
      if (holding.has(m.seq)) {
        metrics.duplicates.inc({ type });
        logger.debug({ seq: m.seq, type }, 'ignored a second delivery of a message already held here');
        continue;
      }
      holding.add(m.seq);
      // While this message waits for a slot it is ours: keep its ack timer from running out.
      const keepalive = setInterval(() => m.working(), keepaliveMs);
      const granted = await slots.acquire(lane);
      clearInterval(keepalive);
      if (!granted || stopping) {
        if (granted) slots.release();
        holding.delete(m.seq);
        m.nak(HAND_BACK_DELAY_MS);
        continue;
      }
      start({
        msg: m,
        lane,
        type,
        abort: new AbortController(),
        settled: false,
        done: Promise.resolve(),
        holder: `${process.pid}:${++seq}`,
      });
    }
  }

  return {
    /** Starts one pull loop per (lane, type) consumer. */
    async start(): Promise<void> {
      for (const type of deps.types) {
        for (const lane of ['high', 'normal', 'low'] as const) {
          const loop = consumeLane(lane, type).catch((err: unknown) => {
            if (!stopping) logger.fatal({ err, lane, type }, 'consumer loop failed');
            throw err;
          });
          loops.push(loop);
        }
      }
      await new Promise((resolve) => setImmediate(resolve));
    },

    /** True while every consumer loop is running. */
    healthy(): boolean {
      return !stopping && streams.length === deps.types.length * 3;
    },

    get inFlight(): number {
      return running.size;
    },

    async stop(deadline: Deadline): Promise<void> {
      stopping = true;
      slots.close();
      await within(Promise.all(streams.map((s) => s.close().catch(() => undefined))), 2_000);
      await within(Promise.allSettled(loops), 2_000);
      // Jobs waiting on a timer go back now, with what is left of their delay.
      for (const h of [...held]) {
        clearTimeout(h.timer);
        clearInterval(h.keepalive);
        held.delete(h);
        settle(h.delivery, 'nak', Math.max(HAND_BACK_DELAY_MS, h.dueAt - now()));
      }
      const pendingRuns = [...running];
      if (pendingRuns.length > 0) {
        logger.info({ inFlight: pendingRuns.length, graceMs: deadline.remainingMs() }, 'waiting for running jobs');
        await within(Promise.allSettled(pendingRuns.map((r) => r.done)), deadline.remainingMs());
      }
      const unfinished = [...running];
      for (const r of unfinished) {
        r.abort.abort(new Error('worker shutting down'));
        settle(r, 'nak', HAND_BACK_DELAY_MS);
      }
      if (unfinished.length > 0) logger.warn({ handedBack: unfinished.length }, 'handed back unfinished jobs');
    },
  };
}

export type Dispatcher = ReturnType<typeof createDispatcher>;
