// Scheduler timing: `count` one-shot schedules due within the same second, stored well ahead
// by a real retry-scheduler from schedule.delay requests. A fire's lateness is the JetStream
// timestamp of the job it put on JOBS minus its due time, read afterwards by a bare consumer
// that holds every fire unacked until the end, so observing costs nothing while it fires.
// The baseline is the floor of "publish at time T" on this machine: a timer loop in this process
// publishing as many jobs, evenly over one second, into the same JOBS stream with plain nats.js
// publishes, timed the same way (the mean of a run before the schedules and one after).
import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager, type ConsumerConfig } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/nats-core';
import { H, publishJob, publishScheduleRequest, serveJobTypes, Topology } from '@redrive/messaging';
import { waitFor } from '@redrive/test-support';
import { withServiceAndDatabase } from './services.js';
import { atRate, percentile, round, sleep } from './stats.js';

/** How late the fires of one run were, and how long after the first due time the last one landed. */
export interface FireTiming {
  p50: number;
  p99: number;
  max: number;
  allFiredMs: number;
}

export interface SchedulerTimingResult {
  scheduler: FireTiming;
  floor: FireTiming;
  /** How long before the first due time the last schedule was stored. */
  storedAheadMs: number;
}

const WINDOW_MS = 1_000;
// Schedules are due this long after their requests start going out: storing 10,000 takes a few
// seconds here, and a fire must never race its own storage.
const LEAD_MS = 15_000;

/** Due times spread evenly over one second from `first`. */
const dueTimes = (first: number, count: number) =>
  Array.from({ length: count }, (_, i) => first + Math.floor((i * WINDOW_MS) / count));

/** A durable consumer on one JOBS subject that nobody reads until every fire is in. */
async function observe(nc: NatsConnection, topology: Topology, name: string, type: string) {
  const jsm = await jetstreamManager(nc);
  // No worker serves these types: the observer is their only consumer.
  await serveJobTypes(jsm, topology, [type]);
  await jsm.consumers.add(topology.streams.jobs, {
    durable_name: name,
    filter_subject: topology.jobSubject('normal', type),
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All,
    max_ack_pending: 20_000,
  } as ConsumerConfig);
  return {
    /** Waits until `count` jobs are in, then reads when JetStream stored each (by job id). */
    async stored(count: number, timeoutMs: number): Promise<Map<string, number>> {
      await waitFor(async () => (await jsm.consumers.info(topology.streams.jobs, name)).num_pending >= count, {
        timeoutMs,
        intervalMs: 100,
        what: `${count} fires on ${type}`,
      });
      const at = new Map<string, number>();
      const consumer = await jetstream(nc).consumers.get(topology.streams.jobs, name);
      const messages = await consumer.consume({ max_messages: 1_000 });
      for await (const m of messages) {
        at.set(m.headers?.get(H.jobId) ?? '', m.info.timestampNanos / 1e6);
        m.ack();
        if (at.size >= count) break;
      }
      return at;
    },
  };
}

type Observer = Awaited<ReturnType<typeof observe>>;

function timing(due: readonly number[], stored: Map<string, number>, id: (i: number) => string): FireTiming {
  const lateness = due.map((d, i) => stored.get(id(i))! - d);
  return {
    p50: round(percentile(lateness, 50)),
    p99: round(percentile(lateness, 99)),
    max: round(percentile(lateness, 100)),
    allFiredMs: round(Math.max(...stored.values()) - due[0]!, 0),
  };
}

/**
 * The floor: `count` jobs published evenly over one second by a timer loop in this process,
 * with plain nats.js publishes (PubAcks pipelined), timed like the scheduler's fires.
 */
async function floorTiming(
  nc: NatsConnection,
  topology: Topology,
  observer: Observer,
  tag: string,
  count: number,
  body: Uint8Array,
): Promise<FireTiming> {
  const js = jetstream(nc);
  const subject = topology.jobSubject('normal', 'floor');
  const acks: Promise<unknown>[] = [];
  const first = Date.now();
  await atRate(count, (count * 1_000) / WINDOW_MS, (i) => {
    acks.push(publishJob(js, { subject, payload: body, jobId: `${tag}${i}`, msgId: `${tag}${i}`, attempt: 0 }));
  });
  await Promise.all(acks);
  const due = Array.from({ length: count }, (_, i) => first + (i * WINDOW_MS) / count);
  return timing(due, await observer.stored(count, 60_000), (i) => `${tag}${i}`);
}

const mean = (a: FireTiming, b: FireTiming): FireTiming => ({
  p50: round((a.p50 + b.p50) / 2),
  p99: round((a.p99 + b.p99) / 2),
  max: round((a.max + b.max) / 2),
  allFiredMs: round((a.allFiredMs + b.allFiredMs) / 2, 0),
});

/** Fire lateness of `count` schedules due in one second through a real retry-scheduler, and its floor. */
export async function schedulerTiming(nc: NatsConnection, count: number, size: number): Promise<SchedulerTimingResult> {
  const body = new TextEncoder().encode(JSON.stringify({ pad: 'x'.repeat(Math.max(0, size - 10)) }));
  return withServiceAndDatabase(nc, 'retry-scheduler', 'benchsched', {}, async ({ prefix, topology, db: pgc }) => {
    const fired = await observe(nc, topology, 'bench-fired', 'fired');
    const floor = await observe(nc, topology, 'bench-floor', 'floor');

    // The floor runs once before the schedules are made and once after they fired, and the
    // mean is reported: other load on the machine drifts, and this way it weighs on both alike.
    await sleep(1_000);
    const floorBefore = await floorTiming(nc, topology, floor, 'a', count, body);
    await sleep(500);

    const js = jetstream(nc);
    const due = dueTimes(Date.now() + LEAD_MS, count);
    const inflight = new Set<Promise<unknown>>();
    for (const [i, at] of due.entries()) {
      const p = publishScheduleRequest(js, topology, {
        kind: 'delay',
        scheduleId: `s${i}`,
        subject: topology.jobSubject('normal', 'fired'),
        payload: body,
        jobId: `s${i}`,
        attempt: 0,
        dueAt: new Date(at),
      }).finally(() => inflight.delete(p));
      inflight.add(p);
      if (inflight.size >= 1_000) await Promise.race(inflight);
    }
    await Promise.all(inflight);
    const client = pgc;
    // Reported, not asserted: a machine too busy to store them all before the first is due
    // shows a negative lead in the figure's note.
    await waitFor(
      async () =>
        (await client.query<{ n: number }>('SELECT count(*)::int AS n FROM schedules WHERE namespace = $1', [prefix]))
          .rows[0]!.n >= count,
      { timeoutMs: LEAD_MS + 60_000, intervalMs: 100, what: `${count} schedules to be stored` },
    );
    const storedAheadMs = due[0]! - Date.now();
    const scheduled = timing(due, await fired.stored(count, LEAD_MS + 120_000), (i) => `s${i}`);
    await sleep(500);
    const floorAfter = await floorTiming(nc, topology, floor, 'b', count, body);
    return { scheduler: scheduled, floor: mean(floorBefore, floorAfter), storedAheadMs: round(storedAheadMs, 0) };
  });
}
