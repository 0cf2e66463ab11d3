import { describe, expect, it } from 'vitest';
import { ConfigError, parseEnv, type Env } from '@redrive/config';
import { z } from 'zod';
import { httpHandlerEnv, httpHandlerSettingsFrom } from '../src/handlers/http.js';

const schema = z.object(httpHandlerEnv);
const settingsOf = (env: Env) => httpHandlerSettingsFrom(parseEnv(schema, env));

function configErrorOf(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error('expected a ConfigError');
}

describe('http handler configuration', () => {
  it('is off without a type, and on when forced: `http` then takes envelopes to public origins, unsigned', () => {
    expect(settingsOf({})).toBeUndefined();
    expect(settingsOf({ HTTP_HANDLER: 'off', HTTP_TARGET_URL: 'https://example.com/h' })).toBeUndefined();
    expect(settingsOf({ HTTP_HANDLER: 'on' })).toEqual({
      types: { http: { origins: ['*'] } },
      timeoutMs: 10_000,
      dnsTimeoutMs: 3_000,
      signingSecrets: {},
    });
  });

  it('reads every variable', () => {
    expect(
      settingsOf({
        HTTP_TYPES: JSON.stringify({
          partner: {
            origins: ['https://api.partner.example', 'http://10.0.0.9:8080'],
            internalOrigins: ['http://10.0.0.9:8080'],
            secretHeaders: ['X-Partner-Token'],
          },
          customer: { origins: ['*'] },
        }),
        HTTP_TARGET_URL: 'https://hooks.example.com/in',
        HTTP_TARGETS: '{"billing-hook":"https://billing.example.com/x","crm":"http://10.0.0.8:8080/"}',
        HTTP_TIMEOUT: '2s',
        HTTP_DNS_TIMEOUT: '500ms',
        HTTP_SIGNING_SECRETS: '{"https://API.partner.example:443/":"raw-secret","https://hooks.example.com":"s2"}',
        HTTP_ALLOW_HOSTS: '10.0.0.8:8080',
      }),
    ).toEqual({
      types: {
        partner: {
          origins: ['https://api.partner.example', 'http://10.0.0.9:8080'],
          internalOrigins: ['http://10.0.0.9:8080'],
          secretHeaders: ['X-Partner-Token'],
        },
        customer: { origins: ['*'] },
        'billing-hook': { target: 'https://billing.example.com/x' },
        crm: { target: 'http://10.0.0.8:8080/', internalOrigins: ['http://10.0.0.8:8080'] },
        http: { target: 'https://hooks.example.com/in' },
      },
      timeoutMs: 2_000,
      dnsTimeoutMs: 500,
      signingSecrets: { 'https://api.partner.example': 'raw-secret', 'https://hooks.example.com': 's2' },
    });
  });

  it('turns on for HTTP_TARGETS alone, taking an "http" entry as the http type target', () => {
    expect(
      settingsOf({ HTTP_TARGETS: '{"http":"https://a.example.com/","x":"https://b.example.com/"}' }),
    ).toMatchObject({
      types: { http: { target: 'https://a.example.com/' }, x: { target: 'https://b.example.com/' } },
    });
    const err = configErrorOf(() =>
      settingsOf({ HTTP_TARGET_URL: 'https://a.example.com/', HTTP_TARGETS: '{"http":"https://c.example.com/"}' }),
    );
    expect(err.problems[0]?.variable).toBe('HTTP_TARGETS');
  });

  it('serves `http` only when it is configured (or HTTP_HANDLER=on), not as a side effect of other types', () => {
    expect(settingsOf({ HTTP_TARGETS: '{"billing":"https://billing.example.com/"}' })?.types).toEqual({
      billing: { target: 'https://billing.example.com/' },
    });
  });

  it('names the variable and the problem for bad values', () => {
    const cases: [Env, string, RegExp][] = [
      [{ HTTP_TARGET_URL: 'ftp://x/' }, 'HTTP_TARGET_URL', /http\(s\) URL/],
      [{ HTTP_TARGET_URL: 'https://u:p@x/' }, 'HTTP_TARGET_URL', /credentials/],
      [{ HTTP_TARGETS: 'not json' }, 'HTTP_TARGETS', /JSON object/],
      [{ HTTP_TARGETS: '["https://x/"]' }, 'HTTP_TARGETS', /JSON object/],
      [{ HTTP_TARGETS: '{"Bad.Type":"https://x/"}' }, 'HTTP_TARGETS', /"Bad.Type": is not a job type/],
      [{ HTTP_TARGETS: '{"ok":"nope"}' }, 'HTTP_TARGETS', /"ok": the URL is not a URL/],
      [{ HTTP_TARGETS: '{"ok":5}' }, 'HTTP_TARGETS', /"ok": is not a string/],
      [{ HTTP_SIGNING_SECRET: 'whsec_%%%' }, 'HTTP_SIGNING_SECRET', /base64/],
      [{ HTTP_SIGNING_SECRETS: '{"https://x.example.com/path":"s"}' }, 'HTTP_SIGNING_SECRETS', /not an origin/],
      [{ HTTP_TYPES: '[]' }, 'HTTP_TYPES', /JSON object/],
      [{ HTTP_TYPES: '{"Bad.Type":{"origins":["*"]}}' }, 'HTTP_TYPES', /"Bad.Type": is not a job type/],
      [{ HTTP_TYPES: '{"a":"https://x/"}' }, 'HTTP_TYPES', /"a": expected an object/],
      [{ HTTP_TYPES: '{"a":{"url":"https://x/"}}' }, 'HTTP_TYPES', /"a": unknown keys url/],
      [{ HTTP_TYPES: '{"a":{"origins":"*"}}' }, 'HTTP_TYPES', /"a": "origins" is not an array of strings/],
      [{ HTTP_TYPES: '{"a":{}}' }, 'HTTP_TYPES', /"a": has neither a fixed "target" nor "origins"/],
      [
        { HTTP_TYPES: '{"a":{"target":"https://x.example.com/h","origins":["*"]}}' },
        'HTTP_TYPES',
        /"a": has both a fixed "target" and envelope "origins"/,
      ],
      [
        { HTTP_TYPES: '{"a":{"origins":["https://x.example.com/hooks/s3cr3t"]}}' },
        'HTTP_TYPES',
        /"a": "origins" entry 1 \(https:\/\/x.example.com with a path\) is not an origin/,
      ],
      [{ HTTP_TYPES: '{"a":{"origins":["ftp://x"]}}' }, 'HTTP_TYPES', /is not an http\(s\) URL/],
      [{ HTTP_TYPES: '{"a":{"internalOrigins":["*"]}}' }, 'HTTP_TYPES', /one by one/],
      [
        { HTTP_TYPES: '{"a":{"target":"https://x.example.com/","internalOrigins":["https://y.example.com"]}}' },
        'HTTP_TYPES',
        /not the origin of the type's target \(https:\/\/x.example.com\)/,
      ],
      [{ HTTP_TYPES: '{"a":{"origins":["*"],"secretHeaders":["a b"]}}' }, 'HTTP_TYPES', /not a header name/],
      [{ HTTP_ALLOW_HOSTS: 'ok.example, http://bad' }, 'HTTP_ALLOW_HOSTS', /bad: http:\/\/bad/],
      [{ HTTP_TIMEOUT: 'soon' }, 'HTTP_TIMEOUT', /duration/],
    ];
    for (const [env, variable, problem] of cases) {
      const err = configErrorOf(() => settingsOf(env));
      expect(err.problems, JSON.stringify(env)).toHaveLength(1);
      expect(err.problems[0]?.variable).toBe(variable);
      expect(err.problems[0]?.problem).toMatch(problem);
    }
  });

  it('never repeats a secret in a problem', () => {
    const err = configErrorOf(() =>
      settingsOf({
        HTTP_SIGNING_SECRETS: '{"https://a.example.com":"whsec_sup3r-s3cret!","bad":"whsec_sup3r-s3cret!"}',
      }),
    );
    expect(err.message).not.toContain('sup3r');
  });

  it('never repeats the path of a target URL in a problem (a webhook path is often its secret)', () => {
    for (const env of [
      { HTTP_TARGET_URL: 'https://u:p@hooks.example.com/services/s3cr3t' },
      { HTTP_TARGET_URL: 'ftp://hooks.example.com/services/s3cr3t' },
      { HTTP_TARGETS: '{"a":"ftp://hooks.example.com/services/s3cr3t"}' },
    ]) {
      expect(configErrorOf(() => settingsOf(env)).message).not.toContain('s3cr3t');
    }
  });

  it('refuses at start-up a target written as an address the handler would refuse for every job', () => {
    const err = configErrorOf(() =>
      settingsOf({ HTTP_TARGET_URL: 'http://169.254.169.254/latest', HTTP_TARGETS: '{"a":"http://[::1]:81/"}' }),
    );
    expect(err.problems.map((p) => [p.variable, p.problem])).toEqual([
      ['HTTP_TARGETS', expect.stringMatching(/\[::1\]:81 is a loopback address/)],
      ['HTTP_TARGET_URL', expect.stringMatching(/169\.254\.169\.254 is a link-local address/)],
    ]);
    const envelopeErr = configErrorOf(() => settingsOf({ HTTP_TYPES: '{"a":{"origins":["http://10.0.0.1"]}}' }));
    expect(envelopeErr.problems[0]?.problem).toMatch(
      /10\.0\.0\.1 is a private address, .*type "a" lists http:\/\/10\.0\.0\.1 in "internalOrigins"/,
    );
    expect(settingsOf({ HTTP_TARGET_URL: 'http://127.0.0.1:8080/', HTTP_ALLOW_HOSTS: '127.0.0.1' })).toMatchObject({
      types: { http: { target: 'http://127.0.0.1:8080/', internalOrigins: ['http://127.0.0.1:8080'] } },
    });
  });
});

describe('http handler configuration: secrets belong to origins', () => {
  it('takes HTTP_SIGNING_SECRET, when every type has a fixed target, as the secret of those origins', () => {
    expect(
      settingsOf({
        HTTP_TARGET_URL: 'https://hooks.example.com/in',
        HTTP_TARGETS: '{"billing":"https://billing.example.com/x","crm":"https://crm.example.com/y"}',
        HTTP_SIGNING_SECRET: 'default-secret',
        HTTP_SIGNING_SECRETS: '{"https://crm.example.com":"crm-secret"}',
      })?.signingSecrets,
    ).toEqual({
      'https://hooks.example.com': 'default-secret',
      'https://billing.example.com': 'default-secret',
      'https://crm.example.com': 'crm-secret',
    });
  });

  it('refuses HTTP_SIGNING_SECRET while a type takes envelope URLs: it would sign for any URL a job names', () => {
    for (const env of [
      { HTTP_HANDLER: 'on', HTTP_SIGNING_SECRET: 'whsec_c2VjcmV0' },
      {
        HTTP_TARGET_URL: 'https://hooks.example.com/in',
        HTTP_TYPES: '{"partner":{"origins":["https://partner.example.com"]}}',
        HTTP_SIGNING_SECRET: 'whsec_c2VjcmV0',
      },
    ]) {
      const err = configErrorOf(() => settingsOf(env));
      expect(err.problems).toHaveLength(1);
      expect(err.problems[0]).toMatchObject({
        variable: 'HTTP_SIGNING_SECRET',
        problem: expect.stringMatching(/cannot be used while job types take envelope URLs .*HTTP_SIGNING_SECRETS/),
      });
      expect(err.message).not.toContain('c2VjcmV0');
    }
  });

  it('refuses a secret for an origin no type names, which would sign nothing (it used to sign any envelope)', () => {
    const err = configErrorOf(() =>
      settingsOf({
        HTTP_HANDLER: 'on',
        HTTP_TARGETS: '{"billing":"https://billing.example.com/x"}',
        HTTP_SIGNING_SECRETS: '{"https://partner.example.com":"p4rtner-secret","https://billing.example.com":"b"}',
      }),
    );
    expect(err.problems).toEqual([
      {
        variable: 'HTTP_SIGNING_SECRETS',
        problem: expect.stringMatching(/^https:\/\/partner\.example\.com is not an origin any job type names/),
      },
    ]);
    expect(err.message).not.toContain('p4rtner');
    expect(
      settingsOf({
        HTTP_TYPES: '{"http":{"origins":["*","https://partner.example.com"]}}',
        HTTP_SIGNING_SECRETS: '{"https://partner.example.com":"p4rtner-secret"}',
      })?.signingSecrets,
    ).toEqual({ 'https://partner.example.com': 'p4rtner-secret' });
  });
});

describe('http handler configuration: HTTP_ALLOW_HOSTS', () => {
  it('marks as internal only the origins types name on that host (and port)', () => {
    expect(
      settingsOf({
        HTTP_TYPES: JSON.stringify({
          a: { origins: ['http://127.0.0.1:8080', 'https://api.example.com'] },
          b: { target: 'http://localhost:3000/hook' },
          c: { target: 'https://localhost/hook' },
        }),
        HTTP_ALLOW_HOSTS: '127.0.0.1:8080, localhost',
      })?.types,
    ).toEqual({
      a: { origins: ['http://127.0.0.1:8080', 'https://api.example.com'], internalOrigins: ['http://127.0.0.1:8080'] },
      b: { target: 'http://localhost:3000/hook', internalOrigins: ['http://localhost:3000'] },
      c: { target: 'https://localhost/hook', internalOrigins: ['https://localhost'] },
    });
  });

  it('does not cover another port of the host', () => {
    const err = configErrorOf(() =>
      settingsOf({
        HTTP_TYPES: '{"a":{"origins":["http://127.0.0.1:8080","http://127.0.0.1:9090"]}}',
        HTTP_ALLOW_HOSTS: '127.0.0.1:8080',
      }),
    );
    expect(err.problems).toEqual([
      { variable: 'HTTP_TYPES', problem: expect.stringMatching(/^127\.0\.0\.1:9090 is a loopback address/) },
    ]);
  });

  it('refuses an entry that matches no named origin: it would open that host, on any port, to every job URL', () => {
    const err = configErrorOf(() => settingsOf({ HTTP_HANDLER: 'on', HTTP_ALLOW_HOSTS: '127.0.0.1' }));
    expect(err.problems).toEqual([
      {
        variable: 'HTTP_ALLOW_HOSTS',
        problem: expect.stringMatching(/"127\.0\.0\.1" matches no target or origin .*"internalOrigins"/),
      },
    ]);
    expect(() => settingsOf({ HTTP_TARGET_URL: 'http://127.0.0.1:8080/', HTTP_ALLOW_HOSTS: '127.0.0.1:8081' })).toThrow(
      ConfigError,
    );
  });
});
