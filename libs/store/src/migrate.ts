import { fileURLToPath } from 'node:url';
import { runner } from 'node-pg-migrate';
import pg from 'pg';
import type { Logger } from 'pino';
import { rethrowUnavailable } from './errors.js';
import { CONNECT_TIMEOUT_MS, type Pool } from './pool.js';

/** The table in which node-pg-migrate records applied migrations (kept apart from any app's own). */
export const MIGRATIONS_TABLE = 'redrive_migrations';

/** The SQL migrations shipped with this lib; the same path from src/ and dist/. */
export const MIGRATIONS_DIR = fileURLToPath(new URL('../migrations', import.meta.url));

// node-pg-migrate's default lock id is shared by every project that uses it: Redrive's own id
// keeps it from queueing behind, or blocking, another application's migrations in a shared
// database. ASCII "REDRIV"; advisory locks are scoped to one database.
export const MIGRATION_LOCK_ID = 0x524544524956;

// Only `NNNN_name.sql` files are migrations; dotfiles and anything else in the folder are not.
const IGNORE_NON_SQL = '(?:\\..*|(?!.*\\.sql$).*)';

export type MigrateOptions = ({ url: string; pool?: undefined } | { pool: Pool; url?: undefined }) & {
  logger: Logger;
  /** Only forward: a schema change is undone by a new migration, never by rolling back. */
  direction?: 'up';
};

interface Session {
  client: pg.ClientBase;
  /** Gives the connection back; after a failure it is discarded rather than reused. */
  done(failed: boolean): Promise<void>;
}

async function openSession(options: MigrateOptions): Promise<Session> {
  const onError = (err: Error) => options.logger.warn({ err }, 'Postgres connection failed during migration');
  if (options.pool) {
    const client = await options.pool.connect().catch((err: unknown) => rethrowUnavailable(err, 'migrating'));
    client.on('error', onError);
    return {
      client,
      done: async (failed) => {
        // RESET returns to the pool's startup value, which the pool's other users rely on.
        const reusable =
          !failed &&
          (await client.query('RESET statement_timeout').then(
            () => true,
            () => false,
          ));
        client.off('error', onError);
        // Destroying the client ends its session, which also releases an advisory lock still held.
        client.release(reusable ? undefined : true);
      },
    };
  }
  const client = new pg.Client({
    connectionString: options.url,
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    application_name: 'redrive-migrate',
  });
  client.on('error', onError);
  await client.connect().catch((err: unknown) => rethrowUnavailable(err, 'migrating'));
  return {
    client,
    done: async () => {
      await client.end().catch(() => undefined);
      client.off('error', onError);
    },
  };
}

/**
 * Applies pending migrations exactly once even when many replicas start together (they wait
 * on a Postgres advisory lock); returns the names of the migrations this call applied.
 */
export async function migrate(options: MigrateOptions): Promise<string[]> {
  const { logger } = options;
  const started = performance.now();
  const session = await openSession(options);
  let failed = true;
  try {
    // Migrations, and waiting for another replica's, may rightly outlast a pool's statement_timeout.
    await session.client.query('SET statement_timeout = 0');
    const applied = await runner({
      dbClient: session.client,
      dir: MIGRATIONS_DIR,
      ignorePattern: IGNORE_NON_SQL,
      migrationsTable: MIGRATIONS_TABLE,
      direction: options.direction ?? 'up',
      checkOrder: true,
      // node-pg-migrate documents this as the default but only honours it when set.
      singleTransaction: true,
      // The default ('fail') would make every replica but one crash at start-up.
      advisoryLockMode: 'wait',
      lockValue: MIGRATION_LOCK_ID,
      logger: {
        // Its progress chatter is for debugging; the summary below is the info-level record.
        debug: (msg) => logger.debug(msg),
        info: (msg) => logger.debug(msg),
        warn: (msg) => logger.warn(msg),
        error: (msg) => logger.error(msg),
      },
    });
    failed = false;
    const names = applied.map((m) => m.name);
    const ms = Math.round(performance.now() - started);
    if (names.length > 0)
      logger.info({ applied: names, ms }, `applied ${names.length} migration(s): ${names.join(', ')}`);
    else logger.info({ ms }, 'database schema is up to date');
    return names;
  } catch (err) {
    return rethrowUnavailable(err, 'migrating');
  } finally {
    await session.done(failed);
  }
}
