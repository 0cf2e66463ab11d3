import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';

/** One readable line for a schema error, e.g. `body.priority must be one of high, normal, low`. */
export function describeSchemaError(e: ErrorObject, dataVar: string): string {
  const where = `${dataVar}${e.instancePath.replace(/\//g, '.')}`;
  switch (e.keyword) {
    case 'enum':
      return `${where} must be one of ${(e.params.allowedValues as unknown[]).join(', ')}`;
    case 'required':
      return `${where} is missing the required field "${String(e.params.missingProperty)}"`;
    case 'additionalProperties':
      return `${where} has an unknown field "${String(e.params.additionalProperty)}"`;
    case 'pattern':
      return `${where} must match ${String(e.params.pattern)}`;
    default:
      return `${where} ${e.message ?? 'is invalid'}`;
  }
}

/**
 * Redrive's one validation policy, for HTTP routes (createHttpApp) and requests over NATS alike:
 * bodies are checked strictly (no coercion, unknown fields refused); query strings and path
 * parameters arrive as text, so their numbers and booleans are coerced from it (`coerce`).
 */
export function createValidators() {
  const options = { removeAdditional: false, allErrors: false, strict: false } as const;
  const strict = new Ajv({ ...options, coerceTypes: false });
  const coercing = new Ajv({ ...options, coerceTypes: true });
  return {
    compile(schema: object, coerce: boolean): ValidateFunction {
      return (coerce ? coercing : strict).compile(schema);
    },
    /** A failed validation in words, its data called `dataVar` (`body`, `querystring`, `request` …). */
    describe(errors: readonly ErrorObject[] | null | undefined, dataVar: string): string {
      if (!errors?.length) return `${dataVar} is invalid`;
      return errors.map((e) => describeSchemaError(e, dataVar)).join('; ');
    },
  };
}

export type Validators = ReturnType<typeof createValidators>;
