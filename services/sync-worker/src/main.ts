#!/usr/bin/env node
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { createHttpApp, registerProbes } from '@redrive/http';
import { createLogger, loadConfigOrExit, runService, ShutdownStack } from '@redrive/lifecycle';
import { connectNats, ensureConsumer, ensureStreams, streamProblems, Topology } from '@redrive/messaging';
import { createMetricsRegistry, startTelemetry } from '@redrive/telemetry';
import { loadWorkerConfig } from './config.js';
import { createDispatcher } from './dispatcher.js';
import { createHttpHandler } from './handlers/http.js';
import { createWorkerMetrics } from './metrics.js';
import { loadHandlers, selectTypes } from './registry.js';

const config = loadConfigOrExit('sync-worker', () => loadWorkerConfig());
const logger = createLogger({ service: 'sync-worker', level: config.log.level, pretty: config.log.pretty });

await runService({
  logger,
  graceMs: config.shutdownGraceMs,
  start: async () => {
    const stack = new ShutdownStack(logger);
    const telemetry = startTelemetry({ serviceName: 'redrive-sync-worker' });
    stack.add('telemetry', () => telemetry.shutdown());

    const builtins = config.httpHandler ? [createHttpHandler(config.httpHandler)] : [];
    if (!config.httpHandler) logger.info('built-in http handler off: HTTP_TARGET_URL is not set');
    const handlers = await loadHandlers(builtins, config.handlerModules);
    const types = selectTypes(handlers, config.types);
    if (types.length === 0) {
      throw new Error(
        'no job types to serve: set WORKER_HANDLERS to handler modules or HTTP_TARGET_URL for the http handler',
      );
    }

    const nc = await connectNats(config.nats, 'redrive-sync-worker', logger);
    stack.add('nats', () => nc.drain());
    const jsm = await jetstreamManager(nc);
    const topology = new Topology(config.topology);
    for (const r of await ensureStreams(jsm, topology.streamConfigs())) {
      if (r.action !== 'unchanged')
        logger.info({ stream: r.name, action: r.action, changes: r.changes }, 'stream provisioned');
    }
    for (const c of topology.workerConsumerConfigs(types, config.consumer)) {
      const r = await ensureConsumer(jsm, topology.streams.jobs, c);
      if (r.action !== 'unchanged')
        logger.info({ consumer: r.name, action: r.action, changes: r.changes }, 'consumer provisioned');
    }

    const registry = createMetricsRegistry('sync-worker');
    const dispatcher = createDispatcher({
      js: jetstream(nc),
      topology,
      handlers,
      types,
      concurrency: config.concurrency,
      prefetch: config.prefetch,
      lowLaneEvery: config.lowLaneEvery,
      ackWaitMs: config.consumer.ackWaitMs,
      jobTimeoutMs: config.jobTimeoutMs,
      retryDelayMs: config.retryDelayMs,
      logger,
      metrics: createWorkerMetrics(registry),
    });
    await dispatcher.start();
    stack.add('dispatcher', (deadline) => dispatcher.stop(deadline));

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
