import pg from 'pg';
import type { Logger } from 'pino';

export type Pool = pg.Pool;

export interface PoolSettings {
  /** postgres://user:password@host:port/database[?sslmode=…] */
  url: string;
  /** Most connections open at once (default 10). */
  max?: number;
  /** Shown in pg_stat_activity, so an operator can tell which service holds a connection. */
  applicationName?: string;
  /** Server-side cap on one statement (default 30 s; 0 disables). */
  statementTimeoutMs?: number;
  logger: Logger;
}

/** Default for a connection attempt: a down or unreachable database fails fast instead of hanging. */
export const CONNECT_TIMEOUT_MS = 5_000;
const DEFAULT_STATEMENT_TIMEOUT_MS = 30_000;
// A client that dies inside a transaction must not hold row locks until TCP notices.
const IDLE_IN_TRANSACTION_TIMEOUT_MS = 60_000;

/** Creates a pg pool with bounded connect/statement timeouts whose idle-client errors are logged, never thrown. */
export function createPool(settings: PoolSettings): Pool {
  const statementTimeout = settings.statementTimeoutMs ?? DEFAULT_STATEMENT_TIMEOUT_MS;
  const pool = new pg.Pool({
    connectionString: settings.url,
    max: settings.max ?? 10,
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    idleTimeoutMillis: 30_000,
    keepAlive: true,
    ...(settings.applicationName ? { application_name: settings.applicationName } : {}),
    // Sent as startup parameters, so they hold for every session the pool opens (also those
    // opened after a server restart), unlike a SET run once; as separate parameters rather
    // than `options=-c …`, an `options` in the URL does not silently drop them.
    statement_timeout: statementTimeout,
    idle_in_transaction_session_timeout: IDLE_IN_TRANSACTION_TIMEOUT_MS,
  });
  // An idle client whose server goes away (restart, failover, pg_terminate_backend) makes the
  // pool emit 'error'; without a listener Node would crash the process. The pool has already
  // discarded that client, so the next checkout opens a fresh connection.
  pool.on('error', (err) => {
    settings.logger.warn({ err }, 'idle Postgres connection failed; the pool replaces it');
  });
  return pool;
}

/** Closes the pool once every checked-out client is released; safe to call more than once. */
export async function closePool(pool: Pool): Promise<void> {
  if (pool.ended) return;
  await pool.end();
}
