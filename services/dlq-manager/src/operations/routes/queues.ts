import type { FastifyInstance } from 'fastify';
import type { Priority } from '@redrive/messaging';
import { actorOf, errors, operator, viewer } from './admin.js';
import type { JobLookup } from '../jobs.js';
import type { JobSearch } from '../jobs.js';
import type { Queues } from '../../queues/queues.js';
import {
  jobDetailResponse,
  jobSearchQuery,
  jobSearchResponse,
  pauseResponse,
  queueNoteBody,
  queueParams,
  queueStatsQuery,
  queueStatsResponse,
} from '../queue-schemas.js';
import { jobIdParams } from '../schemas.js';

type QueueRoute = { Params: { type: string; lane?: Priority }; Body: { note?: string } };

/** Queue stats, pause and resume (/v1/admin/queues…), and job lookup (/v1/jobs, /v1/jobs/:id). */
export async function queueRoutes(app: FastifyInstance, opts: { queues: Queues; lookup: JobLookup }): Promise<void> {
  const { queues, lookup } = opts;

  app.get<{ Querystring: { type?: string } }>(
    '/v1/admin/queues',
    { config: viewer, schema: { querystring: queueStatsQuery, response: { 200: queueStatsResponse, ...errors } } },
    async (req) => queues.stats(req.query),
  );

  for (const path of ['/v1/admin/queues/:type', '/v1/admin/queues/:type/:lane']) {
    app.post<QueueRoute>(
      `${path}/pause`,
      {
        config: operator,
        schema: { params: queueParams, body: queueNoteBody, response: { 200: pauseResponse, ...errors } },
      },
      async (req) => queues.pause({ ...req.params, ...req.body }, actorOf(req)),
    );
    app.post<QueueRoute>(
      `${path}/resume`,
      {
        config: operator,
        schema: { params: queueParams, body: queueNoteBody, response: { 200: pauseResponse, ...errors } },
      },
      async (req) => queues.resume({ ...req.params, ...req.body }, actorOf(req)),
    );
  }

  app.get<{ Querystring: JobSearch }>(
    '/v1/jobs',
    { config: viewer, schema: { querystring: jobSearchQuery, response: { 200: jobSearchResponse, ...errors } } },
    async (req) => lookup.search(req.query),
  );

  app.get<{ Params: { id: string } }>(
    '/v1/jobs/:id',
    { config: viewer, schema: { params: jobIdParams, response: { 200: jobDetailResponse, ...errors } } },
    async (req) => lookup.detail(req.params.id),
  );
}
