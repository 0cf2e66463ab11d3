import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { METRICS_DOC, renderMetricsReference } from '../../scripts/metrics-docs.js';

// docs/metrics.md is generated from the services' Prometheus registries; a metric added, removed,
// renamed, relabelled or re-described without `pnpm docs:metrics` fails here.

describe('docs/metrics.md', () => {
  it('is what `pnpm docs:metrics` writes from the registries', async () => {
    const expected = await renderMetricsReference();
    expect(readFileSync(METRICS_DOC, 'utf8'), 'docs/metrics.md is out of date: run `pnpm docs:metrics`').toBe(expected);
  });
});
