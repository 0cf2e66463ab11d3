import { ConfigError } from '@redrive/config';
import { pino } from 'pino';

/**
 * Loads a service's configuration, or stops the process with exit code 1 and a message that
 * names every bad variable (one JSON log line on stdout, the readable form on stderr).
 */
export function loadConfigOrExit<T>(service: string, load: () => T): T {
  try {
    return load();
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    pino({ base: { service } }).fatal({ problems: err.problems }, 'invalid configuration');
    process.stderr.write(`${service}: ${err.message}\n`);
    process.exit(1);
  }
}
