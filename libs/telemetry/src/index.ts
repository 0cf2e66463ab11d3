export { startTelemetry, tracesConfigured, type Telemetry } from './tracing.js';
export {
  failSpan,
  inSpan,
  sendInSpan,
  settleSpan,
  startMessagingSpan,
  startProcessSpan,
  startSpan,
  tracer,
  type MessagingOperation,
  type Started,
} from './spans.js';
export {
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
export {
  context,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  type Attributes,
  type Context,
  type Span,
} from '@opentelemetry/api';
