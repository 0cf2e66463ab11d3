import type { Logger } from 'pino';

/** A resource or activity that must be stopped when the process shuts down. */
export interface Stoppable {
  readonly name: string;
  stop(deadline: Deadline): Promise<void>;
}

/** The moment by which shutdown must be complete. */
export interface Deadline {
  readonly at: number;
  remainingMs(): number;
}

export function deadlineIn(ms: number, now: () => number = Date.now): Deadline {
  const at = now() + ms;
  return { at, remainingMs: () => Math.max(0, at - now()) };
}

/** Resolves with the promise's value, or with `undefined` once `ms` have passed. */
export async function within<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Collects what a service opens, in order, and stops it in reverse order: the HTTP server
 * and consumers first (no new work), then in-flight work, then NATS and pools.
 */
export class ShutdownStack {
  private readonly items: Stoppable[] = [];
  private stopping: Promise<void> | undefined;

  constructor(private readonly logger: Logger) {}

  /** Registers something to stop; stops run last-registered first. */
  add(name: string, stop: (deadline: Deadline) => Promise<unknown> | unknown): void {
    this.items.push({ name, stop: async (d) => void (await stop(d)) });
  }

  /** Stops everything once; a failing step is logged and the rest still run. */
  stop(graceMs: number): Promise<void> {
    this.stopping ??= (async () => {
      const deadline = deadlineIn(graceMs);
      for (const item of [...this.items].reverse()) {
        const started = Date.now();
        try {
          await item.stop(deadline);
          this.logger.debug({ step: item.name, ms: Date.now() - started }, 'stopped');
        } catch (err) {
          this.logger.error({ err, step: item.name }, 'shutdown step failed');
        }
      }
    })();
    return this.stopping;
  }
}
