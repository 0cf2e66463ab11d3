import type { FastifyInstance } from 'fastify';
import { createHttpApp, HttpError, registerProbes } from '@redrive/http';
import type { Logger } from '@redrive/lifecycle';
import type { Registry } from '@redrive/telemetry';
import { OperationError, type OperationErrorKind } from '../dead-letters/errors.js';
import type { Admin } from './admin.js';
import type { TokenAuth } from './auth.js';
import { adminRoutes } from './routes/admin.js';
import { jobRoutes } from './routes/jobs.js';
import { queueRoutes } from './routes/queues.js';
import { sessionRoutes } from './routes/session.js';
import type { JobLookup } from './jobs.js';
import type { Queues } from '../queues/queues.js';

const HTTP_STATUS: Record<OperationErrorKind, number> = {
  invalid: 400,
  not_found: 404,
  conflict: 409,
  unprocessable: 422,
  unavailable: 503,
};

/**
 * An operation's refusal as HTTP, the one place that maps it: the status of its kind, its code
 * and message as they are, and `Retry-After` when it says when to try again. Anything else
 * passes through (the shared error handler of @redrive/http answers it).
 */
export function httpErrorOf(err: unknown): unknown {
  if (!(err instanceof OperationError)) return err;
  const headers: Record<string, string> =
    err.retryAfterSeconds !== undefined ? { 'retry-after': String(err.retryAfterSeconds) } : {};
  return new HttpError(HTTP_STATUS[err.kind], err.code, err.message, headers);
}

export interface DlqAppDeps {
  admin: Admin;
  queues: Queues;
  lookup: JobLookup;
  auth: TokenAuth;
  registry: Registry;
  readiness: () => Promise<string[]>;
  logger: Logger;
}

/** Builds dlq-manager's HTTP API; listening is the caller's business (tests may use inject). */
export async function buildDlqApp(deps: DlqAppDeps): Promise<FastifyInstance> {
  // Every route declares its access in its config (`viewer`, `operator` or `public` for the
  // probes); createHttpApp checks it on the route that matched, before the body is read, so a
  // request without a valid token, or a viewer asking for a change, is turned away before
  // anything could be touched. A route that declares nothing answers nobody.
  const app = createHttpApp({ logger: deps.logger, requestLogLevel: 'info', auth: deps.auth });
  // POSTs whose body is optional may come without one.
  app.addHook('preValidation', async (req) => {
    if (req.method === 'POST' && req.body === undefined) req.body = {};
  });
  registerProbes(app, { registry: deps.registry, readiness: deps.readiness });
  await app.register(async (api) => {
    // Rethrown, an error reaches the app's own handler (createHttpApp), which writes the body.
    api.setErrorHandler(async (err) => {
      throw httpErrorOf(err);
    });
    await api.register(adminRoutes, { admin: deps.admin });
    await api.register(jobRoutes, { admin: deps.admin });
    await api.register(queueRoutes, { queues: deps.queues, lookup: deps.lookup });
    await api.register(sessionRoutes, { auth: deps.auth });
  });
  return app;
}
