import type { Logger } from '@redrive/lifecycle';
import { retryDelay } from '@redrive/retry-policy';
import pg from 'pg';
import { NOTIFY_CHANNEL } from './schedules.js';

// Node timers cannot wait longer than this; a later target is re-checked when it runs out.
const MAX_TIMER_MS = 2_147_483_647;

/**
 * The firing loop's alarm clock: `wait(at)` sleeps until `at`, unless `wake(earlier)` moves the
 * alarm forward (a nearer schedule arrived) or `stop()` ends it. A wake while nobody waits is
 * remembered, so a schedule stored between a look at the table and the next wait is not slept past.
 */
export class Alarm {
  private timer: NodeJS.Timeout | undefined;
  private resolve: (() => void) | undefined;
  private target = Infinity;
  private hint = Infinity;
  private stopped = false;

  constructor(private readonly now: () => number = Date.now) {}

  /** Resolves at `at` (epoch ms), or earlier when woken or stopped. */
  wait(at: number): Promise<void> {
    if (this.stopped) return Promise.resolve();
    const target = Math.min(at, this.hint);
    this.hint = Infinity;
    if (target <= this.now()) return Promise.resolve();
    return new Promise((resolve) => {
      this.resolve = resolve;
      this.arm(target);
    });
  }

  /** Something is due at `at` (now when omitted): wakes the sleeper if that is before its alarm. */
  wake(at: number = this.now()): void {
    if (!this.resolve) {
      this.hint = Math.min(this.hint, at);
      return;
    }
    if (at < this.target) this.arm(at);
  }

  /** Ends the current wait and every later one at once. */
  stop(): void {
    this.stopped = true;
    this.ring();
  }

  private arm(at: number): void {
    clearTimeout(this.timer);
    this.target = at;
    const ms = Math.min(MAX_TIMER_MS, Math.max(0, at - this.now()));
    this.timer = setTimeout(() => this.ring(), ms);
  }

  private ring(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.target = Infinity;
    const resolve = this.resolve;
    this.resolve = undefined;
    resolve?.();
  }
}

/**
 * Listens on Postgres for schedules stored by any replica (NOTIFY at their commit) and calls
 * `onDue` with their earliest due time. The connection is re-opened after a failure; meanwhile
 * the firing loop's bounded sleep is the safety net.
 */
export function listenForSchedules(opts: {
  url: string;
  namespace: string;
  onDue: (atMs: number) => void;
  logger: Logger;
}) {
  const { logger } = opts;
  let client: pg.Client | undefined;
  let stopped = false;
  let retryTimer: NodeJS.Timeout | undefined;
  let failures = 0;

  const connect = async (): Promise<void> => {
    if (stopped) return;
    const c = new pg.Client({ connectionString: opts.url, application_name: 'redrive-retry-scheduler-listen' });
    client = c;
    c.on('notification', (n) => {
      if (n.channel !== NOTIFY_CHANNEL || !n.payload) return;
      const space = n.payload.lastIndexOf(' ');
      if (n.payload.slice(0, space) !== opts.namespace) return;
      const at = Number(n.payload.slice(space + 1));
      if (Number.isFinite(at)) opts.onDue(at);
    });
    c.on('error', (err) => {
      if (stopped) return;
      logger.warn({ err }, 'LISTEN connection failed; reconnecting (the poll interval bounds lateness meanwhile)');
      reconnect(c);
    });
    try {
      await c.connect();
      await c.query(`LISTEN ${NOTIFY_CHANNEL}`);
      if (failures > 0) logger.info('LISTEN connection restored');
      failures = 0;
      // Anything stored while we were not listening is caught by looking now.
      opts.onDue(Date.now());
    } catch (err) {
      if (stopped) return;
      logger.warn({ err }, 'cannot LISTEN for new schedules; retrying');
      reconnect(c);
    }
  };

  const reconnect = (c: pg.Client) => {
    if (client !== c || stopped) return;
    client = undefined;
    void c.end().catch(() => undefined);
    failures++;
    clearTimeout(retryTimer);
    retryTimer = setTimeout(() => void connect(), retryDelay({ baseMs: 500, maxMs: 10_000 }, failures + 1));
  };

  return {
    start: connect,
    async stop(): Promise<void> {
      stopped = true;
      clearTimeout(retryTimer);
      await client?.end().catch(() => undefined);
    },
  };
}
