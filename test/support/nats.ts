import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { connect } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/nats-core';
import { natsServerBinary } from '../../scripts/infra/nats-binary.js';
import { freePort, waitForPort } from './ports.js';

/** The shared development NATS (never stopped by tests). */
export const SHARED_NATS_URL = process.env.NATS_URL ?? 'nats://127.0.0.1:4222';

/** A name prefix no other test run uses: each test file gets its own streams and subjects. */
export function uniquePrefix(label = 't'): string {
  const clean = label.replace(/[^A-Za-z0-9]/g, '').slice(0, 12) || 't';
  return `${clean}${Date.now().toString(36)}${randomBytes(3).toString('hex')}`;
}

/**
 * Deletes every stream whose name starts with `${prefix}_`, and the KV buckets of the prefix
 * (`KV_${prefix}_…`, the PAUSES bucket): only what the test itself created.
 */
export async function deleteStreams(nc: NatsConnection, prefix: string): Promise<void> {
  const jsm = await jetstreamManager(nc);
  const names: string[] = [];
  for await (const name of jsm.streams.names())
    if (name.startsWith(`${prefix}_`) || name.startsWith(`KV_${prefix}_`)) names.push(name);
  await Promise.all(names.map((n) => jsm.streams.delete(n).catch(() => false)));
}

/** A private nats-server with JetStream on a free port and a temporary store. */
export interface PrivateNats {
  readonly url: string;
  readonly port: number;
  /** Stops the server (SIGTERM) and waits for it to exit; the store is kept. */
  stop(): Promise<void>;
  /** Starts it again on the same port with the same store. */
  start(): Promise<void>;
  /** Stops it and removes the store. */
  dispose(): Promise<void>;
}

/**
 * Starts one. `config` is a nats-server configuration file (authorization, say) used with the
 * flags, and `env` what it reads from its environment (the passwords it refers to).
 */
export async function startNatsServer(
  opts: { port?: number; config?: string; env?: Record<string, string> } = {},
): Promise<PrivateNats> {
  const port = opts.port ?? (await freePort());
  const store = mkdtempSync(join(tmpdir(), 'redrive-nats-'));
  let proc: ChildProcess | undefined;

  const start = async () => {
    const args = [...(opts.config ? ['-c', opts.config] : []), '-js', '-a', '127.0.0.1', '-p', String(port)];
    // The release Redrive needs (fetched once if PATH has an older one): scripts/infra/nats-binary.ts.
    proc = spawn(await natsServerBinary(() => undefined), [...args, '-sd', store], {
      stdio: 'ignore',
      ...(opts.env ? { env: { ...process.env, ...opts.env } } : {}),
    });
    await waitForPort(port);
  };
  const stop = async () => {
    const p = proc;
    proc = undefined;
    if (!p || p.exitCode !== null) return;
    const exited = new Promise((resolve) => p.once('exit', resolve));
    p.kill('SIGTERM');
    await exited;
  };
  await start();
  return {
    url: `nats://127.0.0.1:${port}`,
    port,
    stop,
    start,
    dispose: async () => {
      await stop();
      rmSync(store, { recursive: true, force: true });
    },
  };
}

/** A plain client connection for assertions (not through Redrive's code). */
export function connectTestClient(url = SHARED_NATS_URL): Promise<NatsConnection> {
  return connect({ servers: url, name: 'redrive-test' });
}
