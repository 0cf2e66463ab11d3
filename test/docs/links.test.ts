import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

// The README is the entry point and docs/ holds the rest: every relative link in them must
// lead to a file inside the repository (a clone has nothing outside it), and every #anchor to
// a heading of that file, as GitHub names headings.

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const README_LIMIT = 12_288;

const documents = [
  'README.md',
  ...readdirSync(join(ROOT, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .map((f) => `docs/${f}`),
];

/** The text outside fenced code blocks and inline code spans, where links and headings live. */
function prose(markdown: string): string {
  return markdown.replace(/^(```|~~~)[^\n]*\n[\s\S]*?^\1[^\n]*$/gm, '').replace(/`[^`\n]*`/g, 'code');
}

function links(markdown: string): string[] {
  const text = prose(markdown);
  const inline = [...text.matchAll(/!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)].map((m) => m[1]!);
  const references = [...text.matchAll(/^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)/gm)].map((m) => m[1]!);
  return [...inline, ...references];
}

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens, repeats numbered. */
export function headingAnchors(markdown: string): Set<string> {
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  const withoutFences = markdown.replace(/^(```|~~~)[^\n]*\n[\s\S]*?^\1[^\n]*$/gm, '');
  for (const m of withoutFences.matchAll(/^ {0,3}#{1,6}[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$/gm)) {
    const text = m[1]!
      .replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1') // a link shows its text
      .replace(/<[^>]+>/g, '') // inline HTML shows nothing
      .replace(/`/g, '')
      .replace(/(\*+|\b_+|_+\b)/g, (s) => (s.startsWith('*') ? '' : s));
    const base = text
      .trim()
      .toLowerCase()
      .replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, '')
      .replace(/ /g, '-');
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    anchors.add(n === 0 ? base : `${base}-${n}`);
  }
  return anchors;
}

describe('documentation links', () => {
  for (const doc of documents) {
    it(`${doc}: every relative link resolves inside the repository`, () => {
      const source = readFileSync(join(ROOT, doc), 'utf8');
      const problems: string[] = [];
      for (const link of links(source)) {
        if (/^[a-z][a-z0-9+.-]*:/i.test(link)) continue; // https:, mailto: … are not files here
        const [pathPart = '', anchor] = link.split('#', 2) as [string, string | undefined];
        const path = decodeURIComponent(pathPart.split('?')[0]!);
        const target = path === '' ? join(ROOT, doc) : resolve(ROOT, dirname(doc), path);
        const inside = relative(ROOT, target);
        if (isAbsolute(path) || inside.startsWith('..') || isAbsolute(inside)) {
          problems.push(`${link}: leads outside the repository`);
        } else if (!existsSync(target)) {
          problems.push(`${link}: ${inside} does not exist`);
        } else if (anchor !== undefined) {
          if (!statSync(target).isFile() || !target.endsWith('.md')) {
            problems.push(`${link}: #${anchor} points into a file that is not Markdown`);
          } else if (!headingAnchors(readFileSync(target, 'utf8')).has(decodeURIComponent(anchor))) {
            problems.push(`${link}: ${inside} has no heading #${anchor}`);
          }
        }
      }
      expect(problems).toEqual([]);
    });
  }

  it('never point to ../shared', () => {
    const offenders = documents.filter((doc) => readFileSync(join(ROOT, doc), 'utf8').includes('../shared'));
    expect(offenders).toEqual([]);
  });

  it('name headings the way GitHub does', () => {
    const anchors = headingAnchors(
      '# A\n## Admin API (dlq-manager)\n### The built-in `http` handler\n## Why JOBS, and its trade-off\n' +
        '```\n# not a heading\n```\n## Admin API (dlq-manager)\n## [Linked](x.md) *emphasis* snake_case\n',
    );
    expect([...anchors]).toEqual([
      'a',
      'admin-api-dlq-manager',
      'the-built-in-http-handler',
      'why-jobs-and-its-trade-off',
      'admin-api-dlq-manager-1',
      'linked-emphasis-snake_case',
    ]);
  });
});

describe('README.md', () => {
  it(`is an entry point of at most ${README_LIMIT} bytes`, () => {
    expect(statSync(join(ROOT, 'README.md')).size).toBeLessThanOrEqual(README_LIMIT);
  });

  it("summarises docs/retries.md's error classes as that table says", () => {
    // The README keeps the first columns of the table for newcomers (and test/lifecycle reads them).
    const rows = (file: string) =>
      [...readFileSync(join(ROOT, file), 'utf8').matchAll(/^\|\s*`([a-z_]+)`\s*\|([^|]*)\|([^|]*)\|([^|]*)\|/gm)].map(
        (m) => m.slice(1, 5).map((c) => c.trim()),
      );
    const summary = rows('README.md');
    expect(summary.length).toBeGreaterThan(0);
    expect(summary).toEqual(rows('docs/retries.md'));
  });
});
