// CPU time per job: user + system time of every process a scenario involves, read from
// /proc/<pid>/stat (utime + stime, in clock ticks of `getconf CLK_TCK`) before and after the
// scenario's measured window, divided by the jobs. The bench process itself is read with
// process.cpuUsage() (microseconds, all its threads). On a shared machine this is steadier than
// jobs per second: another process's load slows a run down but does not add to its CPU time,
// except in a server shared with others (the shared nats-server), which is said where printed.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type pg from 'pg';

/** Clock ticks per second of /proc/<pid>/stat's times (`getconf CLK_TCK`; 100 almost everywhere). */
export const CLK_TCK = (() => {
  try {
    const n = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
    return Number.isFinite(n) && n > 0 ? n : 100;
  } catch {
    return 100;
  }
})();

/** CPU time a process has used, user and system, in ms (/proc/<pid>/stat; 1/CLK_TCK s resolution). */
export function cpuMsOf(pid: number): { user: number; system: number } {
  // The fields after the command name (which may hold spaces) start at the state, field 3.
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ms = 1000 / CLK_TCK;
  return { user: Number(fields[11]) * ms, system: Number(fields[12]) * ms };
}

/** User + system ms of `pid`, or undefined when it is gone. */
function totalMsOf(pid: number): number | undefined {
  try {
    const { user, system } = cpuMsOf(pid);
    return user + system;
  } catch {
    return undefined;
  }
}

/** The nats-server listening on `url`'s port, if `ss` can tell (root sees every process). */
export function natsServerPid(url: string): number | undefined {
  try {
    const port = new URL(url).port || '4222';
    const out = execFileSync('ss', ['-ltnpH', `sport = :${port}`], { encoding: 'utf8' });
    const pid = /nats-server",pid=(\d+)/.exec(out)?.[1];
    return pid ? Number(pid) : undefined;
  } catch {
    return undefined;
  }
}

/** Some processes, under one label, listed again at every sample (Postgres backends come and go). */
export interface CpuSource {
  label: string;
  pids(): number[] | Promise<number[]>;
}

export const processes = (label: string, ...pids: (number | undefined)[]): CpuSource => ({
  label,
  pids: () => pids.filter((p): p is number => p !== undefined),
});

/**
 * The Postgres backends connected to `database` (pg_stat_activity, read on `admin`, a connection
 * to another database), less `exclude` (the bench's own probe connection). Only these: the
 * shared server's postmaster and its background processes (walwriter, checkpointer) serve
 * everyone's databases, so they are left out.
 */
export const postgresBackends = (admin: pg.Client, database: string, exclude: number[] = []): CpuSource => ({
  label: 'postgres',
  pids: async () =>
    (
      await admin.query<{ pid: number }>(
        "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND backend_type = 'client backend'",
        [database],
      )
    ).rows
      .map((r) => r.pid)
      .filter((p) => !exclude.includes(p)),
});

/** A scenario's measured window, marked by the scenario itself. */
export interface MeasuredWindow {
  begin(): Promise<void>;
  end(): Promise<void>;
}

export interface CpuPerJob {
  /** µs of CPU per job, all processes but those set aside. */
  total: number;
  /** µs per job by process label (the bench process is `bench`); set-aside labels end in `(aside)`. */
  byProcess: Record<string, number>;
  /** Processes seen at the start and gone at the end: their CPU in the window is missing. */
  vanished: number;
}

type Sample = { bench: number; pids: Map<string, Map<number, number>> };

/** CPU of `sources` and the bench process between `begin()` and `end()`, per job. */
export class CpuMeter implements MeasuredWindow {
  private before?: Sample;
  private after?: Sample;

  /**
   * `aside`: sources shown by process but left out of the total (the bench's own measuring);
   * `benchAside`: the bench process too, when it only watches (it is counted when it produces).
   */
  constructor(
    private readonly sources: CpuSource[],
    private readonly aside: CpuSource[] = [],
    private readonly benchAside = false,
  ) {}

  private async sample(): Promise<Sample> {
    // List first (a query may be needed), then read every counter at one instant.
    const all = [...this.sources, ...this.aside.map((s) => ({ ...s, label: `${s.label} (aside)` }))];
    const listed = await Promise.all(all.map(async (s) => [s.label, await s.pids()] as const));
    const pids = new Map<string, Map<number, number>>();
    for (const [label, list] of listed) {
      const m = pids.get(label) ?? new Map<number, number>();
      for (const pid of list) {
        const ms = totalMsOf(pid);
        if (ms !== undefined) m.set(pid, ms);
      }
      pids.set(label, m);
    }
    const { user, system } = process.cpuUsage();
    return { bench: (user + system) / 1000, pids };
  }

  async begin(): Promise<void> {
    this.before = await this.sample();
    this.after = undefined;
  }

  async end(): Promise<void> {
    this.after = await this.sample();
  }

  /** µs per job over the window; a process born inside the window counts from zero. */
  perJob(jobs: number): CpuPerJob {
    const { before, after } = this;
    if (!before || !after) throw new Error('CpuMeter: begin() and end() first');
    const us = (ms: number) => Math.round((ms * 1000) / jobs);
    const byProcess: Record<string, number> = {};
    const asideUs: Record<string, number> = {};
    let vanished = 0;
    let totalMs = this.benchAside ? 0 : after.bench - before.bench;
    for (const [label, now] of after.pids) {
      const was = before.pids.get(label) ?? new Map<number, number>();
      let ms = 0;
      for (const [pid, t] of now) ms += t - (was.get(pid) ?? 0);
      for (const pid of was.keys()) if (!now.has(pid)) vanished++;
      if (label.endsWith(' (aside)')) asideUs[label] = us(ms);
      else {
        byProcess[label] = us(ms);
        totalMs += ms;
      }
    }
    if (this.benchAside) asideUs['bench (aside)'] = us(after.bench - before.bench);
    else byProcess.bench = us(after.bench - before.bench);
    Object.assign(byProcess, asideUs);
    return { total: us(totalMs), byProcess, vanished };
  }
}

/** The mean of runs of the same scenario (a baseline run before and one after, say). */
export function meanCpu(runs: CpuPerJob[]): CpuPerJob {
  const mean = (f: (c: CpuPerJob) => number) => Math.round(runs.reduce((a, c) => a + f(c), 0) / runs.length);
  const labels = [...new Set(runs.flatMap((r) => Object.keys(r.byProcess)))];
  return {
    total: mean((c) => c.total),
    byProcess: Object.fromEntries(labels.map((l) => [l, mean((c) => c.byProcess[l] ?? 0)])),
    vanished: runs.reduce((a, c) => a + c.vanished, 0),
  };
}

/**
 * How much CPU others spend in a shared server while the bench is idle, in ms per second of
 * wall time (sampled over `ms`): the part of its per-job figure that is not the bench's.
 */
export async function idleLoad(pid: number | undefined, ms = 1_000): Promise<number | undefined> {
  if (pid === undefined) return undefined;
  const a = totalMsOf(pid);
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, ms));
  const b = totalMsOf(pid);
  if (a === undefined || b === undefined) return undefined;
  return Math.round(((b - a) * 1000) / (performance.now() - t0));
}
