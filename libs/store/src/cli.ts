#!/usr/bin/env node
// `pnpm migrate`: creates the database if it is missing, then applies pending migrations.
import { freezeConfig, parseEnv, runtimeEnv, type Env } from '@redrive/config';
import { createLogger, loadConfigOrExit } from '@redrive/lifecycle';
import { z } from 'zod';
import { databaseEnv } from './config.js';
import { describeUrl, ensureDatabase } from './database.js';
import { StoreUnavailableError } from './errors.js';
import { migrate } from './migrate.js';

const migrateEnv = z.object({
  ...databaseEnv,
  LOG_LEVEL: runtimeEnv.LOG_LEVEL,
  LOG_PRETTY: runtimeEnv.LOG_PRETTY,
});

function loadMigrateConfig(env: Env = process.env) {
  const e = parseEnv(migrateEnv, env);
  return freezeConfig({ databaseUrl: e.DATABASE_URL, log: { level: e.LOG_LEVEL, pretty: e.LOG_PRETTY } });
}

const config = loadConfigOrExit('migrate', () => loadMigrateConfig());
const logger = createLogger({ service: 'migrate', level: config.log.level, pretty: config.log.pretty });
const target = describeUrl(config.databaseUrl);

try {
  logger.info(target, `migrating ${target.database} on ${target.host}:${target.port}`);
  await ensureDatabase(config.databaseUrl, logger);
  await migrate({ url: config.databaseUrl, logger });
} catch (err) {
  logger.fatal({ err, ...target }, 'migration failed');
  const cause = err instanceof StoreUnavailableError && err.cause instanceof Error ? err.cause : undefined;
  const reason = cause
    ? `cannot reach Postgres at ${target.host}:${target.port}: ${cause.message || (cause as { code?: string }).code}`
    : err instanceof Error
      ? err.message
      : String(err);
  process.stderr.write(`migrate: ${reason}\n`);
  // exitCode rather than exit(): lets the logger flush its last lines.
  process.exitCode = 1;
}
