import type { Consumer, JsMsg } from '@nats-io/jetstream';
import type { Logger } from '@redrive/lifecycle';
import { retryDelay } from '@redrive/retry-policy';
import { AbandonedError } from '@redrive/store';

/** The wait after failed pull number n: 500 ms doubling to 5 s. */
const PULL_RETRY = { baseMs: 500, maxMs: 5_000 } as const;

/** Acts on each message; a connection closed meanwhile must not throw out of a timer. */
function settleQuietly(msgs: JsMsg[], act: (m: JsMsg) => unknown): void {
  for (const m of msgs) {
    try {
      act(m);
    } catch {
      // NATS is reconnecting or closed: the server redelivers what was not settled.
    }
  }
}

export interface PullLoopOptions {
  name: string;
  consumer: Consumer;
  /** Most messages handed over at once; nothing more is pulled until they are all settled (but see concurrency). */
  batch: number;
  ackWaitMs: number;
  /** Settles every message it is given (ack, nak or term) or leaves them to be redelivered. */
  handle: (msgs: JsMsg[]) => Promise<void>;
  logger: Logger;
  /** How long one idle pull waits for a message; also the longest stop() waits for it. */
  idleMs?: number;
  /**
   * Batches handled at once (1 when omitted): with 2, the next batch is pulled and handled while
   * this one is still being written, so for a handler that is one round trip to Postgres per
   * batch, neither the pulls from NATS nor one batch's commit wait for the other. Only for a
   * handler whose batches may commit in any order; the consumer's max_ack_pending must leave
   * room for this many batches.
   */
  concurrency?: number;
}

/**
 * Pulls a batch, hands it over and pulls the next only when it is settled (or, with
 * `concurrency`, when fewer than that many are in hand): while the handler waits (Postgres
 * down, say) nothing more leaves the stream, and the held messages get in-progress acks, so
 * none is redelivered behind the handler's back. A batch is whatever is waiting, up to
 * `batch`: the first message is awaited, and the consumer's pending count that it carries says
 * how many more can be taken at once, so a lone message is handled at once and a backlog in
 * large batches.
 */
export function startPullLoop(opts: PullLoopOptions) {
  let stopping = false;
  let wake: (() => void) | undefined;
  const heartbeatMs = Math.max(250, Math.floor(opts.ackWaitMs / 3));
  const idleMs = Math.max(1_000, opts.idleMs ?? 2_000);
  let failures = 0;

  /** What is waiting, up to a batch; after a failure, what came before it (after a pause). */
  async function pull(): Promise<JsMsg[]> {
    const msgs: JsMsg[] = [];
    try {
      const first = await opts.consumer.next({ expires: idleMs });
      if (first) {
        msgs.push(first);
        const more = Math.min(opts.batch - 1, first.info.pending);
        if (more > 0 && !stopping) {
          // Waiting messages arrive at once; if another replica took some, the pull ends
          // after a second with what it has.
          const iter = await opts.consumer.fetch({ max_messages: more, expires: 1_000 });
          for await (const m of iter) msgs.push(m);
        }
      }
      failures = 0;
    } catch (err) {
      // NATS is reconnecting or the consumer is briefly unavailable: try again shortly.
      failures++;
      if (!stopping) opts.logger.warn({ err, loop: opts.name }, 'pull failed; retrying');
      await new Promise<void>((resolve) => {
        wake = resolve;
        setTimeout(resolve, retryDelay(PULL_RETRY, failures));
      });
      // What was pulled before the failure is still ours to handle.
    }
    return msgs;
  }

  /** Hands a batch over, keeping its messages alive while the handler works on them. */
  async function handle(msgs: JsMsg[]): Promise<void> {
    const keepalive = setInterval(
      () => settleQuietly(msgs, (m) => (m as JsMsg & { didAck?: boolean }).didAck || m.working()),
      heartbeatMs,
    );
    try {
      await opts.handle(msgs);
    } catch (err) {
      opts.logger.error({ err, loop: opts.name }, 'batch handler failed; the messages will be redelivered');
    } finally {
      clearInterval(keepalive);
    }
  }

  const loop = (async () => {
    const inHand = new Set<Promise<void>>();
    while (!stopping) {
      const msgs = await pull();
      if (msgs.length === 0) continue;
      if (stopping) {
        settleQuietly(msgs, (m) => m.nak());
        break;
      }
      const handled: Promise<void> = handle(msgs).finally(() => inHand.delete(handled));
      inHand.add(handled);
      if (inHand.size >= (opts.concurrency ?? 1)) await Promise.race(inHand);
    }
    await Promise.all(inHand);
  })();

  return {
    /** True from stop() on: handlers use it to end their retries. */
    get stopping(): boolean {
      return stopping;
    },
    /** Stops pulling; resolves when the batches in hand are settled (or abandoned by the handler). */
    async stop(): Promise<void> {
      stopping = true;
      wake?.();
      await loop.catch((err: unknown) => opts.logger.error({ err, loop: opts.name }, 'pull loop failed'));
    },
  };
}

export type PullLoop = ReturnType<typeof startPullLoop>;

/**
 * A batch handler that handles its messages one at a time, in order. One whose handling fails
 * is NAKed to come back after `retryMs` (logged as `failed`); once shutdown abandons a write
 * (AbandonedError from untilStored) it and the rest of the batch are NAKed at once.
 */
export function oneByOne(
  handleOne: (m: JsMsg) => Promise<void>,
  opts: { logger: Logger; failed: string; retryMs: number },
): (msgs: JsMsg[]) => Promise<void> {
  return async (msgs) => {
    for (const [i, m] of msgs.entries()) {
      try {
        await handleOne(m);
      } catch (err) {
        if (err instanceof AbandonedError) {
          for (const rest of msgs.slice(i)) rest.nak();
          return;
        }
        opts.logger.error({ err, seq: m.seq }, opts.failed);
        m.nak(opts.retryMs);
      }
    }
  };
}
