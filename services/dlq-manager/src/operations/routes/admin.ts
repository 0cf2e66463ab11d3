import type { FastifyInstance, FastifyRequest } from 'fastify';
import { errorBodySchema } from '@redrive/http';
import type { Actor, Admin, BulkRedriveRequest, RedriveRequest } from '../admin.js';
import type { DeadLetterFilter } from '../../dead-letters/store.js';
import {
  bulkDryRunResponse,
  bulkRedriveBody,
  cleanupBody,
  cleanupResponse,
  deadLetterDetail,
  deadLetterView,
  idParams,
  listQuery,
  listResponse,
  operationIdParams,
  operationResponse,
  redriveBody,
  redriveResponse,
  resolveBody,
  statsQuery,
  statsResponse,
} from '../schemas.js';

export const errors = {
  400: errorBodySchema,
  401: errorBodySchema,
  403: errorBodySchema,
  404: errorBodySchema,
  409: errorBodySchema,
  422: errorBodySchema,
  503: errorBodySchema,
};

type IdParams = { Params: { id: number } };

// What each route needs (see createTokenAuth); a route without it answers nobody.
export const viewer = { access: 'viewer' };
export const operator = { access: 'operator' };

export function actorOf(req: FastifyRequest): Actor {
  // Never null here: every route of this file needs a token.
  return { name: req.principal!.name };
}

/** The operator's API over the DLQ: /v1/admin/… */
export async function adminRoutes(app: FastifyInstance, opts: { admin: Admin }): Promise<void> {
  const { admin } = opts;

  app.get<{ Querystring: DeadLetterFilter & { limit?: number; cursor?: string } }>(
    '/v1/admin/dead-letters',
    { config: viewer, schema: { querystring: listQuery, response: { 200: listResponse, ...errors } } },
    async (req) => admin.list(req.query),
  );

  app.get<IdParams>(
    '/v1/admin/dead-letters/:id',
    { config: viewer, schema: { params: idParams, response: { 200: deadLetterDetail, ...errors } } },
    async (req) => admin.get(req.params.id),
  );

  app.post<IdParams & { Body: { note?: string } }>(
    '/v1/admin/dead-letters/:id/resolve',
    {
      config: operator,
      schema: { params: idParams, body: resolveBody, response: { 200: deadLetterView, ...errors } },
    },
    async (req) => admin.resolve(req.params.id, req.body, actorOf(req)),
  );

  app.post<IdParams & { Body: RedriveRequest }>(
    '/v1/admin/dead-letters/:id/redrive',
    {
      config: operator,
      schema: { params: idParams, body: redriveBody, response: { 202: redriveResponse, ...errors } },
    },
    async (req, reply) => reply.code(202).send(await admin.redrive(req.params.id, req.body, actorOf(req))),
  );

  app.post<{ Body: BulkRedriveRequest }>(
    // "::" is fastify's escape for a literal ":" in a path.
    '/v1/admin/dead-letters::redrive',
    {
      config: operator,
      schema: {
        body: bulkRedriveBody,
        response: { 200: bulkDryRunResponse, 202: operationResponse, ...errors },
      },
    },
    async (req, reply) => {
      const result = await admin.bulkRedrive(req.body, actorOf(req));
      if ('dryRun' in result) return result;
      // A tracked operation: it runs in the background; GET its location for progress.
      return reply.code(202).header('location', `/v1/admin/operations/${result.id}`).send(result);
    },
  );

  app.get<{ Params: { id: string } }>(
    '/v1/admin/operations/:id',
    { config: viewer, schema: { params: operationIdParams, response: { 200: operationResponse, ...errors } } },
    async (req) => admin.operation(req.params.id),
  );

  app.post<{ Params: { id: string } }>(
    '/v1/admin/operations/:id/cancel',
    {
      config: operator,
      schema: { params: operationIdParams, response: { 200: operationResponse, ...errors } },
    },
    async (req) => admin.cancelOperation(req.params.id, actorOf(req)),
  );

  app.delete<IdParams>(
    '/v1/admin/dead-letters/:id',
    { config: operator, schema: { params: idParams, response: { 200: deadLetterView, ...errors } } },
    async (req) => admin.remove(req.params.id, actorOf(req)),
  );

  app.get<{ Querystring: { hours?: number } }>(
    '/v1/admin/stats',
    { config: viewer, schema: { querystring: statsQuery, response: { 200: statsResponse, ...errors } } },
    async (req) => admin.stats(req.query),
  );

  app.post<{ Body: { olderThan?: string } }>(
    '/v1/admin/cleanup',
    { config: operator, schema: { body: cleanupBody, response: { 200: cleanupResponse, ...errors } } },
    async (req) => admin.cleanup(req.body, actorOf(req)),
  );
}
