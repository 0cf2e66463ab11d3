import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { describe, expect, it } from 'vitest';
import { createEventPublisher, decodeEvents, ensureStreams, Topology } from '@redrive/messaging';
import { connectTestClient, deleteStreams, uniquePrefix } from '@redrive/test-support';

describe('lifecycle event publishing', () => {
  it('stores every event once, batching those that arrive while a publish is in flight', async () => {
    const nc = await connectTestClient();
    const prefix = uniquePrefix('events');
    const topology = new Topology({ prefix });
    try {
      const jsm = await jetstreamManager(nc);
      await ensureStreams(jsm, topology.streamConfigs());
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
    } finally {
      await deleteStreams(nc, prefix);
      await nc.close();
    }
  });
});
