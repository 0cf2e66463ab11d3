import {
  JetStreamApiCodes,
  JetStreamApiError,
  type ConsumerConfig,
  type JetStreamManager,
  type StreamConfig,
} from '@nats-io/jetstream';

/** `kept`: it differs, and this NATS user may not change it (its owner does, permissions.ts). */
export type ProvisionAction = 'created' | 'updated' | 'unchanged' | 'kept';

export interface ProvisionResult {
  kind: 'stream' | 'consumer';
  name: string;
  action: ProvisionAction;
  /** The fields an update changed, as `field: old → new`. */
  changes: string[];
}

/** A stream or consumer exists with a setting JetStream cannot change in place. */
export class TopologyConflictError extends Error {
  override readonly name = 'TopologyConflictError';
  constructor(
    readonly resource: string,
    readonly field: string,
    readonly current: unknown,
    readonly wanted: unknown,
  ) {
    super(
      `${resource}: ${field} is ${JSON.stringify(current)} but the configuration wants ${JSON.stringify(wanted)}; ` +
        'JetStream cannot change it in place: migrate the data to a new stream or change the configuration back',
    );
  }
}

// JetStream refuses to change these on an existing stream or consumer.
const IMMUTABLE_STREAM_FIELDS = new Set(['retention', 'storage']);
const IMMUTABLE_CONSUMER_FIELDS = new Set(['deliver_policy', 'ack_policy', 'durable_name']);

function isCode(err: unknown, code: number): boolean {
  return err instanceof JetStreamApiError && err.code === code;
}

/** True when nats-server refused a publish or subscription for this user's permissions. */
export function isPermissionViolation(err: unknown): boolean {
  for (let e = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++)
    if (e.name === 'PermissionViolationError') return true;
  return false;
}

function same(a: unknown, b: unknown): boolean {
  if (Array.isArray(a) && Array.isArray(b)) {
    return a.length === b.length && [...a].sort().join('\n') === [...b].sort().join('\n');
  }
  return a === b;
}

/** The fields of `wanted` whose value differs from `current`; fields `wanted` omits are ignored. */
function differences(current: object, wanted: object): { field: string; from: unknown; to: unknown }[] {
  const cur = current as Record<string, unknown>;
  return Object.entries(wanted)
    .filter(([field, to]) => to !== undefined && field !== 'description' && !same(cur[field], to))
    .map(([field, to]) => ({ field, from: cur[field], to }));
}

/**
 * Creates the stream, or updates it in place when an older configuration differs; never
 * deletes or recreates it, so no message is lost. Running it again changes nothing.
 */
export async function ensureStream(jsm: JetStreamManager, wanted: StreamConfig): Promise<ProvisionResult> {
  for (let attempt = 0; ; attempt++) {
    let current: StreamConfig;
    try {
      current = (await jsm.streams.info(wanted.name)).config;
    } catch (err) {
      if (!isCode(err, JetStreamApiCodes.StreamNotFound)) throw err;
      try {
        await jsm.streams.add(wanted);
        return { kind: 'stream', name: wanted.name, action: 'created', changes: [] };
      } catch (addErr) {
        // Another replica created it between our info and add: look again.
        if (attempt < 2) continue;
        throw addErr;
      }
    }
    const diffs = differences(current, wanted);
    if (diffs.length === 0) return { kind: 'stream', name: wanted.name, action: 'unchanged', changes: [] };
    const fixed = diffs.find((d) => IMMUTABLE_STREAM_FIELDS.has(d.field));
    if (fixed) throw new TopologyConflictError(`stream ${wanted.name}`, fixed.field, fixed.from, fixed.to);
    const changes = diffs.map((d) => `${d.field}: ${JSON.stringify(d.from)} → ${JSON.stringify(d.to)}`);
    try {
      // A configuration without subjects (JOBS: the workers add theirs) keeps the stream's own,
      // read again just before the update, so a worker's subjects added meanwhile are not undone.
      const subjects = wanted.subjects ?? (await jsm.streams.info(wanted.name)).config.subjects;
      await jsm.streams.update(wanted.name, { ...current, ...wanted, ...(subjects ? { subjects } : {}) });
    } catch (err) {
      // Only the stream's owner may change it (a service's NATS user cannot, say, shrink the
      // limits of a stream it only writes to): the others use it as it is.
      if (isPermissionViolation(err)) return { kind: 'stream', name: wanted.name, action: 'kept', changes };
      throw err;
    }
    return { kind: 'stream', name: wanted.name, action: 'updated', changes };
  }
}

/** Creates the durable consumer, or updates the settings that may change; idempotent. */
export async function ensureConsumer(
  jsm: JetStreamManager,
  stream: string,
  wanted: ConsumerConfig,
): Promise<ProvisionResult> {
  const name = wanted.durable_name ?? wanted.name;
  if (!name) throw new Error('ensureConsumer needs a durable consumer name');
  let current: ConsumerConfig;
  try {
    current = (await jsm.consumers.info(stream, name)).config;
  } catch (err) {
    if (!isCode(err, JetStreamApiCodes.ConsumerNotFound)) throw err;
    // Creating a durable with an identical config is idempotent on the server, so a race
    // between two replicas creating the same consumer is harmless.
    await jsm.consumers.add(stream, wanted);
    return { kind: 'consumer', name, action: 'created', changes: [] };
  }
  const diffs = differences(current, wanted);
  if (diffs.length === 0) return { kind: 'consumer', name, action: 'unchanged', changes: [] };
  const fixed = diffs.find((d) => IMMUTABLE_CONSUMER_FIELDS.has(d.field));
  if (fixed) throw new TopologyConflictError(`consumer ${stream}/${name}`, fixed.field, fixed.from, fixed.to);
  const { durable_name: _durable, name: _name, ...update } = wanted;
  await jsm.consumers.update(stream, name, update);
  return {
    kind: 'consumer',
    name,
    action: 'updated',
    changes: diffs.map((d) => `${d.field}: ${JSON.stringify(d.from)} → ${JSON.stringify(d.to)}`),
  };
}

/** Ensures every stream of the topology, in order. */
export async function ensureStreams(
  jsm: JetStreamManager,
  configs: readonly StreamConfig[],
): Promise<ProvisionResult[]> {
  const results: ProvisionResult[] = [];
  for (const config of configs) results.push(await ensureStream(jsm, config));
  return results;
}

/** Why the streams are not usable right now (NATS down, a stream missing); empty when they are. */
export async function streamProblems(jsm: JetStreamManager, names: readonly string[]): Promise<string[]> {
  const problems = await Promise.all(
    names.map(async (name) => {
      try {
        await jsm.streams.info(name);
        return undefined;
      } catch (err) {
        return isCode(err, JetStreamApiCodes.StreamNotFound)
          ? `stream ${name} does not exist`
          : `stream ${name} is not reachable: ${err instanceof Error ? err.message : String(err)}`;
      }
    }),
  );
  return problems.filter((p): p is string => p !== undefined);
}
