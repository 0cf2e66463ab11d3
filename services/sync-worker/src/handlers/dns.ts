import { lookup, Resolver } from 'node:dns/promises';

// Name resolution for the http handler. getaddrinfo (dns.lookup) runs on libuv's thread pool,
// four threads shared with file and crypto work, and cannot be cancelled: a job naming hosts
// whose DNS never answers could hold every thread. So a host that only a job named (reached
// through "*") is resolved with c-ares on the event loop, under a deadline, and cancelled when
// the deadline passes or the job is aborted. Hosts the operator named (targets, listed origins)
// keep the system resolver, with its hosts file and search domains; a fixed set of names cannot
// be used to flood the pool, and the wait for them is bounded by the same deadline.

export interface ResolvedAddress {
  address: string;
  family: number;
}

/** How names are resolved. */
export interface DnsOptions {
  /** Deadline of one resolution. */
  timeoutMs: number;
  /** DNS servers for job-named hosts (`ip` or `ip:port`); the system's (resolv.conf) by default. */
  servers?: readonly string[];
}

/** A name that did not resolve, in time or at all; `code` says how (ETIMEOUT, ENOTFOUND, ESERVFAIL…), and is retried as `network`. */
export class DnsError extends Error {
  override readonly name: string = 'DnsError';
  constructor(
    readonly host: string,
    readonly code: string,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

const NOT_FOUND = new Set(['ENOTFOUND', 'ENODATA']);

function timeoutError(host: string, timeoutMs: number): DnsError {
  return new DnsError(host, 'ETIMEOUT', `resolving ${host} took longer than ${timeoutMs} ms`);
}

/** Rejects with the abort reason, or a DnsError when the deadline passes first; `onStop` runs either way. */
function bounded<T>(
  work: Promise<T>,
  host: string,
  opts: DnsOptions,
  signal: AbortSignal | undefined,
  onStop: () => void = () => undefined,
): Promise<T> {
  if (signal?.aborted) {
    onStop();
    return Promise.reject(signal.reason as Error);
  }
  return new Promise<T>((resolve, reject) => {
    const stop = (err: Error) => {
      onStop();
      reject(err);
    };
    const timer = setTimeout(() => stop(timeoutError(host, opts.timeoutMs)), opts.timeoutMs);
    const onAbort = () => stop(signal!.reason as Error);
    signal?.addEventListener('abort', onAbort, { once: true });
    work.then(resolve, reject).finally(() => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    });
  });
}

/** Every address of a host the operator named, as the system resolves it. */
export function lookupConfiguredHost(
  host: string,
  opts: DnsOptions,
  signal: AbortSignal | undefined,
): Promise<ResolvedAddress[]> {
  return bounded(lookup(host, { all: true }), host, opts, signal);
}

/**
 * Every IPv4 and IPv6 address of a host a job named, from c-ares. `localhost` and its
 * subdomains are loopback without asking DNS (RFC 6761), so they are refused as such.
 */
export async function resolveJobHost(
  host: string,
  opts: DnsOptions,
  signal: AbortSignal | undefined,
): Promise<ResolvedAddress[]> {
  if (host === 'localhost' || host.endsWith('.localhost')) {
    return [
      { address: '127.0.0.1', family: 4 },
      { address: '::1', family: 6 },
    ];
  }
  // One resolver per resolution, so that cancelling it cancels this host's queries only.
  const resolver = new Resolver({ timeout: Math.max(1, Math.ceil(opts.timeoutMs / 2)), tries: 2 });
  if (opts.servers && opts.servers.length > 0) resolver.setServers([...opts.servers]);
  const work = Promise.allSettled([resolver.resolve4(host), resolver.resolve6(host)]);
  const [v4, v6] = await bounded(work, host, opts, signal, () => resolver.cancel());
  const addresses: ResolvedAddress[] = [
    ...(v4.status === 'fulfilled' ? v4.value.map((address) => ({ address, family: 4 })) : []),
    ...(v6.status === 'fulfilled' ? v6.value.map((address) => ({ address, family: 6 })) : []),
  ];
  if (addresses.length > 0) return addresses;
  const errors = [v4, v6].flatMap((r) => (r.status === 'rejected' ? [r.reason as NodeJS.ErrnoException] : []));
  const cause = errors.find((e) => !NOT_FOUND.has(e.code ?? '')) ?? errors[0];
  const code = cause?.code && !NOT_FOUND.has(cause.code) ? cause.code : 'ENOTFOUND';
  throw new DnsError(host, code, `resolving ${host} failed: ${code}`, { cause });
}
