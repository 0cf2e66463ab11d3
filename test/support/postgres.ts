import pg from 'pg';
import { randomBytes } from 'node:crypto';

/** The shared development Postgres's admin URL (never dropped by tests). */
export const SHARED_PG_URL = process.env.DATABASE_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

export interface TestDatabase {
  readonly name: string;
  readonly url: string;
  /** Drops the database (and only it). */
  drop(): Promise<void>;
}

/** Creates a fresh, empty database for one test file. */
export async function createTestDatabase(label = 'redrive'): Promise<TestDatabase> {
  const name = `${label.replace(/[^a-z0-9_]/gi, '').toLowerCase()}_test_${Date.now().toString(36)}_${randomBytes(3).toString('hex')}`;
  const admin = new pg.Client({ connectionString: SHARED_PG_URL });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE "${name}"`);
  } finally {
    await admin.end();
  }
  const url = new URL(SHARED_PG_URL);
  url.pathname = `/${name}`;
  return {
    name,
    url: url.toString(),
    drop: async () => {
      const c = new pg.Client({ connectionString: SHARED_PG_URL });
      await c.connect();
      try {
        await c.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      } finally {
        await c.end();
      }
    },
  };
}
