import { lookup } from 'node:dns/promises';
import { BlockList, isIP } from 'node:net';
import { ValidationError } from '@redrive/sdk';

// Where the http handler may send a job. A job's envelope names its own URL, so whoever can
// publish a job could otherwise make the worker POST to its own network: cloud metadata
// (169.254.169.254), admin ports on loopback, services behind the firewall (SSRF).

/**
 * An address the http handler refuses to connect to, with the reason. A ValidationError: the
 * job names (or its target redirects to) a destination it may not reach, which no retry
 * changes, so it is dead-lettered at once with class `validation`.
 */
export class BlockedAddressError extends ValidationError {
  override readonly name: string = 'BlockedAddressError';
  constructor(
    /** The host of the URL, as written (or normalized by URL parsing). */
    readonly host: string,
    readonly address: string,
    readonly range: string,
  ) {
    super(
      `refusing to send to ${host}: ${host === address ? 'it' : `it resolves to ${address}, which`} is a ${range} address (list the host in HTTP_ALLOW_HOSTS to allow it)`,
      'url',
    );
  }
}

const RANGES: readonly { name: string; v4?: readonly string[]; v6?: readonly string[] }[] = [
  { name: 'loopback', v4: ['127.0.0.0/8'], v6: ['::1/128'] },
  { name: 'unspecified', v4: ['0.0.0.0/8'], v6: ['::/128'] },
  { name: 'link-local', v4: ['169.254.0.0/16'], v6: ['fe80::/10'] },
  { name: 'private', v4: ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16'], v6: ['fc00::/7'] },
  // Carrier-grade NAT space is private in practice (some clouds serve metadata there).
  { name: 'shared (carrier-grade NAT)', v4: ['100.64.0.0/10'] },
  { name: 'multicast or reserved', v4: ['224.0.0.0/3'], v6: ['ff00::/8'] },
];

function blockListOf(cidrs: { v4?: readonly string[]; v6?: readonly string[] }): BlockList {
  const list = new BlockList();
  for (const [family, items] of [
    ['ipv4', cidrs.v4 ?? []],
    ['ipv6', cidrs.v6 ?? []],
  ] as const) {
    for (const cidr of items) {
      const [net, bits] = cidr.split('/') as [string, string];
      list.addSubnet(net, Number(bits), family);
    }
  }
  return list;
}

// BlockList matches an IPv4-mapped IPv6 address (::ffff:127.0.0.1) against the IPv4 rules too.
const BLOCKS = RANGES.map((r) => ({ name: r.name, list: blockListOf(r) }));

/** The name of the forbidden range `address` (an IP literal) falls in, or undefined when it may be used. */
export function forbiddenRange(address: string): string | undefined {
  const family = isIP(address);
  if (family === 0) return 'unparseable';
  const type = family === 4 ? 'ipv4' : 'ipv6';
  return BLOCKS.find((b) => b.list.check(address, type))?.name;
}

/** A URL's host without IPv6 brackets and without a trailing dot, lower-cased. */
function bareHost(url: URL): string {
  const h = url.hostname.toLowerCase().replace(/\.$/, '');
  return h.startsWith('[') && h.endsWith(']') ? h.slice(1, -1) : h;
}

function effectivePort(url: URL): string {
  return url.port || (url.protocol === 'https:' ? '443' : '80');
}

/**
 * Normalizes one HTTP_ALLOW_HOSTS entry (`host`, `host:port`, `[v6]:port` or a bare IPv6
 * address) to `host` or `host:port` as matched against URLs; undefined when it is none of those.
 */
export function normalizeAllowedHost(entry: string): string | undefined {
  const text = isIP(entry) === 6 ? `[${entry}]` : entry.trim();
  if (text === '' || /[/?#@\s]/.test(text)) return undefined;
  let url: URL;
  try {
    url = new URL(`http://${text}`);
  } catch {
    return undefined;
  }
  const host = bareHost(url);
  if (host === '') return undefined;
  // URL drops a port equal to the scheme's default; the entry's own text says whether it had one.
  const port = /:(\d+)$/.exec(text)?.[1];
  return port === undefined ? host : `${host}:${Number(port)}`;
}

/** Decides which targets the http handler may reach and resolves them to the addresses it may connect to. */
export class EgressPolicy {
  private readonly allowed: ReadonlySet<string>;

  constructor(allowHosts: readonly string[] = []) {
    this.allowed = new Set(allowHosts.map((h) => normalizeAllowedHost(h) ?? h.toLowerCase()));
  }

  /** Whether the URL's host, or host:port, is allowlisted: then its addresses are not checked. */
  allows(url: URL): boolean {
    const host = bareHost(url);
    return this.allowed.has(host) || this.allowed.has(`${host}:${effectivePort(url)}`);
  }

  /**
   * Resolves the URL's host to every address it has and checks each one, so that the caller
   * connects only to addresses that passed: checking one lookup and connecting after another
   * would let a DNS answer change in between (rebinding).
   */
  async resolve(url: URL, signal?: AbortSignal): Promise<ResolvedAddress[]> {
    const host = bareHost(url);
    const family = isIP(host);
    const addresses: ResolvedAddress[] =
      family !== 0 ? [{ address: host, family }] : await abortable(lookup(host, { all: true }), signal);
    if (!this.allows(url)) {
      for (const a of addresses) {
        const range = forbiddenRange(a.address);
        if (range) throw new BlockedAddressError(url.hostname, a.address, range);
      }
    }
    return addresses;
  }
}

export interface ResolvedAddress {
  address: string;
  family: number;
}

/** Settles with `promise`, or rejects with the signal's reason as soon as it aborts. */
function abortable<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return promise;
  if (signal.aborted) return Promise.reject(signal.reason as Error);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason as Error);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}
