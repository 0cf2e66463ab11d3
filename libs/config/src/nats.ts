import type { Frozen } from './load.js';
import { bool, optStr, secret, urlList } from './fields.js';

/** Environment variables for the NATS connection, shared by every service. */
export const natsEnv = {
  NATS_URL: urlList(['nats://127.0.0.1:4222'], ['nats', 'tls', 'ws', 'wss'], 'nats').describe(
    'comma-separated servers (`nats://`, `tls://`, `ws://`, `wss://`, or bare `host:port`)',
  ),
  NATS_USER: optStr().describe('user/password authentication: the user'),
  // Secret: never repeated in a problem; an example value is refused (no length rule: the
  // server decides what a password is).
  NATS_PASSWORD: secret({ minLength: 0 }).describe('user/password authentication: the password'),
  NATS_TOKEN: secret({ minLength: 0 }).describe('token authentication'),
  NATS_CREDS_FILE: optStr().describe('a `.creds` file (JWT + nkey)'),
  // A file with the user's nkey seed (SU…), e.g. a mounted secret.
  NATS_NKEY_SEED_FILE: optStr().describe("a file with the user's nkey seed (`SU…`), e.g. a mounted secret"),
  // Replies come back under this prefix; each service has its own by default (`_INBOX_<user>`),
  // which its NATS permissions expect.
  NATS_INBOX_PREFIX: optStr().describe(
    'replies come back under this prefix; each service has its own by default (`_INBOX_<user>`), which its NATS permissions expect',
  ),
  NATS_TLS_CA_FILE: optStr().describe('TLS: the CA certificate'),
  NATS_TLS_CERT_FILE: optStr().describe('TLS: the client certificate'),
  NATS_TLS_KEY_FILE: optStr().describe("TLS: the client certificate's key"),
  NATS_TLS_HANDSHAKE_FIRST: bool(false).describe('TLS before the NATS INFO (the server must be configured for it)'),
};

type NatsEnv = Frozen<{ [K in keyof typeof natsEnv]: ReturnType<(typeof natsEnv)[K]['parse']> }>;

/** The NATS connection settings described by parsed NATS_* variables. */
export function natsSettingsFrom(env: Readonly<NatsEnv>) {
  return {
    servers: env.NATS_URL,
    user: env.NATS_USER,
    password: env.NATS_PASSWORD,
    token: env.NATS_TOKEN,
    credsFile: env.NATS_CREDS_FILE,
    nkeySeedFile: env.NATS_NKEY_SEED_FILE,
    inboxPrefix: env.NATS_INBOX_PREFIX,
    tls: {
      caFile: env.NATS_TLS_CA_FILE,
      certFile: env.NATS_TLS_CERT_FILE,
      keyFile: env.NATS_TLS_KEY_FILE,
      handshakeFirst: env.NATS_TLS_HANDSHAKE_FIRST,
    },
  };
}
