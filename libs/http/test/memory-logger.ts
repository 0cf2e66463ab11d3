import { Writable } from 'node:stream';
import { pino } from 'pino';

/** A pino logger whose JSON lines are kept in `lines`, for tests that look at what was logged. */
export function memoryLogger(level = 'debug') {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString().split('\n'))
        if (line) lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { logger: pino({ level }, stream), lines };
}
