import { z } from 'zod';

/** Where `pnpm migrate` (and, by default, a development machine's services) find Postgres. */
export const DEFAULT_DATABASE_URL = 'postgres://postgres@127.0.0.1:5432/redrive';

// Hides the password of a URL-ish string so a rejected value can be echoed back safely.
function redact(text: string): string {
  return text.replace(/(\/\/[^:/@]*:)[^@/]*@/, '$1***@');
}

/** A postgres:// URL that names a database; blank means the default. */
export function postgresUrl(def: string) {
  return z
    .string()
    .optional()
    .transform((raw, ctx) => {
      const value = raw?.trim() || def;
      let url: URL | undefined;
      try {
        url = new URL(value);
      } catch {
        url = undefined;
      }
      const expected = 'expected postgres://user[:password]@host[:port]/database';
      if (!url || (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:')) {
        ctx.addIssue({ code: 'custom', message: `${expected}, got "${redact(value)}"` });
        return z.NEVER;
      }
      if (!url.hostname || url.pathname.replace(/^\//, '') === '') {
        ctx.addIssue({
          code: 'custom',
          message: `${expected} (host and database name required), got "${redact(value)}"`,
        });
        return z.NEVER;
      }
      return value;
    });
}

/** Environment variables of a process that uses Postgres. */
export const databaseEnv = {
  DATABASE_URL: postgresUrl(DEFAULT_DATABASE_URL).describe(
    'Postgres, `postgres://user[:password]@host[:port]/database`',
  ),
};
