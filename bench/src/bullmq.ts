// The queue most users would otherwise pick: BullMQ on a Redis with AOF fsync every second,
// the nearest durability to JetStream's file store.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Queue, QueueEvents, Worker } from 'bullmq';
import { freePort, waitForPort } from '@redrive/test-support';
import { round } from './stats.js';

/** Jobs per second added (pipelined) and processed together by BullMQ with a no-op processor. */
export async function bullmqThroughput(
  count: number,
  size: number,
  concurrency: number,
): Promise<{ jobsPerSec: number; version: string }> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'redrive-bullmq-'));
  const redis = spawn(
    'redis-server',
    [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--dir',
      dir,
      '--appendonly',
      'yes',
      '--appendfsync',
      'everysec',
      '--save',
      '',
    ],
    { stdio: 'ignore' },
  );
  try {
    await waitForPort(port);
    const connection = { host: '127.0.0.1', port, maxRetriesPerRequest: null };
    const queue = new Queue('bench', { connection });
    const events = new QueueEvents('bench', { connection });
    await events.waitUntilReady();
    let done = 0;
    let resolveAll!: () => void;
    const all = new Promise<void>((r) => (resolveAll = r));
    const worker = new Worker('bench', async () => undefined, {
      connection,
      concurrency,
      removeOnComplete: { count: 1_000 },
    });
    worker.on('completed', () => {
      if (++done >= count) resolveAll();
    });
    await worker.waitUntilReady();
    const data = { pad: 'x'.repeat(Math.max(0, size - 12)) };
    const started = performance.now();
    const window = 1_000;
    const inflight = new Set<Promise<unknown>>();
    for (let i = 0; i < count; i++) {
      const p = queue.add('job', data, { removeOnComplete: { count: 1_000 } }).finally(() => inflight.delete(p));
      inflight.add(p);
      if (inflight.size >= window) await Promise.race(inflight);
    }
    await Promise.all(inflight);
    await all;
    const jobsPerSec = round(count / ((performance.now() - started) / 1000), 0);
    await worker.close();
    await events.close();
    await queue.close();
    const { version } = (await import('bullmq/package.json', { with: { type: 'json' } })).default as {
      version: string;
    };
    return { jobsPerSec, version };
  } finally {
    redis.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
}
