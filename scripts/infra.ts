// Local infrastructure for development and CI: NATS (JetStream), Postgres and Redis on
// 127.0.0.1. Whatever already answers on its port is used as it is; whatever does not is
// started from the installed binaries with its data under one directory (default .stack/).
//
// Used by `pnpm stack` (attached: what it started stops with it) and by `pnpm infra:up`
// (detached: what it started keeps running after the script exits, as CI needs).

import { createHash } from 'node:crypto';
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import {
  chmodSync,
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  realpathSync,
  statSync,
} from 'node:fs';
import { Socket } from 'node:net';
import { delimiter, dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const DEFAULT_DATA_DIR = join(REPO_ROOT, '.stack');
export const INFRA_HOST = '127.0.0.1';

export type InfraName = 'nats' | 'postgres' | 'redis';
export const INFRA_NAMES: readonly InfraName[] = ['nats', 'postgres', 'redis'];
export const DEFAULT_PORTS: Readonly<Record<InfraName, number>> = { nats: 4222, postgres: 5432, redis: 6379 };

export interface InfraOptions {
  /** Where started servers keep their data and logs (default `<repo>/.stack`). */
  dataDir?: string;
  /** Started servers outlive this process (CI); otherwise they stop when it exits. */
  detached?: boolean;
  /** Receives one human-readable line per event (default: console.log with an "infra" prefix). */
  log?: (line: string) => void;
  /** Other ports than the standard ones (tests of this module). */
  ports?: Partial<Record<InfraName, number>>;
  /** How long a server may take to accept connections once started (default 60 s). */
  readyTimeoutMs?: number;
}

/** A server that ensureInfra started. */
export interface InfraHandle {
  readonly name: InfraName;
  readonly port: number;
  /** The server's process id (for Postgres: the postmaster's). */
  readonly pid: number | undefined;
  readonly dataDir: string;
  readonly logFile: string;
  /** Stops the server gracefully and waits for it to exit. Safe to call twice. */
  stop(): Promise<void>;
}

export interface InfraStatus {
  readonly name: InfraName;
  readonly port: number;
  /** `running`: found already accepting connections; `started`: started by this call. */
  readonly state: 'running' | 'started';
  /** What answered, e.g. "nats-server 2.9.10, JetStream on". */
  readonly detail: string;
}

export interface Infra {
  readonly statuses: readonly InfraStatus[];
  /** What this call started, in start order; what was already running is not here. */
  readonly started: readonly InfraHandle[];
  /** Stops everything this call started (last started first); leaves what was already running. */
  stop(): Promise<void>;
}

export class InfraError extends Error {
  override readonly name = 'InfraError';
}

const defaultLog = (line: string) => console.log(`infra  ${line}`);

/**
 * Makes sure NATS with JetStream, Postgres and Redis accept connections on 127.0.0.1,
 * starting whichever is not running. Throws InfraError (after stopping what it started,
 * unless detached) when one cannot be reached or started.
 */
export async function ensureInfra(opts: InfraOptions = {}): Promise<Infra> {
  const dataDir = resolve(opts.dataDir ?? DEFAULT_DATA_DIR);
  const log = opts.log ?? defaultLog;
  const detached = opts.detached ?? false;
  const readyTimeoutMs = opts.readyTimeoutMs ?? 60_000;
  const ports = { ...DEFAULT_PORTS, ...opts.ports };
  const ctx: StartContext = { dataDir, detached, log, readyTimeoutMs };

  const results = await Promise.allSettled(
    INFRA_NAMES.map(async (name): Promise<{ status: InfraStatus; handle?: InfraHandle }> => {
      const port = ports[name];
      const where = `${pad(name)} ${INFRA_HOST}:${port}`;
      let probe = await PROBES[name](port);
      if (probe.state === 'starting') {
        log(`${where}  answers but is not ready yet (${probe.detail}); waiting`);
        probe = await waitReady(name, port, readyTimeoutMs);
      }
      if (probe.state === 'ready') {
        log(`${where}  already running: ${probe.detail} (left as it is)`);
        return { status: { name, port, state: 'running', detail: probe.detail } };
      }
      if (probe.state === 'foreign') {
        throw new InfraError(`${name}: something else listens on ${INFRA_HOST}:${port}: ${probe.detail}`);
      }
      log(`${where}  not running: starting it`);
      const handle = await STARTERS[name](port, ctx);
      const ready = await PROBES[name](port);
      log(
        `${where}  started: ${ready.detail} (pid ${handle.pid ?? '?'}, data ${display(handle.dataDir)}, log ${display(handle.logFile)})`,
      );
      return { status: { name, port, state: 'started', detail: ready.detail }, handle };
    }),
  );

  const started = results.flatMap((r) => (r.status === 'fulfilled' && r.value.handle ? [r.value.handle] : []));
  const stopAll = async () => {
    for (const h of [...started].reverse()) {
      try {
        await h.stop();
        log(`${pad(h.name)} ${INFRA_HOST}:${h.port}  stopped`);
      } catch (err) {
        log(`${pad(h.name)} ${INFRA_HOST}:${h.port}  failed to stop: ${(err as Error).message}`);
      }
    }
  };
  const failures = results.flatMap((r) => (r.status === 'rejected' ? [r.reason as unknown] : []));
  if (failures.length > 0) {
    if (!detached) await stopAll();
    throw new InfraError(failures.map((e) => (e instanceof Error ? e.message : String(e))).join('\n'));
  }
  return {
    statuses: results.map((r) => (r as PromiseFulfilledResult<{ status: InfraStatus }>).value.status),
    started,
    stop: stopAll,
  };
}

// ---------------------------------------------------------------------------------------
// Probes: a short conversation in each server's own protocol, so "ready" means it really
// serves requests, not only that a port is open.

type ProbeResult =
  | { state: 'down'; detail: string } // nothing listens
  | { state: 'starting'; detail: string } // it listens but does not serve yet
  | { state: 'ready'; detail: string }
  | { state: 'foreign'; detail: string }; // it listens but is not what we expect

type Probe = (port: number) => Promise<ProbeResult>;

interface Conversation {
  /** Called with everything received so far; returns a verdict or undefined to keep reading. */
  onData(received: Buffer, write: (b: Buffer) => void): ProbeResult | undefined;
  opening?: Buffer;
}

function converse(port: number, conv: Conversation, timeoutMs = 3_000): Promise<ProbeResult> {
  return new Promise((resolvePromise) => {
    const socket = new Socket();
    let received = Buffer.alloc(0);
    let connected = false;
    let done = false;
    const finish = (r: ProbeResult) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolvePromise(r);
    };
    const timer = setTimeout(
      () => finish(connected ? { state: 'starting', detail: 'no answer yet' } : { state: 'down', detail: 'timeout' }),
      timeoutMs,
    );
    socket.once('connect', () => {
      connected = true;
      if (conv.opening) socket.write(conv.opening);
    });
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      let verdict: ProbeResult | undefined;
      try {
        verdict = conv.onData(received, (b) => socket.write(b));
      } catch (err) {
        verdict = { state: 'foreign', detail: `unexpected answer (${(err as Error).message})` };
      }
      if (verdict) finish(verdict);
    });
    // Reset or closed after connecting: a server still starting (or stopping) does that.
    socket.once('error', (err: NodeJS.ErrnoException) =>
      finish({ state: connected ? 'starting' : 'down', detail: err.code ?? err.message }),
    );
    socket.once('close', () => finish({ state: connected ? 'starting' : 'down', detail: 'connection closed' }));
    socket.connect(port, INFRA_HOST);
  });
}

/** NATS greets every client with an INFO line that says whether JetStream is on. */
const probeNats: Probe = (port) =>
  converse(port, {
    onData(received) {
      const end = received.indexOf('\r\n');
      if (end < 0) return received.length > 65_536 ? { state: 'foreign', detail: 'not a NATS server' } : undefined;
      const line = received.subarray(0, end).toString('utf8');
      if (!line.startsWith('INFO ')) return { state: 'foreign', detail: `not a NATS server (it said "${line}")` };
      const info = JSON.parse(line.slice(5)) as { version?: string; jetstream?: boolean };
      if (!info.jetstream) {
        return {
          state: 'foreign',
          detail: `nats-server ${info.version ?? '?'} runs without JetStream: restart it with -js`,
        };
      }
      return { state: 'ready', detail: `nats-server ${info.version ?? '?'}, JetStream on` };
    },
  });

/** Redis answers PING with +PONG (or -LOADING while it reads its data back). */
const probeRedis: Probe = (port) =>
  converse(port, {
    opening: Buffer.from('PING\r\n'),
    onData(received) {
      const end = received.indexOf('\r\n');
      if (end < 0) return undefined;
      const line = received.subarray(0, end).toString('utf8');
      if (line === '+PONG') return { state: 'ready', detail: 'redis answers PING' };
      if (line.startsWith('-LOADING')) return { state: 'starting', detail: 'loading its data' };
      if (line.startsWith('-')) return { state: 'ready', detail: `redis answers PING with "${line.slice(1)}"` };
      return { state: 'foreign', detail: `not a Redis server (it said "${line}")` };
    },
  });

/**
 * Postgres: a protocol-3 start-up as user postgres, then `SELECT 1`. A server that asks for
 * a password or refuses the role is up (credentials are the caller's business); one that
 * says "the database system is starting up" (57P03) is not yet.
 */
const probePostgres: Probe = (port) => {
  const params = Buffer.from('user\0postgres\0database\0postgres\0application_name\0redrive-infra\0\0');
  const startup = Buffer.alloc(8 + params.length);
  startup.writeInt32BE(startup.length, 0);
  startup.writeInt32BE(196_608, 4); // protocol 3.0
  params.copy(startup, 8);
  const query = Buffer.from('SELECT 1\0');
  const queryMsg = Buffer.alloc(5 + query.length);
  queryMsg.write('Q', 0);
  queryMsg.writeInt32BE(4 + query.length, 1);
  query.copy(queryMsg, 5);
  let offset = 0;
  let version = '?';
  let queried = false;
  return converse(port, {
    opening: startup,
    onData(received, write) {
      while (received.length >= offset + 5) {
        const type = String.fromCharCode(received[offset]!);
        const length = received.readInt32BE(offset + 1);
        if (length < 4 || length > 1_000_000) return { state: 'foreign', detail: 'not a Postgres server' };
        if (received.length < offset + 1 + length) return undefined;
        const body = received.subarray(offset + 5, offset + 1 + length);
        offset += 1 + length;
        if (type === 'R') {
          const code = body.readInt32BE(0);
          if (code !== 0) return { state: 'ready', detail: `postgres asks for a password (auth method ${code})` };
        } else if (type === 'S') {
          const [key, value] = body.toString('utf8').split('\0');
          if (key === 'server_version' && value) version = value.split(' ')[0] ?? value;
        } else if (type === 'E') {
          const fields = new Map<string, string>();
          for (const f of body.toString('utf8').split('\0')) if (f) fields.set(f[0]!, f.slice(1));
          const code = fields.get('C') ?? '';
          const message = fields.get('M') ?? 'error';
          if (code === '57P03') return { state: 'starting', detail: message };
          return { state: 'ready', detail: `postgres answers: ${message}` };
        } else if (type === 'Z') {
          if (queried) {
            write(Buffer.from([0x58, 0, 0, 0, 4])); // Terminate
            return { state: 'ready', detail: `postgres ${version}, SELECT 1 ok` };
          }
          queried = true;
          write(queryMsg);
        }
      }
      return undefined;
    },
  });
};

const PROBES: Record<InfraName, Probe> = { nats: probeNats, postgres: probePostgres, redis: probeRedis };

async function waitReady(
  name: InfraName,
  port: number,
  timeoutMs: number,
  exited?: () => string | undefined,
): Promise<ProbeResult> {
  const until = Date.now() + timeoutMs;
  let last: ProbeResult = { state: 'down', detail: 'not probed' };
  for (;;) {
    last = await PROBES[name](port);
    if (last.state === 'ready' || last.state === 'foreign') return last;
    const gone = exited?.();
    if (gone) throw new InfraError(`${name}: ${gone}`);
    if (Date.now() > until) {
      throw new InfraError(
        `${name}: not accepting connections on ${INFRA_HOST}:${port} after ${timeoutMs} ms (last: ${last.detail})`,
      );
    }
    await sleep(200);
  }
}

// ---------------------------------------------------------------------------------------
// Starting servers.

interface StartContext {
  dataDir: string;
  detached: boolean;
  log: (line: string) => void;
  readyTimeoutMs: number;
}

type Starter = (port: number, ctx: StartContext) => Promise<InfraHandle>;

const startNats: Starter = (port, ctx) => {
  const dir = join(ctx.dataDir, 'nats');
  return startProcess('nats', port, ctx, dir, join(ctx.dataDir, 'nats.log'), 'nats-server', [
    '-js',
    '-a',
    INFRA_HOST,
    '-p',
    String(port),
    '-sd',
    dir,
  ]);
};

const startRedis: Starter = (port, ctx) => {
  const dir = join(ctx.dataDir, 'redis');
  return startProcess('redis', port, ctx, dir, join(ctx.dataDir, 'redis.log'), 'redis-server', [
    '--bind',
    INFRA_HOST,
    '--port',
    String(port),
    '--dir',
    dir,
    '--appendonly',
    'yes',
    '--appendfsync',
    'everysec',
    '--save',
    '',
  ]);
};

/** Processes this module started attached; killed if this process exits without stopping them. */
const attachedChildren = new Set<ChildProcess>();
let exitHookInstalled = false;
const attachedPostgres = new Set<() => void>();

function installExitHook() {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const child of attachedChildren) child.kill('SIGTERM');
    for (const stop of attachedPostgres) stop();
  });
}

async function startProcess(
  name: InfraName,
  port: number,
  ctx: StartContext,
  dir: string,
  logFile: string,
  command: string,
  args: string[],
): Promise<InfraHandle> {
  mkdirSync(dir, { recursive: true });
  const fd = openSync(logFile, 'a');
  let child: ChildProcess;
  try {
    // Always its own process group: a Ctrl-C in the terminal must not reach it before the
    // services that use it have drained; the caller stops it in order.
    child = spawn(command, args, { stdio: ['ignore', fd, fd], detached: true });
  } finally {
    closeSync(fd);
  }
  let exit: string | undefined;
  const exited = new Promise<void>((resolveExit) => {
    child.once('error', (err: NodeJS.ErrnoException) => {
      exit =
        err.code === 'ENOENT'
          ? `${command} is not installed (not found on PATH)`
          : `${command} could not be started: ${err.message}`;
      resolveExit();
    });
    child.once('exit', (code, signal) => {
      exit ??= `${command} exited (${signal ?? `code ${code}`}) before accepting connections; see ${logFile}:\n${tail(logFile)}`;
      attachedChildren.delete(child);
      resolveExit();
    });
  });
  if (ctx.detached) child.unref();
  else {
    attachedChildren.add(child);
    installExitHook();
  }
  try {
    await waitReady(name, port, ctx.readyTimeoutMs, () => exit);
  } catch (err) {
    if (!exit) child.kill('SIGKILL');
    throw err;
  }
  let stopping: Promise<void> | undefined;
  return {
    name,
    port,
    pid: child.pid,
    dataDir: dir,
    logFile,
    stop: () =>
      (stopping ??= (async () => {
        if (child.exitCode !== null || child.signalCode !== null) return;
        child.kill('SIGTERM');
        const killer = setTimeout(() => child.kill('SIGKILL'), 20_000);
        await exited;
        clearTimeout(killer);
      })()),
  };
}

const startPostgres: Starter = async (port, ctx) => {
  const asRoot = process.getuid?.() === 0;
  mkdirSync(ctx.dataDir, { recursive: true });
  let pgDir = join(ctx.dataDir, 'pg');
  let owner: { uid: number; gid: number } | undefined;
  if (asRoot) {
    // Postgres refuses to run as root: run it as the postgres user, which must be able to
    // reach its data directory.
    owner = postgresUser();
    if (!runsAsPostgres('test', ['-x', ctx.dataDir])) {
      // One fallback per data directory: two stacks (or a stack and the chaos suite) must
      // never share a database by accident.
      const fallback = `/tmp/redrive-pg-${createHash('sha256').update(resolve(ctx.dataDir)).digest('hex').slice(0, 12)}`;
      ctx.log(`${pad('postgres')} the postgres user cannot reach ${ctx.dataDir}; its data goes to ${fallback}`);
      pgDir = fallback;
    }
  }
  const bin = findPostgresBin(pgDir);
  mkdirSync(pgDir, { recursive: true, mode: 0o700 });
  if (owner) {
    const st = statSync(pgDir);
    if (st.uid !== owner.uid) await run('chown', ['-R', `${owner.uid}:${owner.gid}`, pgDir], false);
  }
  chmodSync(pgDir, 0o700);
  const logFile = join(pgDir, 'log');

  if (!existsSync(join(pgDir, 'PG_VERSION'))) {
    if (readdirSync(pgDir).length > 0) {
      throw new InfraError(`postgres: ${pgDir} is neither empty nor a Postgres data directory; move it away`);
    }
    ctx.log(`${pad('postgres')} initdb ${display(pgDir)}`);
    await run(join(bin, 'initdb'), ['-D', pgDir, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--locale=C'], asRoot);
  }
  // A socket path longer than 107 bytes is rejected by the kernel: use /tmp for deep paths.
  const socketDir = join(pgDir, '.s.PGSQL.00000').length < 100 ? pgDir : '/tmp';
  const serverOptions = `-p ${port} -k ${shellQuote(socketDir)} -c listen_addresses=${INFRA_HOST}`;
  const pgCtl = join(bin, 'pg_ctl');
  try {
    await run(pgCtl, ['-D', pgDir, '-o', serverOptions, '-l', logFile, '-w', '-t', '60', 'start'], asRoot);
  } catch (err) {
    throw new InfraError(`postgres: pg_ctl start failed: ${(err as Error).message}\n${tail(logFile)}`);
  }
  await waitReady('postgres', port, ctx.readyTimeoutMs);

  const stopSync = () => {
    const [cmd, args] = asPostgres(pgCtl, ['-D', pgDir, '-m', 'fast', '-w', 'stop'], asRoot);
    spawnSync(cmd, args, { stdio: 'ignore', cwd: '/' });
  };
  if (!ctx.detached) {
    attachedPostgres.add(stopSync);
    installExitHook();
  }
  let stopping: Promise<void> | undefined;
  return {
    name: 'postgres',
    port,
    pid: postmasterPid(pgDir),
    dataDir: pgDir,
    logFile,
    stop: () =>
      (stopping ??= (async () => {
        attachedPostgres.delete(stopSync);
        if (postmasterPid(pgDir) === undefined) return;
        await run(pgCtl, ['-D', pgDir, '-m', 'fast', '-w', '-t', '60', 'stop'], asRoot);
      })()),
  };
};

const STARTERS: Record<InfraName, Starter> = { nats: startNats, postgres: startPostgres, redis: startRedis };

function postmasterPid(pgDir: string): number | undefined {
  try {
    const pid = Number(readFileSync(join(pgDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
    return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

function postgresUser(): { uid: number; gid: number } {
  let passwd = '';
  try {
    passwd = readFileSync('/etc/passwd', 'utf8');
  } catch {
    // no passwd file: no postgres user either
  }
  const entry = passwd
    .split('\n')
    .map((line) => line.split(':'))
    .find((f) => f[0] === 'postgres');
  if (!entry) {
    throw new InfraError(
      'postgres: running as root, and Postgres refuses to run as root, but there is no "postgres" user to run it as ' +
        '(create one: useradd --system --user-group postgres)',
    );
  }
  return { uid: Number(entry[2]), gid: Number(entry[3]) };
}

function runsAsPostgres(command: string, args: string[]): boolean {
  const r = spawnSync('runuser', ['-u', 'postgres', '--', command, ...args], { stdio: 'ignore', cwd: '/' });
  if (r.error)
    throw new InfraError(
      `postgres: running as root needs runuser (util-linux) to run Postgres as postgres: ${r.error.message}`,
    );
  return r.status === 0;
}

function asPostgres(command: string, args: string[], asRoot: boolean): [string, string[]] {
  return asRoot ? ['runuser', ['-u', 'postgres', '--', command, ...args]] : [command, args];
}

/** Runs a command to completion (as postgres when asked); rejects with its output on failure. */
function run(command: string, args: string[], asPostgresUser: boolean): Promise<string> {
  const [cmd, argv] = asPostgres(command, args, asPostgresUser);
  return new Promise((resolveRun, reject) => {
    execFile(cmd, argv, { cwd: '/', encoding: 'utf8', maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${[cmd, ...argv].join(' ')}: ${(stderr || stdout || err.message).trim()}`));
      else resolveRun(stdout);
    });
  });
}

/**
 * The directory with initdb and pg_ctl: the version matching an existing data directory,
 * else `pg_config --bindir`, else the newest /usr/lib/postgresql/<v>/bin, else initdb on PATH.
 */
function findPostgresBin(pgDir: string): string {
  const has = (dir: string) => existsSync(join(dir, 'initdb')) && existsSync(join(dir, 'pg_ctl'));
  const candidates: string[] = [];
  const versionFile = join(pgDir, 'PG_VERSION');
  if (existsSync(versionFile)) {
    candidates.push(`/usr/lib/postgresql/${readFileSync(versionFile, 'utf8').trim()}/bin`);
  }
  const pgConfig = spawnSync('pg_config', ['--bindir'], { encoding: 'utf8' });
  if (pgConfig.status === 0) candidates.push(pgConfig.stdout.trim());
  if (existsSync('/usr/lib/postgresql')) {
    const versions = readdirSync('/usr/lib/postgresql')
      .filter((v) => /^\d+(\.\d+)?$/.test(v))
      .sort((a, b) => Number(b) - Number(a));
    candidates.push(...versions.map((v) => `/usr/lib/postgresql/${v}/bin`));
  }
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir && existsSync(join(dir, 'initdb'))) candidates.push(dirname(realpathSync(join(dir, 'initdb'))), dir);
  }
  const found = candidates.find(has);
  if (!found) {
    throw new InfraError(
      'postgres: no Postgres server binaries found (looked at pg_config --bindir, /usr/lib/postgresql/*/bin and PATH); ' +
        'install them (apt-get install postgresql)',
    );
  }
  return found;
}

// ---------------------------------------------------------------------------------------

function tail(file: string, lines = 15): string {
  try {
    return readFileSync(file, 'utf8')
      .trimEnd()
      .split('\n')
      .slice(-lines)
      .map((l) => `    ${l}`)
      .join('\n');
  } catch {
    return `    (no log at ${file})`;
  }
}

function shellQuote(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

function pad(name: string): string {
  return name.padEnd(8);
}

function display(path: string): string {
  const rel = relative(process.cwd(), path);
  return rel && !rel.startsWith('..') ? rel : path;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
