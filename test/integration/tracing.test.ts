import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  connectTestClient,
  createTestDatabase,
  deleteStreams,
  freePort,
  SHARED_NATS_URL,
  startService,
  uniquePrefix,
  waitFor,
  type ServiceProcess,
  type TestDatabase,
} from '@redrive/test-support';

// With the standard OTEL_* variables set, the four services export spans over OTLP; this test
// is the collector (OTLP/HTTP with JSON bodies) and checks the span tree of one job from the
// HTTP request through a retry handed to the scheduler, into the DLQ, and through a redrive.

interface OtlpValue {
  stringValue?: string;
  intValue?: string | number;
  boolValue?: boolean;
}
interface OtlpAttribute {
  key: string;
  value: OtlpValue;
}
interface ExportedSpan {
  service: string;
  name: string;
  kind: number;
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  attributes: Record<string, string | number | boolean | undefined>;
  links: { traceId: string; spanId: string }[];
  flags?: number;
}

// OTLP's SpanKind numbers.
const SERVER = 2;
const CLIENT = 3;
const PRODUCER = 4;
const CONSUMER = 5;

const prefix = uniquePrefix('trace');
const OPERATOR = 'trace-test-operator-token';
const spans: ExportedSpan[] = [];
let collector: Server;
let db: TestDatabase;
const services: ServiceProcess[] = [];
let intakePort: number;
let dlqPort: number;

function valueOf(v: OtlpValue): string | number | boolean | undefined {
  if (v.stringValue !== undefined) return v.stringValue;
  if (v.intValue !== undefined) return Number(v.intValue);
  return v.boolValue;
}

beforeAll(async () => {
  const collectorPort = await freePort();
  collector = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8').on('data', (c: string) => (body += c));
    req.on('end', () => {
      if (req.url === '/v1/traces') {
        const doc = JSON.parse(body) as {
          resourceSpans: {
            resource: { attributes: OtlpAttribute[] };
            scopeSpans: {
              spans: (Omit<ExportedSpan, 'service' | 'attributes' | 'links'> & {
                attributes?: OtlpAttribute[];
                links?: { traceId: string; spanId: string }[];
              })[];
            }[];
          }[];
        };
        for (const rs of doc.resourceSpans) {
          const service = rs.resource.attributes.find((a) => a.key === 'service.name')?.value.stringValue ?? '';
          for (const ss of rs.scopeSpans)
            for (const s of ss.spans)
              spans.push({
                ...s,
                service,
                attributes: Object.fromEntries((s.attributes ?? []).map((a) => [a.key, valueOf(a.value)])),
                links: s.links ?? [],
              });
        }
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => collector.listen(collectorPort, '127.0.0.1', resolve));
  db = await createTestDatabase('tracing');
  const env = {
    NATS_URL: SHARED_NATS_URL,
    REDRIVE_PREFIX: prefix,
    LOG_LEVEL: 'info',
    OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${collectorPort}`,
    OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
    OTEL_BSP_SCHEDULE_DELAY: '100',
    RECORD_FILE: '/dev/null',
    // Every retry goes through the retry-scheduler (intake and the worker must agree on it).
    RETRY_HANDOFF_THRESHOLD: '500ms',
  };
  const start = (name: string, more: Record<string, string>, ready: string) => {
    const proc = startService(name, { ...env, ...more });
    services.push(proc);
    return proc.waitForLog((l) => l.msg === ready, 30_000);
  };
  intakePort = await freePort();
  dlqPort = await freePort();
  await start(
    'dlq-manager',
    {
      DATABASE_URL: db.url,
      DLQ_PORT: String(dlqPort),
      DLQ_TOKENS: JSON.stringify([{ name: 'ops', role: 'operator', token: OPERATOR }]),
    },
    'dlq-manager running',
  );
  await Promise.all([
    start(
      'sync-worker',
      {
        WORKER_PORT: String(await freePort()),
        WORKER_HANDLERS: './test/fixtures/record-handlers.mjs,./test/fixtures/observe-handlers.mjs',
      },
      'sync-worker running',
    ),
    start(
      'retry-scheduler',
      { DATABASE_URL: db.url, SCHEDULER_PORT: String(await freePort()) },
      'retry-scheduler running',
    ),
    start('intake', { INTAKE_PORT: String(intakePort), INTAKE_ALLOW_ANONYMOUS: 'true' }, 'intake listening'),
  ]);
}, 90_000);

afterAll(async () => {
  await Promise.all(services.map((s) => s.stop()));
  collector?.close();
  const nc = await connectTestClient();
  await deleteStreams(nc, prefix);
  await nc.close();
  await db?.drop();
});

async function submit(
  body: unknown,
  headers: Record<string, string> = {},
): Promise<{ jobId: string; traceId: string }> {
  const res = await fetch(`http://127.0.0.1:${intakePort}/v1/jobs`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
  expect(res.status).toBe(202);
  return (await res.json()) as { jobId: string; traceId: string };
}

/** Waits for the one span of `traceId` that matches, and returns it. */
function span(traceId: string, what: string, match: (s: ExportedSpan) => boolean): Promise<ExportedSpan> {
  return waitFor(
    () => {
      const found = spans.filter((s) => s.traceId === traceId && match(s));
      if (found.length > 1) throw new Error(`more than one span for ${what}: ${JSON.stringify(found)}`);
      return found[0];
    },
    { timeoutMs: 20_000, what },
  );
}

const subjectOf = (kind: string, rest: string) => `${prefix}.${kind}.${rest}`;

describe('OpenTelemetry across services', () => {
  it('continues the HTTP caller’s trace: request, publish, and the handler run', async () => {
    const traceId = 'a3ce929d0e0e47364bf92f3577b34da6';
    const callerSpan = '00f067aa0ba902b7';
    await submit({ type: 'record', payload: { traced: true } }, { traceparent: `00-${traceId}-${callerSpan}-01` });

    const request = await span(traceId, 'the request span', (s) => s.kind === SERVER);
    const publish = await span(traceId, 'the publish span', (s) => s.kind === PRODUCER);
    const processed = await span(traceId, 'the process span', (s) => s.kind === CONSUMER);
    expect(request).toMatchObject({ service: 'redrive-intake', name: 'POST /v1/jobs', parentSpanId: callerSpan });
    expect(publish).toMatchObject({
      service: 'redrive-intake',
      name: `publish ${subjectOf('jobs', 'normal.record')}`,
      parentSpanId: request.spanId,
    });
    expect(processed).toMatchObject({
      service: 'redrive-sync-worker',
      name: `process ${subjectOf('jobs', 'normal.record')}`,
      parentSpanId: publish.spanId,
    });
  });

  it('follows a job without a caller’s trace through a retry, the DLQ and a redrive, in one sampled trace', async () => {
    const { jobId, traceId } = await submit({ type: 'flaky', payload: {}, maxAttempts: 2 });
    const jobs = subjectOf('jobs', 'normal.flaky');

    // intake: a root span of its own (no invented, unexported parent), sampled, and the publish.
    const request = await span(traceId, 'the request span', (s) => s.kind === SERVER);
    expect(request).toMatchObject({ service: 'redrive-intake', name: 'POST /v1/jobs' });
    expect(request.parentSpanId || undefined).toBeUndefined();
    expect(request.attributes['http.response.status_code']).toBe(202);
    const published = await span(
      traceId,
      'intake’s publish',
      (s) => s.service === 'redrive-intake' && s.kind === PRODUCER,
    );
    expect(published).toMatchObject({ name: `publish ${jobs}`, parentSpanId: request.spanId });
    expect(published.attributes).toMatchObject({
      'messaging.system': 'nats',
      'messaging.operation.name': 'publish',
      'messaging.operation.type': 'send',
      'messaging.destination.name': jobs,
      'messaging.message.id': jobId,
    });

    // The first delivery: the child of the publish and linked to it; it fails and is handed off.
    const first = await span(
      traceId,
      'the first process span',
      (s) => s.kind === CONSUMER && s.parentSpanId === published.spanId,
    );
    expect(first).toMatchObject({ service: 'redrive-sync-worker', name: `process ${jobs}` });
    expect(first.links).toEqual([expect.objectContaining({ traceId, spanId: published.spanId })]);
    expect(first.attributes).toMatchObject({
      'messaging.operation.type': 'process',
      'messaging.consumer.group.name': 'worker-normal-flaky',
      'messaging.message.id': jobId,
      'error.type': 'network',
    });
    const handOff = await span(traceId, 'the hand-off', (s) => s.name === `publish ${subjectOf('schedule', 'retry')}`);
    expect(handOff).toMatchObject({ kind: PRODUCER, parentSpanId: first.spanId });
    const firstAck = await span(traceId, 'the first ack', (s) => s.kind === CLIENT && s.parentSpanId === first.spanId);
    expect(firstAck.attributes).toMatchObject({
      'messaging.operation.type': 'settle',
      'messaging.operation.name': 'ack',
    });

    // The scheduler fires the retry under the hand-off; the second delivery dead-letters it.
    const fire = await span(traceId, 'the fire', (s) => s.service === 'redrive-retry-scheduler');
    expect(fire).toMatchObject({ kind: PRODUCER, name: `publish ${jobs}`, parentSpanId: handOff.spanId });
    expect(fire.attributes['redrive.schedule.kind']).toBe('retry');
    const second = await span(
      traceId,
      'the second process span',
      (s) => s.kind === CONSUMER && s.parentSpanId === fire.spanId,
    );
    const deadLetter = await span(traceId, 'the DLQ publish', (s) => s.name === `publish ${subjectOf('dlq', 'flaky')}`);
    expect(deadLetter).toMatchObject({ kind: PRODUCER, service: 'redrive-sync-worker', parentSpanId: second.spanId });
    const term = await span(traceId, 'the term', (s) => s.kind === CLIENT && s.parentSpanId === second.spanId);
    expect(term.attributes['messaging.operation.name']).toBe('term');

    // dlq-manager records it under the DLQ publish, linked to it.
    const recorded = await span(
      traceId,
      'the record',
      (s) => s.service === 'redrive-dlq-manager' && s.kind === CONSUMER,
    );
    expect(recorded).toMatchObject({ name: `process ${subjectOf('dlq', 'flaky')}`, parentSpanId: deadLetter.spanId });
    expect(recorded.links).toEqual([expect.objectContaining({ spanId: deadLetter.spanId })]);
    expect(recorded.attributes['messaging.consumer.group.name']).toBe('dlq-manager-recorder');
    const deadLetterId = recorded.attributes['redrive.dead_letter.id'];
    expect(typeof deadLetterId).toBe('number');

    // A redrive continues the job's trace, and its next run is the redrive's child.
    const res = await fetch(`http://127.0.0.1:${dlqPort}/v1/admin/dead-letters/${deadLetterId}/redrive`, {
      method: 'POST',
      headers: { authorization: `Bearer ${OPERATOR}`, 'content-type': 'application/json' },
      body: JSON.stringify({ note: 'traced' }),
    });
    expect(res.status, await res.clone().text()).toBeLessThan(300);
    const redrive = await span(traceId, 'the redrive', (s) => s.name === `redrive ${jobs}`);
    expect(redrive).toMatchObject({ kind: PRODUCER, service: 'redrive-dlq-manager', parentSpanId: deadLetter.spanId });
    await span(traceId, 'the redriven run', (s) => s.kind === CONSUMER && s.parentSpanId === redrive.spanId);

    // Every span of the job was exported in this one trace, and none in another.
    expect(spans.filter((s) => s.attributes['redrive.job.id'] === jobId).every((s) => s.traceId === traceId)).toBe(
      true,
    );
  }, 60_000);
});
