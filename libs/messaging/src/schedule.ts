import type { JetStreamClient, PubAck } from '@nats-io/jetstream';
import { headers as natsHeaders, type NatsConnection } from '@nats-io/nats-core';
import { context as otelContext, type Context } from '@opentelemetry/api';
import { injectTraceContext } from '@redrive/telemetry';
import { H } from './headers.js';
import { requestMicro } from './micro.js';
import { PublishFailedError } from './publish.js';
import { msgIds } from './wire.js';
import type { Topology } from './topology.js';

// The retry-scheduler's contract. Requests are JetStream messages on `schedule.<kind>` (the
// SCHEDULE stream, so none is lost while no scheduler runs): the body is the job's payload,
// untouched, and headers say where and when to publish it, so a request can be written with the
// `nats` CLI too. Reading and cancelling schedules is the scheduler's NATS micro service
// (micro.ts) on `scheduler.<op>`.

/** Kinds of request on `schedule.<kind>`; all but `cancel` create a schedule. */
export const SCHEDULE_REQUEST_KINDS = ['delay', 'retry', 'redrive', 'repeat', 'cancel'] as const;
export type ScheduleRequestKind = (typeof SCHEDULE_REQUEST_KINDS)[number];

/** A job to publish later (once, or repeatedly), as a producer-side service asks for it. */
export interface ScheduleJobRequest {
  kind: 'delay' | 'retry' | 'redrive' | 'repeat';
  /** The schedule's id: the requester's to choose, so it can answer with it at once. */
  scheduleId: string;
  /** The JOBS subject each fire is published to: `jobs.<priority>.<type>`. */
  subject: string;
  payload: Uint8Array;
  jobId: string;
  /** Attempts already made (a retry hand-off); 0 for a new job. */
  attempt: number;
  maxAttempts?: number;
  /** The producer's idempotency key; travels with every fire (Redrive-Idempotency-Key). */
  idempotencyKey?: string;
  /** The first fire; for a repeat without it, the scheduler starts one interval (or cron instant) from now. */
  dueAt?: Date;
  /** For `repeat`: {"every": ms} or {"cron", "tz"}, with "limit", "until", "missed". */
  repeat?: Record<string, unknown>;
}

/**
 * Publishes a schedule request and resolves once JetStream stored it (PubAck). The schedule id is
 * the message id, so a retried request is stored once, and the scheduler makes at most one
 * schedule of it even when it is delivered again.
 */
export async function publishScheduleRequest(
  js: JetStreamClient,
  topology: Topology,
  req: ScheduleJobRequest,
  opts: { ctx?: Context; timeoutMs?: number } = {},
): Promise<PubAck> {
  const h = natsHeaders();
  h.set(H.scheduleId, req.scheduleId);
  h.set(H.originalSubject, req.subject);
  h.set(H.jobId, req.jobId);
  h.set(H.attempt, String(req.attempt));
  if (req.maxAttempts !== undefined) h.set(H.maxAttempts, String(req.maxAttempts));
  if (req.idempotencyKey) h.set(H.idempotencyKey, req.idempotencyKey);
  if (req.dueAt) h.set(H.dueAt, req.dueAt.toISOString());
  if (req.repeat) h.set(H.repeat, JSON.stringify(req.repeat));
  injectTraceContext((k, v) => h.set(k, v), opts.ctx ?? otelContext.active());
  const subject = topology.scheduleSubject(req.kind);
  try {
    return await js.publish(subject, req.payload, {
      headers: h,
      msgID: msgIds.scheduleRequest(req.scheduleId),
      timeout: opts.timeoutMs ?? 5_000,
    });
  } catch (err) {
    throw new PublishFailedError(subject, err);
  }
}

/** The `Redrive-Reason` of a cancel request sent by a handler's `ctx.stopRepeat()`. */
export const STOP_REPEAT_REASON = 'stop_repeat';

/**
 * Asks the scheduler to end the repeat a job belongs to (the handler's `ctx.stopRepeat()`, also
 * from a retry of a fire), resolving once the request is stored; resolves false, publishing
 * nothing, for a job that no repeat fired.
 */
export async function requestStopRepeat(
  js: JetStreamClient,
  topology: Topology,
  jobHeaders: Readonly<Record<string, string>>,
): Promise<boolean> {
  const scheduleId = jobHeaders[H.repeatId];
  if (!scheduleId) return false;
  const h = natsHeaders();
  h.set(H.scheduleId, scheduleId);
  h.set(H.reason, STOP_REPEAT_REASON);
  await js.publish(topology.scheduleSubject('cancel'), new Uint8Array(), {
    headers: h,
    msgID: msgIds.cancelRequest(scheduleId),
    timeout: 5_000,
  });
  return true;
}

/** A schedule as the scheduler's API shows it. */
export interface ScheduleView {
  id: string;
  kind: 'delay' | 'retry' | 'redrive' | 'repeat' | 'cron';
  status: 'active' | 'completed' | 'cancelled';
  subject: string;
  type?: string;
  priority?: string;
  /** The job id a one-shot fire carries; fire n of a repeat carries `<jobId>:<n>`. */
  jobId: string;
  /** Attempts already made, for a retry. */
  attempt: number;
  nextDueAt: string | null;
  startsAt: string;
  fireCount: number;
  repeat?: { every?: number; cron?: string; tz?: string; limit?: number; until?: string; missed: string };
  cancelReason?: string;
  createdAt: string;
  updatedAt: string;
  lastFiredAt: string | null;
  finishedAt: string | null;
  /** Only from `get`: the job's body, parsed when it is JSON, else base64 in `payloadBase64`. */
  payload?: unknown;
  payloadBase64?: string;
}

export interface ScheduleListQuery {
  status?: ScheduleView['status'];
  kind?: ScheduleView['kind'];
  /** At most this many (1–500; 100 by default). */
  limit?: number;
  /** The `next` cursor of the previous page. */
  after?: string;
}

export interface ScheduleListPage {
  schedules: ScheduleView[];
  /** Pass as `after` for the next page; absent on the last one. */
  next?: string;
}

/** The retry-scheduler's NATS micro service name (`nats micro ls`, `nats micro info redrive-retry-scheduler`). */
export const SCHEDULER_SERVICE_NAME = 'redrive-retry-scheduler';

/** The scheduler's endpoints (`<Topology.schedulerApiRoot>.<op>`). */
export const SCHEDULER_OPS = ['list', 'get', 'cancel'] as const;
export type SchedulerOp = (typeof SCHEDULER_OPS)[number];

/**
 * The codes of the scheduler's micro errors, each with its status (the micro error code):
 * INVALID_JSON and VALIDATION_ERROR 400, NOT_FOUND 404, CONFLICT 409 (the schedule has
 * completed), INTERNAL 500 (worth trying again).
 */
export const SCHEDULER_ERROR_CODES = ['INVALID_JSON', 'VALIDATION_ERROR', 'NOT_FOUND', 'CONFLICT', 'INTERNAL'] as const;
export type SchedulerErrorCode = (typeof SCHEDULER_ERROR_CODES)[number];

/**
 * Calls the retry-scheduler's micro service; one of its replicas answers each call. A refusal
 * is a MicroError whose code is a SchedulerErrorCode; no answer in time, a MicroUnavailableError.
 */
export function createSchedulerClient(nc: NatsConnection, topology: Topology, opts: { timeoutMs?: number } = {}) {
  const call = <T>(op: SchedulerOp, body: unknown): Promise<T> =>
    requestMicro<T, SchedulerErrorCode>(nc, topology.schedulerApiSubject(op), body, {
      codes: SCHEDULER_ERROR_CODES,
      ...(opts.timeoutMs !== undefined ? { timeoutMs: opts.timeoutMs } : {}),
    });
  return {
    list: (query: ScheduleListQuery = {}) => call<ScheduleListPage>('list', query),
    get: (id: string) => call<ScheduleView>('get', { id }),
    cancel: (id: string, reason?: string) => call<ScheduleView>('cancel', { id, ...(reason ? { reason } : {}) }),
  };
}

export type SchedulerClient = ReturnType<typeof createSchedulerClient>;
