import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CONFIGURATION_DOC, renderConfigurationReference } from '../../scripts/config-docs.js';

// docs/configuration.md is generated from the services' environment schemas; a variable added,
// removed, re-described or given another default without `pnpm docs:config` fails here.

describe('docs/configuration.md', () => {
  it('is what `pnpm docs:config` writes from the schemas', async () => {
    const expected = await renderConfigurationReference();
    expect(
      readFileSync(CONFIGURATION_DOC, 'utf8'),
      'docs/configuration.md is out of date: run `pnpm docs:config`',
    ).toBe(expected);
  });
});
