import type { Logger } from '@redrive/lifecycle';
import type { Admin } from './admin.js';

/**
 * Runs the retention cleanup every `intervalMs` (off when 0), as the actor `retention`. Replicas
 * may run it at the same time: each removes what the other has not, and nothing twice.
 */
export function scheduleCleanup(opts: { admin: Admin; intervalMs: number; logger: Logger }) {
  let running: Promise<unknown> | undefined;
  const timer =
    opts.intervalMs > 0
      ? setInterval(() => {
          if (running) return;
          running = opts.admin
            .cleanup({}, { name: 'retention' })
            .catch((err: unknown) => opts.logger.warn({ err }, 'scheduled cleanup failed; will run again'))
            .finally(() => (running = undefined));
        }, opts.intervalMs)
      : undefined;
  timer?.unref();
  return {
    async stop(): Promise<void> {
      if (timer) clearInterval(timer);
      await running;
    },
  };
}
