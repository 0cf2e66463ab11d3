// Over 400 lines on purpose: the whole local stack (infrastructure, secured NATS, four services, one log, shutdown) reads top to bottom in one file.
// `pnpm stack`: the whole system on one machine, in one terminal.
//
// Makes sure Postgres and Redis run (starting what is missing, see infra/), starts a NATS of
// its own with Redrive's authorization (stack-nats.ts; STACK_OPEN_NATS=true uses the open one
// on 4222 instead), starts every service that has a services/<name>/src/main.ts from its
// TypeScript sources, each with its own NATS user, and prints their JSON logs as one
// readable, prefixed stream. Ctrl-C (or SIGTERM) stops the services (SIGTERM, up to 30 s to
// drain, then SIGKILL) and then the infrastructure this run started; what was already
// running is left alone.

import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { Socket } from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { display } from './infra/common.js';
import { DEFAULT_DATA_DIR, ensureInfra, InfraError, REPO_ROOT, type Infra } from './infra/index.js';
import { startStackNats, type StackNats } from './stack-nats.js';

/**
 * Local only: without producer keys exported (INTAKE_API_KEYS), intake runs anonymous, and
 * anyone on this machine may submit and cancel; intake itself refuses to start with neither.
 */
const anonymousIntake = !process.env.INTAKE_API_KEYS;

/**
 * NATS runs with authorization, as compose and Kubernetes run it: a nats-server of the stack's
 * own on STACK_NATS_PORT (4223), each service connecting as its own user (stack-nats.ts).
 * STACK_OPEN_NATS=true uses the NATS on 4222 instead, without authorization (the shared
 * development server: anything on this machine may publish anything there).
 */
const openNats = process.env.STACK_OPEN_NATS === 'true';
const natsPort = Number(process.env.STACK_NATS_PORT ?? 4223);
/** `pnpm stack --cluster`: three clustered nodes on STACK_NATS_PORT and the two ports after it, streams at R3. */
const clusterNats = process.argv.includes('--cluster');
let stackNats: StackNats | undefined;

/**
 * Per-service settings for the local stack. A service not listed here still starts, with
 * its own defaults; give it an entry (and a port of its own) when it serves HTTP.
 */
const SERVICES: Record<string, { env: Record<string, string>; portVar?: string; describe: string }> = {
  intake: {
    env: { INTAKE_PORT: '8080', ...(anonymousIntake ? { INTAKE_ALLOW_ANONYMOUS: 'true' } : {}) },
    portVar: 'INTAKE_PORT',
    describe: `HTTP API for producers: POST /v1/jobs${anonymousIntake ? ' (anonymous: no API key)' : ''}, /metrics, /healthz, /readyz`,
  },
  'sync-worker': {
    env: {
      WORKER_PORT: '9090',
      WORKER_HANDLERS: './examples/handlers/hello.mjs',
      REDIS_URL: 'redis://127.0.0.1:6379',
      DATABASE_URL: 'postgres://postgres@127.0.0.1:5432/redrive',
    },
    portVar: 'WORKER_PORT',
    describe: 'runs jobs; /metrics, /healthz, /readyz',
  },
  'retry-scheduler': {
    env: { SCHEDULER_PORT: '9091', DATABASE_URL: 'postgres://postgres@127.0.0.1:5432/redrive' },
    portVar: 'SCHEDULER_PORT',
    describe: 'delays, long retries, repeat and cron schedules; /metrics, /healthz, /readyz',
  },
  'dlq-manager': {
    env: {
      DLQ_PORT: '8081',
      DATABASE_URL: 'postgres://postgres@127.0.0.1:5432/redrive',
      // A local-only operator token; real deployments set their own DLQ_TOKENS.
      DLQ_TOKENS: '[{"name":"dev","role":"operator","token":"redrive-dev-operator-token"}]',
    },
    portVar: 'DLQ_PORT',
    describe: 'dead letters, audit trail, admin API /v1/admin (Bearer redrive-dev-operator-token)',
  },
};

const STOP_TIMEOUT_MS = 30_000;
const READY_TIMEOUT_MS = 60_000;

// ---------------------------------------------------------------------------------------
// Log formatting: `<service> HH:MM:ss LEVEL msg key=value ...`

const useColor = process.env.NO_COLOR === undefined && (Boolean(process.env.FORCE_COLOR) || process.stdout.isTTY);
const paint = (code: string, s: string) => (useColor ? `\x1b[${code}m${s}\x1b[0m` : s);
const SERVICE_COLORS = ['36', '35', '33', '34', '32', '96', '95', '93'];
const LEVEL_STYLE: Record<string, string> = {
  trace: '90',
  debug: '34',
  info: '32',
  warn: '33',
  error: '31',
  fatal: '41;97',
};
const PINO_LEVELS: Record<number, string> = {
  10: 'trace',
  20: 'debug',
  30: 'info',
  40: 'warn',
  50: 'error',
  60: 'fatal',
};
const OMIT = new Set(['level', 'time', 'msg', 'pid', 'hostname', 'service', 'v']);

let prefixWidth = 'stack'.length;
const prefixes = new Map<string, string>();

function prefixFor(name: string): string {
  let p = prefixes.get(name);
  if (!p) {
    const color = name === 'stack' ? '1' : SERVICE_COLORS[prefixes.size % SERVICE_COLORS.length]!;
    p = paint(color, name.padEnd(prefixWidth));
    prefixes.set(name, p);
  }
  return p;
}

function clock(time: unknown): string {
  const d = typeof time === 'number' || typeof time === 'string' ? new Date(time) : new Date();
  const t = Number.isNaN(d.getTime()) ? new Date() : d;
  return [t.getHours(), t.getMinutes(), t.getSeconds()].map((n) => String(n).padStart(2, '0')).join(':');
}

function formatValue(v: unknown): string {
  if (typeof v === 'string') return /^[^\s"=]+$/.test(v) ? v : JSON.stringify(v);
  if (v === null || typeof v !== 'object') return String(v);
  return JSON.stringify(v);
}

/** One pino JSON line as readable text (more lines when it carries an error stack). */
function formatLogLine(name: string, raw: string): string {
  const prefix = prefixFor(name);
  let rec: Record<string, unknown>;
  try {
    const parsed: unknown = JSON.parse(raw);
    if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('not a log record');
    rec = parsed as Record<string, unknown>;
  } catch {
    return `${prefix} ${raw}`;
  }
  const levelName =
    typeof rec.level === 'number' ? (PINO_LEVELS[rec.level] ?? String(rec.level)) : String(rec.level ?? 'info');
  const level = paint(LEVEL_STYLE[levelName] ?? '0', levelName.toUpperCase().padEnd(5));
  const fields: string[] = [];
  const stacks: string[] = [];
  for (const [key, value] of Object.entries(rec)) {
    if (OMIT.has(key) || value === undefined) continue;
    if ((key === 'err' || key === 'error') && value && typeof value === 'object') {
      const err = value as { type?: string; message?: string; stack?: string };
      fields.push(`${paint('2', `${key}=`)}${formatValue(`${err.type ?? 'Error'}: ${err.message ?? ''}`)}`);
      if (err.stack) stacks.push(...err.stack.split('\n').slice(1));
      continue;
    }
    fields.push(`${paint('2', `${key}=`)}${formatValue(value)}`);
  }
  const msg = typeof rec.msg === 'string' ? rec.msg : '';
  const head = `${prefix} ${paint('2', clock(rec.time))} ${level} ${msg}${fields.length ? ` ${fields.join(' ')}` : ''}`;
  return [head, ...stacks.map((l) => `${prefix}     ${paint('2', l.trim())}`)].join('\n');
}

function say(msg: string, fields: Record<string, unknown> = {}, level = 'info'): void {
  console.log(formatLogLine('stack', JSON.stringify({ level, time: Date.now(), msg, ...fields })));
}

// ---------------------------------------------------------------------------------------

interface Running {
  readonly name: string;
  readonly child: ChildProcess;
  readonly exited: Promise<void>;
  readonly port: number | undefined;
}

function discoverServices(): string[] {
  const dir = join(REPO_ROOT, 'services');
  const found = readdirSync(dir, { withFileTypes: true })
    .filter((d) => d.isDirectory() && existsSync(join(dir, d.name, 'src', 'main.ts')))
    .map((d) => d.name);
  // The services in the table first, in its order; then any others, alphabetically.
  const known = Object.keys(SERVICES);
  return [...known.filter((n) => found.includes(n)), ...found.filter((n) => !known.includes(n)).sort()];
}

function startService(name: string): Running {
  const settings = SERVICES[name];
  // The stack's defaults, overridden by what the caller exported; NATS is the stack's own when
  // it runs one (its users are made for it); the stack formats logs itself.
  const env: NodeJS.ProcessEnv = {
    ...settings?.env,
    ...process.env,
    ...stackNats?.envFor(name),
    LOG_PRETTY: 'false',
  };
  const portText = settings?.portVar ? env[settings.portVar] : undefined;
  const child = spawn(
    process.execPath,
    ['--conditions=source', '--import', 'tsx', join('services', name, 'src', 'main.ts')],
    // Its own process group: a Ctrl-C in the terminal reaches only the stack, which then
    // stops each service once, in order (a second signal would make a service exit at once).
    { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true },
  );
  for (const stream of [child.stdout!, child.stderr!]) {
    createInterface({ input: stream, crlfDelay: Infinity }).on('line', (line) =>
      console.log(formatLogLine(name, line)),
    );
  }
  const exited = new Promise<void>((resolve) => {
    child.once('exit', () => resolve());
    child.once('error', (err) => {
      say(`${name} could not be started`, { err: { type: err.name, message: err.message } }, 'error');
      resolve();
    });
  });
  return { name, child, exited, port: portText ? Number(portText) : undefined };
}

/** Whether something already accepts connections on 127.0.0.1:port. */
function portInUse(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = new Socket();
    const done = (used: boolean) => {
      socket.destroy();
      resolve(used);
    };
    socket.setTimeout(1_000, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
    socket.connect(port, '127.0.0.1');
  });
}

async function waitReady(services: Running[]): Promise<string[]> {
  const until = Date.now() + READY_TIMEOUT_MS;
  const pending = new Set(services.filter((s) => s.port !== undefined));
  while (pending.size > 0 && Date.now() < until && !shuttingDown) {
    for (const s of [...pending]) {
      const ok = await fetch(`http://127.0.0.1:${s.port}/readyz`, { signal: AbortSignal.timeout(2_000) })
        .then((r) => r.ok)
        .catch(() => false);
      if (ok) pending.delete(s);
    }
    if (pending.size > 0) await new Promise((r) => setTimeout(r, 300));
  }
  return [...pending].map((s) => s.name);
}

let infraReady: Promise<Infra | undefined> = Promise.resolve(undefined);
const services: Running[] = [];
let shuttingDown = false;
let firstSignalAt = 0;

async function shutdown(reason: string, code: number): Promise<void> {
  shuttingDown = true;
  const alive = services.filter((s) => s.child.exitCode === null && s.child.signalCode === null);
  if (alive.length > 0) {
    say(`stopping ${alive.map((s) => s.name).join(', ')}`, { reason, timeoutMs: STOP_TIMEOUT_MS });
    for (const s of alive) s.child.kill('SIGTERM');
    const killer = setTimeout(() => {
      for (const s of alive) {
        if (s.child.exitCode === null && s.child.signalCode === null) {
          say(`${s.name} did not stop within ${STOP_TIMEOUT_MS / 1000} s: SIGKILL`, {}, 'warn');
          s.child.kill('SIGKILL');
        }
      }
    }, STOP_TIMEOUT_MS);
    await Promise.all(alive.map((s) => s.exited));
    clearTimeout(killer);
  }
  // A signal while the infrastructure is still starting waits for it, so it is stopped too.
  const infra = await infraReady;
  if (stackNats) {
    say(`stopping the stack's NATS on :${natsPort}`);
    await stackNats.stop();
  }
  if (infra && infra.started.length > 0) {
    say(`stopping the infrastructure this run started: ${infra.started.map((h) => h.name).join(', ')}`);
    await infra.stop();
  }
  say('stack stopped', { code });
  process.exit(code);
}

function onSignal(signal: NodeJS.Signals): void {
  if (!shuttingDown) {
    firstSignalAt = Date.now();
    void shutdown(signal, 0);
    return;
  }
  // One Ctrl-C can arrive twice (from the terminal and relayed by pnpm/tsx): only a later
  // one means "now".
  if (Date.now() - firstSignalAt < 2_000) return;
  say(`${signal} again: killing the services now`, {}, 'warn');
  for (const s of services) s.child.kill('SIGKILL');
}

async function main(): Promise<void> {
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, onSignal);
  process.on('exit', () => {
    for (const s of services) if (s.child.exitCode === null && s.child.signalCode === null) s.child.kill('SIGKILL');
  });

  const names = discoverServices();
  prefixWidth = Math.max(prefixWidth, ...names.map((n) => n.length));
  if (names.length === 0) {
    say('no services found (services/*/src/main.ts)', {}, 'error');
    process.exit(1);
  }

  const log = (line: string) => say(line.replace(/\s+/g, ' ').trim());
  infraReady = ensureInfra({ log, ...(openNats ? {} : { only: ['postgres', 'redis'] as const }) }).catch(
    (err: unknown) => {
      say('infrastructure is not available', {}, 'fatal');
      console.error(err instanceof InfraError ? err.message : err);
      process.exit(1);
    },
  );
  await infraReady;
  if (shuttingDown) return;
  if (!openNats) {
    const busyNats = [];
    for (const p of clusterNats ? [natsPort, natsPort + 1, natsPort + 2] : [natsPort])
      if (await portInUse(p)) busyNats.push(p);
    if (busyNats.length > 0) {
      say(`port ${busyNats.join(', ')} for the stack's NATS is in use (set STACK_NATS_PORT to another)`, {}, 'error');
      await shutdown('port in use', 1);
      return;
    }
    try {
      stackNats = await startStackNats({
        dataDir: DEFAULT_DATA_DIR,
        port: natsPort,
        prefix: process.env.REDRIVE_PREFIX ?? '',
        log,
        cluster: clusterNats,
      });
    } catch (err) {
      say("the stack's NATS did not start", {}, 'fatal');
      console.error(err instanceof InfraError ? err.message : err);
      await shutdown('NATS did not start', 1);
      return;
    }
    say(`NATS with authorization on ${stackNats.url}: each service has its own user`, {
      credentials: stackNats.credentialsFile,
    });
  } else {
    say('STACK_OPEN_NATS=true: NATS on :4222 without authorization (any local program may do anything)', {}, 'warn');
  }

  const busy: string[] = [];
  for (const name of names) {
    const portVar = SERVICES[name]?.portVar;
    const port = portVar ? (process.env[portVar] ?? SERVICES[name]!.env[portVar]) : undefined;
    if (port && (await portInUse(Number(port))))
      busy.push(`${name}: port ${port} is in use (set ${portVar} to another)`);
  }
  if (busy.length > 0) {
    for (const b of busy) say(b, {}, 'error');
    await shutdown('ports in use', 1);
    return;
  }

  for (const name of names) {
    if (!SERVICES[name]) {
      say(`${name} has no entry in scripts/stack.ts SERVICES: it runs with its own defaults`, {}, 'warn');
    }
    const s = startService(name);
    services.push(s);
    void s.exited.then(() => {
      const fields = { code: s.child.exitCode, signal: s.child.signalCode ?? undefined };
      if (shuttingDown) {
        say(`${name} exited`, fields);
        return;
      }
      say(`${name} exited unexpectedly`, fields, 'error');
      void shutdown(`${name} exited`, 1);
    });
  }
  say(`started ${names.join(', ')}; waiting until they are ready`);

  const notReady = await waitReady(services);
  if (shuttingDown) return;
  if (notReady.length > 0) say(`not ready after ${READY_TIMEOUT_MS / 1000} s: ${notReady.join(', ')}`, {}, 'warn');
  const lines = ['', 'Redrive is running:'];
  for (const s of services) {
    const where = s.port !== undefined ? `http://localhost:${s.port}` : '(no HTTP port)';
    lines.push(`  ${s.name.padEnd(prefixWidth)}  ${where.padEnd(24)} ${SERVICES[s.name]?.describe ?? ''}`);
  }
  const intake = services.find((s) => s.name === 'intake');
  if (intake?.port !== undefined) {
    if (anonymousIntake) {
      say(
        'intake runs with anonymous access (INTAKE_ALLOW_ANONYMOUS=true): no API key is needed, for local use only',
        {},
        'warn',
      );
    }
    lines.push(
      '',
      'Try it:',
      `  curl -XPOST localhost:${intake.port}/v1/jobs -H 'content-type: application/json' -d '{"type":"hello","payload":{"name":"Ada"}}'`,
    );
  }
  if (stackNats) {
    const producer = stackNats.userOf('producer');
    lines.push(
      '',
      `NATS: ${stackNats.url}, one user per service and for operators, viewers and producers; users and`,
      `passwords (made at the first start, mode 600) in ${display(stackNats.credentialsFile)}:`,
      `  set -a; . ${display(stackNats.credentialsFile)}; set +a`,
      `  nats -s "$REDRIVE_NATS_URL" --user ${producer.user} --password "$${producer.passwordVariable}" pub jobs.normal.hello '{"name":"Grace"}'`,
    );
  }
  lines.push('', 'Ctrl-C stops everything.', '');
  console.log(lines.join('\n'));
}

await main();
