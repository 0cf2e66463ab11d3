import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { NatsConnection } from '@nats-io/nats-core';
import { Topology } from '@redrive/messaging';
import pg from 'pg';
import {
  createTestDatabase,
  deleteStreams,
  freePort,
  REPO_ROOT,
  SHARED_NATS_URL,
  uniquePrefix,
  waitFor,
  type TestDatabase,
} from '@redrive/test-support';
import { cpuMsOf } from './cpu.js';

/** A Redrive service run for a benchmark: its logs go nowhere, readiness is polled. */
export interface BenchService {
  name: string;
  port: number;
  proc: ChildProcess;
  /** Resident set size now, in MB. */
  rssMb(): number;
  /** CPU time used so far, user and system, in ms (/proc/<pid>/stat; 1/CLK_TCK s resolution). */
  cpuMs(): { user: number; system: number };
  /** Read and write system calls so far (/proc/<pid>/io: sockets, log lines, files). */
  syscalls(): { reads: number; writes: number };
  /** Log lines written so far; counted only when started with `countLogLines`. */
  logLines(): number;
  stop(): Promise<void>;
}

const PORT_VAR: Record<string, string> = {
  intake: 'INTAKE_PORT',
  'sync-worker': 'WORKER_PORT',
  'retry-scheduler': 'SCHEDULER_PORT',
  'dlq-manager': 'DLQ_PORT',
};

/**
 * Extra node arguments for every service the bench starts, from BENCH_NODE_ARGS (split on
 * whitespace); `{service}` becomes the service's name, so each one can write its own profile:
 *   BENCH_NODE_ARGS='--cpu-prof --cpu-prof-dir=/tmp/prof/{service}' pnpm bench --quick --only pipeline
 * (NODE_OPTIONS will not do: node refuses to start with --cpu-prof there, and the bench's own
 * node arguments are not passed on to the processes it spawns.) A profile is written when the
 * process exits, which the bench makes it do with SIGTERM (a graceful stop that ends in
 * process.exit, which writes it); a process killed by a signal writes none.
 */
export function benchNodeArgs(service: string, env: NodeJS.ProcessEnv = process.env): string[] {
  return (env.BENCH_NODE_ARGS ?? '')
    .split(/\s+/)
    .filter(Boolean)
    .map((a) => a.replaceAll('{service}', service));
}

/**
 * Starts services/<name>/dist/main.js, as production does (deploy/Dockerfile): no tsx loader,
 * whose transpiling and module hooks cost memory and CPU a deployment never pays. `pnpm bench`
 * builds first.
 */
export async function startBenchService(
  name: string,
  env: Record<string, string>,
  opts: { countLogLines?: boolean } = {},
): Promise<BenchService> {
  const main = join(REPO_ROOT, 'services', name, 'dist', 'main.js');
  if (!existsSync(main)) throw new Error(`${main} does not exist: run \`pnpm -s build\` first (pnpm bench does)`);
  const port = await freePort();
  const proc = spawn(process.execPath, [...benchNodeArgs(name), main], {
    cwd: REPO_ROOT,
    env: { ...process.env, LOG_LEVEL: 'info', ...env, [PORT_VAR[name] ?? 'PORT']: String(port) },
    // Logs go to /dev/null unless counted: reading them would cost the bench's own CPU.
    stdio: ['ignore', opts.countLogLines ? 'pipe' : 'ignore', 'inherit'],
  });
  let lines = 0;
  proc.stdout?.on('data', (chunk: Buffer) => {
    for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) lines++;
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    proc.once('exit', (code, signal) => resolve({ code, signal })),
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
    cpuMs: () => cpuMsOf(proc.pid!),
    syscalls: () => {
      const io = readFileSync(`/proc/${proc.pid}/io`, 'utf8');
      return {
        reads: Number(/syscr:\s+(\d+)/.exec(io)?.[1] ?? 0),
        writes: Number(/syscw:\s+(\d+)/.exec(io)?.[1] ?? 0),
      };
    },
    logLines: () => lines,
    stop: async () => {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
      const { code, signal } = await exited;
      // A stop that did not end in a clean exit also means no --cpu-prof profile: say so.
      if (code !== 0) console.error(`bench: ${name} (pid ${proc.pid}) ended with ${signal ?? `exit code ${code}`}`);
    },
  };
}

/**
 * Runs `body` with one Redrive service on its own prefix and a fresh database, and a pg client
 * on that database; the service, streams and database are gone afterwards.
 */
export async function withServiceAndDatabase<T>(
  nc: NatsConnection,
  service: string,
  tag: string,
  env: Record<string, string>,
  body: (ctx: {
    prefix: string;
    topology: Topology;
    db: pg.Client;
    /** The database's name (for pg_stat_activity). */
    database: string;
    service: BenchService;
  }) => Promise<T>,
): Promise<T> {
  const prefix = uniquePrefix(tag);
  let db: TestDatabase | undefined;
  let svc: BenchService | undefined;
  let pgc: pg.Client | undefined;
  try {
    db = await createTestDatabase(tag);
    svc = await startBenchService(service, {
      NATS_URL: SHARED_NATS_URL,
      REDRIVE_PREFIX: prefix,
      DATABASE_URL: db.url,
      LOG_LEVEL: 'warn',
      ...env,
    });
    pgc = new pg.Client({ connectionString: db.url });
    await pgc.connect();
    return await body({ prefix, topology: new Topology({ prefix }), db: pgc, database: db.name, service: svc });
  } finally {
    await pgc?.end().catch(() => undefined);
    await svc?.stop();
    await deleteStreams(nc, prefix);
    await db?.drop();
  }
}
