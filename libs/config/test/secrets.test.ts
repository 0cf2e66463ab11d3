import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  ConfigError,
  isExampleSecret,
  json,
  natsEnv,
  optUrl,
  parseEnv,
  secret,
  secretText,
  urlList,
} from '@redrive/config';

function problemsOf(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error('expected a ConfigError');
}

const TOKEN = 'sup3r-s3cret-operator-t0ken-0042';
const tokens = z.array(z.object({ name: z.string(), role: z.enum(['viewer', 'operator']), token: z.string().min(16) }));

describe('config errors never quote a secret', () => {
  it.each([
    ['a token without quotes', `[{"name":"a","role":"operator","token":${TOKEN}}]`],
    ['a missing closing brace', `[{"name":"a","role":"operator","token":"${TOKEN}"]`],
    ['a missing quote', `[{"name":"a","role":"operator","token":"${TOKEN}}]`],
    ['a trailing comma', `[{"name":"a","role":"operator","token":"${TOKEN}",}]`],
    ['single quotes', `[{'name':'a','role':'operator','token':'${TOKEN}'}]`],
    ['text after the value', `[{"name":"a","role":"operator","token":"${TOKEN}"}] ${TOKEN}`],
    ['a raw newline in a string', `[{"name":"a","role":"operator","token":"${TOKEN}\n"}]`],
  ])('a JSON typo (%s) is reported by position, without the text', (_label, value) => {
    const error = problemsOf(() => parseEnv(z.object({ DLQ_TOKENS: json(tokens, []) }), { DLQ_TOKENS: value }));
    expect(error.problems).toHaveLength(1);
    expect(error.problems[0]!.variable).toBe('DLQ_TOKENS');
    expect(error.problems[0]!.problem).toMatch(
      /^expected JSON; it stops being JSON at (position \d+ \(line \d+, column \d+\)|the end)/,
    );
    expect(error.message).toContain('was expected');
    // No fragment of the token, not even its tail (JSON.parse's message quotes the text around the error).
    for (let i = 0; i + 6 <= TOKEN.length; i++) expect(error.message).not.toContain(TOKEN.slice(i, i + 6));
  });

  it('names the position and the expected form', () => {
    const value = '[{"name":"a" "token":"x"}]';
    const error = problemsOf(() => parseEnv(z.object({ J: json(z.unknown(), null) }), { J: value }));
    expect(error.problems[0]!.problem).toContain(
      `at position 13 (line 1, column 14), where ',' or '}' after a property value was expected`,
    );
  });

  it('reports a wrong shape by JSON path, without the value', () => {
    const value = `[{"name":"a","role":"admin","token":"${TOKEN}"}]`;
    const error = problemsOf(() => parseEnv(z.object({ DLQ_TOKENS: json(tokens, []) }), { DLQ_TOKENS: value }));
    expect(error.problems[0]!.problem).toMatch(/^JSON at 0\.role:/);
    expect(error.message).not.toContain(TOKEN);
  });

  it.each([
    ['NATS_URL', 'nats://alice:pa55w0rd-xyz@nats.example:4222,ftp://bob:hunter2-abc@h'],
    ['NATS_URL', 'http://alice:pa55w0rd-xyz@nats.example:4222'],
  ])('%s: a URL is echoed without its user and password', (variable, value) => {
    const error = problemsOf(() => parseEnv(z.object(natsEnv), { [variable]: value }));
    expect(error.message).toContain('***@');
    expect(error.message).not.toMatch(/pa55w0rd|hunter2|alice|bob/);
  });

  it('urlList and optUrl keep the host of a bad URL, not its credentials', () => {
    const schema = z.object({ U: urlList([], ['nats']), O: optUrl() });
    const error = problemsOf(() =>
      parseEnv(schema, { U: 'redis://u:secretpass@host:6379', O: 'ftp://u:secretpass@files.example/x' }),
    );
    expect(error.problems.map((p) => p.problem)).toEqual([
      'expected comma-separated URLs (nats), bad: "redis://***@host:6379"',
      'expected an http(s) URL, got "ftp://***@files.example/x"',
    ]);
  });

  it("a secret field's value appears in no problem, its own or another variable's", () => {
    const schema = z.object({
      A_PASSWORD: secret({ minLength: 40 }),
      A_MODE: z.string().transform((v, ctx) => {
        ctx.addIssue({ code: 'custom', message: `cannot combine ${v} with the password` });
        return z.NEVER;
      }),
    });
    const error = problemsOf(() => parseEnv(schema, { A_PASSWORD: TOKEN, A_MODE: `x${TOKEN}x` }));
    expect(error.problems.map((p) => p.variable)).toEqual(['A_PASSWORD', 'A_MODE']);
    expect(error.problems[0]!.problem).toContain('at least 40 characters');
    expect(error.message).not.toContain(TOKEN);
  });

  it('NATS_PASSWORD and NATS_TOKEN are secret fields', () => {
    for (const variable of ['NATS_PASSWORD', 'NATS_TOKEN'] as const) {
      expect(natsEnv[variable].meta()?.secret).toBe(true);
      const error = problemsOf(() => parseEnv(z.object(natsEnv), { [variable]: 'change-me-please' }));
      expect(error.problems).toEqual([{ variable, problem: expect.stringContaining('is an example value') as string }]);
      expect(error.message).not.toContain('change-me-please');
    }
  });
});

describe('example secrets are refused', () => {
  it.each([
    'change-me-operator-token',
    'CHANGE_ME',
    'changeme',
    'please-change-me-0123456789',
    '<at least 16 characters>',
    '<token>',
    '…',
    'admin',
    'xxxxxxxxxxxxxxxxxxxx',
    'your-secret-here-0123456',
  ])('%j is an example', (value) => {
    expect(isExampleSecret(value)).toBe(true);
  });

  it.each(['operator-token-for-tests-0001', 'redrive-dev-operator-token', 'r8PxT2q0mZk4c7Vn1Wy6'])(
    '%j is not',
    (value) => {
      expect(isExampleSecret(value)).toBe(false);
    },
  );

  it("a JSON variable's token or key holding an example value stops the start, whatever its schema", () => {
    // dlq-manager's DLQ_TOKENS as compose shipped it: its schema only asks for 16 characters.
    const schema = z.object({ DLQ_TOKENS: json(tokens, []) });
    const error = problemsOf(() =>
      parseEnv(schema, { DLQ_TOKENS: '[{"name":"admin","role":"operator","token":"change-me-operator-token"}]' }),
    );
    expect(error.problems).toEqual([
      {
        variable: 'DLQ_TOKENS',
        problem:
          'JSON at 0.token: is an example value (from documentation or a compose file), not a secret; set one of your own',
      },
    ]);
    // An example key in intake's format, and a name that merely looks like one, which is fine.
    const keys = z.object({ INTAKE_API_KEYS: json(z.unknown(), []) });
    expect(
      problemsOf(() =>
        parseEnv(keys, { INTAKE_API_KEYS: '[{"name":"me","key":"<at least 16 characters>","scopes":["submit"]}]' }),
      ).problems[0]!.problem,
    ).toMatch(/^JSON at 0\.key: is an example value/);
    expect(
      parseEnv(schema, { DLQ_TOKENS: `[{"name":"admin","role":"operator","token":"${TOKEN}"}]` }).DLQ_TOKENS,
    ).toEqual([{ name: 'admin', role: 'operator', token: TOKEN }]);
  });

  it('secret() refuses examples and short values and accepts one of its own', () => {
    const schema = z.object({ S: secret() });
    expect(problemsOf(() => parseEnv(schema, { S: 'changeme' })).problems[0]!.problem).toContain('example value');
    expect(problemsOf(() => parseEnv(schema, { S: 'short-0001' })).problems[0]!.problem).toContain(
      'at least 16 characters',
    );
    expect(parseEnv(schema, { S: TOKEN }).S).toBe(TOKEN);
    expect(parseEnv(schema, {}).S).toBeUndefined();
  });

  it('secretText() checks a secret inside a JSON schema', () => {
    const entry = z.array(z.object({ token: secretText() }));
    expect(entry.safeParse([{ token: TOKEN }]).success).toBe(true);
    const bad = entry.safeParse([{ token: 'change-me-operator-token' }]);
    expect(bad.success).toBe(false);
    expect(JSON.stringify(bad.error?.issues)).not.toContain('change-me-operator-token');
    expect(entry.safeParse([{ token: 'short' }]).error?.issues[0]?.message).toContain('at least 16 characters');
  });
});
