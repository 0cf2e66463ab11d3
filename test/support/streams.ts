import type { JetStreamManager, StoredMsg } from '@nats-io/jetstream';
import { waitFor } from './wait.js';

/** Every message a stream holds now, oldest first (fine for the few thousand a test makes). */
export async function streamMessages(jsm: JetStreamManager, stream: string): Promise<StoredMsg[]> {
  const info = await jsm.streams.info(stream);
  const out: StoredMsg[] = [];
  if (info.state.messages === 0) return out;
  for (let seq = info.state.first_seq; seq <= info.state.last_seq; seq++) {
    const m = await jsm.streams.getMessage(stream, { seq }).catch(() => null);
    if (m) out.push(m);
  }
  return out;
}

/** Waits until each (stream, consumer) has no message pending and none awaiting its ack. */
export async function consumersSettled(
  jsm: JetStreamManager,
  consumers: readonly (readonly [stream: string, consumer: string])[],
  opts: { timeoutMs: number; what: string },
): Promise<void> {
  await waitFor(async () => {
    for (const [stream, consumer] of consumers) {
      const c = await jsm.consumers.info(stream, consumer);
      if (c.num_pending > 0 || c.num_ack_pending > 0) return false;
    }
    return true;
  }, opts);
}
