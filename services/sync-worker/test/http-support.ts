import { randomUUID } from 'node:crypto';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import type { Job, JobContext } from '@redrive/sdk';

// Helpers of the http handler's tests: jobs, contexts, failures and connection counting.

export function jobOf(payload: unknown, overrides: Partial<Job> & { rawText?: string } = {}): Job {
  const { rawText, ...rest } = overrides;
  return {
    id: `msg_${randomUUID()}`,
    type: 'http',
    priority: 'normal',
    attempt: 1,
    payload,
    raw: Buffer.from(rawText ?? JSON.stringify(payload)),
    headers: {},
    ...rest,
  };
}

export interface TestContext extends JobContext {
  logs: { message: string; fields?: Record<string, unknown> }[];
}

export function ctxOf(signal: AbortSignal = new AbortController().signal): TestContext {
  const logs: TestContext['logs'] = [];
  return {
    signal,
    traceId: '0af7651916cd43dd8448eb211c80319c',
    logs,
    log: (message, fields) => void logs.push({ message, fields }),
    // The http handler neither reports progress nor checkpoints steps.
    progress: () => undefined,
    step: async (_name, fn) => fn(),
    stopRepeat: () => undefined,
  };
}

export async function failureOf(promise: unknown): Promise<Error & Record<string, unknown>> {
  try {
    await promise;
  } catch (err) {
    return err as Error & Record<string, unknown>;
  }
  throw new Error('expected the delivery to fail');
}

export /** Counts client sockets this process creates while `fn` runs: zero means no connection was attempted. */
async function socketsOpenedDuring(fn: () => Promise<unknown>): Promise<number> {
  let opened = 0;
  const onSocket = () => opened++;
  subscribe('net.client.socket', onSocket);
  try {
    await fn();
  } finally {
    unsubscribe('net.client.socket', onSocket);
  }
  return opened;
}
