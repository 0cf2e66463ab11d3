import { pino, type Logger, type LoggerOptions } from 'pino';

export type { Logger } from 'pino';

export interface LoggerSettings {
  service: string;
  level?: string;
  /** Human-readable lines for a terminal (pino-pretty); JSON otherwise. */
  pretty?: boolean;
  /** Where JSON lines go; stdout by default. */
  destination?: NodeJS.WritableStream;
}

/** Creates the process logger: one JSON line per event, with `service` on every line. */
export function createLogger(settings: LoggerSettings): Logger {
  const options: LoggerOptions = {
    level: settings.level ?? 'info',
    base: { service: settings.service },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
    serializers: { err: pino.stdSerializers.err },
  };
  if (settings.pretty) {
    return pino({
      ...options,
      transport: {
        target: 'pino-pretty',
        options: { colorize: true, translateTime: 'HH:MM:ss.l', ignore: 'pid,hostname,service' },
      },
    });
  }
  return settings.destination ? pino(options, settings.destination as pino.DestinationStream) : pino(options);
}
