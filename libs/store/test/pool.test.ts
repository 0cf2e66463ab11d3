import { createTestDatabase, waitFor, type TestDatabase } from '@redrive/test-support';
import { closePool, createPool } from '@redrive/store';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { memoryLogger } from './logger.js';

describe('createPool', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase('store_pool');
  });
  afterAll(async () => {
    await db.drop();
  });

  it('opens sessions with the application name and a bounded statement_timeout', async () => {
    const { logger } = memoryLogger();
    const pool = createPool({ url: db.url, logger, applicationName: 'redrive-pool-test' });
    try {
      const { rows } = await pool.query<{ app: string; statement_timeout: string; idle_tx: string }>(
        `SELECT current_setting('application_name') AS app,
                current_setting('statement_timeout') AS statement_timeout,
                current_setting('idle_in_transaction_session_timeout') AS idle_tx`,
      );
      expect(rows[0]).toEqual({ app: 'redrive-pool-test', statement_timeout: '30s', idle_tx: '1min' });
    } finally {
      await closePool(pool);
    }
  });

  it('cancels a statement that outlasts statementTimeoutMs', async () => {
    const { logger } = memoryLogger();
    const pool = createPool({ url: db.url, logger, statementTimeoutMs: 200 });
    try {
      await expect(pool.query('SELECT pg_sleep(2)')).rejects.toMatchObject({ code: '57014' });
    } finally {
      await closePool(pool);
    }
  });

  it('logs an idle connection killed by the server, and keeps serving queries on a new one', async () => {
    const { logger, lines } = memoryLogger();
    const pool = createPool({ url: db.url, logger, max: 1, applicationName: 'redrive-pool-kill' });
    const admin = new pg.Client({ connectionString: db.url });
    await admin.connect();
    try {
      const before = await pool.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
      const pid = before.rows[0]!.pid;

      // The pool's only client is idle now; killing its backend makes the pool emit 'error',
      // which would crash the process without the listener createPool installs.
      await admin.query('SELECT pg_terminate_backend($1)', [pid]);
      await waitFor(() => lines.some((l) => l.msg?.includes('idle Postgres connection failed')), {
        what: 'the idle-client error to be logged',
      });

      const after = await pool.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
      expect(after.rows[0]!.pid).not.toBe(pid);
      expect(lines.find((l) => l.msg?.includes('idle Postgres connection failed'))).toMatchObject({ level: 40 });
    } finally {
      await admin.end();
      await closePool(pool);
    }
  });

  it('closePool can be called twice', async () => {
    const { logger } = memoryLogger();
    const pool = createPool({ url: db.url, logger });
    await pool.query('SELECT 1');
    await closePool(pool);
    await expect(closePool(pool)).resolves.toBeUndefined();
  });
});
