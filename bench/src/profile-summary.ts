// Summarises V8 .cpuprofile files (node --cpu-prof): where a service spends its CPU, by function
// (self and inclusive time) and by package. Record profiles from the bench, then summarise:
//
//   BENCH_NODE_ARGS='--cpu-prof --cpu-prof-dir=/tmp/prof/{service}' pnpm bench --only pipeline
//   pnpm exec tsx bench/src/profile-summary.ts /tmp/prof/sync-worker [--top 25] [--from-ms 3000] [--to-ms 20000]
//     [--callers 'randomFillSync|writeBuffer']
//
// Arguments are .cpuprofile files or directories of them. Percentages are of the samples in the
// window that were not idle, so start-up (module loading) can be cut off with --from-ms: the
// printed timeline (busy % per second) shows where the load starts. "(garbage collector)" and
// "(program)" (V8 and native work outside JS, such as socket I/O) are counted like functions.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
  columnNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** Where a script comes from: an npm package, a Redrive lib or service, node's own code, or V8. */
export function packageOf(url: string): string {
  if (!url) return '(native)';
  if (url.startsWith('node:')) return 'node:internal';
  const pnpm = /node_modules\/\.pnpm\/[^/]+\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url);
  if (pnpm) return pnpm[1]!;
  const plain = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url);
  if (plain) return plain[1]!;
  const own = /\/(libs|services)\/([^/]+)\//.exec(url);
  if (own) return own[1] === 'libs' ? `@redrive/${own[2]}` : `service:${own[2]}`;
  return url.replace(/^file:\/\//, '');
}

function isNodeItself(f: CallFrame): boolean {
  return !f.url || f.url.startsWith('node:');
}

function frameName(f: CallFrame): string {
  const name = f.functionName || '(anonymous)';
  if (!f.url) return name;
  const file = f.url.replace(/^file:\/\//, '').replace(/^.*node_modules\/\.pnpm\/[^/]+\/node_modules\//, '');
  const short = file.replace(/^.*\/(libs|services)\//, '$1/');
  return `${name} ${short}:${f.lineNumber + 1}`;
}

export interface Summary {
  file: string;
  durationMs: number;
  samples: number;
  busySamples: number;
  timeline: number[];
  self: [string, number][];
  inclusive: [string, number][];
  packagesSelf: [string, number][];
  /** For functions matching --callers: which functions called them, by inclusive samples. */
  callers: Map<string, [string, number][]>;
}

/** Self and inclusive sample counts per function and self counts per package, in [fromMs, toMs). */
export function summarise(
  file: string,
  profile: CpuProfile,
  opts: { fromMs?: number; toMs?: number; callersOf?: RegExp } = {},
): Summary {
  const { fromMs = 0, toMs = Infinity, callersOf } = opts;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const self = new Map<string, number>();
  const inclusive = new Map<string, number>();
  const packagesSelf = new Map<string, number>();
  const callers = new Map<string, Map<string, number>>();
  const timeline: number[] = [];
  const timelineAll: number[] = [];
  const bump = (m: Map<string, number>, k: string) => m.set(k, (m.get(k) ?? 0) + 1);
  let t = 0;
  let busy = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    t += profile.timeDeltas[i] ?? 0;
    const ms = t / 1000;
    const node = byId.get(profile.samples[i]!)!;
    const idle = node.callFrame.functionName === '(idle)';
    const second = Math.floor(ms / 1000);
    timelineAll[second] = (timelineAll[second] ?? 0) + 1;
    if (!idle) timeline[second] = (timeline[second] ?? 0) + 1;
    if (idle || ms < fromMs || ms >= toMs) continue;
    busy++;
    bump(self, frameName(node.callFrame));
    bump(packagesSelf, packageOf(node.callFrame.url));
    // Each function counts once per sample however deep it recurses.
    const seen = new Set<string>();
    for (let id: number | undefined = node.id; id !== undefined; id = parent.get(id)) {
      const f = byId.get(id)!.callFrame;
      if (f.functionName === '(root)') continue;
      const key = frameName(f);
      if (seen.has(key)) continue;
      seen.add(key);
      bump(inclusive, key);
      if (callersOf?.test(key)) {
        // The nearest caller outside node's own code says which of ours (or a package) asked.
        let up = parent.get(id);
        while (up !== undefined && isNodeItself(byId.get(up)!.callFrame)) up = parent.get(up);
        const caller = up === undefined ? '(none)' : frameName(byId.get(up)!.callFrame);
        bump(callers.get(key) ?? callers.set(key, new Map()).get(key)!, caller);
      }
    }
  }
  const sorted = (m: Map<string, number>) => [...m].sort((a, b) => b[1] - a[1]);
  return {
    file,
    durationMs: (profile.endTime - profile.startTime) / 1000,
    samples: profile.samples.length,
    busySamples: busy,
    timeline: timelineAll.map((all, s) => Math.round((100 * (timeline[s] ?? 0)) / (all || 1))),
    self: sorted(self),
    inclusive: sorted(inclusive),
    packagesSelf: sorted(packagesSelf),
    callers: new Map([...callers].map(([k, m]) => [k, sorted(m)])),
  };
}

function profilesIn(path: string): string[] {
  if (!statSync(path).isDirectory()) return [path];
  return readdirSync(path)
    .filter((f) => f.endsWith('.cpuprofile'))
    .sort()
    .map((f) => join(path, f));
}

function print(s: Summary, top: number): void {
  const pct = (n: number) => `${((100 * n) / (s.busySamples || 1)).toFixed(1).padStart(5)}%`;
  console.log(`\n## ${s.file}`);
  console.log(
    `${(s.durationMs / 1000).toFixed(1)} s, ${s.samples} samples, ${s.busySamples} busy in the window; busy % per second: ${s.timeline.join(' ')}`,
  );
  console.log(`\ntop self time by package`);
  for (const [k, n] of s.packagesSelf.slice(0, 12)) console.log(`${pct(n)}  ${k}`);
  console.log(`\ntop self time`);
  for (const [k, n] of s.self.slice(0, top)) console.log(`${pct(n)}  ${k}`);
  console.log(`\ntop inclusive time`);
  for (const [k, n] of s.inclusive.slice(0, top)) console.log(`${pct(n)}  ${k}`);
  for (const [fn, callers] of s.callers) {
    console.log(`\ncallers of ${fn}`);
    for (const [k, n] of callers.slice(0, 10)) console.log(`${pct(n)}  ${k}`);
  }
}

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    top: { type: 'string', default: '25' },
    'from-ms': { type: 'string', default: '0' },
    'to-ms': { type: 'string' },
    /** A regular expression: also list the nearest callers outside node of the functions it matches. */
    callers: { type: 'string' },
  },
});
if (positionals.length === 0) {
  console.error(
    'usage: tsx bench/src/profile-summary.ts <file.cpuprofile|dir>... [--top n] [--from-ms n] [--to-ms n] [--callers re]',
  );
  process.exit(2);
}
for (const file of positionals.flatMap(profilesIn)) {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const to = values['to-ms'] === undefined ? Infinity : Number(values['to-ms']);
  const summary = summarise(file, profile, {
    fromMs: Number(values['from-ms']),
    toMs: to,
    ...(values.callers ? { callersOf: new RegExp(values.callers) } : {}),
  });
  print(summary, Number(values.top));
}
