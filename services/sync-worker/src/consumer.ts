import type { ConsumerMessages, JetStreamClient } from '@nats-io/jetstream';
import { retryDelay } from '@redrive/retry-policy';

/** Tries to open a consumer before a worker gives up and exits (its supervisor restarts it). */
const CONSUMER_LOOKUP_TRIES = 10;

/**
 * Opens the pull subscription of one durable consumer. A busy or restarting server can time out
 * the lookup: it is tried again with backoff rather than killing the worker, until it stops.
 */
export async function openConsumer(
  js: JetStreamClient,
  stream: string,
  name: string,
  prefetch: number,
  opts: { stopping: () => boolean; onRetry: (err: unknown, retryInMs: number) => void },
): Promise<ConsumerMessages> {
  for (let n = 1; ; n++) {
    try {
      const consumer = await js.consumers.get(stream, name);
      return await consumer.consume({ max_messages: prefetch });
    } catch (err) {
      if (opts.stopping() || n >= CONSUMER_LOOKUP_TRIES) throw err;
      const retryInMs = retryDelay({ baseMs: 500, maxMs: 5_000 }, n);
      opts.onRetry(err, retryInMs);
      await new Promise((r) => setTimeout(r, retryInMs));
    }
  }
}
