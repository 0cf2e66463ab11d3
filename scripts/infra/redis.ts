// Redis: ready when the client connects and PING is answered; started as `redis-server` with
// an append-only file under the data directory.

import { Redis } from 'ioredis';
import { describeError, INFRA_HOST, isRefused, PROBE_TIMEOUT_MS, processServer, type ProbeResult } from './common.js';

async function probe(port: number): Promise<ProbeResult> {
  const client = new Redis({
    host: INFRA_HOST,
    port,
    lazyConnect: true,
    enableReadyCheck: false, // the ready check waits out -LOADING; this probe reports it
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    connectTimeout: PROBE_TIMEOUT_MS,
    commandTimeout: PROBE_TIMEOUT_MS,
  });
  // ioredis rejects connect() with "Connection is closed."; the reason comes as an event.
  let reason: unknown;
  client.on('error', (err: unknown) => {
    reason ??= err;
  });
  try {
    await client.connect();
    await client.ping();
    const info = await client.info('server').catch(() => '');
    const version = /redis_version:(\S+)/.exec(info)?.[1];
    return { state: 'ready', detail: `redis ${version ?? '(version unknown)'} answers PING` };
  } catch (err) {
    const cause = reason ?? err;
    if (isRefused(cause)) return { state: 'down', detail: 'connection refused' };
    const message = describeError(cause);
    if (message.startsWith('LOADING')) return { state: 'starting', detail: 'loading its data' };
    // Any other error reply comes from a Redis that serves; a password it wants is the
    // services' business.
    if ((cause as Error | undefined)?.name === 'ReplyError') {
      if (/^(NOAUTH|WRONGPASS)/.test(message)) return { state: 'ready', detail: 'redis asks for a password' };
      return { state: 'ready', detail: `redis answers: ${message.slice(0, 120)}` };
    }
    return { state: 'starting', detail: `no Redis answer: ${message}` };
  } finally {
    client.disconnect();
  }
}

export const redis = processServer({
  name: 'redis',
  serves: 'Redis',
  probe,
  command: 'redis-server',
  install: 'apt-get install redis-server (or brew install redis)',
  args: (port, dir) => [
    ...['--bind', INFRA_HOST, '--port', String(port), '--dir', dir],
    ...['--appendonly', 'yes', '--appendfsync', 'everysec', '--save', ''],
  ],
});
