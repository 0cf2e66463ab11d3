import type { FastifyInstance } from 'fastify';
import type { Registry } from 'prom-client';

export interface ProbeOptions {
  registry: Registry;
  /** Resolves with the reasons the process is not ready; an empty list means ready. */
  readiness: () => Promise<string[]>;
}

/** Adds GET /healthz (the process answers), /readyz (its dependencies answer) and /metrics. */
export function registerProbes(app: FastifyInstance, opts: ProbeOptions): void {
  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (_req, reply) => {
    let problems: string[];
    try {
      problems = await opts.readiness();
    } catch (err) {
      problems = [err instanceof Error ? err.message : String(err)];
    }
    if (problems.length > 0) return reply.code(503).send({ status: 'not ready', problems });
    return { status: 'ready' };
  });
  app.get('/metrics', async (_req, reply) => {
    void reply.header('content-type', opts.registry.contentType);
    return opts.registry.metrics();
  });
}
