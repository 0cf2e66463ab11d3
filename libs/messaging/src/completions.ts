import { createHash } from 'node:crypto';
import { JetStreamApiCodes, JetStreamApiError, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import type { Topology } from './topology.js';

/** What a completion record says: which attempt of the job succeeded, and when. */
export interface CompletionRecord {
  jobId: string;
  attempt: number;
  at: string;
}

/** The outcome of recording a completion: the first one wins, a later one finds it. */
export type RecordOutcome = { recorded: true } | { recorded: false; existing: CompletionRecord | undefined };

/**
 * Durable completion records of idempotency-keyed jobs, one message per job on
 * `completions.<sha256 of the job id>` in the COMPLETIONS stream. A record is written with an
 * expected last subject sequence of 0, so of two runs that both succeed only the first is
 * recorded as the job's success. Unlike the Redis markers (fast, and lost with Redis), a record
 * lives as long as the stream keeps it (COMPLETIONS_MAX_AGE), on the server the job came from.
 */
export function createCompletionStore(js: JetStreamClient, jsm: JetStreamManager, topology: Topology) {
  const stream = topology.streams.completions;
  const subjectOf = (jobId: string) =>
    topology.completionSubject(createHash('sha256').update(jobId).digest('base64url'));

  async function get(jobId: string): Promise<CompletionRecord | undefined> {
    const m = await jsm.streams.getMessage(stream, { last_by_subj: subjectOf(jobId) });
    return m ? (m.json() as CompletionRecord) : undefined;
  }

  async function record(rec: CompletionRecord, timeoutMs = 5_000): Promise<RecordOutcome> {
    try {
      await js.publish(subjectOf(rec.jobId), JSON.stringify(rec), {
        expect: { lastSubjectSequence: 0 },
        timeout: timeoutMs,
      });
    } catch (err) {
      if (err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamWrongLastSequence)
        return { recorded: false, existing: await get(rec.jobId) };
      throw err;
    }
    return { recorded: true };
  }

  return { get, record };
}

export type CompletionStore = ReturnType<typeof createCompletionStore>;
