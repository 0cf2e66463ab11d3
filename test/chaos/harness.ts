import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureInfra, type Infra } from '../../scripts/infra/index.js';
import { jetstreamManager } from '@nats-io/jetstream';
import { decodeEvents } from '@redrive/messaging';
import {
  connectTestClient,
  freePort,
  startFaultProxy,
  startService,
  streamMessages,
  waitFor,
  type FaultProxy,
  type ServiceProcess,
} from '@redrive/test-support';

// The chaos round, shared by the single-server suite (chaos.test.ts) and the cluster suite
// (cluster.test.ts): a fixed number of jobs submitted at a steady pace while faults are
// injected, against private NATS, Postgres and Redis that the suite starts on free ports (the
// shared servers are never touched), then a reconciliation of every job that intake accepted
// against the audit trail. It asserts only what must hold whatever the machine's speed: no
// accepted job lost, each in exactly one terminal state, no keyed job succeeding twice, no job
// dying that should not. The faults are paced by the load's progress, not by the clock; what a
// mode does to NATS (restart the one server, or kill leaders of a cluster) is the mode's own.

const RATE = 20;
export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** The NATS a round runs against, as the mode started it. */
export interface NatsUnderTest {
  /** NATS_URL for every service (a comma-separated list for a cluster). */
  readonly url: () => string;
  /** Where the suite's own client reads the streams after the load. */
  readonly clientUrl: () => string;
  /** STREAM_REPLICAS for every service. */
  readonly replicas: number;
  /** The servers' logs, read when a job is lost. */
  logFiles(): { name: string; file: string }[];
  stop(): Promise<void>;
}

/** One submission to intake: when it was sent and answered (performance.now()), and the status (0: no answer). */
export interface Submission {
  start: number;
  end: number;
  status: number;
}

/** A stretch of the round during which a fault was in effect (performance.now()). */
export interface FaultWindow {
  label: string;
  start: number;
  end: number;
  /** What the fault did, for the report (the new leader, say). */
  note?: string;
}

export interface FaultContext<N extends NatsUnderTest> {
  nats: N;
  /** Resolves once the load has submitted this share of the jobs (or has ended). */
  at(fraction: number): Promise<unknown>;
  /** Marks the start of a fault; the returned function marks its end. */
  window(label: string): (note?: string) => void;
}

export interface ChaosMode<N extends NatsUnderTest> {
  /** The test's name. */
  title: string;
  jobs: number;
  /** The test's timeout (default 10 minutes). */
  timeoutMs?: number;
  /** Starts NATS with its store under `dataDir`. */
  startNats(dataDir: string): Promise<N>;
  /** What is done to NATS once 30% of the jobs are submitted (the other faults are the same in every mode). */
  natsFaults(ctx: FaultContext<N>): Promise<void>;
  /** Prints what the mode measures, after the reconciliation line. */
  report?(round: { submissions: readonly Submission[]; windows: readonly FaultWindow[] }): void | Promise<void>;
}

/** Registers the round as a vitest suite. */
export function chaosRound<N extends NatsUnderTest>(mode: ChaosMode<N>): void {
  const jobs = mode.jobs;
  let infra: Infra;
  let nats: N;
  let pgProxy: FaultProxy;
  let redisProxy: FaultProxy;
  let ports: { postgres: number; redis: number };
  const dataDir = mkdtempSync(join(tmpdir(), 'redrive-chaos-'));
  // Postgres runs as the postgres user, which must reach its data directory under this one.
  chmodSync(dataDir, 0o755);
  const services = new Map<string, ServiceProcess>();
  // Every process ever started, so a lost job's story can be read from all their logs.
  const history: { name: string; proc: ServiceProcess }[] = [];
  let keepWorkersUp = true;

  function env(): Record<string, string> {
    return {
      NATS_URL: nats.url(),
      ...(nats.replicas > 1 ? { STREAM_REPLICAS: String(nats.replicas) } : {}),
      DATABASE_URL: `postgres://postgres@127.0.0.1:${pgProxy.port}/redrive_chaos`,
      REDIS_URL: `redis://127.0.0.1:${redisProxy.port}`,
      LOG_LEVEL: process.env.CHAOS_LOG_LEVEL ?? 'info',
    };
  }

  async function start(name: string, service: string, extra: Record<string, string> = {}): Promise<ServiceProcess> {
    const portVar = {
      intake: 'INTAKE_PORT',
      'sync-worker': 'WORKER_PORT',
      'retry-scheduler': 'SCHEDULER_PORT',
      'dlq-manager': 'DLQ_PORT',
    }[service]!;
    const s = startService(service, { ...env(), [portVar]: String(await freePort()), ...extra });
    services.set(name, s);
    history.push({ name, proc: s });
    await s.waitForLog(
      (l) => (typeof l.msg === 'string' && l.msg.endsWith('running')) || l.msg === 'intake listening',
      60_000,
    );
    return s;
  }

  const workerEnv = {
    WORKER_HANDLERS: './test/fixtures/chaos-handlers.mjs',
    WORKER_ACK_WAIT: '3s',
    RETRY_CLASSES: JSON.stringify({ network: { baseMs: 500, jitter: 0 } }),
    // Retries later than 1 s (the `later` mode asks for 1.5 s) leave the worker for the scheduler.
    RETRY_HANDOFF_THRESHOLD: '1s',
  };

  const DLQ_ENV = { DLQ_TOKENS: '[{"name":"chaos","role":"operator","token":"chaos-operator-token"}]' };

  /**
   * Restarts a service whenever it dies or cannot start (a crashing job kills its worker on
   * purpose, and a service killed while Postgres is cut off cannot start until it is back),
   * as Kubernetes or systemd would.
   */
  async function supervise(name: string, service: string, extra: Record<string, string>): Promise<void> {
    while (keepWorkersUp) {
      try {
        const w = await start(name, service, extra);
        await Promise.race([w.exited, waitFor(() => !keepWorkersUp, { timeoutMs: 3_600_000, intervalMs: 200 })]);
      } catch {
        // It could not start (NATS was down, say): like a real supervisor, try again.
        services.get(name)?.proc.kill('SIGKILL');
        await sleep(1_000);
      }
    }
  }

  beforeAll(async () => {
    ports = { postgres: await freePort(), redis: await freePort() };
    infra = await ensureInfra({ dataDir, ports, only: ['postgres', 'redis'], log: () => undefined });
    nats = await mode.startNats(dataDir);
    pgProxy = await startFaultProxy({ port: ports.postgres });
    redisProxy = await startFaultProxy({ port: ports.redis });
    void supervise('dlq-manager', 'dlq-manager', DLQ_ENV);
    void supervise('retry-scheduler', 'retry-scheduler', {});
    void supervise('worker-1', 'sync-worker', workerEnv);
    void supervise('worker-2', 'sync-worker', workerEnv);
    await waitFor(() => ['dlq-manager', 'retry-scheduler', 'worker-1', 'worker-2'].every((n) => services.has(n)), {
      timeoutMs: 120_000,
    });
    // Delays over 1 s go to the scheduler: the delayed jobs of the mix are fired by it.
    await start('intake', 'intake', {
      INTAKE_PUBLISH_TIMEOUT: '2s',
      INTAKE_ALLOW_ANONYMOUS: 'true',
      RETRY_HANDOFF_THRESHOLD: '1s',
    });
  }, 180_000);

  afterAll(async () => {
    keepWorkersUp = false;
    await Promise.all([...services.values()].map((s) => s.stop().catch(() => undefined)));
    await pgProxy?.close();
    await redisProxy?.close();
    await nats?.stop();
    for (const h of infra?.started ?? []) await h.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  describe('chaos', () => {
    it(
      mode.title,
      async () => {
        const submissions: Submission[] = [];
        const windows: FaultWindow[] = [];
        const window = (label: string) => {
          const w: FaultWindow = { label, start: performance.now(), end: Number.POSITIVE_INFINITY };
          windows.push(w);
          return (note?: string) => {
            w.end = performance.now();
            if (note) w.note = note;
          };
        };
        const accepted = new Map<string, string>();
        const seqOf = new Map<string, number>();
        let refused = 0;
        const intakePort = () =>
          (services.get('intake')!.logs.find((l) => l.msg === 'intake listening')!.address as { port: number }).port;
        const modes = (i: number) =>
          i % 200 === 7 ? 'crash' : i % 20 === 3 ? 'always' : i % 10 === 5 ? 'once' : i % 10 === 8 ? 'later' : 'ok';
        let submitted = 0;

        const load = (async () => {
          for (let i = 0; i < jobs; i++) {
            const keyed = i % 10 === 0;
            const body = {
              type: 'chaos',
              payload: { i, mode: modes(i) },
              ...(keyed ? { idempotencyKey: `chaos-${i}` } : {}),
              // Some jobs wait for the scheduler first: 2 s, past intake's hand-off threshold.
              ...(i % 25 === 11 ? { delay: 2_000 } : {}),
            };
            const t0 = performance.now();
            let status = 0;
            try {
              const res = await fetch(`http://127.0.0.1:${intakePort()}/v1/jobs`, {
                method: 'POST',
                headers: { 'content-type': 'application/json' },
                body: JSON.stringify(body),
              });
              status = res.status;
              if (res.status === 202) {
                const { jobId, seq, stream } = (await res.json()) as { jobId: string; seq: number; stream: string };
                accepted.set(jobId, body.payload.mode);
                // A delayed job's answer names its place in SCHEDULE, not in JOBS.
                if (stream === 'JOBS') seqOf.set(jobId, seq);
              } else refused++;
            } catch {
              refused++;
            }
            submissions.push({ start: t0, end: performance.now(), status });
            submitted = i + 1;
            await sleep(1000 / RATE);
          }
        })();

        // Each fault waits for the load to reach its share of the jobs (or for the load to end).
        const at = (fraction: number) =>
          waitFor(() => submitted >= jobs * fraction, { timeoutMs: 3_600_000, intervalMs: 100 });
        const faults = (async () => {
          await at(0.1);
          await services.get('worker-1')!.stop('SIGKILL');
          await at(0.2);
          await services.get('worker-2')!.stop('SIGKILL');
          await at(0.3);
          await mode.natsFaults({ nats, at, window });
          await at(0.35);
          pgProxy.pause();
          await sleep(5_000);
          await services.get('dlq-manager')!.stop('SIGKILL');
          await sleep(10_000);
          pgProxy.resume();
          await services.get('retry-scheduler')!.stop('SIGKILL');
          redisProxy.pause();
          await sleep(15_000);
          redisProxy.resume();
        })();
        await Promise.all([load, faults]);

        // Reconcile against the audit trail.
        const db = new pg.Client({ connectionString: `postgres://postgres@127.0.0.1:${ports.postgres}/redrive_chaos` });
        await db.connect();
        const ids = [...accepted.keys()];
        const terminal = async () =>
          (
            await db.query<{
              job_id: string;
              succeeded: string;
              dead: string;
              cancelled: string;
              reason: string | null;
            }>(
              `SELECT job_id,
                  count(*) FILTER (WHERE kind = 'attempt.succeeded') AS succeeded,
                  count(*) FILTER (WHERE kind = 'job.cancelled') AS cancelled,
                  count(*) FILTER (WHERE kind = 'job.dead_lettered') AS dead,
                  max(extra->>'reason') FILTER (WHERE kind = 'job.dead_lettered') AS reason
             FROM audit_events WHERE job_id = ANY($1) GROUP BY job_id`,
              [ids],
            )
          ).rows;
        let rows = await terminal();
        const deadline = Date.now() + 180_000;
        while (
          Date.now() < deadline &&
          rows.filter((r) => Number(r.succeeded) + Number(r.dead) > 0).length < ids.length
        ) {
          await sleep(2_000);
          rows = await terminal();
        }
        const byId = new Map(
          rows.map((r) => [
            r.job_id,
            { succeeded: Number(r.succeeded), dead: Number(r.dead), cancelled: Number(r.cancelled), reason: r.reason },
          ]),
        );
        // Nothing in the mix is cancelled: a cancel event would be a job ended by mistake.
        const cancelled = ids.filter((id) => (byId.get(id)?.cancelled ?? 0) > 0);
        const succeeded = ids.filter((id) => (byId.get(id)?.succeeded ?? 0) > 0 && !(byId.get(id)?.dead ?? 0));
        const dead = ids.filter((id) => (byId.get(id)?.dead ?? 0) > 0 && !(byId.get(id)?.succeeded ?? 0));
        const both = ids.filter((id) => (byId.get(id)?.dead ?? 0) > 0 && (byId.get(id)?.succeeded ?? 0) > 0);
        const lost = ids.filter((id) => !byId.has(id) || (byId.get(id)!.succeeded === 0 && byId.get(id)!.dead === 0));
        const duplicates = ids.reduce((n, id) => n + Math.max(0, (byId.get(id)?.succeeded ?? 0) - 1), 0);
        // Keyed jobs' ids are `<type>:<key>`.
        const isKeyed = (id: string) => id.startsWith('chaos:');
        const keyedDuplicates = ids.filter((id) => isKeyed(id) && (byId.get(id)?.succeeded ?? 0) > 1).length;
        // The right reason: a job that always fails is non-retryable; one that kills its worker is
        // stopped by the worker's crash count (retries exhausted) or, with Redis cut, by the server
        // at max_deliver; no other job may die.
        const rightReasons: Record<string, string[]> = {
          always: ['non_retryable'],
          crash: ['retries_exhausted', 'max_deliveries'],
        };
        const wrongDeath = dead.filter((id) => !rightReasons[accepted.get(id)!]?.includes(byId.get(id)!.reason ?? ''));
        /** Every log line about a job from every process that ran, in the order they ran. */
        const printLogs = (id: string, seq?: number) => {
          for (const { name, proc } of history)
            for (const l of proc.logs)
              if (l.jobId === id || (seq !== undefined && JSON.stringify(l).includes(`"seq":${seq},`)))
                console.log(
                  `  ${name} ${String(l.time)} ${String(l.level)} attempt ${String(l.attempt ?? '')} ${String(l.msg)} ${JSON.stringify(l.err ?? '')}`,
                );
        };
        // Two accepted jobs answered with one JOBS sequence: the server reused a sequence.
        const bySeq = new Map<number, string[]>();
        for (const [id, seq] of seqOf) bySeq.set(seq, [...(bySeq.get(seq) ?? []), id]);
        for (const [seq, same] of bySeq)
          if (same.length > 1) console.log(`JOBS seq ${seq} answered for ${same.join(', ')}`);
        // What happened to a lost job: its audit events, whether JOBS still holds it, and every
        // log line about it from every process that ran.
        const explainLost = async (id: string, mode: string, seq: number) => {
          const events = await db.query<{ kind: string; attempt: number; at: Date }>(
            'SELECT kind, attempt, at FROM audit_events WHERE job_id = $1 ORDER BY at',
            [id],
          );
          const nc = await connectTestClient(nats.clientUrl());
          const jsm = await jetstreamManager(nc);
          const inJobs = await jsm.streams.getMessage('JOBS', { seq }).then(
            (m) => (m ? 'still in JOBS' : 'gone from JOBS'),
            (err: unknown) => `JOBS lookup failed: ${String(err)}`,
          );
          const advisories = (await streamMessages(jsm, 'ADVISORIES'))
            .map((m) => ({ subject: m.subject, at: m.time.toISOString(), body: m.json<{ stream_seq?: number }>() }))
            .filter((a) => a.body.stream_seq === seq);
          const published = (await streamMessages(jsm, 'EVENTS'))
            .flatMap((m) => decodeEvents(m.data).map((e) => ({ ...e, seq: m.seq })))
            .filter((e) => e.jobId === id);
          const deadLetters = (await streamMessages(jsm, 'DLQ')).filter((m) => m.header.get('Redrive-Job-Id') === id);
          await nc.close();
          const rows = await db.query('SELECT id, reason, created_at FROM dead_letters WHERE job_id = $1', [id]);
          console.log(`lost ${id} (${mode}, JOBS seq ${seq}, ${inJobs}):`);
          for (const a of advisories) console.log(`  advisory ${a.at} ${a.subject}`);
          for (const e of published)
            console.log(`  EVENTS seq ${e.seq} ${e.at} ${e.kind} attempt ${e.attempt} id ${e.id}`);
          for (const m of deadLetters)
            console.log(`  DLQ seq ${m.seq} ${m.time.toISOString()} ${m.header.get('Redrive-Reason')}`);
          for (const r of rows.rows) console.log(`  dead_letters row ${JSON.stringify(r)}`);
          for (const e of events.rows) console.log(`  audit ${e.at.toISOString()} ${e.kind} attempt ${e.attempt}`);
          printLogs(id, seq);
          // What NATS itself said around then (a purge at recovery, a stream or consumer reset).
          for (const { name, file } of nats.logFiles())
            for (const line of readFileSync(file, 'utf8').split('\n'))
              if (/purge|orphan|reset|JOBS|\[(WRN|ERR)\]/i.test(line)) console.log(`  ${name} ${line}`);
        };
        for (const id of lost.slice(0, 5)) await explainLost(id, accepted.get(id)!, seqOf.get(id) ?? 0);
        for (const id of wrongDeath.slice(0, 3)) {
          const events = await db.query<{ kind: string; attempt: number; at: Date; extra: unknown }>(
            'SELECT kind, attempt, at, extra FROM audit_events WHERE job_id = $1 ORDER BY at',
            [id],
          );
          console.log(`job ${id} (${accepted.get(id)}, JOBS seq ${seqOf.get(id)}) dead-lettered:`);
          for (const e of events.rows)
            console.log(`  audit ${e.at.toISOString()} ${e.kind} attempt ${e.attempt} ${JSON.stringify(e.extra)}`);
          printLogs(id);
        }
        for (const id of both.slice(0, 3)) {
          const events = await db.query<{ id: string; kind: string; attempt: number; at: Date; extra: unknown }>(
            'SELECT id, kind, attempt, at, extra FROM audit_events WHERE job_id = $1 ORDER BY at',
            [id],
          );
          console.log(`job ${id} (${accepted.get(id)}, JOBS seq ${seqOf.get(id)}) both succeeded and dead-lettered:`);
          for (const e of events.rows)
            console.log(
              `  audit ${e.at.toISOString()} ${e.kind} attempt ${e.attempt} id ${e.id} ${JSON.stringify(e.extra)}`,
            );
          printLogs(id, seqOf.get(id));
        }
        for (const id of ids.filter((i) => isKeyed(i) && (byId.get(i)?.succeeded ?? 0) > 1).slice(0, 2)) {
          const events = await db.query<{ id: string; kind: string; attempt: number; at: Date }>(
            'SELECT id, kind, attempt, at FROM audit_events WHERE job_id = $1 ORDER BY at',
            [id],
          );
          console.log(`keyed job ${id} succeeded more than once:`);
          for (const e of events.rows)
            console.log(`  audit ${e.at.toISOString()} ${e.kind} attempt ${e.attempt} id ${e.id}`);
        }
        if (lost.length + both.length + wrongDeath.length > 0) {
          // Every process's whole log, for reading after the run (CHAOS_LOG_DIR, else a temporary folder).
          const logDir = process.env.CHAOS_LOG_DIR ?? mkdtempSync(join(tmpdir(), 'redrive-chaos-logs-'));
          mkdirSync(logDir, { recursive: true });
          history.forEach(({ name, proc }, i) =>
            writeFileSync(join(logDir, `${i}-${name}.ndjson`), proc.logs.map((l) => JSON.stringify(l)).join('\n')),
          );
          console.log(`  every process's log: ${logDir}`);
          // Warnings and errors of every process, counted by service and message.
          const seen = new Map<string, { n: number; err: unknown }>();
          for (const { name, proc } of history)
            for (const l of proc.logs)
              if (Number(l.level) >= 40) {
                const key = `${name.replace(/-\d+$/, '')}: ${String(l.msg)}`;
                const entry = seen.get(key) ?? { n: 0, err: l.err };
                entry.n++;
                seen.set(key, entry);
              }
          for (const [key, { n, err }] of seen)
            console.log(`  ${n}× ${key} ${err ? JSON.stringify(err).slice(0, 300) : ''}`);
        }
        await db.end();
        const handedOff = ids.filter((id) => accepted.get(id) === 'later').length;
        console.log(
          `accepted ${ids.length}, succeeded ${succeeded.length}, dead-lettered ${dead.length}, cancelled ${cancelled.length}, lost ${lost.length}, ` +
            `duplicates ${duplicates}, keyed duplicates ${keyedDuplicates}` +
            ` (submitted ${jobs}; refused during outages, for the producer to retry: ${refused}; both states: ${both.length};` +
            ` retried through the scheduler: ${handedOff})`,
        );
        await mode.report?.({ submissions, windows });
        // Every submission was answered: accepted, or refused so that the producer knows.
        expect(ids.length + refused).toBe(jobs);
        expect(ids.length).toBeGreaterThan(0);
        expect(lost).toEqual([]);
        expect(both).toEqual([]);
        expect(cancelled).toEqual([]);
        expect(keyedDuplicates).toBe(0);
        expect(wrongDeath).toEqual([]);
      },
      mode.timeoutMs ?? 600_000,
    );
  });
}
