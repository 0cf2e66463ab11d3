// What the dispatcher needs from Redis and Postgres, as narrow interfaces: main.ts passes in
// the real implementations (@redrive/guards, @redrive/store), or none when not configured.

/** Redis-backed helpers; every call fails open when Redis is down. */
export interface GuardsPort {
  completed: {
    has(key: string): Promise<boolean>;
    mark(key: string, ttlMs: number): Promise<void>;
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

/** Checkpoints of completed steps, by job id and step name. */
export interface StepsPort {
  get(jobId: string, step: string): Promise<{ found: true; value: unknown } | { found: false }>;
  save(jobId: string, step: string, value: unknown): Promise<void>;
}

export interface RateLimit {
  perSecond: number;
  burst: number;
}
