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
  it('is off without a target, and on when forced for envelope-only jobs', () => {
    expect(settingsOf({})).toBeUndefined();
    expect(settingsOf({ HTTP_HANDLER: 'off', HTTP_TARGET_URL: 'https://example.com/h' })).toBeUndefined();
    expect(settingsOf({ HTTP_HANDLER: 'on' })).toEqual({
      targetUrl: undefined,
      targets: {},
      timeoutMs: 10_000,
      signingSecret: undefined,
      signingSecrets: {},
      allowHosts: [],
    });
  });

  it('reads every variable', () => {
    expect(
      settingsOf({
        HTTP_TARGET_URL: 'https://hooks.example.com/in',
        HTTP_TARGETS: '{"billing-hook":"https://billing.example.com/x","crm":"http://10.0.0.8:8080/"}',
        HTTP_TIMEOUT: '2s',
        HTTP_SIGNING_SECRET: 'whsec_c2VjcmV0',
        HTTP_SIGNING_SECRETS: '{"https://API.example.com:443/":"raw-secret"}',
        HTTP_ALLOW_HOSTS: '10.0.0.8:8080, localhost',
      }),
    ).toEqual({
      targetUrl: 'https://hooks.example.com/in',
      targets: { 'billing-hook': 'https://billing.example.com/x', crm: 'http://10.0.0.8:8080/' },
      timeoutMs: 2_000,
      signingSecret: 'whsec_c2VjcmV0',
      signingSecrets: { 'https://api.example.com': 'raw-secret' },
      allowHosts: ['10.0.0.8:8080', 'localhost'],
    });
  });

  it('turns on for HTTP_TARGETS alone, taking an "http" entry as the http type target', () => {
    expect(
      settingsOf({ HTTP_TARGETS: '{"http":"https://a.example.com/","x":"https://b.example.com/"}' }),
    ).toMatchObject({
      targetUrl: 'https://a.example.com/',
      targets: { x: 'https://b.example.com/' },
    });
    const err = configErrorOf(() =>
      settingsOf({ HTTP_TARGET_URL: 'https://a.example.com/', HTTP_TARGETS: '{"http":"https://c.example.com/"}' }),
    );
    expect(err.problems[0]?.variable).toBe('HTTP_TARGETS');
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
      ['HTTP_TARGET_URL', expect.stringMatching(/169\.254\.169\.254 is a link-local address/)],
      ['HTTP_TARGETS', expect.stringMatching(/\[::1\]:81 is a loopback address/)],
    ]);
    expect(settingsOf({ HTTP_TARGET_URL: 'http://127.0.0.1:8080/', HTTP_ALLOW_HOSTS: '127.0.0.1' })).toMatchObject({
      targetUrl: 'http://127.0.0.1:8080/',
    });
  });
});
