import type { NatsConnection } from '@nats-io/nats-core';
import type { Logger } from '@redrive/lifecycle';
import {
  MicroError,
  SCHEDULER_SERVICE_NAME,
  startMicroService,
  type EventPublisher,
  type MicroServer,
  type SchedulerErrorCode,
  type ScheduleView,
  type Topology,
} from '@redrive/messaging';
import type { Pool } from '@redrive/store';
import type { SchedulerMetrics } from './metrics.js';
import { publishCancelled } from './cancelled.js';
import {
  cancelledAmong,
  cancelSchedule,
  getSchedule,
  listSchedules,
  SCHEDULE_KINDS,
  type ScheduleRow,
} from './schedules.js';

const STATUSES = ['active', 'completed', 'cancelled'] as const;
const KINDS = SCHEDULE_KINDS;
const MAX_PAGE = 500;

/** A row as the API shows it; with `withPayload`, the job's body too. */
export function toView(row: ScheduleRow, topology: Topology, withPayload = false): ScheduleView {
  const target = topology.parseJobSubject(row.subject);
  const view: ScheduleView = {
    id: row.id,
    kind: row.kind,
    status: row.status,
    subject: row.subject,
    ...(target ? { type: target.type, priority: target.priority } : {}),
    jobId: row.jobId,
    attempt: row.attempt,
    nextDueAt: row.nextDueAt?.toISOString() ?? null,
    startsAt: row.startsAt.toISOString(),
    fireCount: row.fireCount,
    ...(row.everyMs !== null || row.cron !== null
      ? {
          repeat: {
            ...(row.everyMs !== null ? { every: row.everyMs } : {}),
            ...(row.cron !== null ? { cron: row.cron } : {}),
            ...(row.tz !== null ? { tz: row.tz } : {}),
            ...(row.fireLimit !== null ? { limit: row.fireLimit } : {}),
            ...(row.endsAt !== null ? { until: row.endsAt.toISOString() } : {}),
            missed: row.missed,
          },
        }
      : {}),
    ...(row.cancelReason !== null ? { cancelReason: row.cancelReason } : {}),
    createdAt: row.createdAt.toISOString(),
    updatedAt: row.updatedAt.toISOString(),
    lastFiredAt: row.lastFiredAt?.toISOString() ?? null,
    finishedAt: row.finishedAt?.toISOString() ?? null,
  };
  if (withPayload) {
    try {
      view.payload = row.payload.byteLength === 0 ? null : (JSON.parse(row.payload.toString('utf8')) as unknown);
    } catch {
      view.payloadBase64 = row.payload.toString('base64');
    }
  }
  return view;
}

/**
 * The refusals the scheduler's operations make, each answered as a micro error with its status
 * (libs/messaging micro.ts answers INVALID_JSON and INTERNAL itself).
 */
const STATUS: Record<Exclude<SchedulerErrorCode, 'INVALID_JSON' | 'INTERNAL'>, number> = {
  VALIDATION_ERROR: 400,
  NOT_FOUND: 404,
  CONFLICT: 409,
};

class ApiError extends MicroError<SchedulerErrorCode> {
  constructor(code: keyof typeof STATUS, message: string) {
    super(STATUS[code], code, message);
  }
}

function record(body: unknown): Record<string, unknown> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new ApiError('VALIDATION_ERROR', 'the request body must be a JSON object');
  }
  return body as Record<string, unknown>;
}

function idOf(body: Record<string, unknown>): string {
  if (typeof body.id !== 'string' || body.id === '')
    throw new ApiError('VALIDATION_ERROR', 'id must be a non-empty string');
  return body.id;
}

/**
 * Serves `scheduler.list`, `scheduler.get` and `scheduler.cancel` as the NATS micro service
 * `redrive-retry-scheduler`, in a queue group so exactly one replica answers each request. Intake
 * calls it for GET/DELETE /v1/schedules: services share no database, only subjects.
 */
export function createSchedulerApi(deps: {
  nc: NatsConnection;
  topology: Topology;
  pool: Pool;
  namespace: string;
  /** Where a cancelled schedule's `job.cancelled` event goes. */
  events: EventPublisher;
  logger: Logger;
  metrics: SchedulerMetrics;
  version: string;
}) {
  const { topology, pool, namespace, logger } = deps;
  let server: MicroServer | undefined;

  const handlers = {
    list: async (body: Record<string, unknown>) => {
      const { status, kind, limit, after } = body;
      if (status !== undefined && !(STATUSES as readonly unknown[]).includes(status))
        throw new ApiError('VALIDATION_ERROR', `status must be one of ${STATUSES.join(', ')}`);
      if (kind !== undefined && !(KINDS as readonly unknown[]).includes(kind))
        throw new ApiError('VALIDATION_ERROR', `kind must be one of ${KINDS.join(', ')}`);
      if (limit !== undefined && (!Number.isInteger(limit) || (limit as number) < 1 || (limit as number) > MAX_PAGE))
        throw new ApiError('VALIDATION_ERROR', `limit must be a whole number from 1 to ${MAX_PAGE}`);
      if (after !== undefined && typeof after !== 'string')
        throw new ApiError('VALIDATION_ERROR', 'after must be a string');
      const page = await listSchedules(pool, namespace, {
        status: status as (typeof STATUSES)[number] | undefined,
        kind: kind as (typeof KINDS)[number] | undefined,
        limit: (limit as number | undefined) ?? 100,
        after: after as string | undefined,
      });
      return { schedules: page.rows.map((r) => toView(r, topology)), ...(page.next ? { next: page.next } : {}) };
    },
    get: async (body: Record<string, unknown>) => {
      const id = idOf(body);
      const row = await getSchedule(pool, namespace, id);
      if (!row) throw new ApiError('NOT_FOUND', `no schedule "${id}"`);
      return toView(row, topology, true);
    },
    cancel: async (body: Record<string, unknown>) => {
      const id = idOf(body);
      const reason = typeof body.reason === 'string' && body.reason !== '' ? body.reason : 'cancelled through the API';
      const result = await cancelSchedule(pool, namespace, id, reason);
      switch (result.outcome) {
        case 'not_found':
          throw new ApiError('NOT_FOUND', `no schedule "${id}"`);
        case 'completed':
          throw new ApiError('CONFLICT', `schedule "${id}" has already completed; there is nothing left to cancel`);
        case 'cancelled':
          await recordCancelled(id);
          deps.metrics.cancelled.inc({ by: 'api' });
          logger.info({ scheduleId: id, reason }, 'schedule cancelled');
          return toView(result.row, topology);
        case 'already_cancelled':
          // A caller trying again after an error: the event may be the part that failed.
          await recordCancelled(id);
          return toView(result.row, topology);
      }
    },
  } as const;

  /** Sends the cancelled job's lifecycle event; an error makes the caller try again. */
  async function recordCancelled(id: string): Promise<void> {
    await publishCancelled(deps.events, topology, await cancelledAmong(pool, namespace, [id]));
  }

  return {
    async start(): Promise<void> {
      server = await startMicroService(deps.nc, {
        name: SCHEDULER_SERVICE_NAME,
        version: deps.version,
        description: 'Redrive retry-scheduler: list, read and cancel schedules (delays, retries, repeats, cron)',
        metadata: { prefix: topology.options.prefix, http: '/v1/schedules' },
        root: topology.schedulerApiRoot,
        endpoints: Object.fromEntries(
          Object.entries(handlers).map(([op, handle]) => [
            op,
            { metadata: { change: String(op === 'cancel') }, run: (body: unknown) => handle(record(body)) },
          ]),
        ),
        logger,
      });
    },

    /** Stops taking requests and answers the ones in progress. */
    async stop(): Promise<void> {
      await server?.stop();
    },
  };
}
