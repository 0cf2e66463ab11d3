import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { errorBodySchema, HttpError, toErrorBody, type ErrorBody } from '@redrive/http';
import { JOB_TYPE_PATTERN, PRIORITIES } from '@redrive/messaging';
import { extractTraceContext, failSpan, ROOT_CONTEXT, SpanKind, startSpan, type Context } from '@redrive/telemetry';
import type { Accepted, JobRequest, PreparedJob, Submitter } from '../submit.js';

/** The longest delay a job may ask for: ten years. */
const MAX_DELAY_MS = 10 * 366 * 86_400_000;

const jobRequestSchema = {
  type: 'object',
  required: ['type', 'payload'],
  additionalProperties: false,
  properties: {
    type: { type: 'string', pattern: JOB_TYPE_PATTERN.source },
    payload: {},
    priority: { type: 'string', enum: [...PRIORITIES] },
    idempotencyKey: { type: 'string', minLength: 1, maxLength: 255, pattern: '^[\\x21-\\x7e]+$' },
    maxAttempts: { type: 'integer', minimum: 1, maximum: 1000 },
    // When it runs; checked further (both given, a time in the past, a bad cron) by decideTiming.
    delay: { type: 'integer', minimum: 0, maximum: MAX_DELAY_MS },
    runAt: { type: 'string', minLength: 1, maxLength: 64 },
    repeat: { type: 'object' },
  },
} as const;

const acceptedSchema = {
  type: 'object',
  required: ['jobId', 'stream', 'seq', 'duplicate'],
  properties: {
    jobId: { type: 'string' },
    stream: { type: 'string' },
    seq: { type: 'integer' },
    duplicate: { type: 'boolean' },
    traceId: { type: 'string' },
    scheduleId: { type: 'string' },
    runAt: { type: 'string' },
  },
} as const;

const errorResponses = {
  400: errorBodySchema,
  401: errorBodySchema,
  413: errorBodySchema,
  415: errorBodySchema,
  422: errorBodySchema,
  503: errorBodySchema,
};

export interface JobRoutesOptions {
  submitter: Submitter;
  maxPayloadBytes: number;
  maxBatch: number;
  maxBatchBytes: number;
}

/**
 * Runs a job route inside its HTTP server span: the child of the caller's trace context when
 * the request carries one, else the root of a new trace (sampled as OTEL_TRACES_SAMPLER says).
 */
async function traced<T>(
  req: FastifyRequest,
  reply: FastifyReply,
  route: string,
  answer: (ctx: Context) => Promise<T>,
): Promise<T> {
  const parent = extractTraceContext((name) => {
    const v = req.headers[name];
    return Array.isArray(v) ? v[0] : v;
  }, ROOT_CONTEXT);
  const { span, ctx } = startSpan(
    `POST ${route}`,
    { kind: SpanKind.SERVER, attributes: { 'http.request.method': 'POST', 'http.route': route, 'url.path': route } },
    parent,
  );
  try {
    const answered = await answer(ctx);
    span.setAttribute('http.response.status_code', reply.statusCode);
    return answered;
  } catch (err) {
    const status = err instanceof HttpError ? err.statusCode : 500;
    span.setAttribute('http.response.status_code', status);
    // As the HTTP conventions have it, a refusal (4xx) is the caller's error, not the server span's.
    if (status >= 500) failSpan(span, err, String(status));
    throw err;
  } finally {
    span.end();
  }
}

/** POST /v1/jobs and POST /v1/jobs:batch: accept jobs, answering only after JetStream stored them. */
export async function jobRoutes(app: FastifyInstance, opts: JobRoutesOptions): Promise<void> {
  const { submitter } = opts;
  // The submit scope is checked on the matched route by the app's guard (createHttpApp).
  const config = { access: 'submit' };

  app.post<{ Body: JobRequest }>(
    '/v1/jobs',
    {
      config,
      // Room for the envelope around a payload at the limit; the payload itself is measured exactly.
      bodyLimit: opts.maxPayloadBytes + 64 * 1024,
      schema: { body: jobRequestSchema, response: { 202: acceptedSchema, ...errorResponses } },
    },
    async (req, reply) =>
      traced(req, reply, '/v1/jobs', async (ctx) => {
        const job = await submitter.prepare(req.body);
        const accepted = await submitter.publish(job, ctx);
        return reply.code(202).send(accepted);
      }),
  );

  app.post<{ Body: { jobs: JobRequest[] } }>(
    // "::" is fastify's escape for a literal ":" in a path.
    '/v1/jobs::batch',
    {
      config,
      bodyLimit: opts.maxBatchBytes,
      schema: {
        body: {
          type: 'object',
          required: ['jobs'],
          additionalProperties: false,
          properties: { jobs: { type: 'array', minItems: 1, maxItems: opts.maxBatch, items: jobRequestSchema } },
        },
        response: {
          202: batchResponseSchema,
          207: batchResponseSchema,
          ...errorResponses,
        },
      },
    },
    async (req, reply) =>
      traced(req, reply, '/v1/jobs:batch', async (ctx) => {
        // Every job is checked before any is published: a bad batch is refused whole.
        const prepared: PreparedJob[] = [];
        for (const [i, request] of req.body.jobs.entries()) {
          try {
            prepared.push(await submitter.prepare(request, `jobs[${i}].payload`));
          } catch (err) {
            if (err instanceof HttpError) {
              throw new HttpError(err.statusCode, err.code, `jobs[${i}]: ${err.message}`, err.headers);
            }
            throw err;
          }
        }
        const settled = await Promise.allSettled(prepared.map((job) => submitter.publish(job, ctx)));
        const results: (Accepted | { error: ErrorBody })[] = settled.map((s) =>
          s.status === 'fulfilled' ? s.value : { error: toErrorBody(s.reason as Error) },
        );
        const failed = results.filter((r) => 'error' in r).length;
        if (failed === results.length) {
          void reply.header('retry-after', '1');
          return reply.code(503).send({
            statusCode: 503,
            code: 'NOT_ACCEPTED',
            error: 'Service Unavailable',
            message: `none of the ${results.length} jobs was accepted, retry later: ${(results[0] as { error: ErrorBody }).error.message}`,
          });
        }
        // 207: some jobs were accepted and some not; each result says which.
        return reply.code(failed > 0 ? 207 : 202).send({ accepted: results.length - failed, failed, results });
      }),
  );
}

const batchResponseSchema = {
  type: 'object',
  required: ['accepted', 'failed', 'results'],
  properties: {
    accepted: { type: 'integer' },
    failed: { type: 'integer' },
    results: {
      type: 'array',
      items: {
        type: 'object',
        properties: { ...acceptedSchema.properties, error: errorBodySchema },
      },
    },
  },
} as const;
