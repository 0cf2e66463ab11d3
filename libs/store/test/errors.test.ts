import { describe, expect, it } from 'vitest';
import { isConnectionFailure, rethrowUnavailable, StoreUnavailableError } from '../src/errors.js';

const withCode = (code: string, message = 'x') => Object.assign(new Error(message), { code });

describe('isConnectionFailure', () => {
  it.each([
    ['connection refused', withCode('ECONNREFUSED'), true],
    ['connection reset', withCode('ECONNRESET'), true],
    ['DNS failure', withCode('ENOTFOUND'), true],
    ['all addresses refused (happy eyeballs)', new AggregateError([withCode('ECONNREFUSED')]), true],
    ['SQLSTATE 08006 connection_failure', withCode('08006'), true],
    ['SQLSTATE 57P01 admin_shutdown', withCode('57P01'), true],
    ['SQLSTATE 57P03 cannot_connect_now (starting up)', withCode('57P03'), true],
    ['SQLSTATE 53300 too_many_connections', withCode('53300'), true],
    ['pg-pool connect timeout', new Error('timeout exceeded when trying to connect'), true],
    ['connection lost mid-query', new Error('Connection terminated unexpectedly'), true],
    ['wrapped connection error', new Error('outer', { cause: withCode('ECONNREFUSED') }), true],
    ['syntax error 42601', withCode('42601'), false],
    ['unique violation 23505', withCode('23505'), false],
    ['statement timeout 57014', withCode('57014'), false],
    ['serialization failure 40001', withCode('40001'), false],
    ['missing database 3D000', withCode('3D000'), false],
    ['a plain error', new Error('boom'), false],
    ['not an error', 'ECONNREFUSED', false],
  ])('%s → %s', (_name, err, expected) => {
    expect(isConnectionFailure(err)).toBe(expected);
  });
});

describe('rethrowUnavailable', () => {
  it('wraps a connection failure and keeps the original as cause', () => {
    const original = withCode('ECONNREFUSED', 'connect ECONNREFUSED 127.0.0.1:1');
    let thrown: unknown;
    try {
      rethrowUnavailable(original, 'reading');
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(StoreUnavailableError);
    expect((thrown as Error).cause).toBe(original);
    expect((thrown as Error).message).toBe('Postgres unavailable while reading: connect ECONNREFUSED 127.0.0.1:1');
  });

  it('rethrows any other error unchanged', () => {
    const original = withCode('23505');
    expect(() => rethrowUnavailable(original, 'saving')).toThrow(original);
  });
});
