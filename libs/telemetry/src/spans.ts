import {
  context as otelContext,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  TraceFlags,
  type Attributes,
  type Context,
  type Link,
  type Span,
} from '@opentelemetry/api';
import {
  extractTraceContext,
  injectTraceContext,
  randomHex,
  type HeaderReader,
  type HeaderWriter,
} from './propagation.js';

// Redrive's spans, named and attributed per the OpenTelemetry messaging conventions:
// `<operation> <destination>`, messaging.system "nats", messaging.operation.name/.type,
// messaging.destination.name, messaging.message.id, messaging.consumer.group.name, error.type.

/** The tracer Redrive's own spans come from. */
export function tracer() {
  return trace.getTracer('redrive');
}

/** A span and the context that has it as the active span (what its children and messages carry). */
export interface Started {
  span: Span;
  ctx: Context;
}

/**
 * Starts a span under `parent`. Without an SDK the API's tracer makes no spans and, with no
 * parent, no trace id; a job still needs one for its logs and for the `traceparent` it carries,
 * so the span then gets a fresh trace id, flagged not sampled (nothing records it).
 */
export function startSpan(
  name: string,
  opts: { kind: SpanKind; attributes?: Attributes; links?: Link[] },
  parent: Context = otelContext.active(),
): Started {
  let span = tracer().startSpan(name, opts, parent);
  if (!trace.isSpanContextValid(span.spanContext())) {
    span = trace.wrapSpanContext({ traceId: randomHex(16), spanId: randomHex(8), traceFlags: TraceFlags.NONE });
  }
  return { span, ctx: trace.setSpan(parent, span) };
}

/** What a messaging span says about the message. */
export interface MessagingOperation {
  /** `publish`, `process`, `ack`, `nak`, `term`, `fire`, `record`, `redrive`. */
  name: string;
  type: 'create' | 'send' | 'receive' | 'process' | 'settle';
  destination: string;
  messageId?: string | undefined;
  /** The durable consumer, for consumer-side operations. */
  consumer?: string | undefined;
  attributes?: Attributes;
  /** Contexts this operation relates to without being their child (e.g. the message's creation). */
  links?: Context[];
}

const KINDS: Record<MessagingOperation['type'], SpanKind> = {
  create: SpanKind.PRODUCER,
  send: SpanKind.PRODUCER,
  receive: SpanKind.CONSUMER,
  process: SpanKind.CONSUMER,
  settle: SpanKind.CLIENT,
};

/** Starts a messaging span named `<operation> <destination>` under `parent`. */
export function startMessagingSpan(op: MessagingOperation, parent: Context = otelContext.active()): Started {
  const links = (op.links ?? [])
    .map((c) => trace.getSpanContext(c))
    .filter((sc) => sc !== undefined && trace.isSpanContextValid(sc))
    .map((sc): Link => ({ context: sc! }));
  return startSpan(
    `${op.name} ${op.destination}`,
    {
      kind: KINDS[op.type],
      attributes: {
        'messaging.system': 'nats',
        'messaging.operation.name': op.name,
        'messaging.operation.type': op.type,
        'messaging.destination.name': op.destination,
        ...(op.messageId !== undefined ? { 'messaging.message.id': op.messageId } : {}),
        ...(op.consumer !== undefined ? { 'messaging.consumer.group.name': op.consumer } : {}),
        ...op.attributes,
      },
      links,
    },
    parent,
  );
}

/** Marks a span failed: its status, the exception, and `error.type` (the error class, or the error's name). */
export function failSpan(span: Span, err: unknown, errorType?: string): void {
  const e = err instanceof Error ? err : new Error(String(err));
  span.recordException(e);
  span.setAttribute('error.type', errorType ?? e.name ?? 'Error');
  span.setStatus({ code: SpanStatusCode.ERROR, message: e.message });
}

/** Runs `fn` in a span started by `start`, ending it afterwards and marking it failed if `fn` throws. */
export async function inSpan<T>(started: Started, fn: (ctx: Context) => Promise<T>): Promise<T> {
  try {
    return await fn(started.ctx);
  } catch (err) {
    failSpan(started.span, err);
    throw err;
  } finally {
    started.span.end();
  }
}

/**
 * Starts the span of processing one delivered message, whose headers `read` returns. Its parent
 * is the message's creation context (the span that published it), so a job is one trace, and
 * that context is also its link, as the messaging conventions ask of a consumer span.
 */
export function startProcessSpan(read: HeaderReader, op: Omit<MessagingOperation, 'name' | 'type' | 'links'>): Started {
  const creation = extractTraceContext(read, ROOT_CONTEXT);
  return startMessagingSpan({ ...op, name: 'process', type: 'process', links: [creation] }, creation);
}

/**
 * Publishes a message in a producer span under `parent`, the message carrying that span's trace
 * context (written through `write`, over whatever context it had) to whoever reads it next.
 */
export function sendInSpan<T>(
  op: Omit<MessagingOperation, 'type'>,
  parent: Context,
  write: HeaderWriter,
  send: () => Promise<T>,
): Promise<T> {
  return inSpan(startMessagingSpan({ ...op, type: 'send' }, parent), async (ctx) => {
    injectTraceContext(write, ctx);
    return send();
  });
}

/** A settlement (ack, nak, term) of a delivered message, as a short span under its process span. */
export function settleSpan(parent: Context, how: string, destination: string, consumer?: string): void {
  startMessagingSpan({ name: how, type: 'settle', destination, consumer }, parent).span.end();
}
