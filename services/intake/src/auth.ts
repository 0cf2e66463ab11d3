import type { FastifyRequest } from 'fastify';
import { createCredentialCheck, HttpError, presentedKey, type RouteAuth } from '@redrive/http';

/** What a producer key may do: submit jobs, read schedules, cancel schedules. */
export const SCOPES = ['submit', 'schedules:read', 'schedules:cancel'] as const;
export type Scope = (typeof SCOPES)[number];

export interface ApiKey {
  /** Names the key in logs and messages; never the key itself. */
  readonly name: string;
  readonly key: string;
  readonly scopes: readonly Scope[];
}

export interface Producer {
  readonly name: string;
  readonly scopes: readonly Scope[];
}

/** The caller of an intake started with INTAKE_ALLOW_ANONYMOUS=true: anyone, with every scope. */
const ANONYMOUS: Producer = { name: 'anonymous', scopes: SCOPES };

/**
 * Producer API keys with scopes, presented as `Authorization: Bearer <key>` or `X-Api-Key`.
 * With `anonymous` (and then no keys) every request is the anonymous producer.
 */
export function createKeyAuth(keys: readonly ApiKey[], anonymous: boolean): RouteAuth<Producer> {
  const check = createCredentialCheck(
    keys.map((k) => ({ secret: k.key, principal: { name: k.name, scopes: k.scopes } })),
    {
      noun: 'API key',
      howToSend: 'send "Authorization: Bearer <key>" or "X-Api-Key: <key>"',
      challenge: 'Bearer',
    },
  );
  return {
    permissions: SCOPES,
    principalOf: (req: FastifyRequest) => (anonymous ? ANONYMOUS : check(presentedKey(req))),
    authorize: (producer, need) => {
      if (!(producer.scopes as readonly string[]).includes(need)) {
        throw new HttpError(
          403,
          'FORBIDDEN',
          `the API key "${producer.name}" lacks the ${need} scope (it has: ${producer.scopes.join(', ') || 'none'})`,
        );
      }
    },
  };
}
