import { writeSync } from 'node:fs';
import type { Logger } from '@redrive/lifecycle';
import type { Fault } from './config.js';

/**
 * Test-only fault injection (DLQ_FAULT): kills the process with SIGKILL at a named point, so
 * integration tests can show that a crash exactly there loses nothing and duplicates nothing.
 * With DLQ_FAULT unset (production) every call is a no-op.
 */
export function createFaults(fault: Fault, logger: Logger) {
  return {
    at(point: Exclude<Fault, ''>): void {
      if (fault !== point) return;
      logger.flush?.();
      // Written synchronously: the logger's own buffer would die with the process.
      const line = { level: 'warn', time: new Date().toISOString(), service: 'dlq-manager', fault: point };
      writeSync(1, `${JSON.stringify({ ...line, msg: 'fault injected: killing the process' })}\n`);
      process.kill(process.pid, 'SIGKILL');
    },
  };
}

export type Faults = ReturnType<typeof createFaults>;
