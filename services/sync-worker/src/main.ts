#!/usr/bin/env node
import { createHttpApp, registerProbes } from '@redrive/http';
import { createLogger, loadConfigOrExit, runService, ShutdownStack } from '@redrive/lifecycle';
import {
  connectAndProvision,
  createCompletionStore,
  createEventPublisher,
  ensurePausesBucket,
  isPaused,
  logProvisioned,
  provisionJobTypes,
  serveJobTypes,
  streamProblems,
  watchPauses,
} from '@redrive/messaging';
import { createRetryPolicy, retryDelay } from '@redrive/retry-policy';
import type { Guards } from '@redrive/guards';
import type { StepsPort } from './ports.js';
import { createMetricsRegistry, startTelemetry } from '@redrive/telemetry';
import { loadWorkerConfig } from './config.js';
import { createDispatcher } from './dispatcher.js';
import { createHttpHandlers } from './handlers/http.js';
import { createWorkerMetrics } from './metrics.js';
import { loadHandlers, selectTypes } from './registry.js';

/** How often a worker checks that JOBS still captures the subjects of its types. */
const SUBJECT_CHECK_MS = 30_000;

const config = loadConfigOrExit('sync-worker', () => loadWorkerConfig());
const logger = createLogger({ service: 'sync-worker', level: config.log.level, pretty: config.log.pretty });

await runService({
  logger,
  graceMs: config.shutdownGraceMs,
  start: async () => {
    const stack = new ShutdownStack(logger);
    const telemetry = await startTelemetry({ serviceName: 'redrive-sync-worker' });
    stack.add('telemetry', () => telemetry.shutdown());

    const builtins = config.httpHandler ? createHttpHandlers(config.httpHandler) : [];
    if (!config.httpHandler)
      logger.info(
        'built-in http handler off: configure its job types in HTTP_TYPES (or HTTP_TARGET_URL / HTTP_TARGETS for fixed targets)',
      );
    const handlers = await loadHandlers(builtins, config.handlerModules);
    const types = selectTypes(handlers, config.types);
    if (types.length === 0) {
      throw new Error(
        'no job types to serve: set WORKER_HANDLERS to handler modules, or HTTP_TYPES (or HTTP_TARGET_URL / HTTP_TARGETS) for the http handler',
      );
    }

    const { nc, js, jsm, topology } = await connectAndProvision(config.nats, 'sync-worker', config.topology, logger);
    stack.add('nats', () => nc.drain());
    logProvisioned(logger, await provisionJobTypes(jsm, topology, types, config.consumer, logger));
    // Types and lanes an operator paused (the PAUSES bucket): read before the first pull, so a
    // worker that starts while its type is paused starts none of its jobs.
    logProvisioned(logger, [await ensurePausesBucket(jsm, topology)]);
    const pauses = await watchPauses(js, jsm, topology, logger);
    stack.add('pause watch', () => pauses.stop());
    pauses.onChange((current) => logger.info({ paused: [...current.keys()] }, 'pauses changed'));
    await pauses.ready;

    const registry = createMetricsRegistry('sync-worker');
    // Redis (ioredis) and Postgres (pg, node-pg-migrate) are loaded only when configured: a
    // worker without them does not carry their modules (15-20 MB of an idle worker's RSS).
    let guards: Guards | undefined;
    if (config.redisUrl) {
      const { createGuards, createRedisClient, redisReady } = await import('@redrive/guards');
      const redis = createRedisClient(config.redisUrl, logger);
      stack.add('redis', () => redis.quit().catch(() => redis.disconnect()));
      guards = createGuards({ redis, keyPrefix: `redrive:${topology.options.prefix || 'default'}`, logger, registry });
      if (!(await redisReady(redis, 3_000)))
        logger.warn('Redis is not reachable yet: starting with its guards failing open until it is');
    } else {
      logger.info('REDIS_URL is not set: idempotency markers, rate limits and concurrency limits are off');
    }
    let steps: StepsPort | undefined;
    if (config.databaseUrl) {
      const { closePool, createPool, createStepStore, ensureDatabase, migrate, StoreUnavailableError } =
        await import('@redrive/store');
      const url = config.databaseUrl;
      const pool = createPool({ url, applicationName: 'redrive-sync-worker', logger });
      stack.add('postgres', () => closePool(pool));
      // Postgres only backs ctx.step(): a worker must start and run jobs while it is down, so
      // the schema is prepared in the background; a step waits for it briefly, then fails as
      // `database` (retried). Several replicas may migrate at once: migrate() takes a lock.
      const store = createStepStore(pool);
      let schemaReady = false;
      const awaitSchema = async () => {
        for (let waited = 0; !schemaReady && waited < 5_000; waited += 100)
          await new Promise((r) => setTimeout(r, 100));
        if (!schemaReady)
          throw new StoreUnavailableError('the step checkpoint schema is not ready yet (Postgres unreachable?)', {
            cause: undefined,
          });
      };
      steps = {
        get: async (jobId, step) => (await awaitSchema(), store.get(jobId, step)),
        save: async (jobId, step, value) => (await awaitSchema(), store.save(jobId, step, value)),
        clear: async (jobId) => (await awaitSchema(), store.clear(jobId)),
      };
      let stopped = false;
      stack.add('migrations', () => void (stopped = true));
      void (async () => {
        for (let n = 1, delay = 1_000; !stopped; delay = retryDelay({ baseMs: 1_000, maxMs: 30_000 }, ++n)) {
          try {
            await ensureDatabase(url, logger);
            await migrate({ url, logger });
            schemaReady = true;
            return;
          } catch (err) {
            logger.error({ err, retryInMs: delay }, 'database not ready for step checkpoints; will retry');
            await new Promise((r) => setTimeout(r, delay).unref());
          }
        }
      })();
    } else {
      logger.info('DATABASE_URL is not set: ctx.step() checkpoints are off');
    }
    const dispatcher = createDispatcher({
      js,
      topology,
      handlers,
      types,
      concurrency: config.concurrency,
      prefetch: config.prefetch,
      lowLaneEvery: config.lowLaneEvery,
      ackWaitMs: config.consumer.ackWaitMs,
      jobTimeoutMs: config.jobTimeoutMs,
      policy: createRetryPolicy(config.retry.classes, config.retry.types),
      handoffThresholdMs: config.retry.handoffThresholdMs,
      localDelayMaxMs: config.retry.localDelayMaxMs,
      events: createEventPublisher(js, topology, { maxPayload: nc.info?.max_payload }),
      maxPayload: nc.info?.max_payload,
      guards,
      completions: createCompletionStore(js, jsm, topology),
      steps,
      rateLimits: config.rateLimits,
      completedTtlMs: config.completedTtlMs,
      maxCrashes: config.maxCrashes,
      pauses: (type, lane) => ({
        paused: () => isPaused(pauses.current, type, lane),
        onChange: (listener) => pauses.onChange(listener),
      }),
      logger,
      metrics: createWorkerMetrics(registry, { types, concurrency: config.concurrency }),
    });
    await dispatcher.start();
    stack.add('dispatcher', (deadline) => dispatcher.stop(deadline));
    // Another worker's update of JOBS can overwrite the subjects this one added (stream updates
    // have no compare-and-set): look again now and then, and add back what is missing.
    const resubscribe = setInterval(() => {
      serveJobTypes(jsm, topology, types, logger).catch((err: unknown) =>
        logger.warn({ err }, 'could not check the JOBS subjects of this worker'),
      );
    }, SUBJECT_CHECK_MS);
    stack.add('subject check', () => clearInterval(resubscribe));

    const app = createHttpApp({ logger });
    registerProbes(app, {
      registry,
      readiness: async () => [
        ...(await streamProblems(jsm, [topology.streams.jobs])),
        ...(dispatcher.healthy() ? [] : ['consumers are not running']),
      ],
    });
    await app.listen({ host: config.http.host, port: config.http.port });
    stack.add('http', () => app.close());
    logger.info({ types, concurrency: config.concurrency, address: app.server.address() }, 'sync-worker running');
    return stack;
  },
});
