// Over 400 lines: one delivery's handling reads top to bottom here; every decision is in fate.ts.
import type { JetStreamClient, JsMsg } from '@nats-io/jetstream';
import { type Deadline, type Logger, within } from '@redrive/lifecycle';
import {
  fallbackJobId,
  H,
  jobIdOf,
  lifeOf,
  readJobHeaders,
  type EventInput,
  type EventPublisher,
  type JobHeaders,
  type Priority,
  type Topology,
} from '@redrive/messaging';
import { classify, type RetryPolicy } from '@redrive/retry-policy';
import { ValidationError, type HandlerDefinition } from '@redrive/sdk';
import { failSpan, SpanStatusCode, startProcessSpan, traceIdOf } from '@redrive/telemetry';
import { crashFailure, createCarrier, type Run } from './carry.js';
import { openConsumer } from './consumer.js';
import { createSuccess } from './success.js';
import { DeliveryTracker, HAND_BACK_DELAY_MS, type Delivery } from './deliveries.js';
import { fateBeforeRun, fateOfFailure, fateOfLimit, fateOfNotBefore, type FateRules } from './fate.js';
import { createJobContext, jobOf, runHandler } from './job-context.js';
import { LaneGate, NEVER_PAUSED, PAUSE_RECHECK_MS, type PauseSignal } from './lane-gate.js';
import { LaneSlots, SuspectTurn } from './lanes.js';
import { createLimits } from './limits.js';
import type { WorkerMetrics } from './metrics.js';
import { createOutcomes } from './outcomes.js';
import type { CompletionsPort, GuardsPort, RateLimit, StepsPort } from './ports.js';
import { lifeField, resendSuccess, runKeyOf } from './terminal-events.js';

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
  /** Waits (retries, Not-Before, limits) above this leave the consumer for the retry-scheduler. */
  handoffThresholdMs: number;
  /** Waits up to this are timed by the worker, holding the message. */
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
  /** Whether each (type, lane) is paused by an operator (lane-gate.ts); never, without it. */
  pauses?: (type: string, lane: Priority) => PauseSignal;
  logger: Logger;
  metrics: WorkerMetrics;
  now?: () => number;
}

/** How long the runs of a job that never ended are remembered. */
const RUN_COUNT_TTL_MS = 24 * 3_600_000;
/** A run still going after this gets an attempt.started event of its own. */
const STARTED_EVENT_AFTER_MS = 1_000;

/**
 * Pulls jobs from the durable consumers of its types, in every priority lane, runs them with
 * bounded concurrency, and carries out each delivery's fate (fate.ts): run, wait here, NAK with
 * a delay, hand off to the retry-scheduler, dead-letter, or skip. `stop` stops pulling, lets
 * running jobs finish until the deadline, and hands back (NAKs) everything it still holds.
 */
export function createDispatcher(deps: DispatcherDeps) {
  const { logger, metrics, topology } = deps;
  const now = deps.now ?? Date.now;
  const rules: FateRules = {
    localDelayMaxMs: deps.localDelayMaxMs,
    handoffThresholdMs: deps.handoffThresholdMs,
    maxCrashes: deps.maxCrashes,
  };
  const slots = new LaneSlots(deps.concurrency, deps.lowLaneEvery);
  const suspects = new SuspectTurn();
  const tracker = new DeliveryTracker(Math.max(500, Math.floor(deps.ackWaitMs / 2)), now);
  const running = new Set<Delivery>();
  const gates: LaneGate[] = [];
  const loops: Promise<void>[] = [];
  const outcomes = createOutcomes({ js: deps.js, topology, maxPayload: deps.maxPayload });
  const heldBackFor = createLimits(deps);
  const succeed = createSuccess({ ...deps, tracker });
  const carry = createCarrier({
    tracker,
    outcomes,
    metrics,
    topology,
    handoffThresholdMs: deps.handoffThresholdMs,
    rerun,
    stopping: () => stopping,
  });
  let stopping = false;
  let seq = 0;

  const settle = (d: Delivery, how: 'ack' | 'nak' | 'term', delayMs?: number) => tracker.settle(d, how, delayMs);

  const busy = new Map<Priority, number>();
  const occupy = (lane: Priority, by: 1 | -1) => {
    const n = (busy.get(lane) ?? 0) + by;
    busy.set(lane, n);
    metrics.busy.set({ lane }, n);
    metrics.inFlight.set(running.size);
  };

  function start(d: Delivery): void {
    running.add(d);
    occupy(d.lane, 1);
    d.done = execute(d).finally(() => {
      running.delete(d);
      occupy(d.lane, -1);
      metrics.held.set(tracker.waiting);
      slots.release();
    });
  }

  /** Runs a delivery again here once it has a slot (after a wait that used no attempt). */
  async function rerun(d: Delivery): Promise<void> {
    // Its wait ended while the lane is paused: it waits on, held, until the lane resumes.
    if (!stopping && deps.pauses?.(d.type, d.lane).paused())
      return tracker.hold(d, PAUSE_RECHECK_MS, () => void rerun(d));
    const granted = await slots.acquire(d.lane);
    if (!granted || stopping) {
      if (granted) slots.release();
      settle(d, 'nak', HAND_BACK_DELAY_MS);
      return;
    }
    start(d);
  }

  async function execute(d: Delivery): Promise<void> {
    const m = d.msg;
    const started = performance.now();
    let startedAt = new Date();
    const { span, ctx } = startProcessSpan((name) => m.headers?.get(name) || undefined, {
      destination: m.subject,
      messageId: m.headers?.get(H.msgId) || undefined,
      consumer: d.consumer,
      attributes: { 'redrive.job.type': d.type, 'messaging.nats.stream.sequence': m.seq },
    });
    d.trace = ctx;
    const traceId = traceIdOf(ctx) ?? '';
    // The job's own id and life even when another header turns out malformed: its dead letter
    // and its timeline are then found under the id the producer gave it, in the right life.
    const life = lifeOf(m.headers);
    let meta: JobHeaders = {
      jobId: jobIdOf(m.headers, fallbackJobId(topology.streams.jobs, m.seq)),
      attempt: 0,
      ...(life ? { life } : {}),
    };
    let attempt = m.info.deliveryCount;
    const pending: Promise<unknown>[] = [];
    const emit = (e: EventInput) => {
      const p = deps.events
        .publish(e)
        .catch((err: unknown) => logger.error({ err, jobId: e.jobId, kind: e.kind }, 'event not stored'));
      pending.push(p);
      return p;
    };
    // One child logger per delivery (each one serializes its bindings).
    let log: Logger = logger;
    let release: (() => Promise<void>) | undefined;
    let endTurn: (() => void) | undefined;
    let runCounted = false;

    try {
      meta = readJobHeaders(m.headers, meta.jobId);
      attempt = meta.attempt + m.info.deliveryCount;
      log = logger.child({ jobId: meta.jobId, traceId, type: d.type, attempt });
      span.setAttributes({ 'redrive.job.id': meta.jobId, 'redrive.job.attempt': attempt });
      const run: Run = { meta, attempt, traceId, ctx, log, emit };

      const due = fateOfNotBefore(meta.notBefore, attempt, now(), rules);
      if (due.kind !== 'run') return await carry(d, due, run);
      const handler = deps.handlers.get(d.type);
      if (!handler) throw new ValidationError(`no handler for job type "${d.type}"`);
      const job = jobOf(d, meta, attempt);

      // A keyed job's completion is recorded durably in NATS; any other job's in Redis, which
      // is fast but fails open (a lost ack during a Redis outage can then run a job twice).
      const keyed = meta.idempotencyKey !== undefined && deps.completions !== undefined;
      const record = keyed ? await deps.completions!.get(meta.jobId) : undefined;
      // One Redis call: did an earlier run complete the job (a lost ack), and how many of its
      // runs started and never ended (they died with their worker)? The count ends with the run.
      const counted = deps.guards ? await deps.guards.runs.start(runKeyOf(meta), RUN_COUNT_TTL_MS) : undefined;
      runCounted = counted !== undefined;
      const crashed = (counted?.unfinished ?? 0) - 1;
      const before = fateBeforeRun(
        {
          completed: record !== undefined || (!keyed && !!counted?.completed),
          crashed,
          suspectDeaths: counted?.suspectDeaths ?? 0,
        },
        rules,
      );
      if (before.kind === 'skip' && record) {
        // The success event of a keyed job has a fixed id: it is sent again in case the run
        // that recorded it could not store it; the audit trail keeps it once.
        if (!(await resendSuccess(deps.events, d, meta, record, traceId, log))) return;
      }
      if (before.kind === 'deadLetter') {
        metrics.processed.inc({ type: d.type, outcome: 'dead_lettered' });
        return await carry(d, before, { ...run, failure: crashFailure(run, d.type, crashed) });
      }
      if (before.kind === 'skip') return await carry(d, before, run);
      if (before.kind === 'isolate') {
        // The delivery stays held (the tracker keeps it alive) while it waits for its turn.
        log.info({ crashed }, 'an earlier run died with its worker; runs once no other suspect runs here');
        const turn = await suspects.take(d.lane);
        if (turn) endTurn = () => suspects.end();
        if (!turn || stopping || d.settled) {
          // Handed back unrun at shutdown: its count is left as it is (one more unfinished run
          // makes it no more guilty; only isolated deaths do), not cleared as a run's end would.
          runCounted = false;
          return void settle(d, 'nak', HAND_BACK_DELAY_MS);
        }
        await deps.guards!.runs.suspect(runKeyOf(meta), RUN_COUNT_TTL_MS);
      }

      const limited = await heldBackFor(job, handler, d.holder);
      if (limited && limited.ms > 0) {
        metrics.heldBack.inc({ type: d.type });
        log.debug({ waitMs: limited.ms }, 'job held back by a limit');
        return await carry(d, fateOfLimit(limited.ms, attempt, now(), rules), run);
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
        const jobCtx = createJobContext(deps, job, { abort: d.abort, traceId, log, emit });
        await runHandler(handler, job, jobCtx, d.abort, ctx, handler.timeoutMs ?? deps.jobTimeoutMs);
      } finally {
        clearTimeout(startedTimer);
      }

      const durationMs = Math.round(performance.now() - started);
      ({ runCounted } = await succeed(d, run, { keyed, durationMs, startedAt, pending, runCounted }));
      span.setStatus({ code: SpanStatusCode.OK });
    } catch (err) {
      const durationMs = Math.round(performance.now() - started);
      const classification = classify(err, now());
      failSpan(span, err, classification.errorClass);
      if (d.settled) return; // handed back at shutdown while it ran
      if (log === logger) log = logger.child({ jobId: meta.jobId, traceId, type: d.type, attempt });
      const fate = fateOfFailure(
        deps.policy,
        { type: d.type, classification, attempt, maxAttempts: meta.maxAttempts, now: now() },
        rules,
      );
      const outcome = fate.kind === 'deadLetter' ? 'dead_lettered' : 'retried';
      metrics.processed.inc({ type: d.type, outcome });
      metrics.duration.observe({ type: d.type, outcome }, durationMs / 1000);
      const failure = {
        jobId: meta.jobId,
        type: d.type,
        attempt,
        traceId,
        errorClass: fate.errorClass,
        error: classification.message,
        ...lifeField(meta),
      };
      await emit({
        kind: 'attempt.failed',
        ...failure,
        durationMs,
        ...(fate.delayMs !== undefined ? { delayMs: fate.delayMs } : {}),
      });
      if (fate.kind !== 'deadLetter')
        log.warn(
          { err, errorClass: fate.errorClass, retryInMs: fate.delayMs, fate: fate.kind },
          'job failed, will retry',
        );
      await carry(d, fate, {
        meta,
        attempt,
        traceId,
        ctx,
        log,
        emit,
        failure: { event: failure, err },
      });
    } finally {
      span.end();
      // The run ended here, whatever its outcome: it was no crash.
      if (runCounted) await deps.guards?.runs.end(runKeyOf(meta));
      endTurn?.();
      await release?.().catch(() => undefined);
      await Promise.all(pending);
    }
  }

  async function consumeLane(lane: Priority, type: string): Promise<void> {
    const open = () =>
      openConsumer(deps.js, topology.streams.jobs, topology.workerConsumerName(lane, type), deps.prefetch, {
        stopping: () => stopping,
        onRetry: (err, retryInMs) =>
          logger.warn({ err, lane, type, retryInMs }, 'could not open the consumer; retrying'),
      });
    const gate = new LaneGate(open, deps.pauses?.(type, lane) ?? NEVER_PAUSED, tracker.keepaliveMs);
    gates.push(gate);
    for await (const m of gate.messages()) {
      if (stopping) {
        // Closing the iterator still yields what was already buffered: hand it straight back.
        m.nak(HAND_BACK_DELAY_MS);
        continue;
      }
      if (!tracker.take(m)) {
        metrics.duplicates.inc({ type });
        logger.debug({ seq: m.seq, type }, 'ignored a second delivery of a message already held here');
        continue;
      }
      // While it waits for a slot, the tracker keeps its ack timer from running out.
      const granted = await slots.acquire(lane);
      // Paused while it waited for the slot, the gate holds it until the lane resumes.
      if (!granted || stopping || !gate.admit(m)) {
        if (granted) slots.release();
        tracker.drop(m);
        if (!granted || stopping) m.nak(HAND_BACK_DELAY_MS);
        continue;
      }
      start(newDelivery(m, lane, type));
    }
  }

  function newDelivery(msg: JsMsg, lane: Priority, type: string): Delivery {
    const holder = `${process.pid}:${++seq}`;
    return {
      msg,
      lane,
      type,
      consumer: topology.workerConsumerName(lane, type),
      abort: new AbortController(),
      settled: false,
      done: Promise.resolve(),
      holder,
    };
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
      return !stopping && gates.length === deps.types.length * 3 && gates.every((g) => g.serving);
    },

    get inFlight(): number {
      return running.size;
    },

    async stop(deadline: Deadline): Promise<void> {
      stopping = true;
      slots.close();
      suspects.close();
      await within(Promise.all(gates.map((g) => g.close())), 2_000);
      await within(Promise.allSettled(loops), 2_000);
      // Jobs waiting on a timer go back now, with what is left of their wait.
      for (const { delivery, remainingMs } of tracker.cancelWaits())
        settle(delivery, 'nak', Math.max(HAND_BACK_DELAY_MS, remainingMs));
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
      tracker.close();
    },
  };
}

export type Dispatcher = ReturnType<typeof createDispatcher>;
