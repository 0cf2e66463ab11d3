import { createServer, Socket, type Server } from 'node:net';
import { freePort } from './ports.js';

/** A TCP proxy a test controls, to cut a service off from a server (Postgres, say) and back. */
export interface FaultProxy {
  readonly port: number;
  /** Connections currently forwarded. */
  readonly open: number;
  /**
   * Cuts the link: every open connection is reset, and new ones are reset as soon as they
   * arrive (the client sees ECONNRESET), until resume().
   */
  pause(): void;
  /** Forwards new connections again. */
  resume(): void;
  close(): Promise<void>;
}

/** Starts a proxy on a free 127.0.0.1 port that forwards to `target`. */
export async function startFaultProxy(target: { host?: string; port: number }): Promise<FaultProxy> {
  const port = await freePort();
  const pairs = new Set<[Socket, Socket]>();
  let paused = false;

  const reset = (s: Socket) => {
    if (!s.destroyed) s.resetAndDestroy();
  };

  const server: Server = createServer((client) => {
    if (paused) {
      reset(client);
      return;
    }
    const upstream = new Socket();
    const pair: [Socket, Socket] = [client, upstream];
    pairs.add(pair);
    const end = () => {
      pairs.delete(pair);
      reset(client);
      reset(upstream);
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
    upstream.connect(target.port, target.host ?? '127.0.0.1', () => {
      client.pipe(upstream);
      upstream.pipe(client);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });

  return {
    port,
    get open() {
      return pairs.size;
    },
    pause() {
      paused = true;
      for (const [a, b] of [...pairs]) {
        reset(a);
        reset(b);
      }
      pairs.clear();
    },
    resume() {
      paused = false;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const [a, b] of pairs) {
          reset(a);
          reset(b);
        }
        server.close(() => resolve());
      }),
  };
}
