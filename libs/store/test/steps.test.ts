import { createTestDatabase, type TestDatabase } from '@redrive/test-support';
import {
  closePool,
  createPool,
  createStepStore,
  migrate,
  StoreUnavailableError,
  type Pool,
  type StepStore,
} from '@redrive/store';
import { once } from 'node:events';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { memoryLogger } from './logger.js';

describe('step store', () => {
  let db: TestDatabase;
  let pool: Pool;
  let steps: StepStore;
  let n = 0;
  const jobId = () => `job-${++n}`;

  beforeAll(async () => {
    db = await createTestDatabase('store_steps');
    const { logger } = memoryLogger();
    await migrate({ url: db.url, logger });
    pool = createPool({ url: db.url, logger, applicationName: 'store-steps-test' });
    steps = createStepStore(pool);
  });
  afterAll(async () => {
    await closePool(pool);
    await db.drop();
  });

  it.each([
    ['an object', { id: 'ch_1', amount: 4200, tags: ['a', 'b'], nested: { ok: true } }],
    ['an array (kept JSON, not a Postgres array)', [1, 'two', { three: 3 }]],
    ['a string', 'charged'],
    ['a number', 42],
    ['false', false],
    ['null', null],
  ])('round-trips %s', async (_name, value) => {
    const job = jobId();
    await steps.save(job, 'charge', value);
    expect(await steps.get(job, 'charge')).toEqual({ found: true, value });
  });

  it('saves undefined as null, which get() reports as found', async () => {
    const job = jobId();
    await steps.save(job, 'notify', undefined);
    expect(await steps.get(job, 'notify')).toEqual({ found: true, value: null });
  });

  it('reports a step that never completed as not found', async () => {
    const job = jobId();
    await steps.save(job, 'charge', 1);
    expect(await steps.get(job, 'ship')).toEqual({ found: false });
    expect(await steps.get(jobId(), 'charge')).toEqual({ found: false });
  });

  it('keeps the first result when a step is saved twice', async () => {
    const job = jobId();
    await steps.save(job, 'charge', { chargeId: 'first' });
    await steps.save(job, 'charge', { chargeId: 'second' });
    expect(await steps.get(job, 'charge')).toEqual({ found: true, value: { chargeId: 'first' } });
  });

  it('keeps exactly one result when duplicate runs save the same step at once', async () => {
    const job = jobId();
    await Promise.all(Array.from({ length: 8 }, (_, i) => steps.save(job, 'charge', { run: i })));
    const got = await steps.get(job, 'charge');
    expect(got.found).toBe(true);
    const { rows } = await pool.query('SELECT count(*)::int AS n FROM job_steps WHERE job_id = $1', [job]);
    expect(rows[0]).toEqual({ n: 1 });
  });

  it('clear() removes every step of the job and only that job', async () => {
    const job = jobId();
    const other = jobId();
    await steps.save(job, 'a', 1);
    await steps.save(job, 'b', null);
    await steps.save(other, 'a', 1);

    expect(await steps.clear(job)).toBe(2);
    expect(await steps.get(job, 'a')).toEqual({ found: false });
    expect(await steps.get(job, 'b')).toEqual({ found: false });
    expect(await steps.get(other, 'a')).toEqual({ found: true, value: 1 });
    expect(await steps.clear(job)).toBe(0);
  });

  it('rejects a value JSON cannot represent instead of saving something else', async () => {
    await expect(steps.save(jobId(), 'x', () => 1)).rejects.toThrow(TypeError);
    await expect(steps.save(jobId(), 'x', 10n)).rejects.toThrow(TypeError);
  });
});

describe('step store without a database', () => {
  it.each(['get', 'save', 'clear'] as const)(
    '%s() rejects with StoreUnavailableError, keeping the connection error as cause',
    async (method) => {
      const { logger } = memoryLogger();
      const pool = createPool({ url: 'postgres://postgres@127.0.0.1:1/x', logger });
      const steps = createStepStore(pool);
      const started = performance.now();
      try {
        const call =
          method === 'get' ? steps.get('j', 's') : method === 'save' ? steps.save('j', 's', 1) : steps.clear('j');
        const err: unknown = await call.then(
          () => undefined,
          (e: unknown) => e,
        );

        expect(err).toBeInstanceOf(StoreUnavailableError);
        expect((err as StoreUnavailableError).name).toBe('StoreUnavailableError');
        expect((err as Error).cause).toMatchObject({ code: 'ECONNREFUSED' });
        expect(performance.now() - started).toBeLessThan(5_000);
      } finally {
        await closePool(pool);
      }
    },
  );
});

describe('step store against a server that accepts but never answers', () => {
  it('gives up after the connect timeout with StoreUnavailableError instead of hanging', async () => {
    const sockets: Socket[] = [];
    const silent = createServer((socket) => void sockets.push(socket));
    silent.listen(0, '127.0.0.1');
    await once(silent, 'listening');
    const { port } = silent.address() as AddressInfo;
    const { logger } = memoryLogger();
    const pool = createPool({ url: `postgres://postgres@127.0.0.1:${port}/x`, logger });
    const started = performance.now();
    try {
      const err: unknown = await createStepStore(pool)
        .get('j', 's')
        .then(
          () => undefined,
          (e: unknown) => e,
        );

      const elapsed = performance.now() - started;
      expect(err).toBeInstanceOf(StoreUnavailableError);
      expect(elapsed).toBeGreaterThan(4_000);
      expect(elapsed).toBeLessThan(8_000);
    } finally {
      for (const s of sockets) s.destroy();
      silent.close();
      await closePool(pool);
    }
  });
});
