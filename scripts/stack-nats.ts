// The NATS of `pnpm stack`: a nats-server of its own with Redrive's authorization, as compose
// and Kubernetes run it (libs/messaging/src/permissions.ts): each service connects as its own
// user and may use only the subjects it needs. Passwords are random, made at the first start
// and kept (mode 600) in .stack/nats-secured/credentials.env, with the user names and the URL,
// so a shell or the `nats` CLI can use them (`set -a; . .stack/nats-secured/credentials.env`).

import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  NATS_PASSWORD_PATTERN,
  NATS_ROLES,
  natsPasswordVariable,
  natsUserName,
  renderNatsAuthConfig,
  type NatsRole,
  type ServiceRole,
} from '../libs/messaging/src/permissions.js';
import { securedNats } from './infra/index.js';
import { startNatsCluster } from './infra/nats-cluster.js';
import { randomNatsPassword } from './nats-config.js';

export interface StackNats {
  /** The server's URL; for a cluster every node's, comma-separated. */
  readonly url: string;
  /** Where the users, passwords and URL are written (mode 600). */
  readonly credentialsFile: string;
  /** Stops the server (or every node) and waits for it. */
  stop(): Promise<void>;
  /** NATS_URL, NATS_USER and NATS_PASSWORD for a service (its role), nothing for another program. */
  envFor(service: string): Record<string, string>;
  userOf(role: NatsRole): { user: string; passwordVariable: string };
}

/** KEY=value lines of an env file (no quoting: the values are made of letters, digits, - and _). */
function readEnvFile(file: string): Record<string, string> {
  if (!existsSync(file)) return {};
  const out: Record<string, string> = {};
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (m) out[m[1]!] = m[2]!;
  }
  return out;
}

function writePrivate(file: string, text: string): void {
  writeFileSync(file, text, { mode: 0o600 });
  chmodSync(file, 0o600);
}

/** Writes the configuration (and the passwords, the first time) and starts the server on `port`. */
export async function startStackNats(opts: {
  dataDir: string;
  port: number;
  prefix: string;
  log: (line: string) => void;
  /** Three clustered nodes on `port`, `port + 1` and `port + 2`, every stream at 3 replicas (`pnpm stack --cluster`). */
  cluster?: boolean;
}): Promise<StackNats> {
  const dir = join(opts.dataDir, 'nats-secured');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const credentialsFile = join(dir, 'credentials.env');
  const known = readEnvFile(credentialsFile);
  const password = (role: NatsRole) => {
    const v = natsPasswordVariable(opts.prefix, role);
    const p = known[v];
    return p && NATS_PASSWORD_PATTERN.test(p) ? p : (known[v] = randomNatsPassword());
  };
  const ports = opts.cluster ? [opts.port, opts.port + 1, opts.port + 2] : [opts.port];
  const url = ports.map((p) => `nats://127.0.0.1:${p}`).join(',');
  const lines = [
    '# pnpm stack: the NATS users of this machine, made at random (scripts/stack-nats.ts).',
    `REDRIVE_NATS_URL=${url}`,
    ...NATS_ROLES.flatMap((role) => [
      `${natsPasswordVariable(opts.prefix, role).replace('_PASSWORD_', '_USER_')}=${natsUserName(opts.prefix, role)}`,
      `${natsPasswordVariable(opts.prefix, role)}=${password(role)}`,
    ]),
  ];
  writePrivate(credentialsFile, `${lines.join('\n')}\n`);
  const configFile = join(dir, 'redrive-auth.conf');
  writePrivate(
    configFile,
    renderNatsAuthConfig({ prefixes: [opts.prefix], credential: ({ role }) => ({ password: password(role) }) }),
  );
  const stop = opts.cluster
    ? (
        await startNatsCluster({
          dataDir: join(dir, 'cluster'),
          include: configFile,
          clientPorts: ports,
          log: opts.log,
        })
      ).stop
    : (
        await securedNats(configFile).start(opts.port, {
          dataDir: dir,
          detached: false,
          log: opts.log,
          readyTimeoutMs: 60_000,
        })
      ).stop;
  const services: readonly string[] = [
    'intake',
    'sync-worker',
    'retry-scheduler',
    'dlq-manager',
  ] satisfies ServiceRole[];
  return {
    url,
    credentialsFile,
    stop,
    envFor: (service): Record<string, string> => {
      if (!services.includes(service)) return {};
      const role = service as ServiceRole;
      return {
        NATS_URL: url,
        NATS_USER: natsUserName(opts.prefix, role),
        NATS_PASSWORD: password(role),
        ...(opts.cluster ? { STREAM_REPLICAS: '3' } : {}),
      };
    },
    userOf: (role) => ({
      user: natsUserName(opts.prefix, role),
      passwordVariable: natsPasswordVariable(opts.prefix, role),
    }),
  };
}
