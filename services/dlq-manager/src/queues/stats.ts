import type { ConsumerInfo, JetStreamManager, MsgRequest } from '@nats-io/jetstream';
import type { Priority, Topology } from '@redrive/messaging';

// What JetStream itself says about a queue, read from consumer state: no counting of our own,
// so it holds whoever published the jobs and whichever worker replica runs them. Used by the
// queue gauges (metrics), and meant for anything else that shows queue depth.

/** The backlog of one durable consumer. */
export interface ConsumerBacklog {
  /** Messages matching the consumer's filter not yet delivered (num_pending). */
  waiting: number;
  /** Delivered and not yet acknowledged (num_ack_pending): running, or held by a worker. */
  running: number;
  /** Delivered more than once and not yet acknowledged (num_redelivered). */
  redelivered: number;
  /** When the oldest message not yet acknowledged was stored; undefined when there is none. */
  oldestAt: Date | undefined;
}

/** One job type in one priority lane: its worker consumer's backlog. */
export interface LaneStats extends ConsumerBacklog {
  type: string;
  lane: Priority;
  consumer: string;
  /**
   * Pull requests waiting at the consumer (num_waiting): each worker replica that serves the
   * lane keeps one open while it has room for more jobs, so this is the replicas ready to take
   * one now (a replica with every slot busy, or holding a paused lane, has none open).
   */
  pullRequests: number;
}

/**
 * The stored time of the first message after the consumer's ack floor that matches its filter:
 * the oldest message it has not acknowledged, delivered or not. One STREAM.MSG.GET (no need for
 * allow_direct), only when something is outstanding. With interest retention an acknowledged
 * message is gone, so the first match at or past the floor is always unacknowledged.
 */
async function oldestUnacked(jsm: JetStreamManager, info: ConsumerInfo): Promise<Date | undefined> {
  if (info.num_pending + info.num_ack_pending === 0) return undefined;
  const filter = info.config.filter_subject || '>';
  // nats-server (2.9 and later) answers next_by_subj on the STREAM.MSG.GET API too; nats.js
  // types it only for direct gets.
  const query = { seq: info.ack_floor.stream_seq + 1, next_by_subj: filter } as unknown as MsgRequest;
  const msg = await jsm.streams.getMessage(info.stream_name, query);
  return msg?.time;
}

function backlogOf(info: ConsumerInfo, oldestAt: Date | undefined): ConsumerBacklog {
  return {
    waiting: info.num_pending,
    running: info.num_ack_pending,
    redelivered: info.num_redelivered,
    oldestAt,
  };
}

/** One consumer's backlog: CONSUMER.INFO, and one message read when it has anything outstanding. */
export async function readConsumerBacklog(
  jsm: JetStreamManager,
  stream: string,
  consumer: string,
): Promise<ConsumerBacklog> {
  const info = await jsm.consumers.info(stream, consumer);
  return backlogOf(info, await oldestUnacked(jsm, info));
}

/**
 * Every served job type in every lane, from the worker consumers on JOBS (the registry of
 * served types, see libs/messaging served.ts): one CONSUMER.LIST page per 256 consumers, plus
 * one message read per lane with jobs outstanding. Consumers that are not a worker's
 * (`worker-<lane>-<type>` filtering on that lane's subject) are left out.
 */
export async function readQueueStats(jsm: JetStreamManager, topology: Topology): Promise<LaneStats[]> {
  const lanes: { info: ConsumerInfo; type: string; lane: Priority }[] = [];
  for await (const info of jsm.consumers.list(topology.streams.jobs)) {
    const target = topology.parseJobSubject(info.config.filter_subject ?? '');
    if (!target || info.name !== topology.workerConsumerName(target.priority, target.type)) continue;
    lanes.push({ info, type: target.type, lane: target.priority });
  }
  const stats = await Promise.all(
    lanes.map(async ({ info, type, lane }) => ({
      type,
      lane,
      consumer: info.name,
      pullRequests: info.num_waiting,
      ...backlogOf(info, await oldestUnacked(jsm, info)),
    })),
  );
  return stats.sort((a, b) => a.type.localeCompare(b.type) || a.lane.localeCompare(b.lane));
}
