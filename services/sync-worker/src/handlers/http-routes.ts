import { validateHeaderName } from 'node:http';
import { ValidationError } from '@redrive/sdk';

// Where the jobs of one type may go, and with which secret. A signing secret belongs to a
// receiving endpoint, so it is kept by origin (scheme, host, port) and used only for a send to
// that exact origin by a type whose configuration names that origin. A type either has a fixed
// target (its jobs' payloads are POSTed there, an envelope's url is refused) or takes envelopes
// whose url must fall on one of its origins; redirects are held to the same rule.

/** The `origins` entry that lets envelopes name any origin whose addresses are all public. */
export const ANY_PUBLIC_ORIGIN = '*';

/** Headers that never follow a redirect to another origin, besides those a type adds. */
export const CREDENTIAL_HEADERS: readonly string[] = ['authorization', 'proxy-authorization', 'cookie', 'x-api-key'];

/** Where the jobs of one type may go (one entry of HTTP_TYPES). */
export interface HttpTypeSettings {
  /** The fixed target: each job's payload is POSTed here as it is; an envelope's url is refused. */
  readonly target?: string;
  /** Without a target: origins (`https://host[:port]`) an envelope's url may name; `*` for any origin whose addresses are public. */
  readonly origins?: readonly string[];
  /** Origins of this type that may resolve to loopback, private, link-local or other internal addresses. */
  readonly internalOrigins?: readonly string[];
  /** More header names that never follow a redirect to another origin (see CREDENTIAL_HEADERS). */
  readonly secretHeaders?: readonly string[];
}

/** A URL a job's type does not send to: refused as `validation`, so never sent and never signed. */
export class DisallowedUrlError extends ValidationError {
  override readonly name: string = 'DisallowedUrlError';
}

/** What is wrong with `value` as a target URL, or undefined. */
export function httpUrlProblem(value: string): string | undefined {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return 'is not a URL';
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return 'is not an http(s) URL';
  if (url.username || url.password) return 'has credentials in it; send them as headers';
  return undefined;
}

/** What is wrong with `value` as an origin (`scheme://host[:port]`), or undefined. */
export function originProblem(value: string): string | undefined {
  const problem = httpUrlProblem(value);
  if (problem) return problem;
  const url = new URL(value);
  return url.pathname === '/' && !url.search && !url.hash ? undefined : 'is not an origin (scheme://host[:port])';
}

/** The origin of a URL or origin string as URLs report it: lower-case, default port dropped. */
export function originOf(value: string): string {
  return new URL(value).origin;
}

/** An origins entry as a problem shows it: never a path or query, which may be a webhook's secret. */
function entryLabel(entry: string): string {
  if (entry === ANY_PUBLIC_ORIGIN) return entry;
  try {
    const url = new URL(entry);
    return url.pathname === '/' && !url.search ? url.origin : `${url.origin} with a path`;
  } catch {
    return 'not a URL';
  }
}

/** How a URL is reached: on an origin the type names, or only through `*` (public addresses, never signed). */
export type Reach = 'named' | 'public';

/** The problems of one type's settings, each a phrase about the type; empty when it is usable. */
export function httpTypeProblems(rule: HttpTypeSettings): string[] {
  const problems: string[] = [];
  const origins = rule.origins ?? [];
  const internal = rule.internalOrigins ?? [];
  if (rule.target !== undefined) {
    const problem = httpUrlProblem(rule.target);
    if (problem) problems.push(`"target" ${problem}`);
    if (origins.length > 0) {
      problems.push(
        'has both a fixed "target" and envelope "origins"; a type has one or the other, since an envelope could otherwise name another URL',
      );
    }
  } else if (origins.length === 0 && internal.length === 0) {
    problems.push('has neither a fixed "target" nor "origins" for envelope URLs');
  }
  origins.forEach((o, i) => {
    const problem = o === ANY_PUBLIC_ORIGIN ? undefined : originProblem(o);
    if (problem) problems.push(`"origins" entry ${i + 1} (${entryLabel(o)}) ${problem}`);
  });
  const targetOrigin = rule.target !== undefined && !httpUrlProblem(rule.target) ? originOf(rule.target) : undefined;
  internal.forEach((o, i) => {
    const problem =
      o === ANY_PUBLIC_ORIGIN ? 'names every origin; internal origins are named one by one' : originProblem(o);
    const entry = `"internalOrigins" entry ${i + 1} (${entryLabel(o)})`;
    if (problem) problems.push(`${entry} ${problem}`);
    else if (targetOrigin !== undefined && originOf(o) !== targetOrigin) {
      problems.push(`${entry} is not the origin of the type's target (${targetOrigin})`);
    }
  });
  for (const h of rule.secretHeaders ?? []) {
    try {
      validateHeaderName(h);
    } catch {
      problems.push(`"secretHeaders" entry "${h}" is not a header name`);
    }
  }
  return problems;
}

/** One job type's rule, as the handler applies it to every send, redirects included. */
export class HttpRoute {
  /** The fixed target, when the type has one. */
  readonly target: URL | undefined;
  /** The origins the type names: its target's, or its origins and internal origins. */
  readonly named: ReadonlySet<string>;
  /** Whether envelopes may also name any origin whose addresses are public. */
  readonly anyPublic: boolean;
  /** Named origins whose addresses are not checked against the internal ranges. */
  readonly internal: ReadonlySet<string>;
  /** Lower-case names of the headers that never follow a redirect to another origin. */
  readonly secretHeaders: ReadonlySet<string>;

  constructor(
    readonly type: string,
    rule: HttpTypeSettings,
  ) {
    const problems = httpTypeProblems(rule);
    if (problems.length > 0) throw new TypeError(`http handler type "${type}" ${problems.join('; ')}`);
    const origins = (rule.origins ?? []).filter((o) => o !== ANY_PUBLIC_ORIGIN).map(originOf);
    this.internal = new Set((rule.internalOrigins ?? []).map(originOf));
    if (rule.target !== undefined) {
      this.target = new URL(rule.target);
      this.target.hash = '';
      this.named = new Set([this.target.origin]);
    } else {
      this.target = undefined;
      this.named = new Set([...origins, ...this.internal]);
    }
    this.anyPublic = rule.target === undefined && (rule.origins ?? []).includes(ANY_PUBLIC_ORIGIN);
    this.secretHeaders = new Set([...CREDENTIAL_HEADERS, ...(rule.secretHeaders ?? []).map((h) => h.toLowerCase())]);
  }

  /** How this type reaches `url`, or undefined when it does not send there. */
  reach(url: URL): Reach | undefined {
    if (this.named.has(url.origin)) return 'named';
    return this.anyPublic ? 'public' : undefined;
  }

  /** Whether the addresses of `url` may be internal ones (an origin listed in internalOrigins). */
  mayBeInternal(url: URL): boolean {
    return this.internal.has(url.origin);
  }

  /**
   * How this type reaches `url`; throws DisallowedUrlError when it does not send there.
   * `from` is the URL that redirected to it, if any. Only origins appear in the message.
   */
  check(url: URL, from?: URL): Reach {
    const reach = this.reach(url);
    // A receiver on the internet must not be able to bounce a delivery into the network behind
    // the worker: only an internal origin may redirect to another internal one.
    if (reach && from && this.mayBeInternal(url) && !this.mayBeInternal(from)) {
      throw new DisallowedUrlError(
        `${from.origin} redirected to ${url.origin}, an internal origin of job type "${this.type}"; ` +
          'only a redirect from another of its internal origins may lead there',
        'url',
      );
    }
    if (reach) return reach;
    const where = from
      ? `${from.origin} redirected to ${url.origin}, which job type "${this.type}" does not send to`
      : `job type "${this.type}" does not send to ${url.origin}`;
    throw new DisallowedUrlError(`${where} (it sends to ${this.describe()})`, 'url');
  }

  /** The origins this type sends to, for messages. */
  describe(): string {
    const named = [...this.named];
    const shown = named.length > 5 ? [...named.slice(0, 5), `${named.length - 5} more`] : named;
    const parts = this.target ? [`its target's origin ${shown[0]!} only`] : shown;
    if (this.anyPublic) parts.push('any origin with public addresses');
    return parts.join(', ');
  }
}
