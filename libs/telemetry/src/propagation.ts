import { randomFillSync } from 'node:crypto';
import {
  context as otelContext,
  propagation,
  trace,
  type Context,
  type TextMapGetter,
  type TextMapSetter,
} from '@opentelemetry/api';

/** Something headers can be read from by name (fastify's request headers, NATS MsgHdrs…). */
export type HeaderReader = (name: string) => string | undefined;
/** Something headers can be written to by name. */
export type HeaderWriter = (name: string, value: string) => void;

const getter: TextMapGetter<HeaderReader> = {
  get: (read, key) => read(key),
  keys: () => ['traceparent', 'tracestate'],
};
const setter: TextMapSetter<HeaderWriter> = { set: (write, key, value) => write(key, value) };

/** Writes the W3C trace context of `ctx` (traceparent, tracestate) through `write`. */
export function injectTraceContext(write: HeaderWriter, ctx: Context = otelContext.active()): void {
  propagation.inject(ctx, write, setter);
}

/** Reads W3C trace context through `read` into a context derived from `base`. */
export function extractTraceContext(read: HeaderReader, base: Context = otelContext.active()): Context {
  return propagation.extract(base, read, getter);
}

/** The trace id of the span in `ctx`, or undefined when there is none. */
export function traceIdOf(ctx: Context = otelContext.active()): string | undefined {
  const sc = trace.getSpanContext(ctx);
  return sc && trace.isSpanContextValid(sc) ? sc.traceId : undefined;
}

// randomBytes() costs about as much for 8 bytes as for 4 KB (OpenSSL checks for a fork on every
// call): a worker minting a trace id for each job that arrives without one spent 16% of its CPU
// there. Ids are cut from a pool refilled 4 KB at a time, as node does for randomUUID().
const pool = Buffer.alloc(4096);
let poolOffset = pool.length;

/** `bytes` random bytes as hex, for trace and span ids. */
export function randomHex(bytes: number): string {
  if (poolOffset + bytes > pool.length) {
    randomFillSync(pool);
    poolOffset = 0;
  }
  poolOffset += bytes;
  return pool.toString('hex', poolOffset - bytes, poolOffset);
}
