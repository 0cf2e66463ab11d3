import { defineHandler, HttpStatusError, type HandlerDefinition } from '@redrive/sdk';

/** The built-in `http` handler: POSTs the job's payload, byte for byte, to the configured target. */
export function createHttpHandler(opts: { targetUrl: string; timeoutMs: number }): HandlerDefinition {
  return defineHandler({
    type: 'http',
    timeoutMs: opts.timeoutMs + 1_000,
    async handle(job, ctx) {
      const signal = AbortSignal.any([ctx.signal, AbortSignal.timeout(opts.timeoutMs)]);
      const res = await fetch(opts.targetUrl, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'user-agent': 'redrive-http/0.1',
          'redrive-job-id': job.id,
          'redrive-attempt': String(job.attempt),
          ...(job.headers.traceparent ? { traceparent: job.headers.traceparent } : {}),
        },
        body: job.raw,
        redirect: 'manual',
        signal,
      });
      // The body is read so the connection can be reused, whatever the status.
      await res.arrayBuffer().catch(() => undefined);
      if (res.status < 200 || res.status >= 300) {
        throw new HttpStatusError(res.status, opts.targetUrl, res.headers.get('retry-after') ?? undefined);
      }
    },
  });
}
