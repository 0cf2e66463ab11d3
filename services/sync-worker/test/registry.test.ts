import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defineHandler, type HandlerDefinition } from '@redrive/sdk';
import { HandlerModuleError, loadHandlers, selectTypes } from '../src/registry.js';

let dir: string;

// Handler modules as a user writes them, each in its own file of a temporary directory.
const modules: Record<string, string> = {
  'default-one.mjs': `export default { type: 'email', handle: async () => 'sent' };`,
  'default-array.mjs': `export default [
    { type: 'sms', handle: () => {} },
    { type: 'push', handle: () => {}, timeoutMs: 5000 },
  ];`,
  'named.mjs': `export const handlers = [{ type: 'crm-sync', handle: () => {} }];`,
  'named-wins.mjs': `export const handlers = [{ type: 'from-named', handle: () => {} }];
    export default { type: 'from-default', handle: () => {} };`,
  'email-again.mjs': `export default { type: 'email', handle: () => {} };`,
  'self-duplicate.mjs': `export default [{ type: 'fax', handle: () => {} }, { type: 'fax', handle: () => {} }];`,
  'nothing.mjs': `export const somethingElse = 1;`,
  'empty-array.mjs': `export default [];`,
  'no-handle.mjs': `export default { type: 'ok' };`,
  'upper-type.mjs': `export default { type: 'Email', handle: () => {} };`,
  'dotted-type.mjs': `export default { type: 'a.b', handle: () => {} };`,
  'missing-type.mjs': `export default { handle: () => {} };`,
  'second-bad.mjs': `export default [{ type: 'good', handle: () => {} }, { type: '*', handle: () => {} }];`,
  'throws.mjs': `throw new Error('module blew up at import');`,
  'syntax.mjs': `export default {`,
};

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'redrive-registry-'));
  for (const [name, text] of Object.entries(modules)) await writeFile(join(dir, name), text);
  // An installed package, resolved by name from the working directory.
  const pkg = join(dir, 'node_modules', 'acme-handlers');
  await mkdir(pkg, { recursive: true });
  await writeFile(
    join(pkg, 'package.json'),
    JSON.stringify({ name: 'acme-handlers', type: 'module', main: 'index.js' }),
  );
  await writeFile(join(pkg, 'index.js'), `export default { type: 'acme', handle: () => {} };`);
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const builtin = (type: string): HandlerDefinition => defineHandler({ type, handle: () => undefined });

async function moduleErrorOf(promise: Promise<unknown>): Promise<HandlerModuleError> {
  try {
    await promise;
  } catch (err) {
    expect(err).toBeInstanceOf(HandlerModuleError);
    return err as HandlerModuleError;
  }
  throw new Error('expected a HandlerModuleError');
}

describe('loadHandlers', () => {
  it.each([
    ['a default export of one handler', ['./default-one.mjs'], ['email']],
    ['a default export of an array', ['./default-array.mjs'], ['sms', 'push']],
    ['a `handlers` named export', ['./named.mjs'], ['crm-sync']],
    ['`handlers` over the default export', ['./named-wins.mjs'], ['from-named']],
    ['an installed package by name', ['acme-handlers'], ['acme']],
    ['several modules', ['./default-one.mjs', './named.mjs'], ['email', 'crm-sync']],
    ['no modules', [], []],
  ])('registers %s', async (_label, specs, types) => {
    const registry = await loadHandlers([], specs, dir);
    expect([...registry.keys()]).toEqual(types);
    for (const def of registry.values()) expect(typeof def.handle).toBe('function');
  });

  it('resolves relative paths from the working directory and accepts absolute paths', async () => {
    const registry = await loadHandlers([], ['./default-one.mjs', join(dir, 'named.mjs')], dir);
    expect([...registry.keys()].sort()).toEqual(['crm-sync', 'email']);
  });

  it('keeps the built-ins and adds the modules after them, with their options', async () => {
    const http = builtin('http');
    const registry = await loadHandlers([http], ['./default-array.mjs'], dir);
    expect([...registry.keys()]).toEqual(['http', 'sms', 'push']);
    expect(registry.get('http')).toBe(http);
    expect(registry.get('push')!.timeoutMs).toBe(5_000);
  });

  it.each([
    [
      'two modules',
      [],
      ['./default-one.mjs', './email-again.mjs'],
      './email-again.mjs',
      'a handler for "email" is already registered by ./default-one.mjs',
    ],
    [
      'a built-in and a module',
      [builtin('email')],
      ['./default-one.mjs'],
      './default-one.mjs',
      'a handler for "email" is already registered by the built-ins',
    ],
    [
      'one module',
      [],
      ['./self-duplicate.mjs'],
      './self-duplicate.mjs',
      'a handler for "fax" is already registered by ./self-duplicate.mjs',
    ],
  ])('refuses a type registered twice by %s, naming both sources', async (_label, builtins, specs, module, problem) => {
    const error = await moduleErrorOf(loadHandlers(builtins, specs, dir));
    expect(error.module).toBe(module);
    expect(error.message).toBe(`handler module ${module}: ${problem}`);
  });

  it.each([
    ['no handler export', './nothing.mjs', 'exports no handlers'],
    ['an empty array', './empty-array.mjs', 'exports no handlers'],
    ['a handler without handle()', './no-handle.mjs', 'export #0 has no handle(job, ctx) function'],
    ['an upper-case type', './upper-type.mjs', 'export #0 has type "Email"'],
    ['a type with a dot', './dotted-type.mjs', 'export #0 has type "a.b"'],
    ['no type', './missing-type.mjs', 'export #0 has type undefined'],
    ['a bad second handler', './second-bad.mjs', 'export #1 has type "*"'],
  ])('refuses a module with %s, naming the module', async (_label, spec, problem) => {
    const error = await moduleErrorOf(loadHandlers([], [spec], dir));
    expect(error.module).toBe(spec);
    expect(error.message).toContain(`handler module ${spec}: `);
    expect(error.message).toContain(problem);
  });

  it.each([
    ['a missing file', './does-not-exist.mjs', undefined],
    ['a missing package', 'no-such-handler-package', undefined],
    ['a module that throws on import', './throws.mjs', 'module blew up at import'],
    ['a module with a syntax error', './syntax.mjs', undefined],
  ])('refuses %s, naming the module and keeping the cause', async (_label, spec, detail) => {
    const error = await moduleErrorOf(loadHandlers([], [spec], dir));
    expect(error.module).toBe(spec);
    expect(error.message).toContain(`handler module ${spec}: cannot be imported: `);
    if (detail) expect(error.message).toContain(detail);
    expect(error.cause).toBeInstanceOf(Error);
  });
});

describe('selectTypes', () => {
  const registry = new Map([
    ['webhook', builtin('webhook')],
    ['email', builtin('email')],
    ['sms', builtin('sms')],
  ]);

  it.each([
    ['every registered type, sorted, when none are listed', [], ['email', 'sms', 'webhook']],
    ['the listed types, sorted', ['webhook', 'email'], ['email', 'webhook']],
    ['each listed type once', ['sms', 'sms', 'email'], ['email', 'sms']],
  ])('serves %s', (_label, only, types) => {
    expect(selectTypes(registry, only)).toEqual(types);
  });

  it('refuses listed types without a handler, naming them and the types that have one', () => {
    expect(() => selectTypes(registry, ['email', 'fax', 'telex'])).toThrow(
      'WORKER_TYPES names types with no handler: fax, telex (handlers exist for: webhook, email, sms)',
    );
    expect(() => selectTypes(new Map(), ['fax'])).toThrow('(handlers exist for: none)');
  });
});
