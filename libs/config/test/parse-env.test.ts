import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { bool, ConfigError, duration, freezeConfig, int, list, oneOf, parseEnv, port, str } from '@redrive/config';

const schema = z.object({
  APP_NAME: str(),
  APP_PORT: port(8080),
  APP_WAIT: duration('30s'),
  APP_MODE: oneOf(['fast', 'safe'] as const, 'safe'),
  APP_DEBUG: bool(false),
  APP_RETRIES: int(3, { min: 0, max: 10 }),
  APP_TAGS: list(['a']),
});

function configErrorOf(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error('expected a ConfigError');
}

describe('parseEnv', () => {
  it('applies the defaults of every unset variable', () => {
    expect(parseEnv(schema, { APP_NAME: 'svc' })).toEqual({
      APP_NAME: 'svc',
      APP_PORT: 8080,
      APP_WAIT: 30_000,
      APP_MODE: 'safe',
      APP_DEBUG: false,
      APP_RETRIES: 3,
      APP_TAGS: ['a'],
    });
  });

  it('ignores variables the schema does not name', () => {
    expect(parseEnv(z.object({ APP_NAME: str() }), { APP_NAME: 'svc', PATH: '/bin' })).toEqual({ APP_NAME: 'svc' });
  });

  it('lists every bad variable in one ConfigError, each with its name and the expected form', () => {
    const error = configErrorOf(() =>
      parseEnv(schema, {
        APP_PORT: '70000',
        APP_WAIT: 'later',
        APP_MODE: 'turbo',
        APP_DEBUG: 'perhaps',
        APP_RETRIES: '11',
        APP_TAGS: 'fine',
      }),
    );
    const byName = Object.fromEntries(error.problems.map((p) => [p.variable, p.problem]));
    expect(Object.keys(byName).sort()).toEqual([
      'APP_DEBUG',
      'APP_MODE',
      'APP_NAME',
      'APP_PORT',
      'APP_RETRIES',
      'APP_WAIT',
    ]);
    expect(byName.APP_NAME).toContain('is required');
    expect(byName.APP_PORT).toContain('integer from 0 to 65535, got "70000"');
    expect(byName.APP_WAIT).toContain('duration such as 500ms, 30s, 5m, 2h or 7d, got "later"');
    expect(byName.APP_MODE).toContain('one of fast, safe, got "turbo"');
    expect(byName.APP_DEBUG).toContain('true or false, got "perhaps"');
    expect(byName.APP_RETRIES).toContain('integer from 0 to 10, got "11"');
  });

  it('puts every bad variable and its problem on its own line of the message', () => {
    const error = configErrorOf(() => parseEnv(schema, { APP_NAME: 'svc', APP_PORT: 'x', APP_WAIT: 'y' }));
    expect(error.name).toBe('ConfigError');
    expect(error.message.split('\n')).toEqual([
      'invalid configuration:',
      '  APP_PORT: expected an integer from 0 to 65535, got "x"',
      '  APP_WAIT: expected a duration such as 500ms, 30s, 5m, 2h or 7d, got "y"',
    ]);
  });

  it('reads process.env when no environment is passed', () => {
    const name = `REDRIVE_TEST_${process.pid}_VALUE`;
    process.env[name] = '12s';
    try {
      expect(parseEnv(z.object({ [name]: duration(0) }))[name]).toBe(12_000);
    } finally {
      delete process.env[name];
    }
  });
});

describe('a parsed configuration is frozen', () => {
  // Test files are ES modules, so assignments below run in strict mode and must throw.
  it.each([
    [
      'a top-level value',
      (c: Record<string, unknown>) => {
        c.APP_PORT = 1;
      },
    ],
    [
      'a new key',
      (c: Record<string, unknown>) => {
        c.EXTRA = 1;
      },
    ],
    [
      'a list item',
      (c: Record<string, unknown>) => {
        (c.APP_TAGS as string[])[0] = 'b';
      },
    ],
    [
      'a list push',
      (c: Record<string, unknown>) => {
        (c.APP_TAGS as string[]).push('b');
      },
    ],
  ])('throws on assigning %s', (_label, mutate) => {
    const config = parseEnv(schema, { APP_NAME: 'svc' }) as unknown as Record<string, unknown>;
    expect(() => mutate(config)).toThrow(TypeError);
    expect(config.APP_PORT).toBe(8080);
    expect(config.APP_TAGS).toEqual(['a']);
  });

  it('freezeConfig freezes nested objects and arrays', () => {
    const config = freezeConfig({ nats: { servers: ['nats://a'] }, tls: { handshakeFirst: false } });
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(config.nats)).toBe(true);
    expect(Object.isFrozen(config.nats.servers)).toBe(true);
    expect(() => {
      (config.tls as { handshakeFirst: boolean }).handshakeFirst = true;
    }).toThrow(TypeError);
  });
});
