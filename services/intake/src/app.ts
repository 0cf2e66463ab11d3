import type { FastifyInstance } from 'fastify';
import type { JetStreamClient, JetStreamManager } from '@nats-io/jetstream';
import { createHttpApp, registerProbes } from '@redrive/http';
import type { Logger } from '@redrive/lifecycle';
import { createEventPublisher, streamProblems, type SchedulerClient, type Topology } from '@redrive/messaging';
import type { Registry } from '@redrive/telemetry';
import { createKeyAuth } from './auth.js';
import type { IntakeConfig } from './config.js';
import { createConsumerDirectory } from './consumer-directory.js';
import { createIntakeMetrics } from './metrics.js';
import { jobRoutes } from './routes/jobs.js';
import { scheduleRoutes } from './routes/schedules.js';
import { createSubmitter } from './submit.js';

export interface IntakeDeps {
  config: IntakeConfig;
  js: JetStreamClient;
  jsm: JetStreamManager;
  topology: Topology;
  registry: Registry;
  logger: Logger;
  /** The retry-scheduler's API behind /v1/schedules; without it those routes answer 503. */
  scheduler?: SchedulerClient;
  /** The NATS server's max_payload (the connection's INFO); 1 MiB, the server's default, when absent. */
  serverMaxPayload?: number | undefined;
}

/** Room a job's body must leave under max_payload for the headers of its later hops. */
export const FORWARD_HEADROOM_BYTES = 16 * 1024;

/**
 * The largest body intake accepts: the configured limit, but never more than the server's
 * max_payload less the room every later hop needs for its headers (a dead letter adds its
 * reason, error and pointers; a hand-off its due time). A body accepted at exactly max_payload
 * could be stored, but never handed off or dead-lettered.
 */
export function payloadLimit(configured: number, serverMaxPayload = 1024 * 1024): number {
  return Math.max(1, Math.min(configured, serverMaxPayload - FORWARD_HEADROOM_BYTES));
}

/** Builds the intake HTTP API; listening is the caller's business (tests use inject). */
export async function buildIntakeApp(deps: IntakeDeps): Promise<FastifyInstance> {
  const { topology, logger } = deps;
  const maxPayloadBytes = payloadLimit(deps.config.maxPayloadBytes, deps.serverMaxPayload);
  const config = { ...deps.config, maxPayloadBytes };
  if (maxPayloadBytes < deps.config.maxPayloadBytes)
    logger.info(
      { configured: deps.config.maxPayloadBytes, serverMaxPayload: deps.serverMaxPayload, maxPayloadBytes },
      'job bodies are limited below INTAKE_MAX_PAYLOAD: the server max_payload less room for the headers of hand-offs and dead letters',
    );
  // Each route declares the scope it needs (`submit`, `schedules:read`, `schedules:cancel`;
  // the probes are public); createHttpApp checks it on the route that matched.
  const app = createHttpApp({
    logger,
    bodyLimit: config.maxPayloadBytes + 64 * 1024,
    requestLogLevel: 'debug',
    auth: createKeyAuth(config.apiKeys, config.allowAnonymous),
  });
  if (config.allowAnonymous) {
    logger.warn(
      'INTAKE_ALLOW_ANONYMOUS=true: anyone who reaches intake may submit jobs and read or cancel schedules; set INTAKE_API_KEYS outside local development',
    );
  }

  const { accepted, refused, publishSeconds, seeType } = createIntakeMetrics(deps.registry);

  const submitter = createSubmitter({
    js: deps.js,
    events: createEventPublisher(deps.js, topology),
    onEventError: (err, jobId) => logger.error({ err, jobId }, 'job.accepted event not stored'),
    topology,
    directory: createConsumerDirectory({ jsm: deps.jsm, stream: topology.streams.jobs, ttlMs: config.routesTtlMs }),
    maxPayloadBytes: config.maxPayloadBytes,
    publishTimeoutMs: config.publishTimeoutMs,
    handoffThresholdMs: config.handoffThresholdMs,
    onAccepted: (job, a) => {
      seeType(job.type);
      accepted.inc({ type: job.type, priority: job.priority, duplicate: String(a.duplicate) });
      logger.info(
        {
          jobId: a.jobId,
          traceId: a.traceId,
          type: job.type,
          priority: job.priority,
          seq: a.seq,
          duplicate: a.duplicate,
        },
        a.duplicate ? 'job already accepted (duplicate)' : 'job accepted',
      );
    },
  });

  app.addHook('onResponse', async (req, reply) => {
    if (!req.routeOptions.url?.startsWith('/v1/jobs')) return;
    // The route as callers write it: fastify's pattern escapes the batch route's ":" as "::".
    const route = (req.routeOptions.url ?? 'unknown').replaceAll('::', ':');
    publishSeconds.observe({ route }, reply.elapsedTime / 1000);
    if (reply.statusCode >= 400) refused.inc({ status: String(reply.statusCode) });
  });

  registerProbes(app, {
    registry: deps.registry,
    readiness: () => streamProblems(deps.jsm, [topology.streams.jobs]),
  });
  await app.register(jobRoutes, {
    submitter,
    maxPayloadBytes: config.maxPayloadBytes,
    maxBatch: config.maxBatch,
    maxBatchBytes: config.maxBatchBytes,
  });
  await app.register(scheduleRoutes, { scheduler: deps.scheduler });
  return app;
}
