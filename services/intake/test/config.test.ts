import { describe, expect, it } from 'vitest';
import { ConfigError } from '@redrive/config';
import { loadIntakeConfig } from '../src/config.js';

const problemsOf = (env: Record<string, string>) => {
  try {
    loadIntakeConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems.map((p) => `${p.variable}: ${p.problem}`);
    throw err;
  }
  return [];
};

describe('producer keys', () => {
  it('reads keys with scopes from JSON', () => {
    const c = loadIntakeConfig({
      INTAKE_API_KEYS: JSON.stringify([
        { name: 'billing', key: 'billing-key-0000000001', scopes: ['submit'] },
        { name: 'ops', key: 'ops-key-00000000000002', scopes: ['schedules:read', 'schedules:cancel'] },
      ]),
    });
    expect(c.apiKeys).toEqual([
      { name: 'billing', key: 'billing-key-0000000001', scopes: ['submit'] },
      { name: 'ops', key: 'ops-key-00000000000002', scopes: ['schedules:read', 'schedules:cancel'] },
    ]);
    expect(c.allowAnonymous).toBe(false);
  });

  it('gives each key of the older comma-separated form every scope', () => {
    expect(loadIntakeConfig({ INTAKE_API_KEYS: 'k-one, k-two' }).apiKeys).toEqual([
      { name: 'key #1', key: 'k-one', scopes: ['submit', 'schedules:read', 'schedules:cancel'] },
      { name: 'key #2', key: 'k-two', scopes: ['submit', 'schedules:read', 'schedules:cancel'] },
    ]);
  });

  it('runs without keys only when anonymous access is asked for', () => {
    expect(problemsOf({})).toEqual([
      expect.stringMatching(/^INTAKE_API_KEYS: is not set, .*INTAKE_ALLOW_ANONYMOUS=true$/),
    ]);
    expect(loadIntakeConfig({ INTAKE_ALLOW_ANONYMOUS: 'true' })).toMatchObject({ apiKeys: [], allowAnonymous: true });
    expect(problemsOf({ INTAKE_ALLOW_ANONYMOUS: 'true', INTAKE_API_KEYS: 'k-one' })).toEqual([
      'INTAKE_ALLOW_ANONYMOUS: is true while INTAKE_API_KEYS lists keys; set one or the other',
    ]);
  });

  const key = (over: Record<string, unknown>) =>
    JSON.stringify([{ name: 'a', key: 'a-secret-key-00000001', scopes: ['submit'], ...over }]);

  it.each([
    ['an unknown scope', key({ scopes: ['sumbit'] }), /JSON at 0\.scopes\.0: .*"submit"/],
    ['no scopes', key({ scopes: [] }), /JSON at 0\.scopes: list at least one scope/],
    ['a short key', key({ key: 'short-secret' }), /JSON at 0\.key: a key needs at least 16 characters/],
    ['an unknown field', key({ role: 'admin' }), /JSON at \(root\)|JSON at 0/],
    ['a missing name', key({ name: undefined }), /JSON at 0\.name/],
    ['broken JSON', '[{"key":"a-secret-key-00000001"', /is not valid JSON \(the value is not shown: it holds keys\)/],
    [
      'a name used twice',
      JSON.stringify([
        { name: 'a', key: 'a-secret-key-00000001', scopes: ['submit'] },
        { name: 'a', key: 'a-secret-key-00000002', scopes: ['submit'] },
      ]),
      /JSON at 1\.name: "a" is used twice/,
    ],
    [
      'a key listed twice',
      JSON.stringify([
        { name: 'a', key: 'a-secret-key-00000001', scopes: ['submit'] },
        { name: 'b', key: 'a-secret-key-00000001', scopes: ['submit'] },
      ]),
      /JSON at 1\.key: the same key is listed twice/,
    ],
  ])('refuses %s without repeating any key', (_label, value, message) => {
    const problems = problemsOf({ INTAKE_API_KEYS: value });
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/^INTAKE_API_KEYS: /);
    expect(problems[0]).toMatch(message);
    expect(problems[0]).not.toContain('a-secret-key');
    expect(problems[0]).not.toContain('short-secret');
  });
});
