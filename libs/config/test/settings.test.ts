import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ConfigError, natsEnv, natsSettingsFrom, parseEnv, topologyEnv, topologyOptionsFrom } from '@redrive/config';

const schema = z.object({ ...natsEnv, ...topologyEnv });

describe('natsSettingsFrom', () => {
  it('connects to the local server with no credentials by default', () => {
    expect(natsSettingsFrom(parseEnv(schema, {}))).toEqual({
      servers: ['nats://127.0.0.1:4222'],
      user: undefined,
      password: undefined,
      token: undefined,
      credsFile: undefined,
      tls: { caFile: undefined, certFile: undefined, keyFile: undefined, handshakeFirst: false },
    });
  });

  it('maps every NATS_* variable to its setting', () => {
    const env = parseEnv(schema, {
      NATS_URL: 'tls://a:4222, wss://b:443',
      NATS_USER: 'u',
      NATS_PASSWORD: 'p',
      NATS_TOKEN: 't',
      NATS_CREDS_FILE: '/etc/nats/user.creds',
      NATS_NKEY_SEED_FILE: '/etc/nats/user.nk',
      NATS_INBOX_PREFIX: '_INBOX_me',
      NATS_TLS_CA_FILE: '/ca.pem',
      NATS_TLS_CERT_FILE: '/cert.pem',
      NATS_TLS_KEY_FILE: '/key.pem',
      NATS_TLS_HANDSHAKE_FIRST: 'yes',
    });
    expect(natsSettingsFrom(env)).toEqual({
      servers: ['tls://a:4222', 'wss://b:443'],
      user: 'u',
      password: 'p',
      token: 't',
      credsFile: '/etc/nats/user.creds',
      nkeySeedFile: '/etc/nats/user.nk',
      inboxPrefix: '_INBOX_me',
      tls: { caFile: '/ca.pem', certFile: '/cert.pem', keyFile: '/key.pem', handshakeFirst: true },
    });
  });

  it.each([
    ['127.0.0.1:4222', ['nats://127.0.0.1:4222']],
    ['a:4222, tls://b:4222', ['nats://a:4222', 'tls://b:4222']],
    ['localhost', ['nats://localhost']],
  ])('reads a bare host in NATS_URL=%j as a nats:// URL', (raw, servers) => {
    expect(natsSettingsFrom(parseEnv(schema, { NATS_URL: raw })).servers).toEqual(servers);
  });

  it.each([['http://a:4222'], ['nats://a:4222,https://b']])('refuses NATS_URL=%j naming the variable', (raw) => {
    expect(() => parseEnv(schema, { NATS_URL: raw })).toThrow(/NATS_URL: expected comma-separated URLs/);
  });
});

describe('topologyOptionsFrom', () => {
  it('keeps unfinished jobs forever by default: no age, size or count limit on JOBS', () => {
    expect(topologyOptionsFrom(parseEnv(schema, {}))).toEqual({
      prefix: '',
      replicas: 1,
      storage: 'file',
      jobs: { maxAgeMs: 0, maxBytes: -1, maxMsgs: -1, duplicateWindowMs: 15 * 60_000 },
      dlq: { maxAgeMs: 30 * 86_400_000 },
      advisories: { maxAgeMs: 7 * 86_400_000 },
      events: { maxAgeMs: 7 * 86_400_000, maxBytes: -1 },
      schedule: { maxAgeMs: 0 },
      completions: { maxAgeMs: 7 * 86_400_000 },
    });
  });

  it('maps every topology variable to its option', () => {
    const env = parseEnv(schema, {
      REDRIVE_PREFIX: 'tenant-a',
      STREAM_REPLICAS: '3',
      STREAM_STORAGE: 'memory',
      JOBS_MAX_AGE: '14d',
      JOBS_MAX_BYTES: '1GiB',
      JOBS_MAX_MSGS: '100000',
      JOBS_DUPLICATE_WINDOW: '2m',
      DLQ_MAX_AGE: '90d',
      ADVISORIES_MAX_AGE: '1d',
      EVENTS_MAX_AGE: '3d',
      EVENTS_MAX_BYTES: '512MiB',
      SCHEDULE_MAX_AGE: '1h',
      COMPLETIONS_MAX_AGE: '2d',
    });
    expect(topologyOptionsFrom(env)).toEqual({
      prefix: 'tenant-a',
      replicas: 3,
      storage: 'memory',
      jobs: { maxAgeMs: 14 * 86_400_000, maxBytes: 1_073_741_824, maxMsgs: 100_000, duplicateWindowMs: 120_000 },
      dlq: { maxAgeMs: 90 * 86_400_000 },
      advisories: { maxAgeMs: 86_400_000 },
      events: { maxAgeMs: 3 * 86_400_000, maxBytes: 536_870_912 },
      schedule: { maxAgeMs: 3_600_000 },
      completions: { maxAgeMs: 2 * 86_400_000 },
    });
  });

  it.each([
    ['REDRIVE_PREFIX', 'a.b', 'letters, digits'],
    ['REDRIVE_PREFIX', '-lead', 'starting with a letter or digit'],
    ['REDRIVE_PREFIX', 'x'.repeat(33), 'at most 32'],
    ['STREAM_REPLICAS', '0', 'integer from 1 to 5'],
    ['STREAM_REPLICAS', '7', 'integer from 1 to 5'],
    ['STREAM_STORAGE', 'disk', 'one of file, memory'],
    ['JOBS_MAX_MSGS', '-2', 'integer from -1'],
    ['JOBS_MAX_BYTES', 'big', '(or -1 for unlimited)'],
    ['JOBS_DUPLICATE_WINDOW', '10ms', 'at least 100 ms'],
  ])('refuses %s=%j and says what it expects', (variable, raw, expected) => {
    let error: unknown;
    try {
      parseEnv(schema, { [variable]: raw });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const problems = (error as ConfigError).problems;
    expect(problems.map((p) => p.variable)).toEqual([variable]);
    expect(problems[0]!.problem).toContain(expected);
  });
});
