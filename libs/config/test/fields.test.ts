import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ConfigError, duration, parseEnv, port } from '@redrive/config';

describe('parseEnv', () => {
  it('names the variable and the expected form when a value is malformed', () => {
    const schema = z.object({ A_PORT: port(80), A_WAIT: duration('1s') });
    let error: unknown;
    try {
      parseEnv(schema, { A_PORT: 'eighty', A_WAIT: 'soon' });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const problems = (error as ConfigError).problems;
    expect(problems.map((p) => p.variable)).toEqual(['A_PORT', 'A_WAIT']);
    expect(problems[0]!.problem).toContain('integer from 0 to 65535');
    expect(problems[1]!.problem).toContain('duration such as');
  });
});
