import { mkdtempSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  freePort,
  startNatsServer,
  startService,
  waitFor,
  type PrivateNats,
  type ServiceProcess,
} from '@redrive/test-support';

// A private nats-server that the test stops and starts again: the services must ride it out.

let nats: PrivateNats;
let intake: ServiceProcess;
let worker: ServiceProcess;
let intakePort: number;
const recordFile = join(mkdtempSync(join(tmpdir(), 'redrive-restart-')), 'seen.jsonl');

const ran = (id: unknown) =>
  existsSync(recordFile) &&
  readFileSync(recordFile, 'utf8')
    .split('\n')
    .filter(Boolean)
    .some((l) => (JSON.parse(l) as { id: string }).id === id);

async function submit(n: number, type = 'record') {
  const res = await fetch(`http://127.0.0.1:${intakePort}/v1/jobs`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ type, payload: { n } }),
  });
  return {
    status: res.status,
    retryAfter: res.headers.get('retry-after'),
    body: (await res.json()) as Record<string, unknown>,
  };
}

beforeAll(async () => {
  nats = await startNatsServer();
  const env = { NATS_URL: nats.url, RECORD_FILE: recordFile };
  worker = startService('sync-worker', {
    ...env,
    WORKER_PORT: String(await freePort()),
    WORKER_HANDLERS: './test/fixtures/record-handlers.mjs',
  });
  await worker.waitForLog((l) => l.msg === 'sync-worker running');
  intakePort = await freePort();
  intake = startService('intake', {
    ...env,
    INTAKE_PORT: String(intakePort),
    INTAKE_PUBLISH_TIMEOUT: '1s',
    INTAKE_ALLOW_ANONYMOUS: 'true',
  });
  await intake.waitForLog((l) => l.msg === 'intake listening');
}, 60_000);

afterAll(async () => {
  await Promise.all([intake?.stop(), worker?.stop()]);
  await nats?.dispose();
});

describe('a NATS restart', () => {
  it('makes intake refuse with 503 while NATS is down, and both services carry on once it is back', async () => {
    const before = await submit(1);
    expect(before.status).toBe(202);
    await waitFor(() => ran(before.body.jobId), { what: 'the first job' });

    await nats.stop();
    const during = await submit(2);
    expect(during.status).toBe(503);
    expect(during.retryAfter).toBe('1');
    // A type intake has not seen makes it read the served types again, which fails too: the
    // same 503 and Retry-After, not a 500.
    const unseen = await submit(2, 'not-seen-yet');
    expect(unseen.status).toBe(503);
    expect(unseen.retryAfter).toBe('1');
    const ready = await fetch(`http://127.0.0.1:${intakePort}/readyz`);
    expect(ready.status).toBe(503);

    await nats.start();
    await waitFor(async () => (await fetch(`http://127.0.0.1:${intakePort}/readyz`)).status === 200, {
      timeoutMs: 20_000,
      what: 'intake to be ready again',
    });
    const after = await submit(3);
    expect(after.status).toBe(202);
    await waitFor(() => ran(after.body.jobId), { timeoutMs: 30_000, what: 'a job after the restart' });
    expect(worker.logs.some((l) => l.msg === 'NATS reconnected')).toBe(true);
  }, 90_000);
});
