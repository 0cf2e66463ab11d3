import type { ConsumerMessages, JetStreamClient, JsMsg } from '@nats-io/jetstream';
import { type Deadline, type Logger, within } from '@redrive/lifecycle';
import { HeaderError, headersToObject, readJobHeaders, type Priority, type Topology } from '@redrive/messaging';
import { ValidationError, type HandlerDefinition, type Job } from '@redrive/sdk';
import {
  context,
  ensureTraceContext,
  extractTraceContext,
  SpanKind,
  SpanStatusCode,
  trace,
  traceIdOf,
  tracer,
  type Context,
} from '@redrive/telemetry';
import { LaneSlots } from './lanes.js';
import type { WorkerMetrics } from './metrics.js';

/** The handler ran past its deadline. */
export class JobTimeoutError extends Error {
  override readonly name = 'JobTimeoutError';
  constructor(readonly timeoutMs: number) {
    super(`handler did not finish within ${timeoutMs} ms`);
  }
}

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
  retryDelayMs: number;
  logger: Logger;
  metrics: WorkerMetrics;
}

interface Running {
  msg: JsMsg;
  abort: AbortController;
  /** Set once the message has been acked, naked or termed: it must not be answered twice. */
  settled: boolean;
  done: Promise<void>;
}

const decoder = new TextDecoder();

function parsePayload(raw: Uint8Array): unknown {
  if (raw.byteLength === 0) return null;
  try {
    return JSON.parse(decoder.decode(raw));
  } catch (err) {
    throw new ValidationError(`the job body is not JSON: ${(err as Error).message}`, '');
  }
}

/**
 * Pulls jobs from the durable consumers of its types, in every priority lane, and runs them
 * with bounded concurrency. `stop` stops pulling, lets running jobs finish until the deadline,
 * and hands back (NAKs) everything it still holds, so no job waits for an ack timeout.
 */
export function createDispatcher(deps: DispatcherDeps) {
  const { logger, metrics, topology } = deps;
  const slots = new LaneSlots(deps.concurrency, deps.lowLaneEvery);
  const running = new Set<Running>();
  const streams: ConsumerMessages[] = [];
  const loops: Promise<void>[] = [];
  let stopping = false;

  function settle(r: Running, how: 'ack' | 'nak' | 'term', arg?: number | string): boolean {
    if (r.settled) return false;
    r.settled = true;
    if (how === 'ack') r.msg.ack();
    else if (how === 'nak') r.msg.nak(arg as number | undefined);
    else r.msg.term(arg as string | undefined);
    return true;
  }

  async function execute(r: Running, lane: Priority, type: string): Promise<void> {
    const m = r.msg;
    const started = performance.now();
    let jobId = `${topology.streams.jobs}:${m.seq}`;
    let parent: Context = context.active();
    try {
      const headers = m.headers;
      parent = ensureTraceContext(extractTraceContext((name) => headers?.get(name) || undefined));
      const meta = readJobHeaders(headers, jobId);
      jobId = meta.jobId;
      const handler = deps.handlers.get(type);
      if (!handler) throw new ValidationError(`no handler for job type "${type}"`);

      if (meta.notBefore && meta.notBefore.getTime() > Date.now()) {
        const wait = meta.notBefore.getTime() - Date.now();
        settle(r, 'nak', wait);
        logger.debug({ jobId, traceId: traceIdOf(parent), waitMs: wait }, 'job not due yet');
        return;
      }

      const job: Job = {
        id: jobId,
        type,
        priority: lane,
        attempt: meta.attempt + m.info.deliveryCount,
        payload: parsePayload(m.data),
        raw: m.data,
        headers: headersToObject(headers),
      };
      const span = tracer().startSpan(
        `process ${type}`,
        {
          kind: SpanKind.CONSUMER,
          attributes: {
            'messaging.system': 'nats',
            'messaging.destination.name': m.subject,
            'redrive.job.id': jobId,
            'redrive.job.attempt': job.attempt,
          },
        },
        parent,
      );
      const ctx = trace.setSpan(parent, span);
      const traceId = traceIdOf(ctx) ?? '';
      const log = logger.child({ jobId, traceId, type, attempt: job.attempt });
      log.debug({ seq: m.seq, deliveries: m.info.deliveryCount, redelivered: m.redelivered }, 'job started');

      const timeoutMs = handler.timeoutMs ?? deps.jobTimeoutMs;
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          const err = new JobTimeoutError(timeoutMs);
          r.abort.abort(err);
          reject(err);
        }, timeoutMs);
      });
      // A run longer than half the ack wait tells the server it is still working, so the
      // job is not redelivered to another worker while this one is busy with it.
      const heartbeat = setInterval(
        () => {
          if (!r.settled) m.working();
        },
        Math.max(500, Math.floor(deps.ackWaitMs / 2)),
      );
      try {
        await context.with(ctx, () =>
          Promise.race([
            Promise.resolve().then(() =>
              handler.handle(job, {
                signal: r.abort.signal,
                traceId,
                log: (message, fields) => log.info({ ...fields, handlerLog: true }, message),
              }),
            ),
            timedOut,
          ]),
        );
        const seconds = (performance.now() - started) / 1000;
        if (settle(r, 'ack')) {
          metrics.processed.inc({ type, outcome: 'succeeded' });
          metrics.duration.observe({ type, outcome: 'succeeded' }, seconds);
          log.info({ ms: Math.round(seconds * 1000) }, 'job succeeded');
        }
        span.setStatus({ code: SpanStatusCode.OK });
      } catch (err) {
        const seconds = (performance.now() - started) / 1000;
        span.recordException(err as Error);
        span.setStatus({ code: SpanStatusCode.ERROR, message: (err as Error).message });
        if (err instanceof ValidationError) throw err;
        // The retry engine decides per error class; until then a failure is retried after a delay.
        if (settle(r, 'nak', deps.retryDelayMs)) {
          metrics.processed.inc({ type, outcome: 'failed' });
          metrics.duration.observe({ type, outcome: 'failed' }, seconds);
          log.warn({ err, ms: Math.round(seconds * 1000), retryInMs: deps.retryDelayMs }, 'job failed');
        }
      } finally {
        clearTimeout(timer);
        clearInterval(heartbeat);
        span.end();
      }
    } catch (err) {
      // A job that can never be understood (bad headers, not JSON, no handler) is terminated;
      // the server's MSG_TERMINATED advisory takes it to the dead-letter path.
      if (err instanceof ValidationError || err instanceof HeaderError) {
        if (settle(r, 'term', err.message)) {
          metrics.processed.inc({ type, outcome: 'rejected' });
          logger.error({ jobId, traceId: traceIdOf(parent), type, err }, 'job rejected');
        }
        return;
      }
      settle(r, 'nak', deps.retryDelayMs);
      logger.error({ jobId, type, err }, 'job could not be run');
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
        m.nak();
        continue;
      }
      // While this message waits for a slot it is ours: keep its ack timer from running out.
      const keepalive = setInterval(() => m.working(), Math.max(500, Math.floor(deps.ackWaitMs / 2)));
      const granted = await slots.acquire(lane);
      clearInterval(keepalive);
      if (!granted || stopping) {
        if (granted) slots.release();
        m.nak();
        continue;
      }
      const r: Running = { msg: m, abort: new AbortController(), settled: false, done: Promise.resolve() };
      running.add(r);
      metrics.inFlight.set(running.size);
      r.done = execute(r, lane, type).finally(() => {
        running.delete(r);
        metrics.inFlight.set(running.size);
        slots.release();
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
      // Surface a consumer that cannot be opened at once (missing stream/consumer).
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
      const pending = [...running];
      if (pending.length > 0) {
        logger.info({ inFlight: pending.length, graceMs: deadline.remainingMs() }, 'waiting for running jobs');
        await within(Promise.allSettled(pending.map((r) => r.done)), deadline.remainingMs());
      }
      const unfinished = [...running];
      for (const r of unfinished) {
        r.abort.abort(new Error('worker shutting down'));
        settle(r, 'nak');
      }
      if (unfinished.length > 0) logger.warn({ handedBack: unfinished.length }, 'handed back unfinished jobs');
    },
  };
}

export type Dispatcher = ReturnType<typeof createDispatcher>;
