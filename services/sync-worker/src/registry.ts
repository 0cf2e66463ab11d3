import { createRequire } from 'node:module';
import { isAbsolute, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { isJobType } from '@redrive/messaging';
import type { HandlerDefinition } from '@redrive/sdk';

/** A handler module could not be loaded or does not export valid handlers. */
export class HandlerModuleError extends Error {
  override readonly name = 'HandlerModuleError';
  constructor(
    readonly module: string,
    problem: string,
    options?: ErrorOptions,
  ) {
    super(`handler module ${module}: ${problem}`, options);
  }
}

export type HandlerRegistry = ReadonlyMap<string, HandlerDefinition>;

function resolveSpecifier(spec: string, cwd: string): string {
  if (spec.startsWith('.') || isAbsolute(spec)) return pathToFileURL(resolve(cwd, spec)).href;
  // A package name resolves from the working directory, where the user installed it.
  try {
    return pathToFileURL(createRequire(join(cwd, 'package.json')).resolve(spec)).href;
  } catch {
    return spec;
  }
}

function definitionsOf(mod: Record<string, unknown>, spec: string): HandlerDefinition[] {
  const exported = mod.handlers ?? mod.default;
  const list = Array.isArray(exported) ? exported : exported === undefined ? [] : [exported];
  if (list.length === 0) {
    throw new HandlerModuleError(
      spec,
      'exports no handlers: export default defineHandler({ type, handle }) or an array of them',
    );
  }
  return list.map((d, i) => {
    const def = d as Partial<HandlerDefinition> | undefined;
    if (!def || typeof def.handle !== 'function') {
      throw new HandlerModuleError(spec, `export #${i} has no handle(job, ctx) function`);
    }
    if (!isJobType(def.type)) {
      throw new HandlerModuleError(
        spec,
        `export #${i} has type ${JSON.stringify(def.type)}; expected [a-z0-9][a-z0-9_-]*`,
      );
    }
    return def as HandlerDefinition;
  });
}

/**
 * Builds the handler registry from the built-ins and the user modules named in configuration.
 * Two handlers for one type, or a module that exports none, stop start-up with the module named.
 */
export async function loadHandlers(
  builtins: readonly HandlerDefinition[],
  modules: readonly string[],
  cwd: string = process.cwd(),
): Promise<Map<string, HandlerDefinition>> {
  const registry = new Map<string, HandlerDefinition>();
  const origin = new Map<string, string>();
  const add = (def: HandlerDefinition, from: string) => {
    const previous = origin.get(def.type);
    if (previous)
      throw new HandlerModuleError(from, `a handler for "${def.type}" is already registered by ${previous}`);
    registry.set(def.type, def);
    origin.set(def.type, from);
  };
  for (const def of builtins) add(def, 'the built-ins');
  for (const spec of modules) {
    let mod: Record<string, unknown>;
    try {
      mod = (await import(resolveSpecifier(spec, cwd))) as Record<string, unknown>;
    } catch (err) {
      throw new HandlerModuleError(spec, `cannot be imported: ${err instanceof Error ? err.message : String(err)}`, {
        cause: err,
      });
    }
    for (const def of definitionsOf(mod, spec)) add(def, spec);
  }
  return registry;
}

/** Narrows the registry to the types this deployment serves; every listed type needs a handler. */
export function selectTypes(registry: ReadonlyMap<string, HandlerDefinition>, only: readonly string[]): string[] {
  if (only.length === 0) return [...registry.keys()].sort();
  const missing = only.filter((t) => !registry.has(t));
  if (missing.length > 0) {
    throw new Error(
      `WORKER_TYPES names types with no handler: ${missing.join(', ')} (handlers exist for: ${[...registry.keys()].join(', ') || 'none'})`,
    );
  }
  return [...new Set(only)].sort();
}
