// Over 400 lines on purpose: the reference model is one pure function of a script, kept whole so it reads against the documented contract.
// The reference model of the lifecycle suite: a pure function from a job script to what the
// documented contract says must become of it. It follows README.md ("Retries and dead
// letters", "Delayed, repeating and cron jobs", the admin API) and docs/operations.md, never
// the services' code: where the two disagree, the suite reports the difference as a mismatch.

/** The error classes of README's table, plus `crash` (a poison job, WORKER_MAX_CRASHES). */
export const ERROR_CLASSES = [
  'network',
  'timeout',
  'rate_limit',
  'server',
  'database',
  'client',
  'signature',
  'validation',
  'unknown',
  'crash',
] as const;
export type ErrorClass = (typeof ERROR_CLASSES)[number];

/** How one class is retried (the fields RETRY_CLASSES overrides). */
export interface ClassPolicy {
  retryable: boolean;
  maxRetries: number;
  baseMs: number;
  multiplier: number;
  maxMs: number;
  jitter: number;
}

// README: "Delays grow ×2 per retry, capped at 5 minutes, with up to 20 % taken off at random."
const retried = (maxRetries: number, baseMs: number): ClassPolicy => ({
  retryable: true,
  maxRetries,
  baseMs,
  multiplier: 2,
  maxMs: 5 * 60_000,
  jitter: 0.2,
});
const final: ClassPolicy = { retryable: false, maxRetries: 0, baseMs: 0, multiplier: 1, maxMs: 0, jitter: 0 };

/** README's table "Retries and dead letters": retried, retries, first delay. */
export const DOCUMENTED_POLICY: Readonly<Record<ErrorClass, ClassPolicy>> = {
  network: retried(5, 2_000),
  timeout: retried(5, 2_000),
  rate_limit: retried(3, 60_000),
  server: retried(5, 5_000),
  database: retried(3, 3_000),
  client: final,
  signature: final,
  validation: final,
  unknown: retried(3, 5_000),
  crash: final,
};

export interface ModelConfig {
  classes: Readonly<Record<ErrorClass, ClassPolicy>>;
  /** RETRY_LOCAL_DELAY_MAX: retries due within it are timed by the worker. */
  localDelayMaxMs: number;
  /** RETRY_HANDOFF_THRESHOLD: longer retries (and delays) go to the retry-scheduler. */
  handoffThresholdMs: number;
  /** WORKER_MAX_CRASHES. */
  maxCrashes: number;
}

export type ClassOverrides = Partial<Record<ErrorClass, Partial<ClassPolicy>>>;

/** The documented defaults with RETRY_CLASSES-style overrides, as the worker is configured. */
export function modelConfig(
  overrides: ClassOverrides,
  opts: { localDelayMaxMs: number; handoffThresholdMs: number; maxCrashes: number },
): ModelConfig {
  const classes = Object.fromEntries(
    ERROR_CLASSES.map((c) => [c, { ...DOCUMENTED_POLICY[c], ...overrides[c] }]),
  ) as Record<ErrorClass, ClassPolicy>;
  return {
    classes,
    localDelayMaxMs: opts.localDelayMaxMs,
    handoffThresholdMs: opts.handoffThresholdMs,
    maxCrashes: opts.maxCrashes,
  };
}

// ---------------------------------------------------------------------------------------------
// Scripts
// ---------------------------------------------------------------------------------------------

/**
 * How the job enters Redrive: intake's POST /v1/jobs (`http`) or /v1/jobs:batch (`batch`); a raw
 * JetStream publish with the Redrive headers (`raw`); a bare publish of the payload with only a
 * `Nats-Msg-Id` (`bare-id`) or with no header at all (`bare`); a raw publish whose
 * Redrive-Max-Attempts is malformed (`raw-bad`).
 */
export const ENTRIES = ['http', 'batch', 'raw', 'bare', 'bare-id', 'raw-bad'] as const;
export type Entry = (typeof ENTRIES)[number];
export type Priority = 'high' | 'normal' | 'low';

export type Timing =
  | { kind: 'now' }
  /** `delay` ms (or a `runAt` that far ahead) before the first run. */
  | { kind: 'delay'; ms: number; runAt: boolean }
  /** `every` ms, its first fire `startMs` after the submission; the fires are the script's units. */
  | { kind: 'repeat'; every: number; startMs: number };

/**
 * What happens to one job id: the outcome of each handler run in order (runs past the end
 * succeed), and the operator's action after each of its dead letters (none: it stays open).
 *
 * Outcomes: `ok`; `stop` (ctx.stopRepeat(), then success); `crash` (the worker process dies);
 * `hang` (past the handler's deadline); `net` (ECONNRESET); `db` (SQLSTATE 40001); `unk` (a plain
 * Error); `cli` (HTTP 404); `sig` (SignatureError); `val` (ValidationError); `h408`; `h503` or
 * `h503:<s>` (Retry-After s seconds); `h429` or `h429:<s>`; `rl` or `rl:<ms>` (RateLimitError);
 * `rty:<ms>` (RetryableError with that delay) or `rty:<ms>:net` (with a network cause); `nr`
 * (NonRetryableError) or `nr:h503` (with a 503 as its cause).
 *
 * Operator actions: `now`, `edit` (with an edited payload), `bulk` (bulk redrive filtered on
 * the job id), `later:<ms>`, `editlater:<ms>`, `bulklater:<ms>` (delayed redrives), `resolve`.
 */
export interface Unit {
  outcomes: string[];
  ops: string[];
}

export interface Script {
  entry: Entry;
  priority: Priority;
  /** An idempotency key (intake's idempotencyKey; Redrive-Idempotency-Key on a raw publish). */
  key: boolean;
  /** The keyed job is submitted a second time; the second answer is a duplicate. */
  dup: boolean;
  /**
   * The second submission asks to run now, not after the delay (a producer trying again once
   * its runAt is within the threshold): the key still names one job. Only replayed, never
   * generated (a finding outside issue 10's list: see the suite's report).
   */
  dupNow?: boolean;
  maxAttempts?: number;
  timing: Timing;
  /** Cancel the schedule after `after` fires (0: before the delayed job runs). */
  cancel?: { after: number; via: 'api' | 'nats' };
  /**
   * Another producer's job whose idempotency key equals an id Redrive minted for this one:
   * `fire` the message id of this repeat's second fire, `redrive` the message id of this job's
   * first redrive, `schedule` the schedule id of this delayed job.
   */
  collide?: 'fire' | 'redrive' | 'schedule';
  /** 0: type `lc`; n: type `lc-crash-<n>`, served one job at a time by a worker that may die. */
  crashLane: number;
  /** One unit per job id: the job itself, or each fire of a repeat. */
  units: Unit[];
}

/** Only runs of `crash` scripts kill their worker. */
export const hasCrash = (s: Script) => s.units.some((u) => u.outcomes.includes('crash'));

// ---------------------------------------------------------------------------------------------
// Outcomes under the contract
// ---------------------------------------------------------------------------------------------

/** How README classifies what the handler did. */
export interface Classified {
  errorClass: ErrorClass;
  /** The handler decided (NonRetryableError / RetryableError). */
  retryable?: boolean;
  /** A delay the failure asks for and gets: Retry-After of a 429, RateLimitError, RetryableError. */
  exactMs?: number;
  /** A 503's Retry-After: the retry comes no sooner. */
  floorMs?: number;
}

export function classifyOutcome(outcome: string): Classified {
  const [name, arg, arg2] = outcome.split(':');
  const num = arg === undefined ? undefined : Number(arg);
  switch (name) {
    case 'hang':
    case 'h408':
      return { errorClass: 'timeout' };
    case 'net':
      return { errorClass: 'network' };
    case 'db':
      return { errorClass: 'database' };
    case 'unk':
      return { errorClass: 'unknown' };
    case 'cli':
      return { errorClass: 'client' };
    case 'sig':
      return { errorClass: 'signature' };
    case 'val':
      return { errorClass: 'validation' };
    case 'h503':
      return { errorClass: 'server', ...(num !== undefined ? { floorMs: Math.round(num * 1000) } : {}) };
    case 'h429':
      return { errorClass: 'rate_limit', ...(num !== undefined ? { exactMs: Math.round(num * 1000) } : {}) };
    case 'rl':
      return { errorClass: 'rate_limit', ...(num !== undefined ? { exactMs: num } : {}) };
    case 'rty':
      return { errorClass: arg2 === 'net' ? 'network' : 'unknown', retryable: true, exactMs: num! };
    case 'nr':
      return { errorClass: arg === 'h503' ? 'server' : 'unknown', retryable: false };
    default:
      throw new Error(`unknown outcome "${outcome}"`);
  }
}

export type Route = 'local' | 'nak' | 'handoff';

/** Where a retry (or a producer's delay) of `ms` is timed, by README's thresholds. */
export function routeOf(cfg: ModelConfig, ms: number): Route {
  if (ms <= cfg.localDelayMaxMs) return 'local';
  if (ms <= cfg.handoffThresholdMs) return 'nak';
  return 'handoff';
}

export type Decision =
  | { kind: 'deadLetter'; reason: 'non_retryable' | 'retries_exhausted'; errorClass: ErrorClass }
  | { kind: 'retry'; route: Route; errorClass: ErrorClass; lo: number; hi: number };

/** The fate of a failed attempt (1-based, counted across hand-offs) under the contract. */
export function decide(cfg: ModelConfig, c: Classified, attempt: number, maxAttempts: number | undefined): Decision {
  const p = cfg.classes[c.errorClass];
  const retryable = c.retryable ?? p.retryable;
  if (!retryable) return { kind: 'deadLetter', reason: 'non_retryable', errorClass: c.errorClass };
  const allowed = maxAttempts ?? 1 + p.maxRetries;
  if (attempt >= allowed) return { kind: 'deadLetter', reason: 'retries_exhausted', errorClass: c.errorClass };
  let lo: number;
  let hi: number;
  if (c.exactMs !== undefined) {
    lo = hi = c.exactMs;
  } else {
    const capped = Math.min(p.maxMs, p.baseMs * Math.pow(p.multiplier, attempt - 1));
    lo = Math.round(capped * (1 - p.jitter));
    hi = capped;
    if (c.floorMs !== undefined) {
      lo = Math.max(lo, c.floorMs);
      hi = Math.max(hi, c.floorMs);
    }
  }
  const route = routeOf(cfg, hi);
  if (routeOf(cfg, lo) !== route) {
    throw new Error(`a retry of ${lo}–${hi} ms straddles a threshold; the suite's delays must not (${c.errorClass})`);
  }
  return { kind: 'retry', route, errorClass: c.errorClass, lo, hi };
}

// ---------------------------------------------------------------------------------------------
// Predictions
// ---------------------------------------------------------------------------------------------

/**
 * Canonical audit events, as the reconciliation writes what it reads: `job.accepted`,
 * `attempt.failed@<attempt>:<class>`, `retry.scheduled@<attempt>`, `attempt.succeeded@<attempt>`,
 * `job.dead_lettered@<attempt>:<reason>:<class>`, `job.redriven[:later][:edit][:bulk]`,
 * `dead_letter.resolved`, `job.log@<attempt>:e<edits>` (a run of an edited payload),
 * `schedule.cancelled`. `attempt.started` is left out: it depends on how long a run takes.
 */
export type CanonicalEvent = string;

export interface DeadLetterPrediction {
  life: number;
  reason: 'non_retryable' | 'retries_exhausted';
  errorClass: ErrorClass;
  attempts: number;
  /** What the operator did with the entry. */
  resolution: 'open' | 'resolved' | 'redriven';
}

export interface UnitPrediction {
  terminal: 'succeeded' | 'dead_lettered' | 'cancelled';
  /** Handler invocations (a crashed run counts; a job dead-lettered for its crashes does not run). */
  runs: number;
  /** Canonical events of each life (1: the first; n + 1: after the n-th redrive). */
  lives: CanonicalEvent[][];
  /** The delayMs of each attempt.failed that retries, by life and attempt. */
  delays: { life: number; attempt: number; lo: number; hi: number }[];
  deadLetters: DeadLetterPrediction[];
  /** The attempt that succeeded (the COMPLETIONS record of a keyed job). */
  succeededAttempt?: number;
  /** The index of the run that called ctx.stopRepeat() and succeeded (first life only). */
  stopRun?: number;
  /** The job summary of the timeline API. */
  summary: { status: string; lives: number; attempts: number };
  path: string;
}

const REDRIVES = /^(now|edit|bulk|later|editlater|bulklater)(?::(\d+))?$/;

/** An operator action as the audit trail shows it: job.redriven[:later][:edit][:bulk]. */
export function redrivenEvent(op: string): CanonicalEvent {
  const m = REDRIVES.exec(op)!;
  const name = m[1]!;
  return [
    'job.redriven',
    name.endsWith('later') ? 'later' : '',
    name.startsWith('edit') ? 'edit' : '',
    name.startsWith('bulk') ? 'bulk' : '',
  ]
    .filter(Boolean)
    .join(':');
}

export const isRedrive = (op: string | undefined): op is string => op !== undefined && REDRIVES.test(op);
/** A redrive published straight to JOBS (its message id is `redrive:…`, the `redrive` collision's target). */
export const isImmediateRedrive = (op: string | undefined) => isRedrive(op) && !op.includes('later');

export interface UnitOptions {
  maxAttempts?: number | undefined;
  /** Events of the first life before any run (`job.accepted` for jobs that came through intake). */
  firstEvents: CanonicalEvent[];
  /** The job's headers are malformed: every delivery is dead-lettered (validation) before its handler runs. */
  badHeaders?: boolean;
  /** A repeat's fire: `stop` ends the repetition. */
  repeatFire?: boolean;
  /** The first run waits for a producer's delay in this range. */
  route: string;
  /**
   * Deliveries JetStream makes after each crash (in order) to the pull request of the worker
   * that died, before one reaches a live worker: each counts as an attempt (README: attempts are
   * Redrive-Attempt + the delivery count). nats-server 2.9 sometimes makes one.
   */
  ghosts?: readonly number[];
}

/** The status a job summary shows after its last lifecycle event. */
function statusAfter(events: CanonicalEvent[]): string | undefined {
  for (let i = events.length - 1; i >= 0; i--) {
    const kind = events[i]!.split(/[@:]/)[0]!;
    const s = {
      'job.accepted': 'accepted',
      'attempt.failed': 'retrying',
      'retry.scheduled': 'scheduled',
      'attempt.succeeded': 'succeeded',
      'job.dead_lettered': 'dead_lettered',
      'job.redriven': 'redriven',
      'schedule.cancelled': 'cancelled',
    }[kind];
    if (s) return s;
  }
  return undefined;
}

/** Predicts one job id's whole history: runs, events, dead letters, the operator's actions. */
export function predictUnit(cfg: ModelConfig, unit: Unit, opts: UnitOptions): UnitPrediction {
  const lives: CanonicalEvent[][] = [[...opts.firstEvents]];
  const delays: UnitPrediction['delays'] = [];
  const deadLetters: DeadLetterPrediction[] = [];
  const path: string[] = [opts.route];
  let events = lives[0]!;
  let runs = 0;
  let attempt = 0;
  let crashes = 0;
  let edits = 0;
  let crashed = 0;
  let terminal: UnitPrediction['terminal'] | undefined;
  let succeededAttempt: number | undefined;
  let stopRun: number | undefined;

  const deadLetter = (reason: DeadLetterPrediction['reason'], errorClass: ErrorClass): void => {
    events.push(`job.dead_lettered@${attempt}:${reason}:${errorClass}`);
    const dl: DeadLetterPrediction = { life: lives.length, reason, errorClass, attempts: attempt, resolution: 'open' };
    deadLetters.push(dl);
    path.push(errorClass === 'crash' ? 'Dc' : reason === 'non_retryable' ? 'Dn' : 'De');
    const op = unit.ops[deadLetters.length - 1];
    if (op === 'resolve') {
      dl.resolution = 'resolved';
      events.push('dead_letter.resolved');
      path.push('V');
      terminal = 'dead_lettered';
    } else if (isRedrive(op)) {
      dl.resolution = 'redriven';
      if (op.startsWith('edit')) edits++;
      events = [redrivenEvent(op)];
      lives.push(events);
      path.push(`R${op.replace(/:\d+$/, '')}`);
      attempt = 0;
      crashes = 0;
    } else {
      terminal = 'dead_lettered';
    }
  };

  while (!terminal) {
    attempt++;
    if (opts.badHeaders) {
      events.push(`attempt.failed@${attempt}:validation`);
      deadLetter('non_retryable', 'validation');
      continue;
    }
    if (crashes >= cfg.maxCrashes) {
      // The next delivery after WORKER_MAX_CRASHES runs died with their worker is dead-lettered
      // without running, and without an attempt.failed.
      crashes = 0;
      deadLetter('retries_exhausted', 'crash');
      continue;
    }
    const outcome = unit.outcomes[runs] ?? 'ok';
    runs++;
    if (outcome === 'crash') {
      crashes++;
      attempt += opts.ghosts?.[crashed++] ?? 0;
      path.push('X');
      continue;
    }
    crashes = 0;
    if (edits > 0) events.push(`job.log@${attempt}:e${edits}`);
    if (outcome === 'ok' || outcome === 'stop') {
      events.push(`attempt.succeeded@${attempt}`);
      succeededAttempt = attempt;
      if (outcome === 'stop' && opts.repeatFire && lives.length === 1) stopRun = runs - 1;
      path.push(stopRun !== undefined ? 'S!' : 'S');
      terminal = 'succeeded';
      continue;
    }
    const d = decide(cfg, classifyOutcome(outcome), attempt, opts.maxAttempts);
    events.push(`attempt.failed@${attempt}:${d.errorClass}`);
    if (d.kind === 'deadLetter') {
      deadLetter(d.reason, d.errorClass);
      continue;
    }
    delays.push({ life: lives.length, attempt, lo: d.lo, hi: d.hi });
    path.push({ local: 'L', nak: 'N', handoff: 'H' }[d.route]);
    if (d.route === 'handoff') events.push(`retry.scheduled@${attempt}`);
  }

  const all = lives.flat();
  return {
    terminal,
    runs,
    lives,
    delays,
    deadLetters,
    ...(succeededAttempt !== undefined ? { succeededAttempt } : {}),
    ...(stopRun !== undefined ? { stopRun } : {}),
    summary: {
      status: statusAfter(all) ?? 'accepted',
      lives: lives.length,
      attempts: all.filter((e) => e.startsWith('attempt.succeeded') || e.startsWith('attempt.failed')).length,
    },
    path: path.join(''),
  };
}

/** Which job a prediction is about, relative to the script. */
export type JobRef = 'job' | `fire:${number}` | 'collider';

export interface JobPrediction extends UnitPrediction {
  ref: JobRef;
  /**
   * `required`: the job must exist. `afterStop` / `afterCancel`: a fire after the repeat was
   * stopped or cancelled; it exists only if it was already published by then (the reconciliation
   * decides from the schedule's fireCount and due times).
   */
  presence: 'required' | 'afterStop' | 'afterCancel';
  /** Whether the job carries an idempotency key (its success is recorded in COMPLETIONS). */
  keyed: boolean;
  /** Other histories the contract allows: after a crash, deliveries to the worker that died. */
  alternatives?: UnitPrediction[];
}

/** Ghost deliveries after each crash, up to this many: nats-server 2.9 makes at most one in practice. */
const MAX_GHOSTS = 2;

/** The prediction with no ghost delivery, and the other ones as alternatives. */
export function predictWithGhosts(
  cfg: ModelConfig,
  unit: Unit,
  opts: UnitOptions,
): UnitPrediction & { alternatives?: UnitPrediction[] } {
  const main = predictUnit(cfg, unit, opts);
  const crashes = Math.min(4, unit.outcomes.filter((o) => o === 'crash').length);
  if (crashes === 0) return main;
  const seen = new Set([JSON.stringify([main.lives, main.deadLetters])]);
  const alternatives: UnitPrediction[] = [];
  for (let v = 1; v < (MAX_GHOSTS + 1) ** crashes; v++) {
    const ghosts = Array.from({ length: crashes }, (_, i) => Math.floor(v / (MAX_GHOSTS + 1) ** i) % (MAX_GHOSTS + 1));
    const alt = predictUnit(cfg, unit, { ...opts, ghosts });
    const key = JSON.stringify([alt.lives, alt.deadLetters]);
    if (!seen.has(key)) {
      seen.add(key);
      alternatives.push(alt);
    }
  }
  return { ...main, alternatives };
}

export interface ScriptPrediction {
  /** One per job id: the job (or each fire), and a colliding producer's job. */
  jobs: JobPrediction[];
  /**
   * For a repeat (and a delayed job that goes through the retry-scheduler), what the schedule's
   * own id shows in the audit trail: `job.accepted` (through intake), and `schedule.cancelled`
   * when it ends cancelled.
   */
  schedule?: { route: 'scheduled' | 'repeat'; baseEvents: CanonicalEvent[]; cancelled: 'yes' | 'no' | 'ifCancelled' };
  /** The fire whose run stopped the repeat (1-based). */
  stopFire?: number;
  /** A distinct path through the model, for counting. */
  path: string;
}

/** Where the first run of a job waits, from its timing. */
export function routeOfTiming(cfg: ModelConfig, t: Timing): 'direct' | 'hold' | 'wait' | 'scheduled' | 'repeat' {
  if (t.kind === 'now') return 'direct';
  if (t.kind === 'repeat') return 'repeat';
  const r = routeOf(cfg, t.ms);
  return r === 'local' ? 'hold' : r === 'nak' ? 'wait' : 'scheduled';
}

const throughIntake = (s: Script) => s.entry === 'http' || s.entry === 'batch';

/** Predicts every job of a script. */
export function predict(cfg: ModelConfig, s: Script): ScriptPrediction {
  const route = routeOfTiming(cfg, s.timing);
  const accepted = throughIntake(s) ? ['job.accepted'] : [];
  const base = {
    maxAttempts: s.maxAttempts,
    badHeaders: s.entry === 'raw-bad',
  };
  const jobs: JobPrediction[] = [];
  let schedule: ScriptPrediction['schedule'];
  let stopFire: number | undefined;

  if (route === 'repeat') {
    let afterStop = false;
    for (const [i, unit] of s.units.entries()) {
      const p = predictWithGhosts(cfg, unit, {
        ...base,
        firstEvents: [],
        repeatFire: s.cancel === undefined,
        route: 'F',
      });
      const presence = afterStop
        ? 'afterStop'
        : s.cancel !== undefined && i + 1 > s.cancel.after
          ? 'afterCancel'
          : 'required';
      jobs.push({ ...p, ref: `fire:${i + 1}`, presence, keyed: s.key });
      if (!afterStop && p.stopRun !== undefined) {
        afterStop = true;
        stopFire = i + 1;
      }
    }
    const stoppedEarly = stopFire !== undefined && stopFire < s.units.length;
    const cancelledEarly = s.cancel !== undefined && s.cancel.after < s.units.length;
    schedule = {
      route: 'repeat',
      baseEvents: accepted,
      // Ending early cancels the schedule, unless every fire was already published by then.
      cancelled: stoppedEarly || cancelledEarly ? 'ifCancelled' : 'no',
    };
  } else if (s.cancel !== undefined && route === 'scheduled') {
    // Cancelled before it was due: it never runs.
    jobs.push({
      terminal: 'cancelled',
      runs: 0,
      lives: [[...accepted, 'schedule.cancelled']],
      delays: [],
      deadLetters: [],
      summary: { status: 'cancelled', lives: 1, attempts: 0 },
      path: 'scheduled-C',
      ref: 'job',
      presence: 'required',
      keyed: s.key,
    });
  } else {
    const p = predictWithGhosts(cfg, s.units[0]!, { ...base, firstEvents: accepted, route: `${route}-` });
    jobs.push({ ...p, ref: 'job', presence: 'required', keyed: s.key });
    if (route === 'scheduled') schedule = { route, baseEvents: [], cancelled: 'no' };
  }

  const main = jobs[0]!;
  const collider =
    s.collide === 'fire' ||
    s.collide === 'schedule' ||
    (s.collide === 'redrive' && main.deadLetters.length > 0 && isImmediateRedrive(s.units[0]!.ops[0]));
  if (collider) {
    const p = predictUnit(
      cfg,
      { outcomes: [], ops: [] },
      { firstEvents: ['job.accepted'], route: s.collide === 'schedule' ? 'scheduled-' : 'direct-' },
    );
    jobs.push({ ...p, ref: 'collider', presence: 'required', keyed: true });
  }

  const entry = throughIntake(s) ? 'intake' : s.entry;
  const path = [
    entry,
    s.key ? 'K' : '',
    s.dup ? 'D' : '',
    s.cancel ? `C${s.cancel.after}` : '',
    s.collide ? `x${s.collide}` : '',
    jobs.map((j) => j.path).join('/'),
  ].join('|');
  return { jobs, ...(schedule ? { schedule } : {}), ...(stopFire !== undefined ? { stopFire } : {}), path };
}
