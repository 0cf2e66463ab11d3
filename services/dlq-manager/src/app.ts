import type { FastifyInstance } from 'fastify';
import { createHttpApp, registerProbes } from '@redrive/http';
import type { Logger } from '@redrive/lifecycle';
import type { Registry } from '@redrive/telemetry';
import type { Admin } from './admin.js';
import type { TokenAuth } from './auth.js';
import { adminRoutes } from './routes/admin.js';
import { jobRoutes } from './routes/jobs.js';
import { createValidators } from './validation.js';

export interface DlqAppDeps {
  admin: Admin;
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
  const validators = createValidators();
  app.setValidatorCompiler(({ schema, httpPart }) =>
    validators.compile(schema, httpPart === 'querystring' || httpPart === 'params'),
  );
  // POSTs whose body is optional may come without one.
  app.addHook('preValidation', async (req) => {
    if (req.method === 'POST' && req.body === undefined) req.body = {};
  });
  registerProbes(app, { registry: deps.registry, readiness: deps.readiness });
  await app.register(adminRoutes, { admin: deps.admin });
  await app.register(jobRoutes, { admin: deps.admin });
  return app;
}
