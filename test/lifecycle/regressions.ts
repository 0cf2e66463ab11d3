import type { Script } from './model.js';

// Named scripts that run in every lifecycle run, before the generated ones: the paths of the
// losses found in issues 10 and 17, each in its smallest form (the shrunk counterexamples of the
// base commit, b35500e), so a fix that regresses fails by name.

/** A script: an http job that runs now and succeeds, with `over` changed. */
export const job = (over: Partial<Script>): Script => ({
  entry: 'http',
  priority: 'normal',
  key: false,
  dup: false,
  timing: { kind: 'now' },
  crashLane: 0,
  units: [{ outcomes: [], ops: [] }],
  ...over,
});
const outcomes = (o: string[], ops: string[] = []) => [{ outcomes: o, ops }];

export const REGRESSIONS: { name: string; script: Script }[] = [
  {
    name: 'issue 10: a job failing 503 three times, every retry handed to the scheduler, runs 4 times and succeeds',
    script: job({ units: outcomes(['h503:0.8', 'h503:0.8', 'h503:0.8']) }),
  },
  {
    name: 'issue 10: the same with maxAttempts 4 and always 503 ends in the DLQ, retries_exhausted, 4 attempts',
    script: job({ maxAttempts: 4, units: outcomes(['h503:0.8', 'h503:0.8', 'h503:0.8', 'h503:0.8', 'h503:0.8']) }),
  },
  {
    name: 'issue 10: the second hand-off of a job (its retry was fired by the scheduler)',
    script: job({ units: outcomes(['rl:861', 'h429']) }),
  },
  {
    name: "issue 10: a delayed job's first long retry",
    script: job({ timing: { kind: 'delay', ms: 900, runAt: false }, units: outcomes(['rty:900']) }),
  },
  {
    name: "issue 10: a repeat fire's long retry",
    script: job({
      timing: { kind: 'repeat', every: 1_000, startMs: 0 },
      units: [
        { outcomes: ['h429'], ops: [] },
        { outcomes: [], ops: [] },
      ],
    }),
  },
  {
    name: 'issue 10: a delayed redrive of a job the scheduler fired',
    script: job({ timing: { kind: 'delay', ms: 1_000, runAt: false }, units: outcomes(['cli'], ['later:1000']) }),
  },
  {
    name: 'issue 10: the long retry of a job redriven with a delay',
    script: job({ units: outcomes(['cli', 'rty:900'], ['later:800']) }),
  },
  {
    name: 'issue 17: hand-off, dead letter, redrive now (inside the duplicate window), the same long retry again',
    script: job({ units: outcomes(['rty:900', 'nr', 'rty:900'], ['now']) }),
  },
  {
    name: 'issue 17: the same with a delayed redrive',
    script: job({ units: outcomes(['rty:900', 'nr', 'rty:900'], ['later:800']) }),
  },
  {
    name: 'issue 17: the same with a bulk redrive, through a raw publish with a key',
    script: job({ entry: 'raw', key: true, units: outcomes(['rty:900', 'val', 'rty:900', 'h503:0.8'], ['bulk']) }),
  },
  {
    name: "issue 10: a producer's key equal to a repeat fire's message id",
    script: job({
      timing: { kind: 'repeat', every: 1_000, startMs: 0 },
      collide: 'fire',
      units: [
        { outcomes: [], ops: [] },
        { outcomes: [], ops: [] },
      ],
    }),
  },
  {
    name: "issue 10: a producer's key equal to a redrive's message id",
    script: job({ collide: 'redrive', units: outcomes(['nr'], ['now']) }),
  },
  {
    name: "issue 10: a producer's key equal to a delayed job's schedule id",
    script: job({ timing: { kind: 'delay', ms: 1_000, runAt: false }, collide: 'schedule' }),
  },
  {
    name: 'issue 10: a cancelled delayed job ends in the audit trail',
    script: job({ timing: { kind: 'delay', ms: 60_000, runAt: false }, cancel: { after: 0, via: 'api' } }),
  },
  {
    name: 'issue 10: a repeat cancelled by a raw request after its first fire ends in the audit trail',
    script: job({
      entry: 'raw',
      timing: { kind: 'repeat', every: 5_000, startMs: 0 },
      cancel: { after: 1, via: 'nats' },
      units: [
        { outcomes: ['net'], ops: [] },
        { outcomes: [], ops: [] },
      ],
    }),
  },
  {
    name: 'ctx.stopRepeat() in a retried run of a fire ends the repeat',
    script: job({
      timing: { kind: 'repeat', every: 5_000, startMs: 0 },
      units: [
        { outcomes: ['rty:900', 'stop'], ops: [] },
        { outcomes: [], ops: [] },
        { outcomes: [], ops: [] },
      ],
    }),
  },
  {
    name: 'issue 10: a malformed Redrive-Max-Attempts is dead-lettered under the job id it carries',
    script: job({ entry: 'raw-bad', units: outcomes([], ['now']) }),
  },
  {
    name: 'a poison job is dead-lettered after WORKER_MAX_CRASHES, and runs again when redriven',
    script: job({ crashLane: 1, units: outcomes(['crash', 'crash', 'net'], ['now']) }),
  },
  {
    name: 'a Redrive-Not-Before in the NAK range waits without using an attempt',
    script: job({
      entry: 'raw',
      maxAttempts: 2,
      timing: { kind: 'delay', ms: 250, runAt: false },
      units: outcomes(['db']),
    }),
  },
];
