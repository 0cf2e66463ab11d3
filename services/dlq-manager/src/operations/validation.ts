import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';

/**
 * The validators of the admin operations. Bodies are checked strictly (no coercion, unknown
 * fields refused), like every Redrive API; query strings and path parameters arrive as text,
 * so their numbers and booleans are coerced from it.
 */
export function createValidators() {
  const options = { removeAdditional: false, allErrors: false, strict: false } as const;
  const strict = new Ajv({ ...options, coerceTypes: false });
  const coercing = new Ajv({ ...options, coerceTypes: true });
  return {
    compile(schema: object, coerce: boolean): ValidateFunction {
      return (coerce ? coercing : strict).compile(schema);
    },
    /** One readable line for a failed validation, e.g. `/note must be string`. */
    describe(errors: ErrorObject[] | null | undefined): string {
      const e = errors?.[0];
      if (!e) return 'is invalid';
      const where = e.instancePath || '(root)';
      if (e.keyword === 'additionalProperties')
        return `${where} has an unknown field "${String(e.params.additionalProperty)}"`;
      if (e.keyword === 'required')
        return `${where} is missing the required field "${String(e.params.missingProperty)}"`;
      return `${where} ${e.message ?? 'is invalid'}`;
    },
  };
}

export type Validators = ReturnType<typeof createValidators>;
