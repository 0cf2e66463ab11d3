// A three-node NATS cluster with JetStream on 127.0.0.1, for the chaos suite's cluster mode
// (`pnpm test:chaos --cluster`): each node its own server name, store and free ports (client,
// cluster route, monitoring), all running the release from nats-binary.ts. Ready when every node
// answers /healthz and all agree on a JetStream meta leader. Each node can be SIGKILLed, stopped
// with SIGTERM and started again on the same ports and store; the cluster says which node is the
// meta leader (monitoring /jsz) and which leads a stream (the JetStream API's stream info).

import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, openSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, relative } from 'node:path';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { INFRA_HOST, InfraError, sleep, stopOnExit, tail } from './common.js';
import { natsServerBinary } from './nats-binary.js';

export interface ClusterNode {
  /** Its server name (`n1`, `n2`, `n3`), as the meta group and stream info name it. */
  readonly name: string;
  readonly clientPort: number;
  readonly routePort: number;
  readonly monitorPort: number;
  /** `nats://127.0.0.1:<clientPort>` */
  readonly url: string;
  readonly storeDir: string;
  /** Everything the node printed, across its restarts. */
  readonly logFile: string;
  /** The running process's id, or undefined while it is down. */
  readonly pid: number | undefined;
  readonly running: boolean;
  /** SIGKILL: no shutdown at all; resolves once the process is gone. */
  kill(): Promise<void>;
  /** SIGTERM (SIGKILL after 20 s); resolves once the process is gone. */
  stop(): Promise<void>;
  /** Starts it again on the same ports and store; resolves once it serves and is current. */
  start(): Promise<void>;
  /** Resolves once /healthz answers ok: JetStream runs and its meta group and assets are current. */
  waitCurrent(timeoutMs?: number): Promise<void>;
}

export interface NatsCluster {
  readonly nodes: readonly ClusterNode[];
  /** Every node's client URL, comma-separated (what NATS_URL takes). */
  readonly urls: string;
  node(name: string): ClusterNode;
  /** The meta leader all running nodes agree on (waits for one, up to `timeoutMs`). */
  metaLeader(timeoutMs?: number): Promise<ClusterNode>;
  /** The node leading `stream` per its stream info `cluster.leader` (waits for one, up to `timeoutMs`). */
  streamLeader(stream: string, timeoutMs?: number): Promise<ClusterNode>;
  /** Stops every node (SIGTERM); the stores are kept. */
  stop(): Promise<void>;
}

export interface ClusterOptions {
  /** Each node keeps its store under `<dataDir>/<name>` and writes `<dataDir>/<name>.log`. */
  dataDir: string;
  /** The cluster's name (default `redrive`). */
  name?: string;
  size?: number;
  log?: (line: string) => void;
  /** How long the cluster may take to elect a meta leader and every node to be current (default 60 s). */
  readyTimeoutMs?: number;
  /** The nodes' client ports, one per node (default: free ports); route and monitoring ports are free ones. */
  clientPorts?: readonly number[];
  /**
   * A configuration file every node includes (the authorization, say). streamLeader() connects
   * without credentials, so it answers only on a cluster without authorization.
   */
  include?: string;
}

/** A TCP port that was free a moment ago. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, INFRA_HOST, () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

interface Jsz {
  meta_cluster?: { leader?: string; cluster_size?: number };
}

async function monitoring<T>(port: number, path: string): Promise<{ status: number; body: T } | undefined> {
  try {
    const res = await fetch(`http://${INFRA_HOST}:${port}${path}`, { signal: AbortSignal.timeout(2_000) });
    return { status: res.status, body: (await res.json()) as T };
  } catch {
    return undefined;
  }
}

/** Starts the nodes together (each needs the others' routes to elect) and waits until they serve. */
export async function startNatsCluster(opts: ClusterOptions): Promise<NatsCluster> {
  const size = opts.size ?? 3;
  const clusterName = opts.name ?? 'redrive';
  const log = opts.log ?? (() => undefined);
  const readyTimeoutMs = opts.readyTimeoutMs ?? 60_000;
  const binary = await natsServerBinary(log);
  mkdirSync(opts.dataDir, { recursive: true });

  const specs: { name: string; clientPort: number; routePort: number; monitorPort: number }[] = [];
  const taken = new Set<number>(opts.clientPorts ?? []);
  const port = async () => {
    for (;;) {
      const p = await freePort();
      if (!taken.has(p)) return (taken.add(p), p);
    }
  };
  for (let i = 1; i <= size; i++)
    specs.push({
      name: `n${i}`,
      clientPort: opts.clientPorts?.[i - 1] ?? (await port()),
      routePort: await port(),
      monitorPort: await port(),
    });

  const nodes = specs.map((spec): ClusterNode => {
    const storeDir = join(opts.dataDir, spec.name);
    const logFile = join(opts.dataDir, `${spec.name}.log`);
    const configFile = join(opts.dataDir, `${spec.name}.conf`);
    const routes = specs.filter((s) => s !== spec).map((s) => `"nats-route://${INFRA_HOST}:${s.routePort}"`);
    mkdirSync(storeDir, { recursive: true });
    writeFileSync(
      configFile,
      [
        // nats-server resolves an include against the including file's folder.
        ...(opts.include ? [`include "${relative(opts.dataDir, opts.include)}"`] : []),
        `server_name: "${spec.name}"`,
        `listen: "${INFRA_HOST}:${spec.clientPort}"`,
        `http: "${INFRA_HOST}:${spec.monitorPort}"`,
        `jetstream { store_dir: "${storeDir}" }`,
        `cluster {`,
        `  name: "${clusterName}"`,
        `  listen: "${INFRA_HOST}:${spec.routePort}"`,
        `  routes: [${routes.join(', ')}]`,
        `}`,
        '',
      ].join('\n'),
    );
    let child: ChildProcess | undefined;
    let exited: Promise<void> = Promise.resolve();
    let forget: () => void = () => undefined;

    const gone = () => !child || child.exitCode !== null || child.signalCode !== null;
    const spawnIt = () => {
      const fd = openSync(logFile, 'a');
      try {
        child = spawn(binary, ['-c', configFile], { stdio: ['ignore', fd, fd], detached: true });
      } finally {
        closeSync(fd);
      }
      const c = child;
      exited = new Promise((resolveExit) => {
        c.once('error', () => resolveExit());
        c.once('exit', () => {
          forget();
          resolveExit();
        });
      });
      // Like the other servers started here: stopped when this process exits without stopping it.
      forget = stopOnExit(() => c.kill('SIGTERM'));
    };
    const signal = async (sig: NodeJS.Signals) => {
      if (gone()) return;
      child!.kill(sig);
      const killer = sig === 'SIGKILL' ? undefined : setTimeout(() => child?.kill('SIGKILL'), 20_000);
      await exited;
      clearTimeout(killer);
    };
    const waitCurrent = async (timeoutMs = readyTimeoutMs) => {
      const until = Date.now() + timeoutMs;
      let last = 'no answer';
      for (;;) {
        if (gone()) throw new InfraError(`nats ${spec.name} exited; see ${logFile}:\n${tail(logFile)}`);
        const health = await monitoring<{ status?: string; error?: string }>(spec.monitorPort, '/healthz');
        if (health?.status === 200 && health.body.status === 'ok') return;
        last = health ? `${health.status} ${health.body.error ?? health.body.status ?? ''}` : 'no answer';
        if (Date.now() > until)
          throw new InfraError(`nats ${spec.name} is not current after ${timeoutMs} ms (healthz: ${last})`);
        await sleep(200);
      }
    };
    return {
      ...spec,
      url: `nats://${INFRA_HOST}:${spec.clientPort}`,
      storeDir,
      logFile,
      get pid() {
        return gone() ? undefined : child!.pid;
      },
      get running() {
        return !gone();
      },
      kill: () => signal('SIGKILL'),
      stop: () => signal('SIGTERM'),
      start: async () => {
        if (!gone()) return;
        spawnIt();
        await waitCurrent();
      },
      waitCurrent,
    };
  });

  const node = (name: string) => {
    const n = nodes.find((x) => x.name === name);
    if (!n) throw new InfraError(`nats cluster has no node ${name}`);
    return n;
  };

  const metaLeader = async (timeoutMs = readyTimeoutMs) => {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const running = nodes.filter((n) => n.running);
      const said = await Promise.all(
        running.map(async (n) => (await monitoring<Jsz>(n.monitorPort, '/jsz'))?.body.meta_cluster?.leader),
      );
      const leader = said[0];
      if (leader && said.every((s) => s === leader) && running.some((n) => n.name === leader)) return node(leader);
      if (Date.now() > until)
        throw new InfraError(`nats cluster has no meta leader after ${timeoutMs} ms (nodes say ${said.join(', ')})`);
      await sleep(200);
    }
  };

  const streamLeader = async (stream: string, timeoutMs = readyTimeoutMs) => {
    const until = Date.now() + timeoutMs;
    const nc = await connect({
      servers: nodes.filter((n) => n.running).map((n) => n.url),
      name: 'redrive-infra',
      timeout: 3_000,
    });
    try {
      const jsm = await jetstreamManager(nc, { timeout: 3_000, checkAPI: false });
      let last = 'no answer';
      for (;;) {
        try {
          const leader = (await jsm.streams.info(stream)).cluster?.leader;
          if (leader && nodes.some((n) => n.name === leader && n.running)) return node(leader);
          last = `leader ${leader ?? 'none'}`;
        } catch (err) {
          last = (err as Error).message;
        }
        if (Date.now() > until)
          throw new InfraError(`stream ${stream} has no leader after ${timeoutMs} ms (last: ${last})`);
        await sleep(200);
      }
    } finally {
      await nc.close().catch(() => undefined);
    }
  };

  // Spawned together, then waited for together: no node is current before a meta leader exists.
  const starting = nodes.map((n) => n.start());
  const results = await Promise.allSettled(starting);
  const failed = results.find((r) => r.status === 'rejected');
  if (failed) {
    await Promise.all(nodes.map((n) => n.kill()));
    throw failed.reason;
  }
  const leader = await metaLeader();
  log(
    `nats     cluster ${clusterName}: ${nodes.map((n) => `${n.name} ${n.url}`).join(', ')}; meta leader ${leader.name}`,
  );

  return {
    nodes,
    urls: nodes.map((n) => n.url).join(','),
    node,
    metaLeader,
    streamLeader,
    stop: async () => {
      await Promise.all(nodes.map((n) => n.stop()));
    },
  };
}
