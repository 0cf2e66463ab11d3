import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { REPO_ROOT, SHARED_PG_URL } from '@redrive/test-support';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { MIGRATIONS_DIR } from '../src/migrate.js';

// Every migration shipped, in order.
const ALL = readdirSync(MIGRATIONS_DIR)
  .filter((f) => /^\d{4}_.*\.sql$/.test(f))
  .sort()
  .map((f) => f.replace(/\.sql$/, ''));

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function runMigrate(databaseUrl: string): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn('pnpm', ['-s', 'migrate'], {
      cwd: REPO_ROOT,
      env: { ...process.env, DATABASE_URL: databaseUrl, LOG_LEVEL: 'info', LOG_PRETTY: 'false' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

const messages = (stdout: string) =>
  stdout
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => (JSON.parse(l) as { msg: string }).msg);

async function admin<T>(use: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: SHARED_PG_URL });
  await client.connect();
  try {
    return await use(client);
  } finally {
    await client.end();
  }
}

describe('pnpm migrate', () => {
  // A database this test creates through the CLI, and so the only one it drops.
  const name = `store_cli_test_${Date.now().toString(36)}_${randomBytes(3).toString('hex')}`;
  const url = new URL(SHARED_PG_URL);
  url.pathname = `/${name}`;
  const where = `${url.hostname}:${url.port || 5432}`;

  afterAll(async () => {
    await admin((c) => c.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(name)} WITH (FORCE)`));
  });

  it('creates a missing database, applies every migration from 0001 on, and says so', async () => {
    const first = await runMigrate(url.toString());

    expect(first.stderr).toBe('');
    expect(first.code).toBe(0);
    expect(messages(first.stdout)).toEqual([
      `migrating ${name} on ${where}`,
      `database "${name}" did not exist; created it`,
      `applied ${ALL.length} migration(s): ${ALL.join(', ')}`,
    ]);
    const target = new pg.Client({ connectionString: url.toString() });
    await target.connect();
    try {
      const { rows } = await target.query<{ name: string }>('SELECT name FROM redrive_migrations ORDER BY id');
      expect(ALL[0]).toBe('0001_job_steps');
      expect(rows).toEqual(ALL.map((n) => ({ name: n })));
    } finally {
      await target.end();
    }

    const second = await runMigrate(url.toString());
    expect(second.code).toBe(0);
    expect(messages(second.stdout)).toEqual([`migrating ${name} on ${where}`, 'database schema is up to date']);
  });

  it.each([
    ['a non-postgres URL', 'http://127.0.0.1/redrive', /DATABASE_URL: expected postgres:\/\//],
    ['a URL without a database', 'postgres://u:hunter2@127.0.0.1:5432', /host and database name required/],
  ])('exits 1 with a message naming DATABASE_URL for %s', async (_name, bad, message) => {
    const run = await runMigrate(bad);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(message);
    expect(run.stderr + run.stdout).not.toContain('hunter2');
  });

  it('exits 1 saying the server cannot be reached', async () => {
    const run = await runMigrate('postgres://postgres@127.0.0.1:1/x');
    expect(run.code).toBe(1);
    expect(run.stderr).toBe('migrate: cannot reach Postgres at 127.0.0.1:1: connect ECONNREFUSED 127.0.0.1:1\n');
  });
});
