import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  connectTestClient,
  deleteStreams,
  freePort,
  SHARED_NATS_URL,
  startService,
  uniquePrefix,
  waitFor,
  type ServiceProcess,
} from '@redrive/test-support';

// With the standard OTEL_* variables set, intake and sync-worker export spans over OTLP; this
// test is the collector (OTLP/HTTP with JSON bodies) and checks that one trace spans both.

interface ExportedSpan {
  service: string;
  name: string;
  traceId: string;
  spanId: string;
  parentSpanId?: string;
}

const prefix = uniquePrefix('trace');
const spans: ExportedSpan[] = [];
let collector: Server;
let intake: ServiceProcess;
let worker: ServiceProcess;
let intakePort: number;

beforeAll(async () => {
  const collectorPort = await freePort();
  collector = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8').on('data', (c: string) => (body += c));
    req.on('end', () => {
      if (req.url === '/v1/traces') {
        const doc = JSON.parse(body) as {
          resourceSpans: {
            resource: { attributes: { key: string; value: { stringValue?: string } }[] };
            scopeSpans: { spans: Omit<ExportedSpan, 'service'>[] }[];
          }[];
        };
        for (const rs of doc.resourceSpans) {
          const service = rs.resource.attributes.find((a) => a.key === 'service.name')?.value.stringValue ?? '';
          for (const ss of rs.scopeSpans) for (const s of ss.spans) spans.push({ ...s, service });
        }
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => collector.listen(collectorPort, '127.0.0.1', resolve));
  const env = {
    NATS_URL: SHARED_NATS_URL,
    REDRIVE_PREFIX: prefix,
    OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${collectorPort}`,
    OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
    OTEL_BSP_SCHEDULE_DELAY: '100',
    RECORD_FILE: '/dev/null',
  };
  worker = startService('sync-worker', {
    ...env,
    WORKER_PORT: String(await freePort()),
    WORKER_HANDLERS: './test/fixtures/record-handlers.mjs',
  });
  await worker.waitForLog((l) => l.msg === 'sync-worker running');
  intakePort = await freePort();
  intake = startService('intake', { ...env, INTAKE_PORT: String(intakePort), INTAKE_ALLOW_ANONYMOUS: 'true' });
  await intake.waitForLog((l) => l.msg === 'intake listening');
}, 60_000);

afterAll(async () => {
  await Promise.all([intake?.stop(), worker?.stop()]);
  collector?.close();
  const nc = await connectTestClient();
  await deleteStreams(nc, prefix);
  await nc.close();
});

describe('OpenTelemetry across services', () => {
  it('exports one trace from the HTTP caller through intake to the handler run', async () => {
    const traceId = 'a3ce929d0e0e47364bf92f3577b34da6';
    const callerSpan = '00f067aa0ba902b7';
    const res = await fetch(`http://127.0.0.1:${intakePort}/v1/jobs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', traceparent: `00-${traceId}-${callerSpan}-01` },
      body: JSON.stringify({ type: 'record', payload: { traced: true } }),
    });
    expect(res.status).toBe(202);

    const [publish, process] = await waitFor(
      () => {
        const p = spans.find((s) => s.traceId === traceId && s.service === 'redrive-intake');
        const c = spans.find((s) => s.traceId === traceId && s.service === 'redrive-sync-worker');
        return p && c ? [p, c] : undefined;
      },
      { timeoutMs: 15_000, what: 'spans from both services' },
    );
    expect(publish.name).toBe(`publish ${prefix}.jobs.normal.record`);
    expect(publish.parentSpanId).toBe(callerSpan);
    expect(process.name).toBe('process record');
    expect(process.parentSpanId).toBe(publish.spanId);
  });
});
