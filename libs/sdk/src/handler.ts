/** One delivery of a job, as a handler sees it. */
export interface Job<P = unknown> {
  /** Stable across retries, hand-offs and redrives. */
  readonly id: string;
  readonly type: string;
  readonly priority: 'high' | 'normal' | 'low';
  /** 1 for the first run, counting every earlier attempt including those before a hand-off. */
  readonly attempt: number;
  /** The JSON body the producer sent, parsed; null for an empty body. */
  readonly payload: P;
  /** The body exactly as it was published. */
  readonly raw: Uint8Array;
  /** Every header of the message. */
  readonly headers: Readonly<Record<string, string>>;
}

/** What a handler can use while it runs. */
export interface JobContext {
  /** Aborted when the job's deadline passes or the worker must give the job back. */
  readonly signal: AbortSignal;
  /** The W3C trace id the job carries from its producer. */
  readonly traceId: string;
  /** Writes a structured log line tied to this job, and records it in the job's audit trail. */
  log(message: string, fields?: Record<string, unknown>): void;
  /** Records progress (a number, or any JSON value) in the job's audit trail. */
  progress(value: unknown): void;
  /**
   * Runs `fn` once per job: its result is checkpointed, and on a retry a completed step
   * returns the saved result instead of running again. Results must be JSON.
   */
  step<T>(name: string, fn: () => Promise<T> | T): Promise<T>;
  /**
   * Ends the repeating schedule that fired this job: the scheduler fires it no more (a fire
   * already published still runs). Does nothing for a job no schedule fired. The request is
   * sent at once; if it is lost, the next fire runs the handler, which can ask again.
   */
  stopRepeat(): void;
}

export type HandlerFn<P = unknown> = (job: Job<P>, ctx: JobContext) => unknown;

/** A handler for one job type, as user modules export it. */
export interface HandlerDefinition<P = unknown> {
  /** The job type, `[a-z0-9][a-z0-9_-]*`; jobs arrive on `jobs.<priority>.<type>`. */
  readonly type: string;
  readonly handle: HandlerFn<P>;
  /** How long one run may take before it is aborted; the worker's default otherwise. */
  readonly timeoutMs?: number;
  /**
   * Rate-limit buckets this job draws a token from (for example `host:api.example.com`);
   * limits per bucket come from the worker's configuration. A job held back by a limit waits
   * without using up an attempt.
   */
  readonly rateLimitKeys?: (job: Job<P>) => readonly string[];
  /** At most `limit` jobs with the same key run at once, across every worker replica. */
  readonly concurrency?: { readonly key: (job: Job<P>) => string | undefined; readonly limit: number };
}

/** Declares a handler; a module's default export may be one handler or an array of them. */
export function defineHandler<P = unknown>(definition: HandlerDefinition<P>): HandlerDefinition<P> {
  return Object.freeze({ ...definition });
}
