import { describe, expect, it } from 'vitest';
import { EgressPolicy, forbiddenRange } from '../src/handlers/egress-policy.js';
import { normalizeAllowedHost } from '../src/handlers/http-config.js';

describe('forbiddenRange', () => {
  const cases: [string, string | undefined][] = [
    ['127.0.0.1', 'loopback'],
    ['127.255.255.254', 'loopback'],
    ['::1', 'loopback'],
    ['0.0.0.0', 'unspecified'],
    ['0.1.2.3', 'unspecified'],
    ['::', 'unspecified'],
    ['169.254.169.254', 'link-local'],
    ['fe80::1', 'link-local'],
    ['febf:ffff::1', 'link-local'],
    ['10.0.0.1', 'private'],
    ['10.255.255.255', 'private'],
    ['172.16.0.1', 'private'],
    ['172.31.255.255', 'private'],
    ['192.168.0.1', 'private'],
    ['fc00::1', 'private'],
    ['fd12:3456::1', 'private'],
    ['100.64.0.1', 'shared (carrier-grade NAT)'],
    ['224.0.0.1', 'multicast'],
    ['255.255.255.255', 'broadcast'],
    ['240.0.0.1', 'reserved (special-purpose)'],
    ['ff02::1', 'multicast'],
    // Special-purpose IPv4: IETF protocol assignments (192.0.0.0/24, where some clouds put
    // their DNS64 and NAT64 helpers) and the benchmarking network (198.18.0.0/15).
    ['192.0.0.1', 'reserved (special-purpose)'],
    ['192.0.0.255', 'reserved (special-purpose)'],
    ['198.18.0.1', 'reserved (special-purpose)'],
    ['198.19.255.255', 'reserved (special-purpose)'],
    ['192.0.2.1', 'reserved (special-purpose)'],
    // IPv6 prefixes that embed an IPv4 address a gateway may route to.
    ['64:ff9b::7f00:1', 'NAT64'],
    ['64:ff9b::a9fe:a9fe', 'NAT64'],
    ['64:ff9b::808:808', 'NAT64'],
    ['64:ff9b:1::1', 'NAT64'],
    ['64:ff9b:1:ffff::1', 'NAT64'],
    ['2002:7f00:1::', '6to4'],
    ['2002:808:808::1', '6to4'],
    ['2001:0:4136:e378::1', 'Teredo'],
    ['::ffff:0:7f00:1', 'IPv4-translated'],
    // IPv4-compatible IPv6 (::a.b.c.d, deprecated) and the deprecated site-local prefix.
    ['::7f00:1', 'IPv4-compatible'],
    ['::127.0.0.1', 'IPv4-compatible'],
    ['::8.8.8.8', 'IPv4-compatible'],
    ['0:0:0:0:0:0:808:808', 'IPv4-compatible'],
    ['::ffff:0:808:808', 'IPv4-translated'],
    ['fec0::1', 'site-local'],
    ['feff::1', 'site-local'],
    ['2001:db8::1', 'reserved (special-purpose)'],
    // Outside 2000::/3 nothing is assigned.
    ['1::1', 'unassigned'],
    ['4000::1', 'unassigned'],
    // IPv4-mapped IPv6 forms are judged by the IPv4 address inside.
    ['::ffff:127.0.0.1', 'loopback'],
    ['::ffff:7f00:1', 'loopback'],
    ['::ffff:10.0.0.1', 'private'],
    ['::ffff:169.254.169.254', 'link-local'],
    ['::ffff:0.0.0.0', 'unspecified'],
    ['::ffff:198.18.0.1', 'reserved (special-purpose)'],
    ['::ffff:100.64.0.1', 'shared (carrier-grade NAT)'],
    // Public addresses, including neighbours of the refused ranges.
    ['8.8.8.8', undefined],
    ['172.15.255.255', undefined],
    ['172.32.0.0', undefined],
    ['192.169.0.1', undefined],
    ['169.255.0.1', undefined],
    ['100.128.0.1', undefined],
    ['11.0.0.1', undefined],
    ['192.0.1.1', undefined],
    ['198.17.255.255', undefined],
    ['198.20.0.1', undefined],
    ['2001:4860:4860::8888', undefined],
    ['2606:4700:4700::1111', undefined],
    ['2003::1', undefined],
    ['::ffff:8.8.8.8', undefined],
    ['not-an-ip', 'unparseable'],
  ];
  for (const [address, range] of cases) {
    it(`${address} → ${range ?? 'allowed'}`, () => {
      expect(forbiddenRange(address)).toBe(range);
    });
  }
});

describe('HTTP_ALLOW_HOSTS entries', () => {
  const cases: [string, string | undefined][] = [
    ['127.0.0.1', '127.0.0.1'],
    ['127.0.0.1:8080', '127.0.0.1:8080'],
    ['LocalHost.', 'localhost'],
    ['internal.svc:80', 'internal.svc:80'],
    ['::1', '::1'],
    ['[::1]', '::1'],
    ['[::1]:9000', '::1:9000'],
    ['[0:0::1]:9000', '::1:9000'],
    ['http://x', undefined],
    ['host/path', undefined],
    ['user@host', undefined],
    ['', undefined],
    ['a b', undefined],
  ];
  for (const [entry, normalized] of cases) {
    it(`"${entry}" → ${normalized ?? 'invalid'}`, () => {
      expect(normalizeAllowedHost(entry)).toBe(normalized);
    });
  }
});

describe('EgressPolicy', () => {
  it('resolves an internal origin without checking its addresses, and checks every other one', async () => {
    const policy = new EgressPolicy();
    const url = new URL('http://localhost:1/');
    const addresses = await policy.resolve(url, { mayBeInternal: true, reach: 'named' });
    expect(addresses.length).toBeGreaterThan(0);
    expect(addresses.every((a) => forbiddenRange(a.address) === 'loopback')).toBe(true);
    await expect(policy.resolve(url, { mayBeInternal: false, reach: 'named' })).rejects.toThrow(/loopback/);
    await expect(
      policy.resolve(new URL('http://93.184.215.14/'), { mayBeInternal: false, reach: 'public' }),
    ).resolves.toEqual([{ address: '93.184.215.14', family: 4 }]);
  });
});
