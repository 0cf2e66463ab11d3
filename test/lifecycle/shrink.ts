import { shrinkCandidates, sizeOf } from './generate.js';
import { CRASH_LANES, MODEL_CONFIG } from './compressed.js';
import { runScripts, type Category, type Mismatch, type ScriptResult, type Stack } from './harness.js';
import type { Script } from './model.js';

// Shrinking against the real services: each round runs every one-step-smaller candidate of the
// current counterexample at once, and keeps the smallest that still fails in the same way (a
// mismatch of the same category about the same kind of job). Rounds stop when no candidate
// fails, or when the budget is spent.

export interface Shrunk {
  original: ScriptResult;
  script: Script;
  mismatches: Mismatch[];
  rounds: number;
  runs: number;
}

const signature = (m: Mismatch) => `${m.category}/${m.ref.replace(/\d+$/, '')}`;

export async function shrink(
  stack: Stack,
  failing: ScriptResult,
  opts: { deadline: number; maxRounds: number; stallMs: number; tag: string; log: (line: string) => void },
): Promise<Shrunk> {
  const wanted = signature(failing.mismatches[0]!);
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
      `  shrink round ${rounds}: ${candidates.length} candidates of size ${sizeOf(best.script)}, ${still.length} still fail (${wanted})`,
    );
    if (still.length === 0) break;
    best = { script: still[0]!.script, mismatches: still[0]!.mismatches };
  }
  return { original: failing, script: best.script, mismatches: best.mismatches, rounds, runs };
}

/** The categories a set of results fails in, each with its smallest failing script. */
export function representatives(results: ScriptResult[]): Map<Category, ScriptResult> {
  const out = new Map<Category, ScriptResult>();
  for (const r of results) {
    const m = r.mismatches[0];
    if (!m) continue;
    const current = out.get(m.category);
    if (!current || sizeOf(r.script) < sizeOf(current.script)) out.set(m.category, r);
  }
  return out;
}
