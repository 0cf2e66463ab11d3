import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '@redrive/test-support';
import { MODEL_CONFIG } from './compressed.js';
import { job, REGRESSIONS } from './regressions.js';
import { generateScripts, normalize, shrinkCandidates, sizeOf } from './generate.js';
import {
  DOCUMENTED_POLICY,
  ERROR_CLASSES,
  predict,
  predictUnit,
  predictWithGhosts,
  type ModelConfig,
} from './model.js';

// The reference model on its own: the contract's examples worked by hand, the model's table
// read against README's, and the generator's scripts all predictable.

const cfg: ModelConfig = MODEL_CONFIG;

const script = job;

describe('the model', () => {
  it("has the documented retry table (README's, or docs/retries.md's)", () => {
    // The table is in README.md, or in the docs it links (docs/retries.md).
    const docs = join(REPO_ROOT, 'docs');
    const readme = [
      join(REPO_ROOT, 'README.md'),
      ...(existsSync(docs) ? readdirSync(docs).map((f) => join(docs, f)) : []),
    ]
      .filter((f) => f.endsWith('.md'))
      .map((f) => readFileSync(f, 'utf8'))
      .join('\n');
    for (const c of ERROR_CLASSES.filter((x) => x !== 'crash')) {
      const row = new RegExp(
        `^\\|\\s*\`${c}\`\\s*\\|\\s*(yes|no)\\s*\\|\\s*(\\d*)\\s*\\|\\s*(\\d*)\\s*s?\\s*\\|`,
        'm',
      ).exec(readme);
      expect(row, `README has a row for ${c}`).not.toBeNull();
      const p = DOCUMENTED_POLICY[c];
      expect(p.retryable).toBe(row![1] === 'yes');
      if (p.retryable) {
        expect(p.maxRetries).toBe(Number(row![2]));
        expect(p.baseMs).toBe(Number(row![3]) * 1000);
      }
    }
  });

  it('runs a job failing 503 three times, every retry handed to the scheduler, 4 times, and it succeeds', () => {
    const p = predictUnit(
      cfg,
      { outcomes: ['h503:0.8', 'h503:0.8', 'h503:0.8'], ops: [] },
      {
        firstEvents: ['job.accepted'],
        route: 'direct',
      },
    );
    expect(p.terminal).toBe('succeeded');
    expect(p.runs).toBe(4);
    expect(p.lives).toEqual([
      [
        'job.accepted',
        'attempt.failed@1:server',
        'retry.scheduled@1',
        'attempt.failed@2:server',
        'retry.scheduled@2',
        'attempt.failed@3:server',
        'retry.scheduled@3',
        'attempt.succeeded@4',
      ],
    ]);
    expect(p.path).toBe('directHHHS');
  });

  it('dead-letters the same job with maxAttempts 4 as retries_exhausted after 4 attempts', () => {
    const p = predictUnit(
      cfg,
      { outcomes: Array(10).fill('h503:0.8'), ops: [] },
      {
        maxAttempts: 4,
        firstEvents: [],
        route: 'direct',
      },
    );
    expect(p.terminal).toBe('dead_lettered');
    expect(p.runs).toBe(4);
    expect(p.deadLetters).toEqual([
      { life: 1, reason: 'retries_exhausted', errorClass: 'server', attempts: 4, resolution: 'open' },
    ]);
    expect(p.summary).toEqual({ status: 'dead_lettered', lives: 1, attempts: 4 });
  });

  it('times retries by range: worker, NAK delay, hand-off', () => {
    const p = predictUnit(
      cfg,
      { outcomes: ['rty:30', 'rty:250', 'rty:900', 'h503', 'h503'], ops: [] },
      {
        firstEvents: [],
        route: 'direct',
      },
    );
    expect(p.path).toBe('directLNHNHS');
    expect(p.delays.map((d) => [d.lo, d.hi])).toEqual([
      [30, 30],
      [250, 250],
      [900, 900],
      [320, 400],
      [640, 800],
    ]);
    // Attempt 5 of a server failure: 5 s × 2⁴ in README's terms, 800 ms here, a hand-off.
    expect(p.lives[0]).toContain('retry.scheduled@5');
  });

  it('counts a crashed run as an attempt and dead-letters after WORKER_MAX_CRASHES without running', () => {
    const p = predictUnit(
      cfg,
      { outcomes: ['crash', 'crash', 'ok'], ops: ['now'] },
      { firstEvents: [], route: 'direct' },
    );
    expect(p.lives).toEqual([['job.dead_lettered@3:retries_exhausted:crash'], ['job.redriven', 'attempt.succeeded@1']]);
    expect(p.runs).toBe(3);
    expect(p.deadLetters[0]).toMatchObject({ errorClass: 'crash', attempts: 3, resolution: 'redriven' });
  });

  it('allows a delivery to the worker that died after a crash, which counts as an attempt', () => {
    const p = predictWithGhosts(cfg, { outcomes: ['crash', 'crash'], ops: [] }, { firstEvents: [], route: 'direct' });
    expect(p.lives).toEqual([['job.dead_lettered@3:retries_exhausted:crash']]);
    expect(p.alternatives!.map((a) => a.lives[0]![0])).toEqual([
      'job.dead_lettered@4:retries_exhausted:crash',
      'job.dead_lettered@5:retries_exhausted:crash',
      'job.dead_lettered@6:retries_exhausted:crash',
      'job.dead_lettered@7:retries_exhausted:crash',
    ]);
    // A ghost delivery spends budget too: with maxAttempts 2 the crashed job's retry is its last.
    const q = predictWithGhosts(
      cfg,
      { outcomes: ['crash', 'net'], ops: [] },
      {
        maxAttempts: 3,
        firstEvents: [],
        route: 'direct',
      },
    );
    expect(q.lives[0]).toEqual(['attempt.failed@2:network', 'attempt.succeeded@3']);
    expect(q.alternatives!.map((a) => a.lives[0])).toContainEqual([
      'attempt.failed@3:network',
      'job.dead_lettered@3:retries_exhausted:network',
    ]);
  });

  it('starts a redriven life at attempt 1 with a full budget (issue 17: the same hand-off again)', () => {
    const p = predictUnit(
      cfg,
      { outcomes: ['rty:900', 'nr', 'rty:900'], ops: ['later:900'] },
      {
        firstEvents: ['job.accepted'],
        route: 'direct',
      },
    );
    expect(p.lives).toEqual([
      [
        'job.accepted',
        'attempt.failed@1:unknown',
        'retry.scheduled@1',
        'attempt.failed@2:unknown',
        'job.dead_lettered@2:non_retryable:unknown',
      ],
      ['job.redriven:later', 'attempt.failed@1:unknown', 'retry.scheduled@1', 'attempt.succeeded@2'],
    ]);
    expect(p.summary).toEqual({ status: 'succeeded', lives: 2, attempts: 4 });
  });

  it('marks runs of an edited payload and records the resolution of each dead letter', () => {
    const p = predictUnit(
      cfg,
      { outcomes: ['cli', 'val', 'sig'], ops: ['edit', 'bulk', 'resolve'] },
      {
        firstEvents: [],
        route: 'direct',
      },
    );
    expect(p.lives).toEqual([
      ['attempt.failed@1:client', 'job.dead_lettered@1:non_retryable:client'],
      [
        'job.redriven:edit',
        'job.log@1:e1',
        'attempt.failed@1:validation',
        'job.dead_lettered@1:non_retryable:validation',
      ],
      [
        'job.redriven:bulk',
        'job.log@1:e1',
        'attempt.failed@1:signature',
        'job.dead_lettered@1:non_retryable:signature',
        'dead_letter.resolved',
      ],
    ]);
    expect(p.deadLetters.map((d) => d.resolution)).toEqual(['redriven', 'redriven', 'resolved']);
  });

  it('ends a repeat at the fire that stops it; later fires are optional', () => {
    const p = predict(
      cfg,
      script({
        timing: { kind: 'repeat', every: 5_000, startMs: 0 },
        units: [
          { outcomes: ['net'], ops: [] },
          { outcomes: ['stop'], ops: [] },
          { outcomes: [], ops: [] },
        ],
      }),
    );
    expect(p.stopFire).toBe(2);
    expect(p.jobs.map((j) => [j.ref, j.presence])).toEqual([
      ['fire:1', 'required'],
      ['fire:2', 'required'],
      ['fire:3', 'afterStop'],
    ]);
    expect(p.schedule).toEqual({ route: 'repeat', baseEvents: ['job.accepted'], cancelled: 'ifCancelled' });
  });

  it('predicts a cancelled delayed job: accepted, cancelled, never run', () => {
    const p = predict(
      cfg,
      script({ timing: { kind: 'delay', ms: 6_000, runAt: false }, cancel: { after: 0, via: 'api' } }),
    );
    expect(p.jobs).toHaveLength(1);
    expect(p.jobs[0]).toMatchObject({
      terminal: 'cancelled',
      runs: 0,
      lives: [['job.accepted', 'schedule.cancelled']],
    });
  });

  it('predicts the colliding producer job next to its target', () => {
    const p = predict(cfg, script({ units: [{ outcomes: ['nr'], ops: ['now'] }], collide: 'redrive' }));
    expect(p.jobs.map((j) => j.ref)).toEqual(['job', 'collider']);
    expect(p.jobs[1]!.lives).toEqual([['job.accepted', 'attempt.succeeded@1']]);
  });

  it('predicts the regression scripts as they are written (normalising changes none of them)', () => {
    for (const r of REGRESSIONS) {
      expect(normalize(r.script, cfg, 2), r.name).toEqual(r.script);
      expect(predict(cfg, r.script).jobs.length, r.name).toBeGreaterThan(0);
    }
  });

  it('predicts every generated script, none of whose retries straddles a threshold', () => {
    const scripts = generateScripts(cfg, { n: 3_000, seed: 7, crashLanes: 2, maxCrashScripts: 20 });
    const paths = new Set<string>();
    for (const s of scripts) {
      expect(normalize(s, cfg, 2)).toEqual(s);
      const p = predict(cfg, s);
      paths.add(p.path);
      for (const c of shrinkCandidates(s, cfg, 2)) {
        expect(sizeOf(c)).toBeLessThanOrEqual(sizeOf(s));
        predict(cfg, c);
      }
    }
    // The generator reaches the paths that matter.
    const all = [...paths].join(' ');
    for (const fragment of ['H', 'N', 'L', 'Dn', 'De', 'Dc', 'X', 'Rnow', 'Rlater', 'Rbulk', 'Redit', 'V', 'S!'])
      expect(all).toContain(fragment);
    for (const start of ['intake', 'raw', 'bare', 'bare-id', 'raw-bad']) expect(all).toContain(`${start}|`);
    for (const route of ['direct-', 'hold-', 'wait-', 'scheduled-', 'scheduled-C', '|F']) expect(all).toContain(route);
    expect(paths.size).toBeGreaterThan(500);
  });
});
