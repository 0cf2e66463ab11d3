import { JetStreamApiError, type JetStreamManager } from '@nats-io/jetstream';
import type { Logger } from 'pino';
import { subjectMatches } from './subjects.js';
import { ensureConsumer, type ProvisionResult } from './provision.js';
import type { Topology, WorkerConsumerOptions } from './topology.js';

const MAX_TRIES = 10;
/** JetStream: "consumer filter subject is not a valid subset of the interest subjects". */
const FILTER_NOT_COVERED = 10093;

function isCode(err: unknown, code: number): boolean {
  return err instanceof JetStreamApiError && err.code === code;
}

/**
 * Makes JOBS capture the subjects of `types` (every priority lane), so jobs of these types are
 * stored, while a publish to a type no worker serves finds no stream and is refused to its
 * publisher ("no responders") rather than stored and dropped by interest retention.
 *
 * Stream updates have no compare-and-set: two workers adding types at once can each overwrite
 * the other's subjects. The consumers are the registry that cannot be overwritten (each is its
 * own object), so every round re-reads the stream and the consumers and adds the subjects of
 * `types` and of every worker consumer that are missing, until a round finds nothing missing.
 * A worker whose subjects another overwrote before it made its consumers finds its consumer
 * refused (provisionJobTypes tries again); one overwritten after, has its subjects put back by
 * the round of the worker that overwrote them, since that round sees the consumers. Workers also
 * call this periodically. An installation from before this rule (JOBS capturing `jobs.>`) is
 * narrowed to the subjects its worker consumers filter on, unless some consumer needs the
 * wildcard. Subjects are never removed: a type whose workers are gone keeps its consumers,
 * which keep its waiting jobs.
 *
 * Returns the subjects it added (empty when nothing was missing).
 */
export async function serveJobTypes(
  jsm: JetStreamManager,
  topology: Topology,
  types: readonly string[],
  logger?: Logger,
): Promise<string[]> {
  const stream = topology.streams.jobs;
  const wanted = topology.jobSubjectsOf(types);
  const added = new Set<string>();
  for (let round = 1; ; round++) {
    const info = await jsm.streams.info(stream);
    const current = info.config.subjects ?? [];
    const { filters, needsWildcard } = await consumerFilters(jsm, topology);
    // The server's default subject (the stream's name) when it was made without any.
    let next = current.filter((s) => s !== stream);
    if (next.includes(topology.allJobsSubject) && !needsWildcard)
      next = next.filter((s) => s !== topology.allJobsSubject);
    const missing = [...new Set([...wanted, ...filters])].filter((s) => !next.some((n) => subjectMatches(n, s)));
    next = [...next, ...missing];
    if (sameSet(next, current)) {
      if (added.size > 0)
        logger?.info({ stream, added: [...added] }, 'JOBS now captures the subjects of these job types');
      return [...added];
    }
    if (round > MAX_TRIES) throw new Error(`stream ${stream} kept losing job subjects to concurrent updates`);
    try {
      await jsm.streams.update(stream, { ...info.config, subjects: next });
      for (const m of missing) added.add(m);
    } catch (err) {
      // Another worker changed the stream at the same moment: look again.
      if (!(err instanceof JetStreamApiError)) throw err;
      await jitter(round);
    }
  }
}

/** The job subjects the worker consumers of JOBS filter on; whether some other consumer needs `jobs.>`. */
async function consumerFilters(
  jsm: JetStreamManager,
  topology: Topology,
): Promise<{ filters: string[]; needsWildcard: boolean }> {
  const filters: string[] = [];
  let needsWildcard = false;
  for await (const c of jsm.consumers.list(topology.streams.jobs)) {
    const cfg = c.config as { filter_subject?: string; filter_subjects?: string[] };
    const own = cfg.filter_subjects?.length ? cfg.filter_subjects : [cfg.filter_subject ?? ''];
    for (const f of own) {
      // A consumer on anything but one lane of one type (a wildcard, no filter) needs jobs.>.
      if (!topology.parseJobSubject(f) || f.includes('*') || f.includes('>')) needsWildcard = true;
      else filters.push(f);
    }
  }
  return { filters, needsWildcard };
}

function sameSet(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x) => b.includes(x));
}

function jitter(attempt: number): Promise<void> {
  return new Promise((r) => setTimeout(r, Math.random() * 50 * attempt));
}

/**
 * Everything a worker provisions for the types it serves: JOBS captures their subjects, then
 * their durable consumers exist in every lane (in that order: a consumer's filter must be
 * covered by a stream subject).
 */
export async function provisionJobTypes(
  jsm: JetStreamManager,
  topology: Topology,
  types: readonly string[],
  consumer: WorkerConsumerOptions,
  logger?: Logger,
): Promise<ProvisionResult[]> {
  for (let round = 1; ; round++) {
    await serveJobTypes(jsm, topology, types, logger);
    try {
      const results: ProvisionResult[] = [];
      for (const c of topology.workerConsumerConfigs(types, consumer))
        results.push(await ensureConsumer(jsm, topology.streams.jobs, c));
      return results;
    } catch (err) {
      // Another worker's update took our subjects away before our consumers existed.
      if (!isCode(err, FILTER_NOT_COVERED) || round >= MAX_TRIES) throw err;
      await jitter(round);
    }
  }
}
