export { startTelemetry, tracesConfigured, tracer, type Telemetry } from './tracing.js';
export {
  ensureTraceContext,
  extractTraceContext,
  injectTraceContext,
  traceIdOf,
  type HeaderReader,
  type HeaderWriter,
} from './propagation.js';
export {
  cachedRead,
  createMetricsRegistry,
  labelCombinations,
  zeroSeries,
  Counter,
  Gauge,
  Histogram,
  Registry,
} from './metrics.js';
export { context, SpanKind, SpanStatusCode, trace, type Context, type Span } from '@opentelemetry/api';
