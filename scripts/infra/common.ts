// What the three servers share: the vocabulary (probe results, handles, errors), waiting until
// a server serves, and running a server as a child process that stops with this one.

import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';

export const INFRA_HOST = '127.0.0.1';

export type InfraName = 'nats' | 'postgres' | 'redis';

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

export class InfraError extends Error {
  override readonly name = 'InfraError';
}

/** What one round trip with a server's own client says about it. */
export type ProbeResult =
  | { state: 'down'; detail: string } // nothing listens
  | { state: 'starting'; detail: string } // it listens but does not serve yet
  | { state: 'ready'; detail: string }
  | { state: 'foreign'; detail: string }; // it listens but is not what we expect

export interface StartContext {
  dataDir: string;
  detached: boolean;
  log: (line: string) => void;
  readyTimeoutMs: number;
}

/** One kind of server: how to tell that it serves, and how to start it. */
export interface Server {
  readonly name: InfraName;
  /** What a ready server is, for messages ("NATS with JetStream"). */
  readonly serves: string;
  /** Connects with the real client and makes one request; never throws. */
  probe(port: number): Promise<ProbeResult>;
  /** Starts it on the port and resolves once it serves (or throws InfraError). */
  start(port: number, ctx: StartContext): Promise<InfraHandle>;
}

/** How long a probe's client may take to connect, and then to get its answer. */
export const PROBE_TIMEOUT_MS = 3_000;
const PROBE_GUARD_MS = 2 * PROBE_TIMEOUT_MS + 1_000;

/** A probe that settles in time even if a client hangs (its connection is closed later). */
export async function probeWithin(server: Server, port: number): Promise<ProbeResult> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<ProbeResult>((resolveLate) => {
    timer = setTimeout(
      () => resolveLate({ state: 'starting', detail: `no answer within ${PROBE_GUARD_MS} ms` }),
      PROBE_GUARD_MS,
    );
  });
  try {
    return await Promise.race([
      server.probe(port).catch((err: unknown) => ({ state: 'starting' as const, detail: describeError(err) })),
      late,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Probes until the server serves (or turns out to be something else). `exited` reports a
 * started process that died, so that is said at once instead of after the timeout.
 */
export async function waitReady(
  server: Server,
  port: number,
  timeoutMs: number,
  exited?: () => string | undefined,
): Promise<ProbeResult> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const last = await probeWithin(server, port);
    if (last.state === 'ready' || last.state === 'foreign') return last;
    const gone = exited?.();
    if (gone) throw new InfraError(`${server.name}: ${gone}`);
    if (Date.now() > until) {
      const where = `${INFRA_HOST}:${port}`;
      throw new InfraError(
        last.state === 'down'
          ? `${server.name}: nothing accepts connections on ${where} after ${timeoutMs} ms (last: ${last.detail})`
          : `${server.name}: something listens on ${where} but does not serve as ${server.serves} after ${timeoutMs} ms ` +
              `(last: ${last.detail}); if another program holds the port, stop it or free the port`,
      );
    }
    await sleep(200);
  }
}

/** Refused: nothing listens (the code may sit on the error's cause, as nats.js puts it). */
export function isRefused(err: unknown): boolean {
  for (let e = err as { code?: unknown; cause?: unknown } | undefined, depth = 0; e && depth < 5; depth++) {
    if (e.code === 'ECONNREFUSED') return true;
    e = e.cause as typeof e;
  }
  return false;
}

export function describeError(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const cause = err.cause instanceof Error && err.cause.message !== err.message ? ` (${err.cause.message})` : '';
  return `${err.message}${cause}`;
}

// ---------------------------------------------------------------------------------------
// Attached servers stop when this process exits, even without stop() being called.

const onExit = new Set<() => void>();
let exitHookInstalled = false;

/** Runs `stop` (synchronously) when this process exits; returns what cancels that. */
export function stopOnExit(stop: () => void): () => void {
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.once('exit', () => {
      for (const s of onExit) s();
    });
  }
  onExit.add(stop);
  return () => onExit.delete(stop);
}

/** A server that runs as one process of its own binary. */
export interface ProcessServerSpec extends Omit<Server, 'start'> {
  /** The binary, looked up on PATH, or what finds it when the server starts. */
  readonly command: string | ((log: (line: string) => void) => Promise<string>);
  /** How to install it, said when it is missing. */
  readonly install: string;
  /** Its arguments, given its port and its data directory. */
  args(port: number, dir: string): string[];
}

/** A server run from its binary, its data in `<dataDir>/<name>`, its output in `<dataDir>/<name>.log`. */
export function processServer(spec: ProcessServerSpec): Server {
  const server: Server = {
    name: spec.name,
    serves: spec.serves,
    probe: spec.probe,
    start: (port, ctx) => startProcess(server, spec, port, ctx),
  };
  return server;
}

/** Starts the binary and waits until it serves. */
async function startProcess(
  server: Server,
  spec: ProcessServerSpec,
  port: number,
  ctx: StartContext,
): Promise<InfraHandle> {
  const { install } = spec;
  const command = typeof spec.command === 'string' ? spec.command : await spec.command(ctx.log);
  const dir = join(ctx.dataDir, spec.name);
  const logFile = join(ctx.dataDir, `${spec.name}.log`);
  const args = spec.args(port, dir);
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
  let forgetOnExit: () => void = () => undefined;
  const exited = new Promise<void>((resolveExit) => {
    child.once('error', (err: NodeJS.ErrnoException) => {
      exit =
        err.code === 'ENOENT'
          ? `${command} is not installed (not found on PATH); install it: ${install}`
          : `${command} could not be started: ${err.message}`;
      resolveExit();
    });
    child.once('exit', (code, signal) => {
      exit ??= `${command} exited (${signal ?? `code ${code}`}) before accepting connections; see ${logFile}:\n${tail(logFile)}`;
      forgetOnExit();
      resolveExit();
    });
  });
  if (ctx.detached) child.unref();
  else forgetOnExit = stopOnExit(() => child.kill('SIGTERM'));
  try {
    await waitReady(server, port, ctx.readyTimeoutMs, () => exit);
  } catch (err) {
    if (!exit) child.kill('SIGKILL');
    throw err;
  }
  let stopping: Promise<void> | undefined;
  return {
    name: server.name,
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

// ---------------------------------------------------------------------------------------

/** The last lines of a log file, indented, for an error message. */
export function tail(file: string, lines = 15): string {
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

export function pad(name: string): string {
  return name.padEnd(8);
}

/** A path as short as it can be said: relative when under the working directory. */
export function display(path: string): string {
  const rel = relative(process.cwd(), path);
  return rel && !rel.startsWith('..') ? rel : path;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
