import { ensureDatabase } from '@redrive/store';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { SHARED_PG_URL, uniquePrefix } from '@redrive/test-support';
import { memoryLogger } from './logger.js';

describe('ensureDatabase', () => {
  it('creates a missing database once when several services ask for it at the same moment', async () => {
    const name = `${uniquePrefix('store_race')}_test`.toLowerCase();
    const url = new URL(SHARED_PG_URL);
    url.pathname = `/${name}`;
    const { logger } = memoryLogger();
    try {
      // A fresh stack starts dlq-manager, retry-scheduler and sync-worker together, and each
      // creates the database it is given: none of them may fail because another won the race.
      const created = await Promise.all(Array.from({ length: 6 }, () => ensureDatabase(url.toString(), logger)));
      expect(created.filter(Boolean).length).toBeLessThanOrEqual(1);
      expect(await ensureDatabase(url.toString(), logger)).toBe(false);
    } finally {
      const admin = new pg.Client({ connectionString: SHARED_PG_URL });
      await admin.connect();
      await admin.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(name)}`);
      await admin.end();
    }
  });
});
