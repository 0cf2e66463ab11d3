#!/usr/bin/env node
import { createLogger, loadConfigOrExit, runService, ShutdownStack } from '@redrive/lifecycle';
import { connectAndProvision, createSchedulerClient } from '@redrive/messaging';
import { createMetricsRegistry, startTelemetry } from '@redrive/telemetry';
import { buildIntakeApp, payloadLimit } from './app.js';
import { loadIntakeConfig } from './config.js';

const config = loadConfigOrExit('intake', () => loadIntakeConfig());
const logger = createLogger({ service: 'intake', level: config.log.level, pretty: config.log.pretty });

await runService({
  logger,
  graceMs: config.shutdownGraceMs,
  start: async () => {
    const stack = new ShutdownStack(logger);
    const telemetry = await startTelemetry({ serviceName: 'redrive-intake' });
    stack.add('telemetry', () => telemetry.shutdown());

    const { nc, js, jsm, topology } = await connectAndProvision(config.nats, 'intake', config.topology, logger);
    stack.add('nats', () => nc.drain());

    const app = await buildIntakeApp({
      config,
      js,
      jsm,
      topology,
      registry: createMetricsRegistry('intake'),
      logger,
      scheduler: createSchedulerClient(nc, topology, { timeoutMs: config.schedulerTimeoutMs }),
      serverMaxPayload: nc.info?.max_payload,
    });
    await app.listen({ host: config.http.host, port: config.http.port });
    // Closing the server first stops new submissions and lets in-flight ones get their PubAck.
    stack.add('http', () => app.close());
    logger.info(
      { address: app.server.address(), maxPayloadBytes: payloadLimit(config.maxPayloadBytes, nc.info?.max_payload) },
      'intake listening',
    );
    return stack;
  },
});
