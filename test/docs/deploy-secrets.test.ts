import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { isExampleSecret } from '../../libs/config/src/secrets.js';

// The compose file and the Kubernetes manifests are read by everyone: a credential written in
// them is known to everyone. They ship none (each comes from the environment, .env or a
// Kubernetes secret, with no default), and compose publishes ports on 127.0.0.1 unless told.

const ROOT = join(import.meta.dirname, '..', '..');
const COMPOSE = readFileSync(join(ROOT, 'docker-compose.yml'), 'utf8');
const K8S_DIR = join(ROOT, 'deploy', 'k8s');
const MANIFESTS = readdirSync(K8S_DIR)
  .filter((f) => f.endsWith('.yaml'))
  .map((f) => ({ file: f, text: readFileSync(join(K8S_DIR, f), 'utf8') }));

const SECRET_NAME = /PASSWORD|TOKEN|SECRET|_KEYS?$/;
/** The password of a URL: a `${…}` interpolation (which may hold spaces) or plain text. */
const URL_PASSWORD = /\/\/[^:/@\s]+:(\$\{[^}\n]*\}|[^@\s]+)@/g;
/** `${VAR}`, `${VAR:?message}` or `${VAR:-}`: from the environment, with no default. */
const FROM_ENV = /^\$\{[A-Z][A-Z0-9_]*(?::\?[^}]*|:-)?\}$/;

/** Uppercase `NAME: value` lines: the environment of compose's services (its own keys are lowercase). */
function composeEnvironment(): { name: string; value: string }[] {
  return [...COMPOSE.matchAll(/^\s+([A-Z][A-Z0-9_]*):\s*(.*)$/gm)].map((m) => ({
    name: m[1]!,
    value: m[2]!.trim().replace(/^'(.*)'$/, '$1'),
  }));
}

/** Every string in the JSON values and every password of the URLs in `text`. */
function candidateSecrets(text: string): string[] {
  const fromJson = [...text.matchAll(/"(?:token|key|secret|password)"\s*:\s*"([^"]*)"/gi)].map((m) => m[1]!);
  const fromUrls = [...text.matchAll(URL_PASSWORD)].map((m) => m[1]!);
  return [...fromJson, ...fromUrls];
}

describe('docker-compose.yml', () => {
  it('takes every credential from the environment, with no default', () => {
    const env = composeEnvironment();
    const secrets = env.filter((e) => SECRET_NAME.test(e.name));
    expect(secrets.map((e) => e.name)).toEqual(
      expect.arrayContaining(['GF_SECURITY_ADMIN_PASSWORD', 'POSTGRES_PASSWORD', 'DLQ_TOKENS', 'NATS_PASSWORD']),
    );
    const literal = secrets.filter((e) => !FROM_ENV.test(e.value));
    expect(literal, 'credentials written in docker-compose.yml').toEqual([]);
  });

  it('writes no password into a URL', () => {
    const passwords = composeEnvironment().flatMap((e) =>
      [...e.value.matchAll(URL_PASSWORD)].map((m) => ({ name: e.name, password: m[1]! })),
    );
    expect(passwords.length).toBeGreaterThan(0); // DATABASE_URL
    expect(passwords.filter((p) => !FROM_ENV.test(p.password))).toEqual([]);
  });

  it('holds no example secret anywhere, comments included', () => {
    expect(
      candidateSecrets(COMPOSE).filter((s) => !s.startsWith('${') && !s.startsWith('<') && isExampleSecret(s)),
    ).toEqual([]);
    expect(COMPOSE).not.toMatch(/change-me|changeme/i);
  });

  it('publishes every port on 127.0.0.1 unless BIND (or NATS_BIND) says otherwise', () => {
    const ports = [...COMPOSE.matchAll(/^[ \t]+ports:\n((?:[ \t]+(?:-.*|#.*)\n)+)/gm)].flatMap((m) =>
      m[1]!
        .split('\n')
        .map((l) => l.trim())
        .filter((l) => l.startsWith('-')),
    );
    expect(ports.length).toBeGreaterThanOrEqual(7);
    const open = ports.filter((p) => !/^- '\$\{(?:NATS_)?BIND:-127\.0\.0\.1\}:\d+:\d+'$/.test(p));
    expect(open, 'ports published on every interface').toEqual([]);
  });
});

describe('deploy/k8s', () => {
  it.each(MANIFESTS)('$file: credentials come from secrets, never a value', ({ text }) => {
    const inline = [...text.matchAll(/- name: ([A-Z][A-Z0-9_]*)\n\s+value:/g)]
      .map((m) => m[1]!)
      .filter((name) => SECRET_NAME.test(name) || name === 'DATABASE_URL' || name === 'REDIS_URL');
    expect(inline).toEqual([]);
    expect(candidateSecrets(text).filter((s) => !s.startsWith('<') && isExampleSecret(s))).toEqual([]);
  });
});
