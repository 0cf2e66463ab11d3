import { createTestDatabase, type TestDatabase } from '@redrive/test-support';
import {
  AbandonedError,
  closePool,
  createPool,
  inTransaction,
  isTransient,
  untilStored,
  type Pool,
} from '@redrive/store';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { memoryLogger } from './logger.js';

describe('inTransaction', () => {
  let db: TestDatabase;
  let pool: Pool;

  beforeAll(async () => {
    db = await createTestDatabase('store_transaction');
    const { logger } = memoryLogger();
    pool = createPool({ url: db.url, logger, applicationName: 'store-transaction-test' });
    await pool.query('CREATE TABLE t (n int PRIMARY KEY)');
  });
  afterAll(async () => {
    await closePool(pool);
    await db.drop();
  });

  it('commits what the work wrote when it resolves, and nothing when it throws', async () => {
    expect(
      await inTransaction(pool, async (c) => (await c.query('INSERT INTO t VALUES (1) RETURNING n')).rowCount),
    ).toBe(1);
    await expect(
      inTransaction(pool, async (c) => {
        await c.query('INSERT INTO t VALUES (2)');
        throw new Error('changed my mind');
      }),
    ).rejects.toThrow('changed my mind');
    expect((await pool.query('SELECT n FROM t ORDER BY n')).rows).toEqual([{ n: 1 }]);
    // Every connection went back to the pool.
    expect(pool.totalCount - pool.idleCount).toBe(0);
  });
});

describe('untilStored', () => {
  const transient = Object.assign(new Error('deadlock detected'), { code: '40P01' });

  it('runs a write again while it fails for a transient reason, and not after a lasting one', async () => {
    const { logger } = memoryLogger();
    let calls = 0;
    const retries: number[] = [];
    const result = await untilStored(
      async () => {
        if (++calls < 3) throw transient;
        return 'stored';
      },
      { what: 'a test write', stopping: () => false, logger, onRetry: (n) => retries.push(n) },
    );
    expect(result).toBe('stored');
    expect(retries).toEqual([1, 2]);

    const lasting = Object.assign(new Error('duplicate key'), { code: '23505' });
    expect(isTransient(lasting)).toBe(false);
    let once = 0;
    await expect(
      untilStored(
        async () => {
          once++;
          throw lasting;
        },
        { what: 'a test write', stopping: () => false, logger },
      ),
    ).rejects.toBe(lasting);
    expect(once).toBe(1);
  });

  it('gives up with AbandonedError once shutdown has begun', async () => {
    const { logger } = memoryLogger();
    await expect(
      untilStored(
        async () => {
          throw transient;
        },
        { what: 'a test write', stopping: () => true, logger },
      ),
    ).rejects.toBeInstanceOf(AbandonedError);
  });
});
