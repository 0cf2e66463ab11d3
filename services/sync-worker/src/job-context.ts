import type { JetStreamClient, JsMsg } from '@nats-io/jetstream';
import type { Logger } from '@redrive/lifecycle';
import {
  headersToObject,
  requestStopRepeat,
  type EventInput,
  type JobHeaders,
  type Priority,
  type Topology,
} from '@redrive/messaging';
import { JobTimeoutError, ValidationError, type HandlerDefinition, type Job, type JobContext } from '@redrive/sdk';
import { context, type Context } from '@redrive/telemetry';
import type { StepsPort } from './ports.js';

const decoder = new TextDecoder();

function parsePayload(raw: Uint8Array): unknown {
  if (raw.byteLength === 0) return null;
  try {
    return JSON.parse(decoder.decode(raw));
  } catch (err) {
    throw new ValidationError(`the job body is not JSON: ${(err as Error).message}`, '');
  }
}

/** The job a handler gets; a body that is not JSON fails it as a validation error. */
export function jobOf(d: { msg: JsMsg; type: string; lane: Priority }, meta: JobHeaders, attempt: number): Job {
  return {
    id: meta.jobId,
    type: d.type,
    priority: d.lane,
    attempt,
    payload: parsePayload(d.msg.data),
    raw: d.msg.data,
    headers: headersToObject(d.msg.headers),
  };
}

// The runs (by their abort controller, one per delivery) whose handler called ctx.step(): only
// their checkpoints are cleared when the job succeeds (success.ts), so a job without steps
// costs Postgres nothing.
const stepRuns = new WeakSet<AbortController>();

/** Whether the handler of this run (its abort controller) called ctx.step(). */
export function usedSteps(abort: AbortController): boolean {
  return stepRuns.has(abort);
}

export interface JobContextDeps {
  js: JetStreamClient;
  topology: Topology;
  steps?: StepsPort | undefined;
}

/**
 * The `ctx` a handler gets: the run's abort signal, its trace id, logs and progress that reach
 * the audit trail, checkpointed steps, and `stopRepeat()`.
 */
export function createJobContext(
  deps: JobContextDeps,
  job: Job,
  run: { abort: AbortController; traceId: string; log: Logger; emit: (e: EventInput) => Promise<unknown> },
): JobContext {
  const { log, emit } = run;
  const base = { jobId: job.id, type: job.type, attempt: job.attempt, traceId: run.traceId };
  return {
    // A getter: node makes an AbortController's signal on first use, and most handlers never
    // look at it (making it was 2.5% of a busy worker's CPU).
    get signal() {
      return run.abort.signal;
    },
    traceId: run.traceId,
    log: (message, fields) => {
      log.info({ ...fields, handlerLog: true }, message);
      void emit({ kind: 'job.log', ...base, data: { message, ...(fields ? { fields } : {}) } });
    },
    progress: (value) => void emit({ kind: 'job.progress', ...base, data: value }),
    step: async <T>(name: string, fn: () => Promise<T> | T): Promise<T> => {
      const steps = deps.steps;
      if (!steps) throw new Error(`ctx.step("${name}") needs DATABASE_URL: step results are checkpointed in Postgres`);
      stepRuns.add(run.abort);
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
      void requestStopRepeat(deps.js, deps.topology, job.headers).catch((err: unknown) =>
        log.error({ err }, 'stopRepeat request not stored; the schedule fires again'),
      ),
  };
}

/**
 * Runs the handler inside the job's trace context, until it settles or its deadline passes; at
 * the deadline the run's signal is aborted and the run fails with JobTimeoutError.
 */
export async function runHandler(
  handler: HandlerDefinition,
  job: Job,
  ctx: JobContext,
  abort: AbortController,
  trace: Context,
  timeoutMs: number,
): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const err = new JobTimeoutError(timeoutMs);
      abort.abort(err);
      reject(err);
    }, timeoutMs);
  });
  try {
    await context.with(trace, () => Promise.race([Promise.resolve().then(() => handler.handle(job, ctx)), timedOut]));
  } finally {
    clearTimeout(timer);
  }
}
