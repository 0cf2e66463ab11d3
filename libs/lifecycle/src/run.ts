import type { Logger } from 'pino';
import type { ShutdownStack } from './shutdown.js';

export interface RunOptions {
  logger: Logger;
  /** How long in-flight work may take to finish after SIGTERM. */
  graceMs: number;
  /** Builds and starts the service; everything it opens goes on the returned stack. */
  start: () => Promise<ShutdownStack>;
  /** Replaced in tests; process.exit otherwise. */
  exit?: (code: number) => void;
}

/**
 * Runs a service until SIGTERM or SIGINT, then stops it gracefully and exits 0. A second
 * signal, a failed start or a stop that overruns the grace period by 10 s exits 1.
 */
export async function runService(opts: RunOptions): Promise<void> {
  const { logger } = opts;
  const exit = opts.exit ?? ((code: number) => process.exit(code));
  let started: Promise<ShutdownStack | undefined> = Promise.resolve(undefined);
  let shuttingDown = false;

  const shutdown = async (reason: string, code: number) => {
    if (shuttingDown) {
      logger.warn({ reason }, 'second signal during shutdown, exiting now');
      exit(1);
      return;
    }
    shuttingDown = true;
    logger.info({ reason, graceMs: opts.graceMs }, 'shutting down');
    const watchdog = setTimeout(() => {
      logger.error({ graceMs: opts.graceMs }, 'shutdown overran the grace period, exiting');
      exit(1);
    }, opts.graceMs + 10_000);
    watchdog.unref();
    // A signal during start-up waits for start to finish, so what it opened is closed too.
    const stack = await started;
    await stack?.stop(opts.graceMs);
    clearTimeout(watchdog);
    logger.info({ code }, 'stopped');
    logger.flush?.();
    exit(code);
  };

  process.on('SIGTERM', () => void shutdown('SIGTERM', 0));
  process.on('SIGINT', () => void shutdown('SIGINT', 0));
  process.on('unhandledRejection', (err) => {
    logger.fatal({ err }, 'unhandled rejection');
    void shutdown('unhandledRejection', 1);
  });

  started = opts.start().catch((err: unknown) => {
    logger.fatal({ err }, 'failed to start');
    logger.flush?.();
    exit(1);
    return undefined;
  });
  await started;
}
