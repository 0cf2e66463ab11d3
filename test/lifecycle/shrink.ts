import { CRASH_LANES, MODEL_CONFIG } from './compressed.js';
import { shrinkCandidates, sizeOf } from './generate.js';
import { runScripts, type Mismatch, type ScriptResult, type Stack } from './harness.js';
import type { Script } from './model.js';

// Shrinking against the real services: each round runs every one-step-smaller candidate of the
// current counterexample at once, and keeps the smallest that still fails in the same way (a
// mismatch of the same kind: category, kind of job, and where the history stopped). Rounds stop
// when no candidate fails that way, or when the budget is spent.

export interface Shrunk {
  original: ScriptResult;
  script: Script;
  mismatches: Mismatch[];
  rounds: number;
  runs: number;
}

/** What makes two mismatches the same failure, for shrinking and for picking representatives. */
export function signature(m: Mismatch): string {
  const hint = (m.hint ?? '').replace(/ \(.*\)$/, '');
  return [m.category, m.ref.replace(/:\d+$/, ''), hint].filter(Boolean).join(' / ');
}

export async function shrink(
  stack: Stack,
  failing: ScriptResult,
  wanted: string,
  opts: { deadline: number; maxRounds: number; stallMs: number; tag: string; log: (line: string) => void },
): Promise<Shrunk> {
  let best: { script: Script; mismatches: Mismatch[] } = { script: failing.script, mismatches: failing.mismatches };
  let rounds = 0;
  let runs = 0;
  while (rounds < opts.maxRounds && Date.now() < opts.deadline) {
    const candidates = shrinkCandidates(best.script, MODEL_CONFIG, CRASH_LANES);
    if (candidates.length === 0) break;
    rounds++;
    runs += candidates.length;
    const results = await runScripts(stack, candidates, {
      tag: `${opts.tag}-r${rounds}`,
      concurrency: candidates.length,
      stallMs: opts.stallMs,
    });
    const still = results
      .filter((r) => r.mismatches.some((m) => signature(m) === wanted))
      .sort((a, b) => sizeOf(a.script) - sizeOf(b.script));
    opts.log(
      `  shrink round ${rounds}: ${candidates.length} candidates of size ${sizeOf(best.script)}, ${still.length} still fail`,
    );
    if (still.length === 0) break;
    best = { script: still[0]!.script, mismatches: still[0]!.mismatches };
  }
  return { original: failing, script: best.script, mismatches: best.mismatches, rounds, runs };
}

/** Each kind of failure in the results, with the smallest script that shows it. */
export function representatives(results: ScriptResult[]): Map<string, ScriptResult> {
  const out = new Map<string, ScriptResult>();
  for (const r of results)
    for (const m of r.mismatches) {
      const key = signature(m);
      const current = out.get(key);
      if (!current || sizeOf(r.script) < sizeOf(current.script)) out.set(key, r);
    }
  return out;
}
