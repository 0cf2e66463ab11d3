import type { FastifyInstance } from 'fastify';
import { errorBodySchema } from '@redrive/http';
import type { Admin } from '../admin.js';
import { jobIdParams, timelineResponse } from '../schemas.js';

/** GET /v1/jobs/:id/timeline: any job's audit history, both lives of a redriven one included. */
export async function jobRoutes(app: FastifyInstance, opts: { admin: Admin }): Promise<void> {
  app.get<{ Params: { id: string } }>(
    '/v1/jobs/:id/timeline',
    {
      config: { access: 'viewer' },
      schema: {
        params: jobIdParams,
        response: { 200: timelineResponse, 400: errorBodySchema, 401: errorBodySchema, 404: errorBodySchema },
      },
    },
    async (req) => opts.admin.timeline(req.params.id),
  );
}
