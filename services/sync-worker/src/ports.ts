// What the dispatcher needs from Redis and Postgres, as narrow interfaces: main.ts passes in
// the real implementations (@redrive/guards, @redrive/store), or none when not configured.

/** Redis-backed helpers; every call fails open when Redis is down. */
export interface GuardsPort {
  /** One call when a run starts (completed already? runs that never ended?) and one when it ends. */
  runs: {
    start(key: string, ttlMs: number): Promise<{ completed: boolean; unfinished: number; suspectDeaths: number }>;
    end(key: string, completedTtlMs?: number): Promise<void>;
    /** This run is a suspect's, made apart from the worker's other suspects. */
    suspect(key: string, ttlMs: number): Promise<void>;
  };
  rateLimit: {
    take(
      bucket: string,
      ratePerSec: number,
      burst: number,
    ): Promise<{ allowed: true } | { allowed: false; retryInMs: number }>;
  };
  concurrency: {
    acquire(
      key: string,
      limit: number,
      holder: string,
      leaseMs: number,
    ): Promise<{ acquired: true } | { acquired: false; retryInMs: number }>;
    renew(key: string, holder: string, leaseMs: number): Promise<void>;
    release(key: string, holder: string): Promise<void>;
  };
}

/**
 * Durable completion records of idempotency-keyed jobs (the COMPLETIONS stream in NATS): the
 * first success of a job id is recorded, and any later one finds it.
 */
export interface CompletionsPort {
  get(jobId: string): Promise<{ attempt: number; at: string } | undefined>;
  /** Records the job's success unless one is recorded already (then `existing` is that one). */
  record(rec: {
    jobId: string;
    attempt: number;
    at: string;
  }): Promise<{ recorded: true } | { recorded: false; existing: { attempt: number; at: string } | undefined }>;
}

/** Checkpoints of completed steps, by job id and step name. */
export interface StepsPort {
  get(jobId: string, step: string): Promise<{ found: true; value: unknown } | { found: false }>;
  save(jobId: string, step: string, value: unknown): Promise<void>;
  /** Forgets every step of the job (once it succeeded); returns how many were removed. */
  clear(jobId: string): Promise<number>;
}

export interface RateLimit {
  perSecond: number;
  burst: number;
}
