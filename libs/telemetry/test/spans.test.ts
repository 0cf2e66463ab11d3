import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  extractTraceContext,
  injectTraceContext,
  ROOT_CONTEXT,
  startMessagingSpan,
  startSpan,
  startTelemetry,
  SpanKind,
  traceIdOf,
  type Telemetry,
} from '../src/index.js';

// With no OTEL_* exporter configured no SDK runs, and the API's tracer makes no spans: a job
// must still get a trace id, and trace context must still travel in W3C headers.

let telemetry: Telemetry;
beforeAll(async () => {
  telemetry = await startTelemetry({ serviceName: 'test', env: {} });
});
afterAll(() => telemetry.shutdown());

function headersOf(ctx: Parameters<typeof injectTraceContext>[1]): Record<string, string> {
  const out: Record<string, string> = {};
  injectTraceContext((k, v) => (out[k] = v), ctx);
  return out;
}

describe('spans without an SDK', () => {
  it('gives a span with no parent a fresh trace id, flagged not sampled since nothing records it', () => {
    expect(telemetry.exporting).toBe(false);
    const a = startSpan('POST /v1/jobs', { kind: SpanKind.SERVER }, ROOT_CONTEXT);
    const b = startSpan('POST /v1/jobs', { kind: SpanKind.SERVER }, ROOT_CONTEXT);
    expect(traceIdOf(a.ctx)).toMatch(/^[0-9a-f]{32}$/);
    expect(traceIdOf(a.ctx)).not.toBe(traceIdOf(b.ctx));
    expect(headersOf(a.ctx).traceparent).toBe(`00-${traceIdOf(a.ctx)}-${a.span.spanContext().spanId}-00`);
  });

  it("keeps a caller's trace context, flags included, through a span into the next message", () => {
    const caller = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
    const parent = extractTraceContext((name) => (name === 'traceparent' ? caller : undefined), ROOT_CONTEXT);
    const { ctx } = startMessagingSpan({ name: 'publish', type: 'send', destination: 'jobs.normal.x' }, parent);
    expect(traceIdOf(ctx)).toBe('4bf92f3577b34da6a3ce929d0e0e4736');
    expect(headersOf(ctx).traceparent).toBe(caller);
  });
});
