import type { FastifyInstance } from 'fastify';
import { errorBodySchema, HttpError } from '@redrive/http';
import {
  MicroError,
  MicroUnavailableError,
  type ScheduleListQuery,
  type SchedulerClient,
  type SchedulerErrorCode,
} from '@redrive/messaging';

const scheduleSchema = {
  type: 'object',
  required: ['id', 'kind', 'status', 'subject', 'jobId', 'nextDueAt', 'fireCount', 'createdAt'],
  properties: {
    id: { type: 'string' },
    kind: { type: 'string' },
    status: { type: 'string' },
    subject: { type: 'string' },
    type: { type: 'string' },
    priority: { type: 'string' },
    jobId: { type: 'string' },
    attempt: { type: 'integer' },
    nextDueAt: { type: ['string', 'null'] },
    startsAt: { type: 'string' },
    fireCount: { type: 'integer' },
    repeat: {
      type: 'object',
      properties: {
        every: { type: 'integer' },
        cron: { type: 'string' },
        tz: { type: 'string' },
        limit: { type: 'integer' },
        until: { type: 'string' },
        missed: { type: 'string' },
      },
    },
    cancelReason: { type: 'string' },
    createdAt: { type: 'string' },
    updatedAt: { type: 'string' },
    lastFiredAt: { type: ['string', 'null'] },
    finishedAt: { type: ['string', 'null'] },
    payload: {},
    payloadBase64: { type: 'string' },
  },
} as const;

const errorResponses = { 400: errorBodySchema, 401: errorBodySchema, 404: errorBodySchema, 503: errorBodySchema };
const idParams = {
  type: 'object',
  required: ['id'],
  properties: { id: { type: 'string', minLength: 1, maxLength: 255 } },
} as const;

export interface ScheduleRoutesOptions {
  /** The retry-scheduler's micro service; absent, every route answers 503. */
  scheduler: SchedulerClient | undefined;
}

/** Turns the scheduler's answers into HTTP: its refusals keep their meaning, its absence is a 503. */
async function ask<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    if (err instanceof MicroUnavailableError) {
      const message = `the retry-scheduler did not answer (${err.message}); retry later`;
      throw new HttpError(503, 'SCHEDULER_UNAVAILABLE', message, { 'retry-after': '1' });
    }
    if (err instanceof MicroError) {
      // The client lets only the scheduler's own codes through (SCHEDULER_ERROR_CODES).
      const code = err.code as SchedulerErrorCode;
      switch (code) {
        case 'NOT_FOUND':
        case 'CONFLICT':
        case 'INVALID_JSON':
        case 'VALIDATION_ERROR':
          throw new HttpError(err.statusCode, code, err.message);
        case 'INTERNAL':
          throw new HttpError(503, 'SCHEDULER_UNAVAILABLE', err.message, { 'retry-after': '1' });
      }
    }
    throw err;
  }
}

/**
 * GET /v1/schedules, GET /v1/schedules/:id and DELETE /v1/schedules/:id. Intake reads no
 * database: it asks the retry-scheduler's micro service over NATS, and one replica answers.
 */
export async function scheduleRoutes(app: FastifyInstance, opts: ScheduleRoutesOptions): Promise<void> {
  // Scopes are checked on the matched route by the app's guard (createHttpApp).
  const read = { access: 'schedules:read' };
  const cancel = { access: 'schedules:cancel' };
  const scheduler = (): SchedulerClient => {
    if (!opts.scheduler) throw new HttpError(503, 'SCHEDULER_UNAVAILABLE', 'this intake has no scheduler connection');
    return opts.scheduler;
  };

  app.get<{ Querystring: { status?: string; kind?: string; limit?: string; cursor?: string } }>(
    '/v1/schedules',
    {
      config: read,
      schema: {
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            status: { type: 'string', enum: ['active', 'completed', 'cancelled'] },
            kind: { type: 'string', enum: ['delay', 'retry', 'redrive', 'repeat', 'cron'] },
            // A string with a pattern: the range is refused with the same words as before coercion.
            limit: { type: 'string', pattern: '^(?:[1-9]\\d?|[1-4]\\d\\d|500)$' },
            cursor: { type: 'string', minLength: 1, maxLength: 255 },
          },
        },
        response: {
          200: {
            type: 'object',
            required: ['schedules'],
            properties: { schedules: { type: 'array', items: scheduleSchema }, next: { type: 'string' } },
          },
          ...errorResponses,
        },
      },
    },
    async (req) => {
      const q = req.query;
      const query: ScheduleListQuery = {
        ...(q.status ? { status: q.status as ScheduleListQuery['status'] } : {}),
        ...(q.kind ? { kind: q.kind as ScheduleListQuery['kind'] } : {}),
        ...(q.limit ? { limit: Number(q.limit) } : {}),
        ...(q.cursor ? { after: q.cursor } : {}),
      };
      return ask(() => scheduler().list(query));
    },
  );

  app.get<{ Params: { id: string } }>(
    '/v1/schedules/:id',
    { config: read, schema: { params: idParams, response: { 200: scheduleSchema, ...errorResponses } } },
    async (req) => ask(() => scheduler().get(req.params.id)),
  );

  app.delete<{ Params: { id: string } }>(
    '/v1/schedules/:id',
    {
      config: cancel,
      schema: { params: idParams, response: { 200: scheduleSchema, 409: errorBodySchema, ...errorResponses } },
    },
    async (req) => ask(() => scheduler().cancel(req.params.id, 'cancelled through DELETE /v1/schedules/:id')),
  );
}
