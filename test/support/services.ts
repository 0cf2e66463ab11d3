import { spawn, type ChildProcess } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { waitFor } from './wait.js';

export const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

export type LogLine = Record<string, unknown> & { msg?: string; level?: string };

/** A service running as a real process from its TypeScript sources. */
export interface ServiceProcess {
  readonly proc: ChildProcess;
  readonly logs: LogLine[];
  /** Resolves with the first log line (past or future) that matches. */
  waitForLog(match: (line: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>;
  /** What the process wrote to stderr so far. */
  stderr(): string;
  /** Whether the process is gone, by itself or by a signal (a SIGKILL leaves exitCode null). */
  gone(): boolean;
  /** Resolves with the exit code once the process has exited by itself. */
  exited: Promise<number | null>;
  /** Sends a signal and resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** Starts services/<name>/src/main.ts with the given environment and collects its JSON log lines. */
export function startService(name: string, env: Record<string, string>): ServiceProcess {
  const proc = spawn(
    process.execPath,
    ['--conditions=source', '--import', 'tsx', join(REPO_ROOT, 'services', name, 'src', 'main.ts')],
    { cwd: REPO_ROOT, env: { ...process.env, LOG_LEVEL: 'debug', ...env }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const logs: LogLine[] = [];
  let buffered = '';
  proc.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    buffered += chunk;
    const lines = buffered.split('\n');
    buffered = lines.pop() ?? '';
    for (const line of lines) {
      try {
        logs.push(JSON.parse(line) as LogLine);
      } catch {
        logs.push({ msg: line, level: 'raw' });
      }
    }
  });
  let stderr = '';
  proc.stderr!.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  // Killed by a signal (a job that kills its worker), exitCode stays null: signalCode says it.
  const gone = () => proc.exitCode !== null || proc.signalCode !== null;
  return {
    proc,
    gone,
    logs,
    stderr: () => stderr,
    exited,
    waitForLog: (match, timeoutMs = 15_000) =>
      waitFor(
        () => {
          if (gone() && !logs.some(match)) {
            throw new Error(
              `${name} exited with ${proc.exitCode ?? proc.signalCode}: ${stderr.slice(-2000)} ${JSON.stringify(logs.slice(-5))}`,
            );
          }
          return logs.find(match);
        },
        { timeoutMs, what: `a log line from ${name}` },
      ),
    stop: async (signal = 'SIGTERM') => {
      if (proc.exitCode === null) proc.kill(signal);
      return exited;
    },
  };
}
