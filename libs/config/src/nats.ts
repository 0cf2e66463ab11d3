import type { Frozen } from './load.js';
import { bool, optStr, urlList } from './fields.js';

/** Environment variables for the NATS connection, shared by every service. */
export const natsEnv = {
  NATS_URL: urlList(['nats://127.0.0.1:4222'], ['nats', 'tls', 'ws', 'wss'], 'nats'),
  NATS_USER: optStr(),
  NATS_PASSWORD: optStr(),
  NATS_TOKEN: optStr(),
  NATS_CREDS_FILE: optStr(),
  // A file with the user's nkey seed (SU…), e.g. a mounted secret.
  NATS_NKEY_SEED_FILE: optStr(),
  // Replies come back under this prefix; each service has its own by default (`_INBOX_<user>`),
  // which its NATS permissions expect.
  NATS_INBOX_PREFIX: optStr(),
  NATS_TLS_CA_FILE: optStr(),
  NATS_TLS_CERT_FILE: optStr(),
  NATS_TLS_KEY_FILE: optStr(),
  NATS_TLS_HANDSHAKE_FIRST: bool(false),
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
