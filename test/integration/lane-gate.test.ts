import { AckPolicy, jetstream, jetstreamManager, type JsMsg } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/nats-core';
import { ensureStreams, provisionJobTypes, publishJob, Topology } from '@redrive/messaging';
import { connectTestClient, deleteStreams, uniquePrefix, waitFor } from '@redrive/test-support';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LaneGate, type PauseSignal } from '../../services/sync-worker/src/lane-gate.js';

// The pull side of a paused lane against the shared NATS: once paused it asks for nothing more,
// and what it already had is held past the consumer's ack wait without a redelivery (no attempt
// is charged), then comes out first when the lane resumes.

const prefix = uniquePrefix('lanegate');
const topology = new Topology({ prefix });
const ACK_WAIT_MS = 1_000;
let nc: NatsConnection;

/** A pause an operator flips (the worker's comes from the PAUSES bucket). */
function switchable() {
  let paused = false;
  const listeners = new Set<() => void>();
  const signal: PauseSignal = {
    paused: () => paused,
    onChange: (l) => {
      listeners.add(l);
      return () => listeners.delete(l);
    },
  };
  const set = (p: boolean) => {
    paused = p;
    for (const l of listeners) l();
  };
  return { signal, set };
}

beforeAll(async () => {
  nc = await connectTestClient();
  const jsm = await jetstreamManager(nc);
  await ensureStreams(jsm, topology.streamConfigs());
  await provisionJobTypes(jsm, topology, ['gated'], {
    ackWaitMs: ACK_WAIT_MS,
    maxDeliver: 10,
    maxAckPending: 100,
  });
});

afterAll(async () => {
  await deleteStreams(nc, prefix);
  await nc.close();
});

describe('LaneGate', () => {
  it('holds what it has while paused, past the ack wait, without a redelivery, and starts nothing new', async () => {
    const js = jetstream(nc);
    for (let i = 0; i < 6; i++) {
      await publishJob(js, {
        subject: topology.jobSubject('normal', 'gated'),
        payload: new TextEncoder().encode(`{"n":${i}}`),
        jobId: `gated-${i}`,
        attempt: 0,
      });
    }
    const consumer = await js.consumers.get(topology.streams.jobs, topology.workerConsumerName('normal', 'gated'));
    expect((await consumer.info()).config.ack_policy).toBe(AckPolicy.Explicit);
    const pause = switchable();
    const gate = new LaneGate(() => consumer.consume({ max_messages: 3 }), pause.signal, ACK_WAIT_MS / 3);
    const started: JsMsg[] = [];
    // The first job runs until the pause has come (a worker with one slot, busy): the client
    // buffered more than it meanwhile.
    let finishFirst!: () => void;
    const firstDone = new Promise<void>((r) => (finishFirst = r));
    const loop = (async () => {
      for await (const m of gate.messages()) {
        if (!gate.admit(m)) continue;
        started.push(m);
        m.ack();
        if (started.length === 1) await firstDone;
      }
    })();

    await waitFor(() => started.length >= 1, { what: 'the first job' });
    pause.set(true);
    finishFirst();
    const atPause = started.length;
    // Another replica keeps pulling through three ack waits (it runs what it gets): a message the
    // gate held without in-progress acks would be redelivered to it.
    const elsewhere: JsMsg[] = [];
    for (const until = Date.now() + 3 * ACK_WAIT_MS; Date.now() < until;) {
      const m = await consumer.next({ expires: ACK_WAIT_MS });
      if (m) {
        elsewhere.push(m);
        m.ack();
      }
    }
    expect(started.length).toBe(atPause);
    expect(gate.held).toBeGreaterThan(0);
    expect(elsewhere.map((m) => m.info.deliveryCount).filter((n) => n > 1)).toEqual([]);
    const info = await consumer.info();
    expect(info.num_redelivered).toBe(0);
    expect(info.num_ack_pending).toBe(gate.held);
    expect(info.num_pending).toBe(0);
    expect(atPause + gate.held + elsewhere.length).toBe(6);

    pause.set(false);
    await waitFor(() => started.length + elsewhere.length === 6, { what: 'every job after the resume' });
    // Each was delivered once: nothing was charged an attempt by the pause.
    const all = [...started, ...elsewhere];
    expect(all.map((m) => m.info.deliveryCount)).toEqual([1, 1, 1, 1, 1, 1]);
    expect(new Set(all.map((m) => m.seq)).size).toBe(6);
    await gate.close();
    await loop;
  }, 30_000);

  it('opens nothing while it starts paused, and ends with what it holds when closed', async () => {
    const js = jetstream(nc);
    await publishJob(js, {
      subject: topology.jobSubject('low', 'gated'),
      payload: new TextEncoder().encode('{}'),
      jobId: 'gated-low',
      attempt: 0,
    });
    const consumer = await js.consumers.get(topology.streams.jobs, topology.workerConsumerName('low', 'gated'));
    const pause = switchable();
    pause.set(true);
    let opened = 0;
    const gate = new LaneGate(
      () => {
        opened++;
        return consumer.consume({ max_messages: 3 });
      },
      pause.signal,
      ACK_WAIT_MS / 3,
    );
    const seen: JsMsg[] = [];
    const loop = (async () => {
      for await (const m of gate.messages()) seen.push(m);
    })();
    await waitFor(() => gate.serving, { what: 'the gate to start' });
    await new Promise((r) => setTimeout(r, 500));
    expect(opened).toBe(0);
    expect((await consumer.info()).num_pending).toBe(1);
    await gate.close();
    await loop;
    expect(seen).toEqual([]);
  });
});
