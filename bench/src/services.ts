import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort, REPO_ROOT, waitFor } from '@redrive/test-support';

/** A Redrive service run for a benchmark: its logs go nowhere, readiness is polled. */
export interface BenchService {
  name: string;
  port: number;
  proc: ChildProcess;
  /** Resident set size now, in MB. */
  rssMb(): number;
  stop(): Promise<void>;
}

const PORT_VAR: Record<string, string> = {
  intake: 'INTAKE_PORT',
  'sync-worker': 'WORKER_PORT',
  'retry-scheduler': 'SCHEDULER_PORT',
  'dlq-manager': 'DLQ_PORT',
};

export async function startBenchService(name: string, env: Record<string, string>): Promise<BenchService> {
  const port = await freePort();
  const proc = spawn(
    process.execPath,
    ['--conditions=source', '--import', 'tsx', join(REPO_ROOT, 'services', name, 'src', 'main.ts')],
    {
      cwd: REPO_ROOT,
      env: { ...process.env, LOG_LEVEL: 'info', ...env, [PORT_VAR[name] ?? 'PORT']: String(port) },
      stdio: ['ignore', 'ignore', 'inherit'],
    },
  );
  await waitFor(
    async () => {
      if (proc.exitCode !== null) throw new Error(`${name} exited with ${proc.exitCode}`);
      try {
        return (await fetch(`http://127.0.0.1:${port}/readyz`)).ok;
      } catch {
        return false;
      }
    },
    { timeoutMs: 30_000, intervalMs: 100, what: `${name} to be ready` },
  );
  return {
    name,
    port,
    proc,
    rssMb: () => {
      const status = readFileSync(`/proc/${proc.pid}/status`, 'utf8');
      const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
      return Math.round(kb / 1024);
    },
    stop: async () => {
      if (proc.exitCode !== null) return;
      const exited = new Promise((r) => proc.once('exit', r));
      proc.kill('SIGTERM');
      await exited;
    },
  };
}
