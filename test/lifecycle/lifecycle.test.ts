import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateScripts, normalize, sizeOf } from './generate.js';
import { CRASH_LANES, MODEL_CONFIG } from './compressed.js';
import { runScripts, startStack, type Mismatch, type ScriptResult, type Stack } from './harness.js';
import { type Script } from './model.js';
import { REGRESSIONS } from './regressions.js';
import { representatives, shrink, signature } from './shrink.js';

// The lifecycle model suite (issue 10, item 2). Generated job scripts run at once against the
// real services with compressed time, and every job is reconciled with the reference model
// (model.ts). A failing script is shrunk against the services and printed so it can be replayed:
//
//   LIFECYCLE_JOBS=n            how many scripts (default 300 in `pnpm test`, 2,000 in `pnpm test:lifecycle`)
//   LIFECYCLE_SEED=n            the generator's seed (printed by every run)
//   LIFECYCLE_REPLAY='<json>'   run these scripts (one, or an array) instead of generated ones
//   LIFECYCLE_CONCURRENCY=n     scripts in flight at once (default 400)
//   LIFECYCLE_SHRINK=n          kinds of failure to shrink a counterexample of (default 4; 0: none)
//   LIFECYCLE_SHRINK_SECONDS=n  how long each may shrink (default 180)

const env = process.env;
const JOBS = Number(env.LIFECYCLE_JOBS ?? env.LIFECYCLE_DEFAULT_JOBS ?? 300);
const SEED = Number(env.LIFECYCLE_SEED ?? Math.floor(Math.random() * 2 ** 31));
const CONCURRENCY = Number(env.LIFECYCLE_CONCURRENCY ?? 400);
const SHRINK = Number(env.LIFECYCLE_SHRINK ?? 4);
/** Each counterexample shrinks for at most this long. */
const SHRINK_SECONDS = Number(env.LIFECYCLE_SHRINK_SECONDS ?? 180);
/** With no event anywhere for this long, the jobs still waiting are reported. */
const STALL_MS = Number(env.LIFECYCLE_STALL_MS ?? 120_000);

const log = (line: string) => console.log(line);
let stack: Stack;

/** The regression scripts (regressions.ts), then the generated ones; or the replayed ones. */
function scripts(): Script[] {
  if (env.LIFECYCLE_REPLAY) {
    const parsed = JSON.parse(env.LIFECYCLE_REPLAY) as Script | Script[];
    return (Array.isArray(parsed) ? parsed : [parsed]).map((s) => normalize(s, MODEL_CONFIG, CRASH_LANES));
  }
  const generated = generateScripts(MODEL_CONFIG, {
    n: JOBS,
    seed: SEED,
    crashLanes: CRASH_LANES,
    maxCrashScripts: Math.max(2, Math.round(JOBS / 150)),
  });
  return [...REGRESSIONS.map((r) => normalize(r.script, MODEL_CONFIG, CRASH_LANES)), ...generated];
}

const short = (v: unknown) => JSON.stringify(v);

function describeMismatch(m: Mismatch): string {
  return `${m.category} ${m.ref}${m.jobId ? ` (${m.jobId})` : ''}${m.hint ? ` [${m.hint}]` : ''}: expected ${short(m.expected)}, observed ${short(m.observed)}`;
}

function replayLine(s: Script): string {
  return `LIFECYCLE_REPLAY='${JSON.stringify(s)}' pnpm test:lifecycle`;
}

beforeAll(async () => {
  const started = Date.now();
  // Large runs have a few dozen crashing jobs: a standby worker per crash lane saves a restart each.
  stack = await startStack({ standby: !env.LIFECYCLE_REPLAY && JOBS >= 1_000 });
  log(`lifecycle: services up in ${Math.round((Date.now() - started) / 1000)} s`);
}, 300_000);

afterAll(async () => {
  await stack?.stop();
}, 120_000);

describe('lifecycle model suite', () => {
  it('ends every generated job as the reference model predicts', async () => {
    const list = scripts();
    const regressions = env.LIFECYCLE_REPLAY ? 0 : REGRESSIONS.length;
    const started = Date.now();
    log(
      `lifecycle: ${list.length} scripts (${regressions} regressions, ${list.length - regressions} ${env.LIFECYCLE_REPLAY ? 'replayed' : 'generated'}), seed ${SEED}, prefix ${stack.prefix}`,
    );
    const results = await runScripts(stack, list, {
      tag: 'main',
      concurrency: CONCURRENCY,
      stallMs: STALL_MS,
      log,
    });
    const seconds = Math.round((Date.now() - started) / 1000);
    const failing = results.filter((r) => r.mismatches.length > 0);
    const paths = new Set(results.map((r) => r.prediction.path));
    const jobIds = results.reduce((n, r) => n + Object.keys(r.ids).length, 0);

    const byCategory = new Map<string, number>();
    for (const r of failing)
      for (const m of r.mismatches) byCategory.set(m.category, (byCategory.get(m.category) ?? 0) + 1);
    log(`lifecycle: ran ${list.length} scripts (${jobIds} job ids) in ${seconds} s`);
    for (const r of [...results].sort((a, b) => b.ms - a.ms).slice(0, 3))
      log(`  slowest: script #${r.index} ${Math.round(r.ms / 1000)} s ${short(r.script)}`);
    if (failing.length > 0) {
      log(`lifecycle: mismatches by category: ${[...byCategory].map(([c, n]) => `${c} ${n}`).join(', ')}`);
      const kinds = new Map<string, number>();
      for (const r of failing)
        for (const m of r.mismatches) kinds.set(signature(m), (kinds.get(signature(m)) ?? 0) + 1);
      for (const [k, n] of [...kinds].sort((a, b) => b[1] - a[1])) log(`  ${n}× ${k}`);
      const report = join(tmpdir(), `lifecycle-${stack.prefix}.json`);
      writeFileSync(report, JSON.stringify(failing, null, 1));
      log(`lifecycle: every mismatch in ${report}`);
      for (const r of failing.filter((f) => f.index < regressions))
        log(`  regression failed: ${REGRESSIONS[r.index]!.name}: ${r.mismatches.map(describeMismatch).join('; ')}`);
      for (const r of failing.slice(0, 6)) {
        log(`  script #${r.index} ${short(r.script)}`);
        for (const m of r.mismatches.slice(0, 3)) log(`    ${describeMismatch(m)}`);
      }
      // Shrink one representative of each kind of failure.
      const reps = [...representatives(failing)].sort((a, b) => sizeOf(a[1].script) - sizeOf(b[1].script));
      log(`lifecycle: ${reps.length} kinds of failure: ${reps.map(([k]) => k).join('; ')}`);
      for (const [i, [kind, rep]] of reps.slice(0, SHRINK).entries()) {
        log(`lifecycle: shrinking script #${rep.index} (${kind})`);
        const shrunk = await shrink(stack, rep, kind, {
          deadline: Date.now() + SHRINK_SECONDS * 1000,
          maxRounds: 40,
          stallMs: 30_000,
          tag: `shrink${i}`,
          log,
        });
        log(`lifecycle: counterexample ${i + 1}, ${kind} (${shrunk.rounds} rounds, ${shrunk.runs} candidate runs):`);
        log(`  ${short(shrunk.script)}`);
        for (const m of shrunk.mismatches) log(`    ${describeMismatch(m)}`);
        log(`  replay: ${replayLine(shrunk.script)}`);
      }
    }
    log(`lifecycle: ${list.length} jobs, ${paths.size} paths, ${failing.length} mismatches`);
    expect(
      failing.map((r: ScriptResult) => ({ script: r.script, mismatches: r.mismatches.map(describeMismatch) })),
    ).toEqual([]);
  }, 3_600_000);
});
