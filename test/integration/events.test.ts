import { jetstream, jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/nats-core';
import { describe, expect, it } from 'vitest';
import { createEventPublisher, decodeEvents, ensureStreams, Topology } from '@redrive/messaging';
import { connectTestClient, deleteStreams, uniquePrefix } from '@redrive/test-support';

/** Runs `body` against the EVENTS stream of a fresh topology, deleted afterwards. */
async function withEvents(
  body: (ctx: { jsm: JetStreamManager; topology: Topology; nc: NatsConnection }) => Promise<void>,
): Promise<void> {
  const nc = await connectTestClient();
  const prefix = uniquePrefix('events');
  const topology = new Topology({ prefix });
  try {
    const jsm = await jetstreamManager(nc);
    await ensureStreams(jsm, topology.streamConfigs());
    await body({ jsm, topology, nc });
  } finally {
    await deleteStreams(nc, prefix);
    await nc.close();
  }
}

describe('lifecycle event publishing', () => {
  it('stores every event once, batching those that arrive while a publish is in flight', () =>
    withEvents(async ({ jsm, topology, nc }) => {
      const events = createEventPublisher(jetstream(nc), topology, { maxBatch: 64 });
      const published = await Promise.all(
        Array.from({ length: 500 }, (_, i) =>
          events.publish({ kind: 'attempt.succeeded', jobId: `j${i}`, type: 't', attempt: 1 }),
        ),
      );
      const info = await jsm.streams.info(topology.streams.events);
      expect(info.state.messages).toBeLessThan(500);
      const stored = [];
      for (let seq = info.state.first_seq; seq <= info.state.last_seq; seq++) {
        const m = await jsm.streams.getMessage(topology.streams.events, { seq });
        stored.push(...decodeEvents(m!.data));
      }
      expect(stored.map((e) => e.id).sort()).toEqual(published.map((e) => e.id).sort());
      expect(new Set(stored.map((e) => e.jobId)).size).toBe(500);
      // A lone event is stored as a plain object.
      await events.publish({ kind: 'job.log', jobId: 'x', type: 't' });
      const last = await jsm.streams.getMessage(topology.streams.events, {
        last_by_subj: topology.eventSubject('job.log'),
      });
      expect(Array.isArray(JSON.parse(new TextDecoder().decode(last!.data)))).toBe(false);
    }));

  it('stores the other events of a batch whose first event is one published again under its id', () =>
    withEvents(async ({ jsm, topology, nc }) => {
      const events = createEventPublisher(jetstream(nc), topology);
      const again = {
        kind: 'attempt.succeeded' as const,
        id: 'succeeded:job-0',
        jobId: 'job-0',
        type: 't',
        attempt: 1,
      };
      await events.publish(again);
      // The same success once more (a worker that found the job's completion record), then
      // others while its publish is in flight: they go out as one batch behind it.
      const blocker = events.publish({ kind: 'attempt.succeeded', jobId: 'first', type: 't', attempt: 1 });
      const batch = [
        again,
        ...Array.from({ length: 20 }, (_, i) => ({ ...again, id: undefined, jobId: `job-${i + 1}` })),
      ];
      await Promise.all([blocker, ...batch.map((e) => events.publish(e))]);
      const info = await jsm.streams.info(topology.streams.events);
      const stored = [];
      for (let seq = info.state.first_seq; seq <= info.state.last_seq; seq++) {
        const m = await jsm.streams.getMessage(topology.streams.events, { seq });
        stored.push(...decodeEvents(m!.data));
      }
      const jobs = new Set(stored.map((e) => e.jobId));
      for (let i = 1; i <= 20; i++) expect(jobs.has(`job-${i}`), `job-${i} stored`).toBe(true);
    }));

  it('keeps every batch under the server max_payload, and cuts an event too large to store', () =>
    withEvents(async ({ jsm, topology, nc }) => {
      const maxPayload = nc.info!.max_payload;
      const events = createEventPublisher(jetstream(nc), topology, { maxPayload });
      // 300 events of 8 KB arriving at once: 256 of them in one message would be 2 MB, over the
      // server's limit, and all of them refused.
      const line = 'x'.repeat(8 * 1024);
      const published = await Promise.all(
        Array.from({ length: 300 }, (_, i) =>
          events.publish({ kind: 'job.log', jobId: `big-${i}`, type: 't', data: { message: line } }),
        ),
      );
      // One log line larger than max_payload itself is stored with its size instead of its text.
      const huge = await events.publish({
        kind: 'job.log',
        jobId: 'huge',
        type: 't',
        error: 'e'.repeat(5_000),
        data: { message: 'y'.repeat(maxPayload + 1) },
      });
      const info = await jsm.streams.info(topology.streams.events);
      const stored = [];
      for (let seq = info.state.first_seq; seq <= info.state.last_seq; seq++) {
        const m = await jsm.streams.getMessage(topology.streams.events, { seq });
        expect(m!.data.byteLength).toBeLessThanOrEqual(maxPayload);
        stored.push(...decodeEvents(m!.data));
      }
      expect(stored.map((e) => e.id).sort()).toEqual([...published, huge].map((e) => e.id).sort());
      const hugeStored = stored.find((e) => e.jobId === 'huge')!;
      expect(hugeStored.data).toEqual({ truncated: true, bytes: expect.any(Number) });
      expect(hugeStored.error).toHaveLength(1_000);
    }));
});
