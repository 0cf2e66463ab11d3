import { JOB_TYPE_PATTERN, PRIORITIES } from '@redrive/messaging';
import { JOB_STATUSES } from './jobs.js';
import { deadLetterView, jobSummary, timelineEntry } from './schemas.js';

// JSON schemas of the queue and job lookup operations (queue stats, pause and resume, job
// search and detail), shared by the HTTP routes and the NATS endpoints.

const type = { type: 'string', pattern: JOB_TYPE_PATTERN.source } as const;
const lane = { type: 'string', enum: [...PRIORITIES] } as const;
const at = { type: 'string', minLength: 1, maxLength: 64, description: 'RFC 3339 time with an offset' } as const;

export const queueStatsQuery = {
  type: 'object',
  additionalProperties: false,
  properties: { type },
} as const;

export const pauseBody = {
  type: 'object',
  required: ['type'],
  additionalProperties: false,
  properties: {
    type,
    lane: { ...lane, description: 'one lane of the type; without it, every lane' },
    note: { type: 'string', maxLength: 2_000 },
  },
} as const;

/** `/v1/admin/queues/:type/pause` and `…/:type/:lane/pause` take the type and lane in the path. */
export const queueParams = {
  type: 'object',
  required: ['type'],
  additionalProperties: false,
  properties: { type, lane },
} as const;

export const queueNoteBody = {
  type: 'object',
  additionalProperties: false,
  properties: { note: { type: 'string', maxLength: 2_000 } },
} as const;

export const jobSearchQuery = {
  type: 'object',
  additionalProperties: false,
  properties: {
    id: { type: 'string', minLength: 1, maxLength: 500 },
    idempotencyKey: { type: 'string', minLength: 1, maxLength: 400 },
    type,
    status: { type: 'string', enum: [...JOB_STATUSES] },
    from: at,
    to: at,
    limit: { type: 'integer', minimum: 1, maximum: 500 },
    cursor: { type: 'string', minLength: 1, maxLength: 800 },
  },
} as const;

// ---- responses

const counts = {
  type: 'object',
  properties: { succeeded: { type: 'integer' }, failed: { type: 'integer' }, deadLettered: { type: 'integer' } },
} as const;

const pause = {
  type: 'object',
  properties: { by: { type: 'string' }, at: { type: 'string' }, note: { type: 'string' } },
} as const;

const scheduled = {
  delayed: { type: 'integer' },
  retrying: { type: 'integer' },
  repeating: { type: 'integer' },
} as const;

const laneView = {
  type: 'object',
  properties: {
    lane: { type: 'string' },
    waiting: { type: 'integer' },
    running: { type: 'integer' },
    redelivered: { type: 'integer' },
    ...scheduled,
    oldestWaitingAt: { type: ['string', 'null'] },
    oldestWaitingSeconds: { type: ['integer', 'null'] },
    workers: { type: 'integer' },
    paused: { type: 'boolean' },
    pause,
  },
} as const;

export const queueStatsResponse = {
  type: 'object',
  properties: {
    readAt: { type: 'string' },
    types: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          type: { type: 'string' },
          paused: { type: 'boolean' },
          pause,
          waiting: { type: 'integer' },
          running: { type: 'integer' },
          ...scheduled,
          oldestWaitingSeconds: { type: ['integer', 'null'] },
          workers: { type: 'integer' },
          lastMinute: counts,
          lastHour: counts,
          deadLetters: { type: 'object', properties: { unresolved: { type: 'integer' } } },
          lanes: { type: 'array', items: laneView },
        },
      },
    },
  },
} as const;

export const pauseResponse = {
  type: 'object',
  properties: { type: { type: 'string' }, lane: { type: 'string' }, paused: { type: 'boolean' }, pause },
} as const;

export const jobSearchResponse = {
  type: 'object',
  properties: {
    items: { type: 'array', items: { ...jobSummary, type: 'object' } },
    nextCursor: { type: ['string', 'null'] },
  },
} as const;

export const jobDetailResponse = {
  type: 'object',
  properties: {
    jobId: { type: 'string' },
    summary: jobSummary,
    attempts: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          life: { type: 'integer' },
          attempt: { type: 'integer' },
          outcome: { type: 'string' },
          at: { type: 'string' },
          durationMs: { type: 'number' },
          errorClass: { type: 'string' },
          error: { type: 'string' },
          retryInMs: { type: 'number' },
        },
      },
    },
    logs: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          at: { type: 'string' },
          life: { type: 'integer' },
          attempt: { type: 'integer' },
          message: {},
          fields: {},
        },
      },
    },
    progress: {
      type: 'array',
      items: { type: 'object', properties: { at: { type: 'string' }, life: { type: 'integer' }, value: {} } },
    },
    steps: {
      type: 'array',
      items: {
        type: 'object',
        properties: { step: { type: 'string' }, completedAt: { type: 'string' }, result: {} },
      },
    },
    deadLetters: { type: 'array', items: deadLetterView },
    schedule: {
      type: ['object', 'null'],
      properties: {
        id: { type: 'string' },
        kind: { type: 'string' },
        status: { type: 'string' },
        nextDueAt: { type: ['string', 'null'] },
        fireCount: { type: 'integer' },
        createdAt: { type: 'string' },
      },
    },
    payloadSource: { type: ['string', 'null'] },
    payload: {},
    payloadBase64: { type: 'string' },
    headers: { type: 'object', additionalProperties: { type: 'string' } },
    traceId: { type: ['string', 'null'] },
    traceUrl: { type: ['string', 'null'] },
    timeline: { type: 'array', items: timelineEntry },
  },
} as const;
