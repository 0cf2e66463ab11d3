import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { NatsConnection } from '@nats-io/nats-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  connectTestClient,
  createTestDatabase,
  deleteStreams,
  freePort,
  recordFilePath,
  REPO_ROOT,
  SHARED_NATS_URL,
  startService,
  uniquePrefix,
  waitFor,
  type ServiceProcess,
  type TestDatabase,
} from '@redrive/test-support';

// The Grafana dashboards and the alert rules against live data: the four services run as real
// processes on the shared servers (under a prefix and a database of their own), a real
// Prometheus (Debian's, as CI installs it) scrapes them every second with alerts.yml loaded,
// jobs run (successes, retries through the retry-scheduler, dead letters), and then every
// query of every dashboard panel is asked of Prometheus's HTTP API: one that returns no series
// is a panel that shows nothing (a metric renamed, a label that does not exist), and fails.

const INSTALL = 'prometheus is not installed: apt-get install -y prometheus (Debian; .ci/run installs it)';
const DASHBOARDS = join(REPO_ROOT, 'deploy', 'grafana', 'dashboards');
const JOBS = ['intake', 'sync-worker', 'retry-scheduler', 'dlq-manager'] as const;

interface Target {
  refId: string;
  expr: string;
}
interface Panel {
  title: string;
  type: string;
  targets?: Target[];
  panels?: Panel[];
}
interface Dashboard {
  title: string;
  panels: Panel[];
  templating: { list: { name: string; query: { query: string } | string }[] };
}

const prefix = uniquePrefix('promdash');
const recordFile = recordFilePath('promdash');
const fixDir = mkdtempSync(join(tmpdir(), 'redrive-promdash-fix-'));
const promDir = mkdtempSync(join(tmpdir(), 'redrive-promdash-'));
const services: ServiceProcess[] = [];
let prometheus: ChildProcess | undefined;
let prometheusLog = '';
let promUrl: string;
let intakeUrl: string;
let nc: NatsConnection;
let db: TestDatabase;

const dashboards: Dashboard[] = ['redrive-overview.json'].map(
  (f) => JSON.parse(readFileSync(join(DASHBOARDS, f), 'utf8')) as Dashboard,
);

/** Every query of every panel (rows included), with Grafana's variables given values. */
function panelQueries(d: Dashboard): { panel: string; refId: string; expr: string }[] {
  const all = (ps: Panel[]): Panel[] => ps.flatMap((p) => [p, ...all(p.panels ?? [])]);
  return all(d.panels).flatMap((p) =>
    (p.targets ?? []).map((t) => ({
      panel: p.title,
      refId: t.refId,
      expr: t.expr.replaceAll('$__rate_interval', '1m').replaceAll('$type', '.*'),
    })),
  );
}

async function query(expr: string): Promise<unknown[]> {
  const res = await fetch(`${promUrl}/api/v1/query?${new URLSearchParams({ query: expr })}`);
  const body = (await res.json()) as { status: string; error?: string; data?: { result: unknown[] } };
  if (body.status !== 'success') throw new Error(`${expr}: ${body.error}`);
  return body.data!.result;
}

async function submit(type: string, payload: unknown, maxAttempts?: number): Promise<void> {
  const res = await fetch(`${intakeUrl}/v1/jobs`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ type, payload, ...(maxAttempts ? { maxAttempts } : {}) }),
  });
  expect(res.status).toBe(202);
}

function startPrometheus(ports: Record<(typeof JOBS)[number], number>, port: number): ChildProcess {
  copyFileSync(join(REPO_ROOT, 'deploy', 'prometheus', 'alerts.yml'), join(promDir, 'alerts.yml'));
  const scrape = JOBS.map(
    (job) => `  - job_name: ${job}\n    static_configs:\n      - targets: ['127.0.0.1:${ports[job]}']\n`,
  ).join('');
  writeFileSync(
    join(promDir, 'prometheus.yml'),
    `global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n  - alerts.yml\nscrape_configs:\n${scrape}`,
  );
  mkdirSync(join(promDir, 'data'));
  let proc: ChildProcess;
  try {
    proc = spawn(
      'prometheus',
      [
        `--config.file=${join(promDir, 'prometheus.yml')}`,
        `--storage.tsdb.path=${join(promDir, 'data')}`,
        `--web.listen-address=127.0.0.1:${port}`,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
  } catch (err) {
    throw new Error(`${INSTALL}: ${(err as Error).message}`);
  }
  proc.stdout!.setEncoding('utf8').on('data', (c: string) => (prometheusLog += c));
  proc.stderr!.setEncoding('utf8').on('data', (c: string) => (prometheusLog += c));
  return proc;
}

beforeAll(async () => {
  // Fails here, before any service starts, when Prometheus is missing.
  await new Promise<void>((resolve, reject) => {
    const probe = spawn('prometheus', ['--version'], { stdio: 'ignore' });
    probe.once('error', (err: NodeJS.ErrnoException) =>
      reject(new Error(err.code === 'ENOENT' ? INSTALL : err.message)),
    );
    probe.once('exit', () => resolve());
  });
  nc = await connectTestClient();
  db = await createTestDatabase('promdash');
  const [intake, worker, scheduler, dlq, prom] = await Promise.all([
    freePort(),
    freePort(),
    freePort(),
    freePort(),
    freePort(),
  ]);
  intakeUrl = `http://127.0.0.1:${intake}`;
  promUrl = `http://127.0.0.1:${prom}`;
  const common = { NATS_URL: SHARED_NATS_URL, REDRIVE_PREFIX: prefix, LOG_LEVEL: 'info' };
  services.push(
    startService('sync-worker', {
      ...common,
      WORKER_PORT: String(worker),
      WORKER_HANDLERS: './test/fixtures/retry-handlers.mjs,./test/fixtures/dlq-handlers.mjs',
      RECORD_FILE: recordFile,
      FIX_DIR: fixDir,
      DATABASE_URL: db.url,
      // Every retry waits 300 ms, longer than the hand-off threshold: each goes through the scheduler.
      RETRY_CLASSES: JSON.stringify({
        network: { baseMs: 300, maxMs: 300, jitter: 0 },
        server: { baseMs: 300, maxMs: 300, jitter: 0 },
      }),
      RETRY_HANDOFF_THRESHOLD: '100ms',
      RETRY_LOCAL_DELAY_MAX: '50ms',
    }),
    startService('intake', { ...common, INTAKE_PORT: String(intake), INTAKE_ALLOW_ANONYMOUS: 'true' }),
    startService('retry-scheduler', { ...common, DATABASE_URL: db.url, SCHEDULER_PORT: String(scheduler) }),
    startService('dlq-manager', { ...common, DATABASE_URL: db.url, DLQ_PORT: String(dlq) }),
  );
  const ready = ['sync-worker running', 'intake listening', 'retry-scheduler running', 'dlq-manager running'];
  await Promise.all(services.map((s, i) => s.waitForLog((l) => l.msg === ready[i], 60_000)));
  prometheus = startPrometheus(
    { intake, 'sync-worker': worker, 'retry-scheduler': scheduler, 'dlq-manager': dlq },
    prom,
  );
  await waitFor(
    async () => {
      if (prometheus!.exitCode !== null) throw new Error(`prometheus exited: ${prometheusLog.slice(-2000)}`);
      try {
        const up = (await query('up == 1')) as { metric: { job: string } }[];
        return up.length === JOBS.length;
      } catch {
        return false;
      }
    },
    { timeoutMs: 60_000, intervalMs: 500, what: 'Prometheus to scrape all four services' },
  );

  // Traffic for every panel: successes, retries handed to the scheduler, dead letters (a
  // non-retryable failure, and retries exhausted), a refused submission.
  for (let i = 0; i < 5; i++) await submit('flaky', { failTimes: 0 });
  for (let i = 0; i < 3; i++) await submit('flaky', { failTimes: 1 });
  await submit('broken', { n: 1 });
  await submit('status', { status: 503 }, 2);
  const refused = await fetch(`${intakeUrl}/v1/jobs`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: '{"type":"Not A Type"}',
  });
  expect(refused.status).toBeGreaterThanOrEqual(400);
}, 180_000);

afterAll(async () => {
  if (prometheus && prometheus.exitCode === null) {
    prometheus.kill('SIGTERM');
    await new Promise((r) => prometheus!.once('exit', r));
  }
  await Promise.all(services.map((s) => s.stop()));
  if (nc) {
    await deleteStreams(nc, prefix);
    await nc.close();
  }
  await db?.drop();
  rmSync(promDir, { recursive: true, force: true });
  rmSync(fixDir, { recursive: true, force: true });
}, 60_000);

describe('the Grafana dashboards against a running stack', () => {
  const queries = dashboards.flatMap((d) => panelQueries(d).map((q) => ({ dashboard: d.title, ...q })));

  it('have queries to run', () => {
    expect(queries.length).toBeGreaterThanOrEqual(20);
  });

  it('return series for every panel query once jobs have run, failed and been dead-lettered', async () => {
    // Dead letters reach Postgres through dlq-manager; wait for both kinds before asking.
    await waitFor(async () => (await query('sum(redrive_dlq_unresolved) >= 2')).length > 0, {
      timeoutMs: 90_000,
      intervalMs: 1_000,
      what: 'two unresolved dead letters in the scrape',
    });
    const empty: string[] = [];
    await waitFor(
      async () => {
        empty.length = 0;
        for (const q of queries) {
          if ((await query(q.expr)).length === 0) empty.push(`${q.dashboard} / ${q.panel} (${q.refId}): ${q.expr}`);
        }
        return empty.length === 0;
      },
      { timeoutMs: 60_000, intervalMs: 2_000, what: 'every panel query to return series' },
    ).catch(() => undefined);
    expect(empty).toEqual([]);
    console.log(`${queries.length} dashboard queries, each returned series`);
  }, 180_000);

  it('fill the job type variable from the scrape', async () => {
    for (const d of dashboards) {
      for (const v of d.templating.list) {
        const q = typeof v.query === 'string' ? v.query : v.query.query;
        const m = /^label_values\((.+), (\w+)\)$/.exec(q);
        expect(m, q).not.toBeNull();
        const res = await fetch(`${promUrl}/api/v1/series?${new URLSearchParams({ 'match[]': m![1]! })}`);
        const series = ((await res.json()) as { data: Record<string, string>[] }).data;
        expect(new Set(series.map((s) => s[m![2]!]).filter(Boolean))).toContain('flaky');
      }
    }
  });

  it('an expression with a misspelt metric returns no series (the check can fail)', async () => {
    expect(await query('max by (type, lane) (redrive_queue_wating)')).toEqual([]);
  });

  it('loads every alert rule into Prometheus and evaluates it without error', async () => {
    const res = await fetch(`${promUrl}/api/v1/rules?type=alert`);
    const body = (await res.json()) as {
      data: { groups: { rules: { name: string; health: string; lastError?: string }[] }[] };
    };
    const rules = body.data.groups.flatMap((g) => g.rules);
    expect(rules.length).toBeGreaterThanOrEqual(9);
    await waitFor(
      async () => {
        const r = (await (await fetch(`${promUrl}/api/v1/rules?type=alert`)).json()) as typeof body;
        return r.data.groups.flatMap((g) => g.rules).every((x) => x.health === 'ok');
      },
      { timeoutMs: 20_000, intervalMs: 500, what: 'every rule to be evaluated' },
    ).catch(() => undefined);
    const final = ((await (await fetch(`${promUrl}/api/v1/rules?type=alert`)).json()) as typeof body).data.groups
      .flatMap((g) => g.rules)
      .filter((x) => x.health !== 'ok')
      .map((x) => `${x.name}: ${x.health} ${x.lastError ?? ''}`);
    expect(final).toEqual([]);
  });
});
