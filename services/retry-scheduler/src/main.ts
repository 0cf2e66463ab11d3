#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { AckPolicy, DeliverPolicy, type ConsumerConfig } from '@nats-io/jetstream';
import { createHttpApp, registerProbes } from '@redrive/http';
import { createLogger, loadConfigOrExit, runService, ShutdownStack } from '@redrive/lifecycle';
import {
  connectAndProvision,
  createEventPublisher,
  ensureConsumer,
  SCHEDULER_CONSUMER,
  streamProblems,
} from '@redrive/messaging';
import { closePool, createPool, ensureDatabase, migrate } from '@redrive/store';
import { cachedRead, createMetricsRegistry, startTelemetry } from '@redrive/telemetry';
import { createSchedulerApi } from './api.js';
import { loadSchedulerConfig } from './config.js';
import { createFiringLoop } from './firing.js';
import { createSchedulerMetrics } from './metrics.js';
import { createPublisher } from './publisher.js';
import { createRequestConsumer } from './requests.js';
import { countActive } from './schedules.js';
import { Alarm, listenForSchedules } from './wakeup.js';

const CONSUMER = SCHEDULER_CONSUMER;
const NS_PER_MS = 1_000_000;
/** How long the schedule backlog counted for /metrics is reused. */
const BACKLOG_CACHE_MS = 5_000;

/** The micro service's version (`nats micro info`). */
const version = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string })
  .version;

const config = loadConfigOrExit('retry-scheduler', () => loadSchedulerConfig());
const logger = createLogger({ service: 'retry-scheduler', level: config.log.level, pretty: config.log.pretty });

await runService({
  logger,
  graceMs: config.shutdownGraceMs,
  start: async () => {
    const stack = new ShutdownStack(logger);
    const telemetry = await startTelemetry({ serviceName: 'redrive-retry-scheduler' });
    stack.add('telemetry', () => telemetry.shutdown());

    const { nc, js, jsm, topology, inboxPrefix } = await connectAndProvision(
      config.nats,
      'retry-scheduler',
      config.topology,
      logger,
    );
    stack.add('nats', () => nc.drain());
    // One durable consumer shared by every replica: SCHEDULE is a work queue, so each request
    // goes to one of them and leaves the stream when acked.
    const consumer = await ensureConsumer(jsm, topology.streams.schedule, {
      durable_name: CONSUMER,
      description: 'Redrive retry-scheduler: requests to store as schedules',
      filter_subject: topology.scheduleSubject('>'),
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.All,
      ack_wait: config.consumer.ackWaitMs * NS_PER_MS,
      // Never give up on a request: one that cannot be stored yet (Postgres down) waits.
      max_deliver: -1,
      max_ack_pending: config.consumer.maxAckPending,
    } as ConsumerConfig);
    if (consumer.action !== 'unchanged')
      logger.info(
        { consumer: consumer.name, action: consumer.action, changes: consumer.changes },
        'consumer provisioned',
      );

    // Several replicas may start at once: migrate() takes an advisory lock, so it runs once.
    await ensureDatabase(config.databaseUrl, logger);
    await migrate({ url: config.databaseUrl, logger });
    const pool = createPool({
      url: config.databaseUrl,
      max: config.poolSize,
      applicationName: 'redrive-retry-scheduler',
      logger,
    });
    stack.add('postgres', () => closePool(pool));

    const registry = createMetricsRegistry('retry-scheduler');
    const namespace = topology.options.prefix;
    const metrics = createSchedulerMetrics(registry, {
      // One grouped count on the partial index of active rows, at most once per BACKLOG_CACHE_MS.
      read: cachedRead(() => countActive(pool, namespace, new Date()), BACKLOG_CACHE_MS),
      onError: (err) => logger.warn({ err }, 'could not count the schedule backlog for /metrics'),
    });
    const alarm = new Alarm();

    const listener = listenForSchedules({
      url: config.databaseUrl,
      namespace,
      onDue: (at) => alarm.wake(at),
      logger,
    });
    await listener.start();
    stack.add('listen', () => listener.stop());

    const events = createEventPublisher(js, topology, { maxPayload: nc.info?.max_payload });
    const requests = createRequestConsumer({
      js,
      topology,
      pool,
      events,
      namespace,
      consumerName: CONSUMER,
      maxBatch: Math.min(config.batchSize, 1_000),
      onStored: (due) => alarm.wake(due.getTime()),
      logger,
      metrics,
    });
    await requests.start();
    stack.add('requests', (deadline) => requests.stop(deadline));

    const api = createSchedulerApi({ nc, topology, pool, namespace, events, logger, metrics, version });
    await api.start();
    stack.add('api', () => api.stop());

    const publisher = createPublisher(nc, { inboxPrefix });
    stack.add('publisher', () => publisher.close());
    const firing = createFiringLoop({
      pool,
      publisher,
      namespace,
      batchSize: config.batchSize,
      pollMaxMs: config.pollMaxMs,
      misfireThresholdMs: config.misfireThresholdMs,
      publishTimeoutMs: config.publishTimeoutMs,
      retentionMs: config.retentionMs,
      alarm,
      logger,
      metrics,
    });
    firing.start();
    stack.add('firing', (deadline) => firing.stop(deadline));

    const app = createHttpApp({ logger });
    registerProbes(app, {
      registry,
      readiness: async () => [
        ...(await streamProblems(jsm, [topology.streams.schedule, topology.streams.jobs])),
        ...(await pool.query('SELECT 1').then(
          () => [],
          (err: unknown) => [`Postgres is not reachable: ${err instanceof Error ? err.message : String(err)}`],
        )),
        ...(requests.healthy() ? [] : ['the request consumer is not running']),
        ...(firing.healthy() ? [] : ['the firing loop is failing']),
      ],
    });
    await app.listen({ host: config.http.host, port: config.http.port });
    stack.add('http', () => app.close());
    logger.info({ batch: config.batchSize, namespace, address: app.server.address() }, 'retry-scheduler running');
    return stack;
  },
});
