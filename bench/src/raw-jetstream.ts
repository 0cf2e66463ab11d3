// The physical limit of this machine's NATS for a nats.js client: publish with PubAck and
// consume with explicit ack, no Redrive code at all.
import { AckPolicy, jetstream, jetstreamManager, RetentionPolicy } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/nats-core';
import type { MeasuredWindow } from './cpu.js';
import { atRate, percentile, round } from './stats.js';

async function withStream<T>(nc: NatsConnection, name: string, fn: (subject: string) => Promise<T>): Promise<T> {
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name, subjects: [`${name}.>`], retention: RetentionPolicy.Interest });
  await jsm.consumers.add(name, { durable_name: 'c', ack_policy: AckPolicy.Explicit, max_ack_pending: 10_000 });
  try {
    return await fn(`${name}.x`);
  } finally {
    await jsm.streams.delete(name);
  }
}

/**
 * Messages per second with publish (PubAck awaited, pipelined) and consume running together;
 * `meter` (a CPU meter) is marked around the timed part.
 */
export async function rawThroughput(
  nc: NatsConnection,
  name: string,
  count: number,
  size: number,
  meter?: MeasuredWindow,
): Promise<number> {
  return withStream(nc, name, async (subject) => {
    const js = jetstream(nc);
    const body = new Uint8Array(size).fill(120);
    const consumer = await js.consumers.get(name, 'c');
    const messages = await consumer.consume({ max_messages: 1_000 });
    await meter?.begin();
    const started = performance.now();
    let seen = 0;
    const consumed = (async () => {
      for await (const m of messages) {
        m.ack();
        if (++seen >= count) break;
      }
    })();
    const window = 1_000;
    const inflight = new Set<Promise<unknown>>();
    for (let i = 0; i < count; i++) {
      const p = js.publish(subject, body).finally(() => inflight.delete(p));
      inflight.add(p);
      if (inflight.size >= window) await Promise.race(inflight);
    }
    await Promise.all(inflight);
    await consumed;
    const rate = round(count / ((performance.now() - started) / 1000), 0);
    await meter?.end();
    return rate;
  });
}

/** End-to-end latency (publish to consumer) at a fixed offered rate; `meter` is marked around it. */
export async function rawLatency(
  nc: NatsConnection,
  name: string,
  count: number,
  rate: number,
  size: number,
  meter?: MeasuredWindow,
) {
  return withStream(nc, name, async (subject) => {
    const js = jetstream(nc);
    const consumer = await js.consumers.get(name, 'c');
    const messages = await consumer.consume({ max_messages: 1_000 });
    const sent = new Map<number, number>();
    const latencies: number[] = [];
    const consumed = (async () => {
      for await (const m of messages) {
        const i = Number(new TextDecoder().decode(m.data.subarray(0, 12)));
        latencies.push(performance.now() - sent.get(i)!);
        m.ack();
        if (latencies.length >= count) break;
      }
    })();
    const pad = 'x'.repeat(Math.max(0, size - 12));
    await meter?.begin();
    await atRate(count, rate, (i) => {
      sent.set(i, performance.now());
      void js.publish(subject, `${String(i).padStart(12, '0')}${pad}`);
    });
    await consumed;
    await meter?.end();
    return {
      p50: round(percentile(latencies, 50), 2),
      p99: round(percentile(latencies, 99), 2),
      max: round(percentile(latencies, 100), 2),
    };
  });
}
