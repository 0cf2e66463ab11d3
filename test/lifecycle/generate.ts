import fc from 'fast-check';
import { hasCrash, isImmediateRedrive, type ModelConfig, type Script, type Timing, type Unit } from './model.js';

// Job scripts for the lifecycle suite: fast-check arbitraries that reach every path of the model,
// a normalisation that keeps any script (generated, shrunk or replayed) within what the suite can
// run deterministically, and the candidates a failing script shrinks to.

/** Delays in each range of the compressed configuration (see `lanes` in harness.ts). */
export interface Ranges {
  /** Worker-timed retries: at most RETRY_LOCAL_DELAY_MAX. */
  local: [number, number];
  /** NAK delays: above it, at most RETRY_HANDOFF_THRESHOLD. */
  nak: [number, number];
  /** Hand-offs to the retry-scheduler: above the threshold. */
  handoff: [number, number];
}

export function rangesOf(cfg: ModelConfig): Ranges {
  const L = cfg.localDelayMaxMs;
  const T = cfg.handoffThresholdMs;
  // Clear of the thresholds, so a little lateness on the way never changes the range.
  return { local: [5, Math.floor(L * 0.5)], nak: [L * 2, Math.floor(T * 0.8)], handoff: [T * 2, T * 4] };
}

const REPEAT_EVERY = 1_000;
/** A repeat that is stopped or cancelled fires this far apart, so the stop lands between two fires. */
const SLOW_REPEAT_EVERY = 5_000;
/** A delayed job that is cancelled is due this late, so the cancel lands first however busy the machine. */
const CANCEL_DELAY = 60_000;

/** `arb` in `percent` % of the values, undefined otherwise. */
function sometimes<T>(arb: fc.Arbitrary<T>, percent: number): fc.Arbitrary<T | undefined> {
  return fc.oneof({ weight: 100 - percent, arbitrary: fc.constant(undefined) }, { weight: percent, arbitrary: arb });
}

function outcomeArb(r: Ranges, repeat: boolean): fc.Arbitrary<string> {
  const ms = ([lo, hi]: [number, number]) => fc.integer({ min: lo, max: hi });
  const seconds = (range: [number, number]) => ms(range).map((v) => (Math.round(v / 10) / 100).toString());
  const any = fc.oneof(ms(r.local), ms(r.nak), ms(r.handoff));
  return fc.oneof(
    { weight: 10, arbitrary: fc.constant('ok') },
    { weight: repeat ? 3 : 0, arbitrary: fc.constant('stop') },
    { weight: 7, arbitrary: fc.constant('net') },
    { weight: 7, arbitrary: fc.constant('h503') },
    { weight: 3, arbitrary: fc.constantFrom('h503:0.25', 'h503:0.8') },
    { weight: 3, arbitrary: fc.constant('h429') },
    { weight: 3, arbitrary: fc.oneof(seconds(r.local), seconds(r.nak), seconds(r.handoff)).map((s) => `h429:${s}`) },
    { weight: 2, arbitrary: fc.constant('rl') },
    { weight: 3, arbitrary: any.map((v) => `rl:${v}`) },
    { weight: 4, arbitrary: fc.constant('db') },
    { weight: 4, arbitrary: fc.constant('unk') },
    { weight: 3, arbitrary: fc.constant('h408') },
    { weight: 1, arbitrary: fc.constant('hang') },
    { weight: 3, arbitrary: fc.constant('cli') },
    { weight: 2, arbitrary: fc.constant('sig') },
    { weight: 2, arbitrary: fc.constant('val') },
    { weight: 2, arbitrary: fc.constantFrom('nr', 'nr:h503') },
    { weight: 3, arbitrary: ms(r.local).map((v) => `rty:${v}`) },
    { weight: 3, arbitrary: ms(r.nak).map((v) => `rty:${v}`) },
    { weight: 9, arbitrary: ms(r.handoff).map((v) => `rty:${v}`) },
    { weight: 2, arbitrary: any.map((v) => `rty:${v}:net`) },
  );
}

function opArb(r: Ranges): fc.Arbitrary<string> {
  const later = fc.integer({ min: r.handoff[0], max: r.handoff[1] });
  return fc.oneof(
    { weight: 5, arbitrary: fc.constant('now') },
    { weight: 2, arbitrary: fc.constant('edit') },
    { weight: 2, arbitrary: fc.constant('bulk') },
    { weight: 3, arbitrary: later.map((v) => `later:${v}`) },
    { weight: 1, arbitrary: later.map((v) => `editlater:${v}`) },
    { weight: 1, arbitrary: later.map((v) => `bulklater:${v}`) },
    { weight: 2, arbitrary: fc.constant('resolve') },
  );
}

function unitArb(r: Ranges, repeat: boolean): fc.Arbitrary<Unit> {
  return fc.record({
    outcomes: fc.array(outcomeArb(r, repeat), { maxLength: 6 }),
    ops: fc.array(opArb(r), { maxLength: 3 }),
  });
}

/**
 * Issue 17's path: a hand-off, a dead letter, a redrive (now, delayed or bulk, always inside the
 * SCHEDULE duplicate window of the first life's hand-off), then a long retry again.
 */
function redriveAfterHandoffArb(r: Ranges): fc.Arbitrary<Unit> {
  const handoff = fc.integer({ min: r.handoff[0], max: r.handoff[1] }).map((v) => `rty:${v}`);
  const death = fc.constantFrom('nr', 'cli', 'val', 'sig');
  return fc
    .tuple(
      fc.array(handoff, { minLength: 1, maxLength: 2 }),
      death,
      fc.constantFrom('now', 'bulk', 'edit', `later:${r.handoff[0]}`, `bulklater:${r.handoff[1]}`),
      fc.array(handoff, { minLength: 1, maxLength: 2 }),
      fc.constantFrom('ok', 'net', 'h503'),
    )
    .map(([first, d, op, again, last]) => ({ outcomes: [...first, d, ...again, last], ops: [op] }));
}

function timingArb(r: Ranges): fc.Arbitrary<Timing> {
  const delay = (range: [number, number]) =>
    fc.record({
      kind: fc.constant('delay' as const),
      ms: fc.integer({ min: range[0], max: range[1] }),
      runAt: fc.boolean(),
    });
  return fc.oneof(
    { weight: 12, arbitrary: fc.constant({ kind: 'now' as const }) },
    { weight: 2, arbitrary: delay(r.local) },
    { weight: 2, arbitrary: delay(r.nak) },
    { weight: 6, arbitrary: delay(r.handoff) },
    {
      weight: 5,
      arbitrary: fc.record({
        kind: fc.constant('repeat' as const),
        every: fc.constant(REPEAT_EVERY),
        startMs: fc.constantFrom(0, 0, r.handoff[0]),
      }),
    },
  );
}

/** The arbitrary of a whole script; `normalize` is applied by the caller. */
export function scriptArb(cfg: ModelConfig): fc.Arbitrary<Script> {
  const r = rangesOf(cfg);
  return fc
    .record({
      entry: fc.oneof(
        { weight: 8, arbitrary: fc.constant('http' as const) },
        { weight: 5, arbitrary: fc.constant('batch' as const) },
        { weight: 5, arbitrary: fc.constant('raw' as const) },
        { weight: 1, arbitrary: fc.constantFrom('bare' as const, 'bare-id' as const) },
        { weight: 1, arbitrary: fc.constant('raw-bad' as const) },
      ),
      priority: fc.constantFrom('high' as const, 'normal' as const, 'low' as const),
      key: fc.boolean(),
      dup: fc.boolean(),
      maxAttempts: sometimes(fc.integer({ min: 1, max: 6 }), 40),
      timing: timingArb(r),
      // Only scheduled jobs and repeats keep a cancel (see normalize): about one in three of them.
      cancel: sometimes(
        fc.record({ after: fc.integer({ min: 0, max: 2 }), via: fc.constantFrom('api' as const, 'nats' as const) }),
        30,
      ),
      // Most collisions need a target that only some scripts have (see normalize).
      collide: sometimes(fc.constantFrom('fire' as const, 'redrive' as const, 'schedule' as const), 25),
      crash: sometimes(fc.integer({ min: 1, max: 3 }), 4),
      units: fc.array(unitArb(r, true), { minLength: 1, maxLength: 3 }),
      issue17: sometimes(redriveAfterHandoffArb(r), 12),
    })
    .map(({ crash, issue17, ...s }) => {
      let units = s.units;
      if (issue17) units = [issue17, ...units.slice(1)];
      if (crash !== undefined) {
        // A poison job: `crash` runs somewhere in its first unit.
        const u = units[0]!;
        const at = Math.min(u.outcomes.length, crash - 1);
        const crashes = Array.from({ length: crash }, () => 'crash');
        units = [
          { ...u, outcomes: [...u.outcomes.slice(0, at), ...crashes, ...u.outcomes.slice(at)] },
          ...units.slice(1),
        ];
      }
      return { ...s, crashLane: 0, units } satisfies Script;
    });
}

/**
 * Makes any script one the suite runs deterministically (generated, shrunk or replayed): fields
 * that the entry cannot carry are dropped, the timing of stops and cancels leaves room between
 * fires, and a collision only where its target exists.
 */
export function normalize(input: Script, cfg: ModelConfig, crashLanes: number): Script {
  const r = rangesOf(cfg);
  const s: Script = structuredClone(input);
  const bare = s.entry === 'bare' || s.entry === 'bare-id' || s.entry === 'raw-bad';
  if (bare) {
    s.key = false;
    delete s.maxAttempts;
    s.timing = { kind: 'now' };
  }
  if (s.entry === 'raw-bad') s.units = [{ outcomes: [], ops: s.units[0]?.ops ?? [] }];
  if (!s.key) s.dup = false;
  if (s.units.length === 0) s.units = [{ outcomes: [], ops: [] }];
  const repeat = s.timing.kind === 'repeat';
  if (!repeat) s.units = s.units.slice(0, 1);
  const scheduled = s.timing.kind === 'delay' && s.timing.ms > cfg.handoffThresholdMs;
  if (!repeat && !scheduled) delete s.cancel;
  if (s.cancel && !repeat) s.cancel.after = 0;
  if (s.cancel && repeat) s.cancel.after = Math.min(s.cancel.after, s.units.length - 1);

  // Crash runs only in crash lanes, one job at a time there; a crash script runs at normal priority.
  const crash = hasCrash(s) && crashLanes > 0;
  if (!crash) for (const u of s.units) u.outcomes = u.outcomes.map((o) => (o === 'crash' ? 'ok' : o));
  if (crash) {
    s.priority = 'normal';
    s.crashLane = s.crashLane >= 1 && s.crashLane <= crashLanes ? s.crashLane : 1;
  } else s.crashLane = 0;

  for (const u of s.units) {
    // ctx.stopRepeat() only means something in a repeat's fire, before any redrive.
    if (!repeat || s.cancel || u.ops.length > 0) u.outcomes = u.outcomes.map((o) => (o === 'stop' ? 'ok' : o));
    u.outcomes = u.outcomes.slice(0, 8);
    u.ops = u.ops.slice(0, 3);
  }
  if (repeat) {
    const stops = s.units.some((u) => u.outcomes.includes('stop'));
    s.timing = {
      kind: 'repeat',
      every: stops || s.cancel ? SLOW_REPEAT_EVERY : REPEAT_EVERY,
      startMs: s.timing.kind === 'repeat' ? Math.min(s.timing.startMs, r.handoff[1]) : 0,
    };
  }
  if (s.cancel && !repeat && s.timing.kind === 'delay') s.timing = { ...s.timing, ms: CANCEL_DELAY };
  // A keyed job sent twice with a runAt over the threshold: if the two requests reach intake on
  // either side of the moment the runAt comes within the threshold, one goes to SCHEDULE and
  // the other to JOBS, and the key does not deduplicate them (a finding of its own, timing
  // dependent); the suite sends such a job with a relative delay.
  if (s.dup && s.timing.kind === 'delay' && s.timing.ms > cfg.handoffThresholdMs)
    s.timing = { ...s.timing, runAt: false };

  // A collision needs its target: an unkeyed repeat's second fire, an unkeyed delayed job's
  // schedule (both through intake, which mints the ids), a first redrive straight to JOBS.
  const intake = s.entry === 'http' || s.entry === 'batch';
  if (s.collide === 'fire' && !(intake && !s.key && repeat && !s.cancel && s.units.length >= 2)) delete s.collide;
  if (s.collide === 'schedule' && !(intake && !s.key && scheduled && !s.cancel)) delete s.collide;
  // Its target must go to the scheduler however long intake takes to answer: a relative delay.
  if (s.collide === 'schedule' && s.timing.kind === 'delay') s.timing = { ...s.timing, runAt: false };
  if (s.collide === 'redrive' && (repeat || !isImmediateRedrive(s.units[0]!.ops[0]))) delete s.collide;
  if (s.dupNow && !(s.dup && intake && scheduled && !s.cancel)) delete s.dupNow;
  if (s.maxAttempts === undefined) delete s.maxAttempts;
  if (s.cancel === undefined) delete s.cancel;
  if (s.collide === undefined) delete s.collide;
  return s;
}

/** Generates `n` normalised scripts from `seed`; crash scripts at most `maxCrashScripts`. */
export function generateScripts(
  cfg: ModelConfig,
  opts: { n: number; seed: number; crashLanes: number; maxCrashScripts: number },
): Script[] {
  const raw = fc.sample(scriptArb(cfg), { numRuns: opts.n, seed: opts.seed });
  let crashes = 0;
  return raw.map((s) => {
    let lanes = opts.crashLanes;
    if (hasCrash(s)) {
      if (crashes >= opts.maxCrashScripts) lanes = 0;
      else {
        crashes++;
        s.crashLane = 1 + (crashes % Math.max(1, opts.crashLanes));
      }
    }
    return normalize(s, cfg, lanes);
  });
}

/** Scripts one step smaller than `s`, smallest changes last; each is normalised. */
export function shrinkCandidates(s: Script, cfg: ModelConfig, crashLanes: number): Script[] {
  const out: Script[] = [];
  const push = (f: (c: Script) => void) => {
    const c = structuredClone(s);
    f(c);
    out.push(normalize(c, cfg, crashLanes));
  };
  // Whole features first: they remove the most.
  if (s.units.length > 1) {
    for (let i = 0; i < s.units.length; i++) push((c) => c.units.splice(i, 1));
  }
  if (s.collide) push((c) => delete c.collide);
  if (s.cancel) push((c) => delete c.cancel);
  if (s.timing.kind !== 'now') push((c) => (c.timing = { kind: 'now' }));
  if (s.entry !== 'http') push((c) => (c.entry = 'http'));
  if (s.dup) push((c) => (c.dup = false));
  if (s.key) push((c) => (c.key = false));
  if (s.maxAttempts !== undefined) push((c) => delete c.maxAttempts);
  for (const [u, unit] of s.units.entries()) {
    for (let i = 0; i < unit.ops.length; i++) push((c) => c.units[u]!.ops.splice(i, 1));
    for (let i = 0; i < unit.outcomes.length; i++) push((c) => c.units[u]!.outcomes.splice(i, 1));
    for (let i = 0; i < unit.ops.length; i++) if (unit.ops[i] !== 'now') push((c) => (c.units[u]!.ops[i] = 'now'));
  }
  if (s.priority !== 'normal') push((c) => (c.priority = 'normal'));
  if (s.timing.kind === 'repeat' && s.timing.startMs > 0)
    push((c) => (c.timing = { kind: 'repeat', every: REPEAT_EVERY, startMs: 0 }));
  const key = (x: Script) => JSON.stringify(x);
  const seen = new Set([key(s)]);
  return out.filter((c) => !seen.has(key(c)) && (seen.add(key(c)), true));
}

/** A size for shrinking: fewer units, outcomes, operations and features is smaller. */
export function sizeOf(s: Script): number {
  return (
    s.units.reduce((n, u) => n + 1 + u.outcomes.length + u.ops.length, 0) +
    (s.collide ? 2 : 0) +
    (s.cancel ? 2 : 0) +
    (s.timing.kind === 'now' ? 0 : 1) +
    (s.entry === 'http' ? 0 : 1) +
    (s.key ? 1 : 0) +
    (s.dup ? 1 : 0) +
    (s.maxAttempts !== undefined ? 1 : 0)
  );
}
