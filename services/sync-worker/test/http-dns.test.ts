import { pbkdf2 } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import type { AddressInfo } from 'node:net';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { classify } from '@redrive/retry-policy';
import { ANY_PUBLIC_ORIGIN, BlockedAddressError, createHttpHandler } from '../src/handlers/http.js';
import { ctxOf, failureOf, jobOf, socketsOpenedDuring } from './http-support.js';

// Hosts a job names are resolved with c-ares against a DNS server of this test's own, which
// answers what each test says or never answers at all; nothing about DNS is mocked in-process.

interface DnsServer {
  /** `127.0.0.1:<port>`, as a resolver server. */
  address: string;
  /** `<name>/<A|AAAA>` of every query received. */
  queries: string[];
  close(): Promise<void>;
}

const sockets: Socket[] = [];

afterEach(async () => {
  await Promise.all(sockets.splice(0).map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
});

/** A UDP DNS server: `answer` gives IPv4 addresses for an A query, or undefined to stay silent. */
async function startDns(answer: (name: string) => string[] | undefined): Promise<DnsServer> {
  const socket = createSocket('udp4');
  sockets.push(socket);
  const queries: string[] = [];
  socket.on('message', (msg, peer) => {
    const labels: string[] = [];
    let offset = 12;
    while (msg[offset]) {
      const length = msg[offset]!;
      labels.push(msg.subarray(offset + 1, offset + 1 + length).toString('latin1'));
      offset += length + 1;
    }
    offset += 1;
    const qtype = msg.readUInt16BE(offset);
    offset += 4;
    const name = labels.join('.');
    queries.push(`${name}/${qtype === 1 ? 'A' : qtype === 28 ? 'AAAA' : qtype}`);
    const ips = answer(name);
    if (ips === undefined) return;
    const records = qtype === 1 ? ips : [];
    const header = Buffer.alloc(12);
    header.writeUInt16BE(msg.readUInt16BE(0), 0); // the query's id
    header.writeUInt16BE(0x8180, 2); // a response, recursion available, no error
    header.writeUInt16BE(1, 4); // one question
    header.writeUInt16BE(records.length, 6);
    const rrs = records.map((ip) => {
      const rr = Buffer.alloc(16);
      rr.writeUInt16BE(0xc00c, 0); // the question's name
      rr.writeUInt16BE(1, 2); // A
      rr.writeUInt16BE(1, 4); // IN
      rr.writeUInt32BE(60, 6);
      rr.writeUInt16BE(4, 10);
      ip.split('.').forEach((octet, i) => (rr[12 + i] = Number(octet)));
      return rr;
    });
    socket.send(Buffer.concat([header, msg.subarray(12, offset), ...rrs]), peer.port, peer.address);
  });
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  return {
    address: `127.0.0.1:${(socket.address() as AddressInfo).port}`,
    queries,
    close: () => new Promise<void>((resolve) => socket.close(() => resolve())),
  };
}

function handlerWith(dns: DnsServer, dnsTimeoutMs: number, timeoutMs = 10_000) {
  return createHttpHandler({
    types: { http: { origins: [ANY_PUBLIC_ORIGIN] } },
    timeoutMs,
    dnsTimeoutMs,
    dnsServers: [dns.address],
  });
}

describe('http handler: resolving the hosts a job names', () => {
  it('gives up on a DNS server that never answers after HTTP_DNS_TIMEOUT, without holding the thread pool', async () => {
    const dns = await startDns(() => undefined);
    const handler = handlerWith(dns, 400);
    const started = performance.now();
    // More slow names than libuv has threads: with getaddrinfo each would hold one.
    const pending = Array.from({ length: 8 }, (_, i) =>
      failureOf(handler.handle(jobOf({ url: `http://slow-${i}.redrive-test.example/hook`, body: {} }), ctxOf())),
    );
    // The thread pool stays free for file and crypto work meanwhile.
    const poolStarted = performance.now();
    await Promise.all(Array.from({ length: 4 }, () => promisify(pbkdf2)('x', 'y', 1, 32, 'sha256')));
    const poolMs = performance.now() - poolStarted;
    const errors = await Promise.all(pending);
    const elapsed = performance.now() - started;

    expect(poolMs).toBeLessThan(200);
    expect(elapsed).toBeGreaterThanOrEqual(350);
    expect(elapsed).toBeLessThan(2_000);
    for (const err of errors) {
      expect(err.code).toBe('ETIMEOUT');
      expect(err.message).toMatch(
        /^POST http:\/\/slow-\d\.redrive-test\.example failed: resolving .* took longer than 400 ms$/,
      );
      expect(classify(err)).toMatchObject({ errorClass: 'network' });
    }
    // The names went to the configured resolver, not to the system's.
    expect(dns.queries).toEqual(
      expect.arrayContaining(['slow-0.redrive-test.example/A', 'slow-7.redrive-test.example/AAAA']),
    );
  });

  it('stops resolving at once when the job is aborted, with the abort reason', async () => {
    const dns = await startDns(() => undefined);
    const handler = handlerWith(dns, 10_000);
    const abort = new AbortController();
    const reason = new Error('worker is shutting down');
    const pending = failureOf(
      handler.handle(jobOf({ url: 'http://hang.redrive-test.example/', body: {} }), ctxOf(abort.signal)),
    );
    await expect.poll(() => dns.queries.length).toBeGreaterThan(0);
    const started = performance.now();
    abort.abort(reason);
    expect(await pending).toBe(reason);
    expect(performance.now() - started).toBeLessThan(500);
  });

  it('ends with the delivery deadline when it comes before the DNS deadline', async () => {
    const dns = await startDns(() => undefined);
    const err = await failureOf(
      handlerWith(dns, 10_000, 300).handle(jobOf({ url: 'http://late.redrive-test.example/', body: {} }), ctxOf()),
    );
    expect(err.name).toBe('TimeoutError');
    expect(classify(err).errorClass).toBe('timeout');
  });

  it('checks every address the answer names and connects to none when one is internal (no rebinding window)', async () => {
    const dns = await startDns((name) =>
      name === 'rebind.redrive-test.example' ? ['93.184.215.14', '127.0.0.1'] : [],
    );
    const handler = handlerWith(dns, 2_000);
    let err = new Error('not run') as Error & Record<string, unknown>;
    const opened = await socketsOpenedDuring(async () => {
      err = await failureOf(
        handler.handle(jobOf({ url: 'http://rebind.redrive-test.example:8080/x', body: {} }), ctxOf()),
      );
    });
    expect(err).toBeInstanceOf(BlockedAddressError);
    expect(err).toMatchObject({ address: '127.0.0.1', range: 'loopback', host: 'rebind.redrive-test.example:8080' });
    expect(classify(err).errorClass).toBe('validation');
    expect(opened).toBe(0);
  });

  it('fails a name with no address as ENOTFOUND, and takes localhost as loopback without asking DNS', async () => {
    const dns = await startDns(() => []);
    const handler = handlerWith(dns, 2_000);
    const missing = await failureOf(
      handler.handle(jobOf({ url: 'http://nothing.redrive-test.example/', body: {} }), ctxOf()),
    );
    expect(missing.code).toBe('ENOTFOUND');
    expect(classify(missing).errorClass).toBe('network');
    const local = await failureOf(handler.handle(jobOf({ url: 'http://api.localhost:9/', body: {} }), ctxOf()));
    expect(local).toBeInstanceOf(BlockedAddressError);
    expect(dns.queries.filter((q) => q.includes('localhost'))).toEqual([]);
  });
});
