import {
  DeliverPolicy,
  DiscardPolicy,
  RetentionPolicy,
  StorageType,
  type ConsumerMessages,
  type JetStreamClient,
  type JetStreamManager,
  type StreamConfig,
} from '@nats-io/jetstream';
import { headers as natsHeaders } from '@nats-io/nats-core';
import type { Logger } from 'pino';
import { ensureStream, type ProvisionResult } from './provision.js';
import { PRIORITIES, type Priority } from './subjects.js';
import type { Topology } from './topology.js';

// Which job types (or lanes of a type) are paused: a NATS KV bucket, `<prefix>_PAUSES` (stream
// KV_<prefix>_PAUSES), so `nats kv ls/get/watch` read it. dlq-manager writes it (an operator's
// pause or resume); every worker replica watches it and starts no new job of a paused type or
// lane. One key per pause: `<type>` pauses every lane of the type, `<type>.<lane>` one lane;
// a resume deletes the key (a KV delete marker), so the bucket holds only what is paused.

/** How many revisions of each key the bucket keeps (the audit trail keeps every change). */
const HISTORY = 5;
const NS_PER_MS = 1_000_000;

/** What a pause key holds. */
export interface PauseRecord {
  type: string;
  /** Absent when the whole type is paused. */
  lane?: Priority;
  /** Who paused it: a token's name, or `nats:<actor>`. */
  by: string;
  at: string;
  note?: string;
}

/** The KV bucket holding the pauses of an installation: `PAUSES`, or `<prefix>_PAUSES`. */
export function pausesBucket(topology: Topology): string {
  const { prefix } = topology.options;
  return prefix ? `${prefix}_PAUSES` : 'PAUSES';
}

/** The stream behind the bucket (`KV_<bucket>`), as NATS KV names it. */
export function pausesStream(topology: Topology): string {
  return `KV_${pausesBucket(topology)}`;
}

/** The key of a pause: `<type>` for every lane, `<type>.<lane>` for one. */
export function pauseKey(type: string, lane?: Priority): string {
  return lane ? `${type}.${lane}` : type;
}

function keySubject(topology: Topology, key: string): string {
  return `$KV.${pausesBucket(topology)}.${key}`;
}

/** The bucket's stream, configured as `nats kv add` would make it. */
export function pausesStreamConfig(topology: Topology): StreamConfig {
  const o = topology.options;
  return {
    name: pausesStream(topology),
    description: 'Redrive paused job types and lanes (a NATS KV bucket)',
    subjects: [keySubject(topology, '>')],
    retention: RetentionPolicy.Limits,
    discard: DiscardPolicy.New,
    max_msgs_per_subject: HISTORY,
    max_age: 0,
    allow_rollup_hdrs: true,
    deny_delete: true,
    deny_purge: false,
    allow_direct: true,
    duplicate_window: 2 * 60_000 * NS_PER_MS,
    storage: o.storage === 'memory' ? StorageType.Memory : StorageType.File,
    num_replicas: o.replicas,
  } as StreamConfig;
}

/** Creates the bucket when it is missing (any service that uses it may start first). */
export function ensurePausesBucket(jsm: JetStreamManager, topology: Topology): Promise<ProvisionResult> {
  return ensureStream(jsm, pausesStreamConfig(topology));
}

/** Pauses a type (every lane) or one lane; stored once JetStream has acknowledged it. */
export async function putPause(js: JetStreamClient, topology: Topology, record: PauseRecord): Promise<void> {
  await js.publish(keySubject(topology, pauseKey(record.type, record.lane)), JSON.stringify(record), {
    timeout: 5_000,
  });
}

/** Resumes a type or lane: the key's delete marker (what `nats kv del` writes). */
export async function deletePause(
  js: JetStreamClient,
  topology: Topology,
  type: string,
  lane?: Priority,
): Promise<void> {
  const h = natsHeaders();
  h.set('KV-Operation', 'DEL');
  await js.publish(keySubject(topology, pauseKey(type, lane)), new Uint8Array(), { headers: h, timeout: 5_000 });
}

/** The pauses in force, by key. */
export type PauseMap = ReadonlyMap<string, PauseRecord>;

/** Whether jobs of `type` in `lane` are held: the type or that lane is paused. */
export function isPaused(pauses: PauseMap, type: string, lane: Priority): boolean {
  return pauses.has(pauseKey(type)) || pauses.has(pauseKey(type, lane));
}

/** The pause that holds `type` in `lane`: the type's own, else the lane's. */
export function pauseOf(pauses: PauseMap, type: string, lane: Priority): PauseRecord | undefined {
  return pauses.get(pauseKey(type)) ?? pauses.get(pauseKey(type, lane));
}

function parseRecord(key: string, data: Uint8Array): PauseRecord | undefined {
  try {
    const r = JSON.parse(new TextDecoder().decode(data)) as Partial<PauseRecord>;
    const [type, lane] = key.split('.');
    if (!type) return undefined;
    return {
      type,
      ...(lane && (PRIORITIES as readonly string[]).includes(lane) ? { lane: lane as Priority } : {}),
      by: typeof r.by === 'string' ? r.by : 'unknown',
      at: typeof r.at === 'string' ? r.at : new Date(0).toISOString(),
      ...(typeof r.note === 'string' ? { note: r.note } : {}),
    };
  } catch {
    // A value someone wrote by hand that is not JSON still pauses: a pause must never be lost
    // to its format.
    const [type, lane] = key.split('.');
    return type
      ? {
          type,
          ...(lane && (PRIORITIES as readonly string[]).includes(lane) ? { lane: lane as Priority } : {}),
          by: 'unknown',
          at: new Date(0).toISOString(),
        }
      : undefined;
  }
}

export interface PauseWatch {
  /** The pauses in force now (every key seen so far). */
  readonly current: PauseMap;
  /** Resolves once the bucket's state at start has been read. */
  readonly ready: Promise<void>;
  /** Called after each change (after `ready`, and for the initial state as it arrives). */
  onChange(listener: (pauses: PauseMap) => void): () => void;
  stop(): Promise<void>;
}

/**
 * Watches the bucket with an ordered consumer (last value of each key, then every change), so
 * each replica learns of a pause as soon as JetStream stores it, and a replica that starts
 * while a type is paused starts with it paused. The ordered consumer recreates itself after a
 * NATS restart and carries on from the last change it saw.
 */
export async function watchPauses(
  js: JetStreamClient,
  jsm: JetStreamManager,
  topology: Topology,
  logger: Logger,
): Promise<PauseWatch> {
  const stream = pausesStream(topology);
  const root = keySubject(topology, '');
  const current = new Map<string, PauseRecord>();
  const listeners = new Set<(pauses: PauseMap) => void>();
  // The stream holds the bucket's keys only, so no filter (filter_subjects needs nats-server 2.10).
  const consumer = await js.consumers.get(stream, { deliver_policy: DeliverPolicy.LastPerSubject });
  // The initial state is read once a message says nothing more is pending (an empty bucket
  // has none to read).
  const empty = (await jsm.streams.info(stream)).state.messages === 0;
  let resolveReady!: () => void;
  const ready = new Promise<void>((r) => (resolveReady = r));
  if (empty) resolveReady();
  const messages: ConsumerMessages = await consumer.consume();
  const loop = (async () => {
    for await (const m of messages) {
      const key = m.subject.slice(root.length);
      const op = m.headers?.get('KV-Operation');
      if (op === 'DEL' || op === 'PURGE') current.delete(key);
      else {
        const record = parseRecord(key, m.data);
        if (record) current.set(key, record);
      }
      if (m.info.pending === 0) resolveReady();
      for (const l of listeners) l(current);
    }
  })().catch((err: unknown) => logger.error({ err, stream }, 'the pause watch stopped'));
  return {
    current,
    ready,
    onChange(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    async stop() {
      await messages.close().catch(() => undefined);
      await loop;
      resolveReady();
    },
  };
}
