import { readFileSync } from 'node:fs';
import { connect } from '@nats-io/transport-node';
import { credsAuthenticator, nkeyAuthenticator, type ConnectionOptions, type NatsConnection } from '@nats-io/nats-core';
import type { Logger } from 'pino';
import { unsupportedServerReason } from './server-version.js';

/** How to reach NATS; mirrors the NATS_* environment variables. */
export interface NatsSettings {
  servers: readonly string[];
  user?: string | undefined;
  password?: string | undefined;
  token?: string | undefined;
  credsFile?: string | undefined;
  /** A file holding the user's nkey seed (`SU…`), for a server that knows the user by its public key. */
  nkeySeedFile?: string | undefined;
  /**
   * The subject prefix of this connection's reply inboxes (`_INBOX` when absent). Each service
   * has its own (permissions.ts natsInboxPrefix), so its NATS user may subscribe to its own
   * replies only.
   */
  inboxPrefix?: string | undefined;
  tls?:
    | {
        caFile?: string | undefined;
        certFile?: string | undefined;
        keyFile?: string | undefined;
        handshakeFirst?: boolean;
      }
    | undefined;
}

/** Builds nats.js options: reconnect forever with jittered backoff, never give up on a server. */
export function natsConnectionOptions(settings: NatsSettings, name: string): ConnectionOptions {
  const opts: ConnectionOptions = {
    servers: [...settings.servers],
    name,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 1_000,
    reconnectJitter: 500,
    // Keep trying when NATS is not up yet at start-up instead of failing the process.
    waitOnFirstConnect: true,
    pingInterval: 20_000,
    // Otherwise every request, and so every JetStream publish, builds two Error objects up front
    // (a stack trace for a failure that almost never comes): about 15% of intake's CPU at full
    // load. A failed publish still says what failed: callers wrap it (PublishFailedError).
    noAsyncTraces: true,
  };
  if (settings.user) {
    opts.user = settings.user;
    if (settings.password) opts.pass = settings.password;
  }
  if (settings.token) opts.token = settings.token;
  if (settings.credsFile) {
    const path = settings.credsFile;
    opts.authenticator = credsAuthenticator(() => readFileSync(path));
  } else if (settings.nkeySeedFile) {
    const path = settings.nkeySeedFile;
    opts.authenticator = nkeyAuthenticator(() => new TextEncoder().encode(readFileSync(path, 'utf8').trim()));
  }
  if (settings.inboxPrefix) opts.inboxPrefix = settings.inboxPrefix;
  const tls = settings.tls;
  if (tls && (tls.caFile || tls.certFile || tls.keyFile || tls.handshakeFirst)) {
    opts.tls = {
      ...(tls.caFile ? { caFile: tls.caFile } : {}),
      ...(tls.certFile ? { certFile: tls.certFile } : {}),
      ...(tls.keyFile ? { keyFile: tls.keyFile } : {}),
      ...(tls.handshakeFirst ? { handshakeFirst: true } : {}),
    };
  }
  return opts;
}

/** Connects to NATS and logs every disconnect, reconnect and server error for the connection's life. */
export async function connectNats(settings: NatsSettings, name: string, logger: Logger): Promise<NatsConnection> {
  const nc = await connect(natsConnectionOptions(settings, name));
  const version = nc.info?.version;
  logger.info({ server: nc.getServer(), version }, 'connected to NATS');
  // Said, not refused: development machines run what their distribution ships (Debian 12 has
  // 2.9.10), and the loss needs a server restart at the moment of a publish.
  const unsupported = unsupportedServerReason(version);
  if (unsupported) logger.warn({ version }, unsupported);
  void (async () => {
    for await (const s of nc.status()) {
      switch (s.type) {
        case 'disconnect':
          logger.warn({ server: s.server }, 'NATS disconnected');
          break;
        case 'reconnecting':
          logger.debug('NATS reconnecting');
          break;
        case 'reconnect':
          logger.info({ server: s.server }, 'NATS reconnected');
          break;
        case 'ldm':
          logger.warn({ server: s.server }, 'NATS server entering lame duck mode');
          break;
        case 'error':
          logger.error({ err: s.error }, 'NATS error');
          break;
        case 'staleConnection':
          logger.warn('NATS connection stale');
          break;
        case 'slowConsumer':
          logger.warn({ subject: s.sub.getSubject(), pending: s.pending }, 'NATS slow consumer');
          break;
        default:
          break;
      }
    }
  })();
  return nc;
}
