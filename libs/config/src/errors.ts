/** One environment variable that failed validation. */
export interface ConfigProblem {
  readonly variable: string;
  readonly problem: string;
}

/** Thrown when the environment does not describe a valid configuration; names every bad variable. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(readonly problems: readonly ConfigProblem[]) {
    super(`invalid configuration:\n${problems.map((p) => `  ${p.variable}: ${p.problem}`).join('\n')}`);
  }
}
