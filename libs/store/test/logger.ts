import { pino, type Logger } from 'pino';

export interface MemoryLogger {
  logger: Logger;
  lines: Array<Record<string, unknown> & { msg?: string; level?: number }>;
}

/** A pino logger that keeps its JSON lines in memory, for asserting on what was logged. */
export function memoryLogger(): MemoryLogger {
  const lines: MemoryLogger['lines'] = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => void lines.push(JSON.parse(line)) });
  return { logger, lines };
}
