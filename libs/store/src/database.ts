import pg from 'pg';
import type { Logger } from 'pino';
import { rethrowUnavailable } from './errors.js';
import { CONNECT_TIMEOUT_MS } from './pool.js';

// SQLSTATEs: invalid_catalog_name (the database does not exist) and duplicate_database.
const DATABASE_MISSING = '3D000';
const DATABASE_EXISTS = '42P04';
// Two CREATE DATABASE of one name at the same moment: the loser can fail on the catalog's
// unique index instead of with 42P04 (seen when the services of a fresh stack start together).
const UNIQUE_VIOLATION = '23505';
/** Every Postgres server has this database; it exists so tools have somewhere to connect. */
const MAINTENANCE_DATABASE = 'postgres';

function sqlState(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** The database a postgres:// URL names (its path), or undefined when it names none. */
export function databaseName(url: string): string | undefined {
  const name = decodeURIComponent(new URL(url).pathname.replace(/^\//, ''));
  return name === '' ? undefined : name;
}

/** Where a URL points, without its password: safe to log. */
export function describeUrl(url: string): { host: string; port: number; database: string | undefined } {
  const u = new URL(url);
  return { host: u.hostname, port: u.port ? Number(u.port) : 5432, database: databaseName(url) };
}

async function withClient<T>(url: string, use: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({
    connectionString: url,
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    application_name: 'redrive-migrate',
  });
  // A connection that dies between queries emits 'error'; the pending query rejects anyway.
  client.on('error', () => undefined);
  await client.connect();
  try {
    return await use(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * Creates the database `url` names when it does not exist yet, through the server's `postgres`
 * maintenance database; returns whether it created it. A database that exists is never touched.
 */
export async function ensureDatabase(url: string, logger: Logger): Promise<boolean> {
  const name = databaseName(url);
  if (name === undefined) throw new TypeError(`the URL names no database: ${JSON.stringify(describeUrl(url))}`);
  try {
    // Trying the target first means a deployment whose role may not connect to `postgres`
    // (common on managed servers) still works as long as its database exists.
    await withClient(url, async () => undefined);
    return false;
  } catch (err) {
    if (sqlState(err) !== DATABASE_MISSING) return rethrowUnavailable(err, `connecting to database "${name}"`);
  }
  const admin = new URL(url);
  admin.pathname = `/${MAINTENANCE_DATABASE}`;
  try {
    await withClient(admin.toString(), (client) => client.query(`CREATE DATABASE ${pg.escapeIdentifier(name)}`));
  } catch (err) {
    // Another replica or operator created it in the meantime: the outcome we wanted.
    if (sqlState(err) === DATABASE_EXISTS) return false;
    if (
      sqlState(err) === UNIQUE_VIOLATION &&
      (err as { constraint?: string }).constraint === 'pg_database_datname_index'
    )
      return false;
    return rethrowUnavailable(err, `creating database "${name}"`);
  }
  logger.info({ ...describeUrl(url) }, `database "${name}" did not exist; created it`);
  return true;
}
