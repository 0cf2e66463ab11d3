import type { JetStreamManager } from '@nats-io/jetstream';
import { subjectMatches } from '@redrive/messaging';

/** Answers whether some durable consumer on JOBS would receive a message on a subject. */
export interface ConsumerDirectory {
  serves(subject: string): Promise<boolean>;
}

/**
 * JOBS uses interest retention: a message no consumer's filter matches is dropped as soon as
 * it is stored. Intake therefore refuses a job type that no worker consumes, instead of
 * answering 202 for a job that would vanish. The filter list is cached for `ttlMs`, and read
 * again at once (at most every `minRefreshMs`) when a subject misses, so a newly deployed
 * worker is seen within a request.
 */
export function createConsumerDirectory(opts: {
  jsm: JetStreamManager;
  stream: string;
  ttlMs: number;
  minRefreshMs?: number;
}): ConsumerDirectory {
  let filters: string[] = [];
  // Subjects known to match the current filters. Matching splits every filter and the subject,
  // which showed in intake's profile at a few thousand jobs a second; forgotten at each read.
  let served = new Set<string>();
  let readAt = 0;
  let reading: Promise<void> | undefined;
  const minRefreshMs = opts.minRefreshMs ?? 250;

  const refresh = () =>
    (reading ??= (async () => {
      try {
        const next: string[] = [];
        for await (const c of opts.jsm.consumers.list(opts.stream)) {
          const cfg = c.config as { filter_subject?: string; filter_subjects?: string[] };
          if (cfg.filter_subjects?.length) next.push(...cfg.filter_subjects);
          else next.push(cfg.filter_subject || '>');
        }
        filters = next;
        served = new Set();
        readAt = Date.now();
      } finally {
        reading = undefined;
      }
    })());

  const matches = (subject: string) => {
    if (served.has(subject)) return true;
    if (!filters.some((f) => subjectMatches(f, subject))) return false;
    // Bounded: with a wildcard filter every job type a producer invents would be remembered.
    if (served.size >= 10_000) served = new Set();
    served.add(subject);
    return true;
  };

  return {
    async serves(subject) {
      const age = Date.now() - readAt;
      if (age > opts.ttlMs) await refresh();
      if (matches(subject)) return true;
      if (Date.now() - readAt > minRefreshMs) {
        await refresh();
        return matches(subject);
      }
      return false;
    },
  };
}
