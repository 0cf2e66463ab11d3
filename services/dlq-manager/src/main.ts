#!/usr/bin/env node
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createSessions } from '@redrive/http';
import { createLogger, loadConfigOrExit, runService, ShutdownStack, within } from '@redrive/lifecycle';
import {
  connectAndProvision,
  createEventPublisher,
  ensureConsumer,
  ensurePausesBucket,
  isPaused,
  logProvisioned,
  streamProblems,
  watchPauses,
} from '@redrive/messaging';
import { closePool, createPool, ensureDatabase, migrate } from '@redrive/store';
import { cachedRead, createMetricsRegistry, startTelemetry } from '@redrive/telemetry';
import { createProjector } from './audit/projector.js';
import { createAdvisoryHandler } from './dead-letters/advisories.js';
import { scheduleCleanup } from './dead-letters/cleanup.js';
import { createRecorder } from './dead-letters/recorder.js';
import { countUnresolved } from './dead-letters/store.js';
import { createAdmin } from './operations/admin.js';
import { buildDlqApp } from './operations/app.js';
import { createTokenAuth } from './operations/auth.js';
import { createJobLookup } from './operations/jobs.js';
import { startMicroService } from './operations/micro.js';
import { createQueues } from './queues/queues.js';
import { loadDlqConfig } from './config.js';
import { CONSUMERS, dlqConsumerConfigs } from './consumers.js';
import { createFaults } from './faults.js';
import { createDlqMetrics } from './metrics.js';
import { startPullLoop } from './pull-loop.js';
import { readConsumerBacklog, readQueueStats } from './queues/stats.js';

/** How long a reading behind the queue, DLQ and audit gauges is reused. */
const GAUGE_CACHE_MS = 5_000;

const config = loadConfigOrExit('dlq-manager', () => loadDlqConfig());
const logger = createLogger({ service: 'dlq-manager', level: config.log.level, pretty: config.log.pretty });
const version = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string })
  .version;

await runService({
  logger,
  graceMs: config.shutdownGraceMs,
  start: async () => {
    const stack = new ShutdownStack(logger);
    const telemetry = await startTelemetry({ serviceName: 'redrive-dlq-manager' });
    stack.add('telemetry', () => telemetry.shutdown());
    if (config.fault)
      logger.warn({ fault: config.fault }, 'DLQ_FAULT is set: this process will kill itself (tests only)');

    if (config.migrate) {
      await ensureDatabase(config.databaseUrl, logger);
      // Several replicas may start at once: migrate() takes an advisory lock, so it runs once.
      await migrate({ url: config.databaseUrl, logger });
    }
    const pool = createPool({ url: config.databaseUrl, applicationName: 'redrive-dlq-manager', logger });
    stack.add('postgres', () => closePool(pool));

    const { nc, js, jsm, topology } = await connectAndProvision(config.nats, 'dlq-manager', config.topology, logger);
    stack.add('nats', () => nc.drain());
    // Paused types and lanes (the PAUSES bucket): set by the admin API, watched by every worker.
    logProvisioned(logger, [await ensurePausesBucket(jsm, topology)]);
    const pauses = await watchPauses(js, jsm, topology, logger);
    stack.add('pause watch', () => pauses.stop());
    await pauses.ready;
    for (const { stream, config: c } of dlqConsumerConfigs(topology, {
      ackWaitMs: config.ackWaitMs,
      auditBatch: config.audit.batch,
    })) {
      logProvisioned(logger, [await ensureConsumer(jsm, stream, c)]);
    }

    const registry = createMetricsRegistry('dlq-manager');
    // The queue, DLQ and audit gauges are read on scrape and reused for GAUGE_CACHE_MS: about
    // two JetStream calls per scrape plus one message read per lane with jobs outstanding.
    const metrics = createDlqMetrics(registry, {
      queues: cachedRead(() => readQueueStats(jsm, topology), GAUGE_CACHE_MS),
      unresolved: cachedRead(() => countUnresolved(pool), GAUGE_CACHE_MS),
      auditLag: cachedRead(() => readConsumerBacklog(jsm, topology.streams.events, CONSUMERS.audit), GAUGE_CACHE_MS),
      paused: (type, lane) => isPaused(pauses.current, type, lane),
      onError: (source, err) => logger.warn({ err, source }, 'could not read a gauge for /metrics'),
    });
    const faults = createFaults(config.fault, logger);
    let stopping = false;
    const isStopping = () => stopping;

    const recorder = createRecorder({ pool, topology, faults, metrics, logger, stopping: isStopping });
    const advisories = createAdvisoryHandler({
      pool,
      js,
      jsm,
      topology,
      recorderConsumer: CONSUMERS.recorder,
      auditConsumer: CONSUMERS.audit,
      faults,
      metrics,
      logger,
      stopping: isStopping,
    });
    const projector = createProjector({ pool, topology, metrics, logger, stopping: isStopping });
    const loops = [
      startPullLoop({
        name: 'recorder',
        consumer: await js.consumers.get(topology.streams.dlq, CONSUMERS.recorder),
        batch: 32,
        ackWaitMs: config.ackWaitMs,
        handle: (msgs) => recorder.handle(msgs),
        logger,
      }),
      startPullLoop({
        name: 'advisories',
        consumer: await js.consumers.get(topology.streams.advisories, CONSUMERS.advisories),
        batch: 16,
        ackWaitMs: config.ackWaitMs,
        handle: (msgs) => advisories.handle(msgs),
        logger,
      }),
      startPullLoop({
        name: 'audit',
        consumer: await js.consumers.get(topology.streams.events, CONSUMERS.audit),
        batch: config.audit.batch,
        ackWaitMs: config.ackWaitMs,
        // Audit batches may commit in any order (an event's id makes it one row, and summaries
        // keep the latest status by time), so a backlog goes at the pace of Postgres alone;
        // max_ack_pending leaves room for both batches (dlqConsumerConfigs).
        concurrency: 2,
        handle: (msgs) => projector.handle(msgs),
        logger,
      }),
    ];
    stack.add('consumers', async (deadline) => {
      stopping = true;
      await within(Promise.all(loops.map((l) => l.stop())), deadline.remainingMs());
    });

    const admin = createAdmin({
      pool,
      js,
      jsm,
      topology,
      metrics,
      logger,
      retentionMs: config.retentionMs,
      bulkRedriveMax: config.bulkRedriveMax,
    });
    await admin.sweepOperations();
    stack.add('operations', () => admin.stopOperations());
    const cleanup = scheduleCleanup({
      run: () => admin.cleanup({}, { name: 'retention' }),
      intervalMs: config.cleanupIntervalMs,
      logger,
    });
    stack.add('cleanup', () => cleanup.stop());

    const queues = createQueues({
      pool,
      js,
      jsm,
      topology,
      pauses,
      events: createEventPublisher(js, topology, { maxPayload: nc.info?.max_payload }),
      logger,
    });
    const lookup = createJobLookup({ pool, jsm, topology, traceUrlTemplate: config.traceUrlTemplate });

    const micro = await startMicroService({ nc, admin, queues, lookup, topology, version, logger });
    stack.add('nats endpoints', () => micro.stop());

    if (!config.session.secret)
      logger.warn('DLQ_SESSION_SECRET is not set: session cookies end when this process stops and work on it alone');
    if (config.tokens.length === 0) {
      logger.warn('DLQ_TOKENS is empty: the admin API refuses every request until tokens are configured');
    }
    const app = await buildDlqApp({
      admin,
      queues,
      lookup,
      auth: createTokenAuth(
        config.tokens,
        createSessions({
          secret: config.session.secret ? Buffer.from(config.session.secret) : randomBytes(32),
          ttlMs: config.session.ttlMs,
          secure: config.session.secure,
        }),
      ),
      registry,
      logger,
      readiness: async () => {
        const problems = await streamProblems(jsm, [
          topology.streams.dlq,
          topology.streams.advisories,
          topology.streams.events,
        ]);
        // The query may outlive the 2 s we wait for it: its failure must not go unhandled.
        const ping = pool.query('SELECT 1').then(
          () => 'ok',
          (err: unknown) => (err instanceof Error ? err.message : String(err)),
        );
        const answer = (await within(ping, 2_000)) ?? 'no answer within 2 s';
        if (answer !== 'ok') problems.push(`Postgres is not reachable: ${answer}`);
        return problems;
      },
    });
    await app.listen({ host: config.http.host, port: config.http.port });
    stack.add('http', () => app.close());
    logger.info(
      { address: app.server.address(), tokens: config.tokens.length, retentionMs: config.retentionMs },
      'dlq-manager running',
    );
    return stack;
  },
});
