import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  bool,
  bytes,
  ConfigError,
  duration,
  int,
  list,
  oneOf,
  optUrl,
  parseBytes,
  parseDuration,
  parseEnv,
  str,
  urlList,
} from '@redrive/config';

// Every case goes through parseEnv, the one path a service uses, with the value under test in V.
function parseOne<T extends z.ZodType>(field: T, raw: string | undefined): unknown {
  const parsed = parseEnv(z.object({ V: field }), raw === undefined ? {} : { V: raw });
  return (parsed as unknown as { V: unknown }).V;
}

function problemOf<T extends z.ZodType>(field: T, raw: string): string {
  try {
    parseOne(field, raw);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    const problems = (err as ConfigError).problems;
    expect(problems).toHaveLength(1);
    expect(problems[0]!.variable).toBe('V');
    return problems[0]!.problem;
  }
  throw new Error(`expected ${JSON.stringify(raw)} to be refused`);
}

describe('duration', () => {
  it.each([
    ['250ms', 250],
    ['30s', 30_000],
    ['5m', 300_000],
    ['2h', 7_200_000],
    ['7d', 604_800_000],
    ['1500', 1_500],
    ['0', 0],
    ['1.5s', 1_500],
    [' 10s ', 10_000],
    ['10 s', 10_000],
    ['10S', 10_000],
  ])('reads %j as %d ms', (raw, ms) => {
    expect(parseOne(duration('1s'), raw)).toBe(ms);
    expect(parseDuration(raw)).toBe(ms);
  });

  it.each([['soon'], ['-5s'], ['5 minutes'], ['1h30m'], ['5w'], ['1e3'], ['s']])(
    'refuses %j and shows the expected form',
    (raw) => {
      const problem = problemOf(duration('1s'), raw);
      expect(problem).toContain('duration such as 500ms, 30s, 5m, 2h or 7d');
      expect(problem).toContain(`"${raw}"`);
    },
  );

  it.each([
    ['a string default', '30s', 30_000],
    ['a number default', 1_234, 1_234],
  ])('falls back to %s when unset or blank', (_label, def, ms) => {
    expect(parseOne(duration(def), undefined)).toBe(ms);
    expect(parseOne(duration(def), '')).toBe(ms);
    expect(parseOne(duration(def), '   ')).toBe(ms);
  });

  it('refuses a value below the minimum and states the minimum', () => {
    expect(parseOne(duration('15m', { min: 100 }), '100ms')).toBe(100);
    const problem = problemOf(duration('15m', { min: 100 }), '50ms');
    expect(problem).toContain('at least 100 ms');
  });
});

describe('bytes', () => {
  it.each([
    ['1024', 1_024],
    ['0', 0],
    ['10b', 10],
    ['1KB', 1_000],
    ['512KiB', 524_288],
    ['1MiB', 1_048_576],
    ['1mb', 1_000_000],
    ['10GB', 10_000_000_000],
    ['2GiB', 2_147_483_648],
    ['1.5KiB', 1_536],
  ])('reads %j as %d bytes', (raw, n) => {
    expect(parseOne(bytes(0), raw)).toBe(n);
    expect(parseBytes(raw)).toBe(n);
  });

  it.each([['lots'], ['1K'], ['1TB'], ['-5'], ['MiB']])('refuses %j and shows the expected form', (raw) => {
    expect(problemOf(bytes(0), raw)).toContain('size such as 1MiB, 512KiB or 1048576');
  });

  it('accepts -1 as unlimited only where allowed, and says so in the expected form', () => {
    expect(parseOne(bytes(0, { allowUnlimited: true }), '-1')).toBe(-1);
    expect(problemOf(bytes(0, { allowUnlimited: true }), 'huge')).toContain('or -1 for unlimited');
    expect(problemOf(bytes(0), '-1')).not.toContain('unlimited');
  });

  it('falls back to the default when unset or blank', () => {
    expect(parseOne(bytes(4_096), undefined)).toBe(4_096);
    expect(parseOne(bytes(-1, { allowUnlimited: true }), ' ')).toBe(-1);
  });
});

describe('list', () => {
  it.each([
    ['a', ['a']],
    ['a,b,c', ['a', 'b', 'c']],
    [' a , b ,, c, ', ['a', 'b', 'c']],
    [',', []],
  ])('splits %j into %j', (raw, items) => {
    expect(parseOne(list(), raw)).toEqual(items);
  });

  it('falls back to a copy of the default when unset or blank', () => {
    const def = ['x', 'y'];
    expect(parseOne(list(def), undefined)).toEqual(['x', 'y']);
    expect(parseOne(list(def), '')).toEqual(['x', 'y']);
    expect(parseOne(list(def), undefined)).not.toBe(def);
    expect(parseOne(list(), undefined)).toEqual([]);
  });

  it('names every item that breaks the pattern and what the items must look like', () => {
    const field = list([], { re: /^[a-z]+$/, describe: 'lower-case words' });
    expect(parseOne(field, 'ok,fine')).toEqual(['ok', 'fine']);
    const problem = problemOf(field, 'ok,Bad,also.bad');
    expect(problem).toContain('comma-separated list of lower-case words');
    expect(problem).toContain('bad: Bad, also.bad');
  });
});

describe('bool', () => {
  it.each([
    ['true', true],
    ['TRUE', true],
    ['1', true],
    ['yes', true],
    ['on', true],
    ['false', false],
    ['False', false],
    ['0', false],
    ['no', false],
    ['off', false],
  ])('reads %j as %s', (raw, value) => {
    expect(parseOne(bool(!value), raw)).toBe(value);
  });

  it.each([['maybe'], ['2'], ['y']])('refuses %j and asks for true or false', (raw) => {
    expect(problemOf(bool(false), raw)).toContain('expected true or false');
  });

  it.each([[true], [false]])('falls back to %s when unset or blank', (def) => {
    expect(parseOne(bool(def), undefined)).toBe(def);
    expect(parseOne(bool(def), '')).toBe(def);
  });
});

describe('int', () => {
  it.each([
    ['4', 4],
    ['0', 0],
    ['-1', -1],
    [' 7 ', 7],
    ['10', 10],
  ])('reads %j as %d', (raw, n) => {
    expect(parseOne(int(5, { min: -1, max: 10 }), raw)).toBe(n);
  });

  it.each([['1.5'], ['1e3'], ['ten'], ['0x10'], ['11'], ['-2'], ['99999999999999999999']])(
    'refuses %j and states the allowed range',
    (raw) => {
      const problem = problemOf(int(5, { min: -1, max: 10 }), raw);
      expect(problem).toContain('expected an integer from -1 to 10');
      expect(problem).toContain(`"${raw}"`);
    },
  );

  it('reads any safe integer when no range is given', () => {
    expect(parseOne(int(0), '-9007199254740991')).toBe(-9_007_199_254_740_991);
    expect(parseOne(int(0), '9007199254740991')).toBe(9_007_199_254_740_991);
  });

  it('falls back to the default when unset or blank', () => {
    expect(parseOne(int(5), undefined)).toBe(5);
    expect(parseOne(int(5), ' ')).toBe(5);
  });
});

describe('oneOf', () => {
  const field = () => oneOf(['file', 'memory'] as const, 'file');

  it('accepts each allowed value and falls back to the default when unset', () => {
    expect(parseOne(field(), 'memory')).toBe('memory');
    expect(parseOne(field(), 'file')).toBe('file');
    expect(parseOne(field(), undefined)).toBe('file');
    expect(parseOne(field(), '')).toBe('file');
  });

  it.each([['disk'], ['FILE']])('refuses %j and lists the allowed values', (raw) => {
    expect(problemOf(field(), raw)).toBe(`expected one of file, memory, got "${raw}"`);
  });
});

describe('urlList', () => {
  const field = () => urlList(['nats://127.0.0.1:4222'], ['nats', 'tls']);

  it.each([
    ['nats://a:4222', ['nats://a:4222']],
    ['nats://a:4222, tls://b:4222', ['nats://a:4222', 'tls://b:4222']],
  ])('reads %j as %j', (raw, urls) => {
    expect(parseOne(field(), raw)).toEqual(urls);
  });

  it('falls back to the default when unset', () => {
    expect(parseOne(field(), undefined)).toEqual(['nats://127.0.0.1:4222']);
  });

  it.each([
    ['a:4222', ['nats://a:4222']],
    ['127.0.0.1:4222, tls://b:4222', ['nats://127.0.0.1:4222', 'tls://b:4222']],
  ])('gives a bare host in %j the default scheme', (raw, urls) => {
    expect(parseOne(urlList([], ['nats', 'tls'], 'nats'), raw)).toEqual(urls);
  });

  it('refuses a bare host when there is no default scheme', () => {
    expect(problemOf(field(), 'a:4222')).toContain('"a:4222"');
  });

  it.each([
    ['a scheme not allowed', 'nats://a:4222,http://b:80', 'http://b:80'],
    ['not a URL', 'not a url', 'not a url'],
  ])('refuses %s, naming the bad entry and the allowed schemes', (_label, raw, bad) => {
    const problem = problemOf(field(), raw);
    expect(problem).toContain('(nats, tls)');
    expect(problem).toContain(`"${bad}"`);
  });
});

describe('optUrl', () => {
  it.each([['http://example.com/hook'], ['https://example.com:8443/x?y=1']])('accepts %j unchanged', (raw) => {
    expect(parseOne(optUrl(), raw)).toBe(raw);
  });

  it('is undefined when unset or blank', () => {
    expect(parseOne(optUrl(), undefined)).toBeUndefined();
    expect(parseOne(optUrl(), '  ')).toBeUndefined();
  });

  it.each([['ftp://example.com'], ['example.com'], ['nats://a:4222']])('refuses %j as not http(s)', (raw) => {
    expect(problemOf(optUrl(), raw)).toBe(`expected an http(s) URL, got "${raw}"`);
  });
});

describe('str', () => {
  it('trims the value, falls back to the default, and is required without one', () => {
    expect(parseOne(str(), '  x  ')).toBe('x');
    expect(parseOne(str('d'), undefined)).toBe('d');
    expect(parseOne(str(''), undefined)).toBe('');
    expect(() => parseOne(str(), undefined)).toThrow(ConfigError);
    expect(() => parseOne(str(), '   ')).toThrow(/V: is required/);
  });
});
