import type { FastifyInstance } from 'fastify';
import type { Registry } from 'prom-client';
import { PUBLIC } from './auth.js';

export interface ProbeOptions {
  registry: Registry;
  /**
   * Resolves with what keeps the process from being ready; an empty list means ready. Each
   * problem is `<check>` or `<check>: <detail>`: /readyz, which anyone may call, answers with
   * the `<check>` part only (the name of the failing check); the details go to the log.
   */
  readiness: () => Promise<string[]>;
}

const MAX_CHECK_NAME = 120;

/** The part of a readiness problem /readyz may show: the check's name, never the error text. */
export function checkName(problem: string): string {
  const cut = problem.indexOf(':');
  const name = (cut === -1 ? problem : problem.slice(0, cut)).trim();
  return name.length > MAX_CHECK_NAME ? `${name.slice(0, MAX_CHECK_NAME)}…` : name || 'unnamed check';
}

/** Adds GET /healthz (the process answers), /readyz (its dependencies answer) and /metrics, all public. */
export function registerProbes(app: FastifyInstance, opts: ProbeOptions): void {
  const config = { access: PUBLIC };
  // The details are logged when they change, not on every probe (a kubelet asks every few seconds).
  let lastLogged = '';
  app.get('/healthz', { config }, async () => ({ status: 'ok' }));
  app.get('/readyz', { config }, async (req, reply) => {
    let problems: string[];
    try {
      problems = await opts.readiness();
    } catch (err) {
      req.log.warn({ err }, 'readiness check failed');
      problems = ['readiness check'];
    }
    const seen = problems.join('\n');
    if (seen !== lastLogged && problems.length > 0) req.log.warn({ problems }, 'not ready');
    lastLogged = seen;
    if (problems.length > 0) {
      return reply.code(503).send({ status: 'not ready', problems: [...new Set(problems.map(checkName))] });
    }
    return { status: 'ready' };
  });
  app.get('/metrics', { config }, async (_req, reply) => {
    void reply.header('content-type', opts.registry.contentType);
    return opts.registry.metrics();
  });
}
