// Postgres: ready when the client connects as postgres and `SELECT 1` returns 1; started with
// initdb (trust authentication, first time only) and pg_ctl, its data under the data directory.
// Postgres refuses to run as root, so as root it runs as the postgres user (via runuser).

import { createHash } from 'node:crypto';
import { execFile, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { delimiter, dirname, join, resolve } from 'node:path';
import pg from 'pg';
import {
  describeError,
  display,
  INFRA_HOST,
  InfraError,
  isRefused,
  pad,
  PROBE_TIMEOUT_MS,
  stopOnExit,
  tail,
  waitReady,
  type InfraHandle,
  type ProbeResult,
  type Server,
  type StartContext,
} from './common.js';

/**
 * A server that refuses the role or asks for a password is up (credentials are the caller's
 * business); one that says "the database system is starting up" (57P03) is not yet.
 */
async function probe(port: number): Promise<ProbeResult> {
  const client = new pg.Client({
    host: INFRA_HOST,
    port,
    user: 'postgres',
    database: 'postgres',
    application_name: 'redrive-infra',
    connectionTimeoutMillis: PROBE_TIMEOUT_MS,
    query_timeout: PROBE_TIMEOUT_MS,
  });
  client.on('error', () => undefined); // a connection lost after the answer is not news
  try {
    await client.connect();
    const { rows } = await client.query<{ one: number; version: string }>(
      "SELECT 1 AS one, current_setting('server_version') AS version",
    );
    if (rows[0]?.one !== 1) return { state: 'foreign', detail: 'SELECT 1 did not return 1' };
    return { state: 'ready', detail: `postgres ${rows[0].version.split(' ')[0]}, SELECT 1 ok` };
  } catch (err) {
    if (isRefused(err)) return { state: 'down', detail: 'connection refused' };
    const code = (err as { code?: unknown }).code;
    const message = describeError(err);
    if (code === '57P03') return { state: 'starting', detail: message };
    if (typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code)) {
      return { state: 'ready', detail: `postgres answers: ${message}` };
    }
    if (/password/i.test(message)) return { state: 'ready', detail: 'postgres asks for a password' };
    return { state: 'starting', detail: `no Postgres answer: ${message}` };
  } finally {
    await client.end().catch(() => undefined);
  }
}

async function start(port: number, ctx: StartContext): Promise<InfraHandle> {
  const asRoot = process.getuid?.() === 0;
  mkdirSync(ctx.dataDir, { recursive: true });
  let pgDir = join(ctx.dataDir, 'pg');
  let owner: { uid: number; gid: number } | undefined;
  if (asRoot) {
    // The postgres user must be able to reach its data directory.
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
  await waitReady(postgres, port, ctx.readyTimeoutMs);

  let forgetOnExit: () => void = () => undefined;
  if (!ctx.detached) {
    forgetOnExit = stopOnExit(() => {
      const [cmd, args] = asPostgres(pgCtl, ['-D', pgDir, '-m', 'fast', '-w', 'stop'], asRoot);
      spawnSync(cmd, args, { stdio: 'ignore', cwd: '/' });
    });
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
        forgetOnExit();
        if (postmasterPid(pgDir) === undefined) return;
        await run(pgCtl, ['-D', pgDir, '-m', 'fast', '-w', '-t', '60', 'stop'], asRoot);
      })()),
  };
}

export const postgres: Server = { name: 'postgres', serves: 'Postgres', probe, start };

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
  if (r.error) {
    throw new InfraError(
      `postgres: running as root needs runuser (util-linux) to run Postgres as postgres: ${r.error.message}`,
    );
  }
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
        'install them (apt-get install postgresql, or brew install postgresql)',
    );
  }
  return found;
}

function shellQuote(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}
