import type { FastifyInstance } from 'fastify';
import { createHttpApp, registerProbes } from '@redrive/http';
import type { Logger } from '@redrive/lifecycle';
import type { Registry } from '@redrive/telemetry';
import type { Admin } from './admin.js';
import type { Principal, Role, TokenAuth } from './auth.js';
import { adminRoutes } from './routes/admin.js';
import { jobRoutes } from './routes/jobs.js';
import { createValidators } from './validation.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The least role a route needs; viewer when absent. */
    role?: Role;
  }
  interface FastifyRequest {
    principal: Principal | null;
  }
}

export interface DlqAppDeps {
  admin: Admin;
  auth: TokenAuth;
  registry: Registry;
  readiness: () => Promise<string[]>;
  logger: Logger;
}

/** Builds dlq-manager's HTTP API; listening is the caller's business (tests may use inject). */
export async function buildDlqApp(deps: DlqAppDeps): Promise<FastifyInstance> {
  const app = createHttpApp({ logger: deps.logger, requestLogLevel: 'info' });
  const validators = createValidators();
  app.setValidatorCompiler(({ schema, httpPart }) =>
    validators.compile(schema, httpPart === 'querystring' || httpPart === 'params'),
  );
  app.decorateRequest('principal', null);
  // Authentication and the role check run first, before the body is even read: a request
  // without a valid token, or a viewer asking for a change, is turned away before anything
  // could be touched, and leaves nothing behind but its log line.
  app.addHook('onRequest', async (req) => {
    if (!req.url.startsWith('/v1/')) return;
    req.principal = deps.auth.authenticate(req.headers.authorization);
    deps.auth.authorize(req.principal, req.routeOptions.config?.role ?? 'viewer');
  });
  // POSTs whose body is optional may come without one.
  app.addHook('preValidation', async (req) => {
    if (req.method === 'POST' && req.body === undefined) req.body = {};
  });
  registerProbes(app, { registry: deps.registry, readiness: deps.readiness });
  await app.register(adminRoutes, { admin: deps.admin });
  await app.register(jobRoutes, { admin: deps.admin });
  return app;
}
