import { DEAD_LETTER_REASONS, JOB_TYPE_PATTERN } from '@redrive/messaging';

// JSON schemas of the admin operations, shared by the HTTP routes and the NATS endpoints so
// both validate (and document) the same requests.

const note = { type: 'string', maxLength: 2_000 } as const;
const delay = { type: 'string', minLength: 1, maxLength: 32, description: 'a duration: 30s, 5m, 2h, 1d' } as const;
const at = { type: 'string', minLength: 1, maxLength: 64, description: 'RFC 3339 time with an offset' } as const;
const steps = {
  type: 'string',
  enum: ['keep', 'reset'],
  description: "the job's ctx.step() checkpoints: keep (resume after completed steps, the default) or reset",
} as const;

export const filterProperties = {
  type: { type: 'string', pattern: JOB_TYPE_PATTERN.source },
  reason: { type: 'string', enum: [...DEAD_LETTER_REASONS] },
  errorClass: { type: 'string', minLength: 1, maxLength: 100 },
  resolved: { type: 'boolean' },
  from: at,
  to: at,
  q: { type: 'string', minLength: 1, maxLength: 200, description: 'text the error contains' },
  jobId: { type: 'string', minLength: 1, maxLength: 500 },
} as const;

export const listQuery = {
  type: 'object',
  additionalProperties: false,
  properties: {
    ...filterProperties,
    limit: { type: 'integer', minimum: 1, maximum: 500 },
    cursor: { type: 'string', minLength: 1, maxLength: 200 },
  },
} as const;

export const idParams = {
  type: 'object',
  required: ['id'],
  additionalProperties: false,
  properties: { id: { type: 'integer', minimum: 1 } },
} as const;

export const resolveBody = { type: 'object', additionalProperties: false, properties: { note } } as const;

export const redriveBody = {
  type: 'object',
  additionalProperties: false,
  properties: { delay, at, payload: { description: 'replaces the payload' }, note, steps },
} as const;

export const bulkRedriveBody = {
  type: 'object',
  additionalProperties: false,
  properties: {
    filter: { type: 'object', additionalProperties: false, properties: filterProperties },
    dryRun: { type: 'boolean' },
    delay,
    at,
    note,
    steps,
    limit: {
      type: 'integer',
      minimum: 1,
      maximum: 10_000,
      description: 'redrive the first `limit` matching entries in id order (at most DLQ_BULK_REDRIVE_MAX)',
    },
    perSecond: { type: 'integer', minimum: 1, maximum: 1_000, description: 'redrive at most this many a second' },
  },
} as const;

export const operationIdParams = {
  type: 'object',
  required: ['id'],
  additionalProperties: false,
  properties: { id: { type: 'string', minLength: 1, maxLength: 100 } },
} as const;

export const statsQuery = {
  type: 'object',
  additionalProperties: false,
  properties: { hours: { type: 'integer', minimum: 1, maximum: 744 } },
} as const;

export const cleanupBody = {
  type: 'object',
  additionalProperties: false,
  properties: { olderThan: delay },
} as const;

export const jobIdParams = {
  type: 'object',
  required: ['id'],
  additionalProperties: false,
  properties: { id: { type: 'string', minLength: 1, maxLength: 500 } },
} as const;

// ---- responses

const nullableString = { type: ['string', 'null'] } as const;

export const deadLetterView = {
  type: 'object',
  properties: {
    id: { type: 'integer' },
    jobId: { type: 'string' },
    type: { type: 'string' },
    reason: { type: 'string' },
    errorClass: nullableString,
    error: nullableString,
    attempts: { type: 'integer' },
    originalSubject: { type: 'string' },
    originalSeq: { type: 'integer' },
    dlqSeq: { type: 'integer' },
    createdAt: { type: 'string' },
    resolved: { type: 'boolean' },
    resolvedAt: nullableString,
    resolvedBy: nullableString,
    resolutionNote: nullableString,
    redriveCount: { type: 'integer' },
    lastRedrivenAt: nullableString,
    lastRedrivenBy: nullableString,
    payloadAvailable: { type: 'boolean' },
  },
} as const;

export const timelineEntry = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    kind: { type: 'string' },
    at: { type: 'string' },
    life: { type: 'integer' },
    attempt: { type: 'integer' },
    errorClass: { type: 'string' },
    error: { type: 'string' },
    delayMs: { type: 'number' },
    durationMs: { type: 'number' },
    traceId: { type: 'string' },
    actor: { type: 'string' },
    extra: { type: 'object', additionalProperties: true },
  },
} as const;

export const jobSummary = {
  type: ['object', 'null'],
  properties: {
    jobId: { type: 'string' },
    type: { type: 'string' },
    status: { type: 'string' },
    attempts: { type: 'integer' },
    lives: { type: 'integer' },
    firstSeenAt: { type: 'string' },
    lastSeenAt: { type: 'string' },
    lastErrorClass: { type: 'string' },
    lastError: { type: 'string' },
  },
} as const;

export const deadLetterDetail = {
  type: 'object',
  properties: {
    ...deadLetterView.properties,
    originalStream: { type: 'string' },
    dlqStream: { type: 'string' },
    recordedAt: { type: 'string' },
    traceId: nullableString,
    payload: {},
    payloadBase64: { type: 'string' },
    headers: { type: 'object', additionalProperties: { type: 'string' } },
    summary: jobSummary,
    timeline: { type: 'array', items: timelineEntry },
  },
} as const;

export const listResponse = {
  type: 'object',
  properties: { items: { type: 'array', items: deadLetterView }, nextCursor: nullableString },
} as const;

export const redriveResponse = {
  type: 'object',
  properties: {
    deadLetterId: { type: 'integer' },
    jobId: { type: 'string' },
    subject: { type: 'string' },
    target: { type: 'string' },
    stream: { type: 'string' },
    seq: { type: 'integer' },
    duplicate: { type: 'boolean' },
    msgId: { type: 'string' },
    dueAt: { type: 'string' },
    steps: { type: 'string' },
    stepsCleared: { type: 'integer' },
  },
} as const;

export const bulkDryRunResponse = {
  type: 'object',
  properties: {
    dryRun: { type: 'boolean' },
    matched: { type: 'integer' },
    payloadUnavailable: { type: 'integer' },
    cap: { type: 'integer' },
  },
} as const;

export const operationResponse = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    kind: { type: 'string' },
    status: { type: 'string', enum: ['running', 'completed', 'cancelled', 'failed', 'interrupted'] },
    request: { type: 'object', additionalProperties: true },
    counts: {
      type: 'object',
      properties: {
        matched: { type: 'integer' },
        selected: { type: 'integer' },
        redriven: { type: 'integer' },
        failed: { type: 'integer' },
        remaining: { type: 'integer' },
        beyondLimit: { type: 'integer' },
      },
    },
    errors: {
      type: 'array',
      items: {
        type: 'object',
        properties: { id: { type: 'integer' }, code: { type: 'string' }, message: { type: 'string' } },
      },
    },
    createdBy: { type: 'string' },
    createdAt: { type: 'string' },
    updatedAt: { type: 'string' },
    finishedAt: nullableString,
    cancelRequestedBy: nullableString,
    error: nullableString,
  },
} as const;

const counted = (key: string, keyType: object) =>
  ({
    type: 'array',
    items: {
      type: 'object',
      properties: { [key]: keyType, count: { type: 'integer' }, unresolved: { type: 'integer' } },
    },
  }) as const;

export const statsResponse = {
  type: 'object',
  properties: {
    total: { type: 'integer' },
    unresolved: { type: 'integer' },
    oldestUnresolvedAt: nullableString,
    oldestUnresolvedAgeSeconds: { type: ['integer', 'null'] },
    byType: counted('type', { type: 'string' }),
    byReason: counted('reason', { type: 'string' }),
    byClass: counted('errorClass', nullableString),
    perHour: {
      type: 'array',
      items: { type: 'object', properties: { hour: { type: 'string' }, count: { type: 'integer' } } },
    },
  },
} as const;

export const cleanupResponse = {
  type: 'object',
  properties: { deleted: { type: 'integer' }, cutoff: { type: 'string' } },
} as const;

export const timelineResponse = {
  type: 'object',
  properties: { jobId: { type: 'string' }, summary: jobSummary, events: { type: 'array', items: timelineEntry } },
} as const;
