import { createTestDatabase, waitFor, type TestDatabase } from '@redrive/test-support';
import { closePool, createPool, migrate, MIGRATIONS_TABLE } from '@redrive/store';
import pg from 'pg';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { readdirSync } from 'node:fs';
import { MIGRATION_LOCK_ID, MIGRATIONS_DIR } from '../src/migrate.js';
import { memoryLogger } from './logger.js';

// Every migration shipped, in order: the tests hold for whatever migrations exist.
const ALL = readdirSync(MIGRATIONS_DIR)
  .filter((f) => /^\d{4}_.*\.sql$/.test(f))
  .sort()
  .map((f) => f.replace(/\.sql$/, ''));

async function query<T extends pg.QueryResultRow>(url: string, text: string, values: unknown[] = []): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<T>(text, values)).rows;
  } finally {
    await client.end();
  }
}

const appliedNames = (url: string) =>
  query<{ name: string }>(url, `SELECT name FROM ${MIGRATIONS_TABLE} ORDER BY id`).then((rows) =>
    rows.map((r) => r.name),
  );

describe('migrate', () => {
  let db: TestDatabase;
  beforeEach(async () => {
    db = await createTestDatabase('store_migrate');
  });
  afterEach(async () => {
    await db.drop();
  });

  it('creates job_steps on an empty database and records the migration in redrive_migrations', async () => {
    const { logger, lines } = memoryLogger();

    const applied = await migrate({ url: db.url, logger });
    expect(ALL[0]).toBe('0001_job_steps');

    expect(applied).toEqual(ALL);
    expect(await appliedNames(db.url)).toEqual(ALL);
    const columns = await query<{ column_name: string; data_type: string; is_nullable: string }>(
      db.url,
      `SELECT column_name, data_type, is_nullable FROM information_schema.columns
        WHERE table_name = 'job_steps' ORDER BY ordinal_position`,
    );
    expect(columns).toEqual([
      { column_name: 'job_id', data_type: 'text', is_nullable: 'NO' },
      { column_name: 'step', data_type: 'text', is_nullable: 'NO' },
      { column_name: 'result', data_type: 'jsonb', is_nullable: 'YES' },
      { column_name: 'completed_at', data_type: 'timestamp with time zone', is_nullable: 'NO' },
    ]);
    const [pk] = await query<{ columns: string }>(
      db.url,
      `SELECT string_agg(a.attname, ',' ORDER BY k.ord) AS columns
         FROM pg_index i
         CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
         JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
        WHERE i.indrelid = 'job_steps'::regclass AND i.indisprimary`,
    );
    expect(pk?.columns).toBe('job_id,step');
    expect(lines.some((l) => l.msg === `applied ${ALL.length} migration(s): ${ALL.join(', ')}`)).toBe(true);
  });

  it('applies nothing when run a second time', async () => {
    const { logger } = memoryLogger();
    await migrate({ url: db.url, logger });

    expect(await migrate({ url: db.url, logger })).toEqual([]);
    expect(await appliedNames(db.url)).toEqual(ALL);
  });

  it('applies each migration once when three replicas migrate the same fresh database at once', async () => {
    const { logger } = memoryLogger();

    const results = await Promise.all([1, 2, 3].map(() => migrate({ url: db.url, logger })));

    expect(results.flat()).toEqual(ALL);
    expect(results.filter((r) => r.length === 0)).toHaveLength(2);
    expect(await appliedNames(db.url)).toEqual(ALL);
  });

  it('waits while another replica holds the migration lock instead of failing', async () => {
    const { logger } = memoryLogger();
    const holder = new pg.Client({ connectionString: db.url });
    await holder.connect();
    try {
      await holder.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_ID]);
      let settled = false;
      const waiting = migrate({ url: db.url, logger }).finally(() => (settled = true));
      // The waiter shows up in pg_locks as an ungranted advisory lock on this database.
      await waitFor(
        async () =>
          (
            await holder.query(
              `SELECT 1 FROM pg_locks l JOIN pg_database d ON d.oid = l.database
                WHERE l.locktype = 'advisory' AND NOT l.granted AND d.datname = current_database()`,
            )
          ).rowCount === 1,
        { what: 'migrate() to wait on the advisory lock' },
      );
      expect(settled).toBe(false);
      expect(await appliedNames(db.url).catch(() => [])).toEqual([]);

      await holder.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_ID]);

      expect(await waiting).toEqual(ALL);
    } finally {
      await holder.end();
    }
  });

  it('migrates through a pool and leaves the pool statement_timeout as it was', async () => {
    const { logger } = memoryLogger();
    const pool = createPool({ url: db.url, max: 1, statementTimeoutMs: 12_345, logger });
    try {
      expect(await migrate({ pool, logger })).toEqual(ALL);

      // max: 1, so this is the very connection migrate() used.
      const { rows } = await pool.query<{ statement_timeout: string }>('SHOW statement_timeout');
      expect(rows[0]?.statement_timeout).toBe('12345ms');
      expect(pool.totalCount).toBe(1);
    } finally {
      await closePool(pool);
    }
  });
});
