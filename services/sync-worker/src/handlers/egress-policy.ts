import { isIP } from 'node:net';
import { ValidationError } from '@redrive/sdk';
import ipaddr from 'ipaddr.js';
import { lookupConfiguredHost, resolveJobHost, type DnsOptions, type ResolvedAddress } from './dns.js';
import type { Reach } from './http-routes.js';

export type { ResolvedAddress } from './dns.js';

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
  /** The host and port of the URL, as URL parsing normalized them. */
  readonly host: string;
  constructor(
    url: URL,
    readonly address: string,
    readonly range: string,
  ) {
    const literal = bareHost(url) === address;
    super(
      `refusing to send to ${url.host}: ${literal ? 'it' : `it resolves to ${address}, which`} is a ${range} ` +
        'address (a type reaches such an address only on an origin its "internalOrigins" lists)',
      'url',
    );
    this.host = url.host;
  }
}

// Which addresses are off limits comes from ipaddr.js's table of special-purpose ranges
// (the IANA IPv4 and IPv6 special-purpose registries: RFC 6890 and its updates), kept up to
// date by its maintainers, rather than a list kept by hand here. Only global unicast passes.
// What the table calls unicast but is not reachable on the internet is refused on top:
// IPv4-compatible IPv6 (::/96, deprecated, an IPv4 address in disguise) and IPv6 outside
// 2000::/3 (unassigned). Prefixes that embed an IPv4 address the network may route to
// (NAT64, 6to4, Teredo, IPv4-translated) are refused whole: they can reach private IPv4
// space through a gateway, and no webhook receiver is published under one.

const IPV4_RANGE_NAMES: Readonly<Record<string, string>> = {
  unspecified: 'unspecified',
  broadcast: 'broadcast',
  multicast: 'multicast',
  linkLocal: 'link-local',
  loopback: 'loopback',
  carrierGradeNat: 'shared (carrier-grade NAT)',
  private: 'private',
  reserved: 'reserved (special-purpose)',
};

const IPV6_RANGE_NAMES: Readonly<Record<string, string>> = {
  unspecified: 'unspecified',
  linkLocal: 'link-local',
  multicast: 'multicast',
  loopback: 'loopback',
  uniqueLocal: 'private',
  deprecatedSiteLocal: 'site-local',
  rfc6145: 'IPv4-translated',
  rfc6052: 'NAT64',
  '6to4': '6to4',
  teredo: 'Teredo',
  reserved: 'reserved (special-purpose)',
};

const IPV4_COMPATIBLE = ipaddr.IPv6.parseCIDR('::/96');
const GLOBAL_UNICAST_V6 = ipaddr.IPv6.parseCIDR('2000::/3');

function ipv4Range(address: ipaddr.IPv4): string | undefined {
  const range = address.range();
  return range === 'unicast' ? undefined : (IPV4_RANGE_NAMES[range] ?? `special-purpose (${range})`);
}

/** The name of the forbidden range `address` (an IP literal) falls in, or undefined when it may be used. */
export function forbiddenRange(address: string): string | undefined {
  const family = isIP(address);
  if (family === 0) return 'unparseable';
  if (family === 4) return ipv4Range(ipaddr.IPv4.parse(address));
  // ipaddr.js reads any "::a.b.c.d" as IPv4-mapped, though without "ffff" it is IPv4-compatible,
  // and resolvers print both that way: hand it the URL standard's all-hex form instead.
  const v6 = ipaddr.IPv6.parse(new URL(`http://[${address}]/`).hostname.slice(1, -1));
  // An IPv4-mapped address (::ffff:a.b.c.d) is the IPv4 address for the socket: judge that.
  if (v6.isIPv4MappedAddress()) return ipv4Range(v6.toIPv4Address());
  const range = v6.range();
  if (range !== 'unicast') return IPV6_RANGE_NAMES[range] ?? `special-purpose (${range})`;
  if (v6.match(IPV4_COMPATIBLE)) return 'IPv4-compatible';
  return v6.match(GLOBAL_UNICAST_V6) ? undefined : 'unassigned';
}

/** A URL's host without IPv6 brackets and without a trailing dot, lower-cased. */
export function bareHost(url: URL): string {
  const h = url.hostname.toLowerCase().replace(/\.$/, '');
  return h.startsWith('[') && h.endsWith(']') ? h.slice(1, -1) : h;
}

/** What a resolution may return: internal addresses only for an origin the job's type lists as internal. */
export interface ResolveOptions {
  /** The origin is in the type's internalOrigins: its addresses are not checked. */
  mayBeInternal: boolean;
  /** How the type reaches the URL: a named origin's host resolves as the system does, another with c-ares. */
  reach: Reach;
  signal?: AbortSignal;
}

/** Default deadline of one name resolution. */
export const DNS_TIMEOUT_MS = 3_000;

/** Resolves targets to the addresses the http handler may connect to. */
export class EgressPolicy {
  private readonly dns: DnsOptions;

  constructor(dns: Partial<DnsOptions> = {}) {
    this.dns = { timeoutMs: dns.timeoutMs ?? DNS_TIMEOUT_MS, ...(dns.servers ? { servers: dns.servers } : {}) };
  }

  /**
   * Resolves the URL's host to every address it has and checks each one, so that the caller
   * connects only to addresses that passed: checking one lookup and connecting after another
   * would let a DNS answer change in between (rebinding).
   */
  async resolve(url: URL, opts: ResolveOptions): Promise<ResolvedAddress[]> {
    const host = bareHost(url);
    const family = isIP(host);
    const addresses: ResolvedAddress[] =
      family !== 0
        ? [{ address: host, family }]
        : opts.reach === 'named'
          ? await lookupConfiguredHost(host, this.dns, opts.signal)
          : await resolveJobHost(host, this.dns, opts.signal);
    if (!opts.mayBeInternal) {
      for (const a of addresses) {
        const range = forbiddenRange(a.address);
        if (range) throw new BlockedAddressError(url, a.address, range);
      }
    }
    return addresses;
  }
}
