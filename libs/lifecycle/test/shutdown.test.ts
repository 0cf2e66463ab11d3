import { describe, expect, it } from 'vitest';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { deadlineIn, ShutdownStack, within } from '@redrive/lifecycle';

function memoryLogger() {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString().split('\n'))
        if (line) lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { logger: pino({ level: 'debug' }, stream), lines };
}

// pino writes to the stream asynchronously; give it a turn before reading the lines.
const flushed = () => new Promise((resolve) => setImmediate(resolve));

describe('ShutdownStack', () => {
  it('stops steps in reverse order of registration, each after the previous one finished', async () => {
    const { logger } = memoryLogger();
    const stack = new ShutdownStack(logger);
    const events: string[] = [];
    for (const name of ['nats', 'consumers', 'http']) {
      stack.add(name, async () => {
        events.push(`${name}:start`);
        await new Promise((resolve) => setTimeout(resolve, 5));
        events.push(`${name}:end`);
      });
    }
    await stack.stop(1_000);
    expect(events).toEqual(['http:start', 'http:end', 'consumers:start', 'consumers:end', 'nats:start', 'nats:end']);
  });

  it.each([
    [
      'throws synchronously',
      () => {
        throw new Error('sync failure');
      },
      'sync failure',
    ],
    ['rejects', async () => Promise.reject(new Error('async failure')), 'async failure'],
  ])('logs a step that %s with its name and still runs the later steps', async (_label, failing, message) => {
    const { logger, lines } = memoryLogger();
    const stack = new ShutdownStack(logger);
    const ran: string[] = [];
    stack.add('pool', () => void ran.push('pool'));
    stack.add('broken', failing);
    stack.add('http', () => void ran.push('http'));
    await expect(stack.stop(1_000)).resolves.toBeUndefined();
    expect(ran).toEqual(['http', 'pool']);
    await flushed();
    const failure = lines.find((l) => l.msg === 'shutdown step failed');
    expect(failure).toMatchObject({ level: 50, step: 'broken', err: { message } });
    expect(lines.filter((l) => l.msg === 'stopped').map((l) => l.step)).toEqual(['http', 'pool']);
  });

  it('runs the steps once when stop() is called twice, and both calls wait for the same stop', async () => {
    const { logger } = memoryLogger();
    const stack = new ShutdownStack(logger);
    let runs = 0;
    let finished = false;
    stack.add('slow', async () => {
      runs++;
      await new Promise((resolve) => setTimeout(resolve, 20));
      finished = true;
    });
    const first = stack.stop(1_000);
    const second = stack.stop(1_000);
    expect(second).toBe(first);
    await second;
    expect(finished).toBe(true);
    await stack.stop(1_000);
    expect(runs).toBe(1);
  });

  it('gives every step the same deadline, grace period from the start of stop()', async () => {
    const { logger } = memoryLogger();
    const stack = new ShutdownStack(logger);
    const deadlines: number[] = [];
    stack.add('a', (d) => void deadlines.push(d.at));
    stack.add('b', async (d) => {
      deadlines.push(d.at);
      await new Promise((resolve) => setTimeout(resolve, 10));
    });
    const before = Date.now();
    await stack.stop(5_000);
    expect(deadlines).toHaveLength(2);
    expect(deadlines[0]).toBe(deadlines[1]);
    expect(deadlines[0]! - before).toBeGreaterThanOrEqual(5_000);
    expect(deadlines[0]! - before).toBeLessThan(5_100);
  });

  it('stops nothing and resolves when nothing was registered', async () => {
    await expect(new ShutdownStack(memoryLogger().logger).stop(10)).resolves.toBeUndefined();
  });
});

describe('deadlineIn', () => {
  it.each([
    [0, 1_000, 1_000],
    [400, 1_000, 600],
    [1_000, 1_000, 0],
    [5_000, 1_000, 0],
  ])('after %d ms of a %d ms deadline, %d ms remain', (elapsed, ms, remaining) => {
    let now = 10_000;
    const deadline = deadlineIn(ms, () => now);
    expect(deadline.at).toBe(10_000 + ms);
    now += elapsed;
    expect(deadline.remainingMs()).toBe(remaining);
  });
});

describe('within', () => {
  it('resolves with the value when the promise settles in time', async () => {
    await expect(within(Promise.resolve(42), 1_000)).resolves.toBe(42);
  });

  it('resolves with undefined once the time has passed, without waiting for the promise', async () => {
    const started = performance.now();
    const never = new Promise<string>(() => {});
    await expect(within(never, 30)).resolves.toBeUndefined();
    const waited = performance.now() - started;
    expect(waited).toBeGreaterThanOrEqual(25);
    expect(waited).toBeLessThan(1_000);
  });

  it('passes a rejection through when it comes in time', async () => {
    await expect(within(Promise.reject(new Error('nope')), 1_000)).rejects.toThrow('nope');
  });

  it('does not keep the process waiting for its timer once the promise settled', async () => {
    const before = process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    await within(Promise.resolve('done'), 60_000);
    const after = process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    expect(after).toBe(before);
  });
});
