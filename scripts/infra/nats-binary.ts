// Which nats-server binary a server started here runs: the one on PATH when it is new enough
// (libs/messaging/src/server-version.ts says why older ones lose jobs), otherwise the release
// Redrive is tested on, fetched once from Debian's archive (trixie's package, a static Go
// binary that runs on Debian 12), checked against its pinned SHA-256 and kept in a cache.

import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { compareVersions, MIN_NATS_SERVER, TESTED_NATS_SERVER } from '../../libs/messaging/src/server-version.js';
import { InfraError } from './common.js';

const run = promisify(execFile);

/** Debian's package of the tested release (amd64), pinned by its hash. */
const PACKAGE = {
  version: TESTED_NATS_SERVER,
  url: 'http://deb.debian.org/debian/pool/main/n/nats-server/nats-server_2.10.27-1+b2_amd64.deb',
  sha256: '6d913ac987b78734c08537c2adeb1526cf735f216173a9170d94b185fcfe6f8a',
  binary: 'usr/sbin/nats-server',
} as const;

const cacheDir = () =>
  join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'redrive', `nats-server-${PACKAGE.version}`);

/** The version a nats-server binary reports, or undefined if it cannot be run. */
export async function binaryVersion(command: string): Promise<string | undefined> {
  try {
    const { stdout } = await run(command, ['--version'], { timeout: 10_000 });
    return /v?(\d+\.\d+\.\d+)/.exec(stdout)?.[1];
  } catch {
    return undefined;
  }
}

let resolved: Promise<string> | undefined;

/**
 * The nats-server to start: `nats-server` from PATH if it is at least MIN_NATS_SERVER, else
 * the tested release from the cache (fetched on first use). Resolved once per process.
 */
export function natsServerBinary(log: (line: string) => void): Promise<string> {
  return (resolved ??= (async () => {
    const onPath = await binaryVersion('nats-server');
    if (onPath && compareVersions(onPath, MIN_NATS_SERVER) >= 0) return 'nats-server';
    const cached = join(cacheDir(), 'nats-server');
    if ((await binaryVersion(cached)) === PACKAGE.version) return cached;
    log(
      `nats     ${onPath ? `nats-server ${onPath} on PATH is older than ${MIN_NATS_SERVER}` : 'no nats-server on PATH'}; ` +
        `fetching ${PACKAGE.version} from Debian's archive into ${cacheDir()}`,
    );
    await fetchPackage(cached);
    return cached;
  })());
}

async function fetchPackage(target: string): Promise<void> {
  if (process.arch !== 'x64' || process.platform !== 'linux') {
    throw new InfraError(
      `nats: Redrive needs nats-server ${MIN_NATS_SERVER} or later and can fetch one only for linux/x64; ` +
        `install nats-server ${PACKAGE.version} (https://github.com/nats-io/nats-server/releases) and put it on PATH`,
    );
  }
  const res = await fetch(PACKAGE.url).catch((err: unknown) => {
    throw new InfraError(`nats: could not fetch ${PACKAGE.url}: ${(err as Error).message}`);
  });
  if (!res.ok) throw new InfraError(`nats: fetching ${PACKAGE.url} answered ${res.status}`);
  const deb = Buffer.from(await res.arrayBuffer());
  const digest = createHash('sha256').update(deb).digest('hex');
  if (digest !== PACKAGE.sha256) {
    throw new InfraError(`nats: ${PACKAGE.url} has SHA-256 ${digest}, expected ${PACKAGE.sha256}; not used`);
  }
  const work = mkdtempSync(join(tmpdir(), 'redrive-nats-deb-'));
  try {
    writeFileSync(join(work, 'pkg.deb'), deb);
    await run('dpkg-deb', ['-x', join(work, 'pkg.deb'), join(work, 'root')]).catch((err: unknown) => {
      throw new InfraError(`nats: could not unpack the package with dpkg-deb: ${(err as Error).message}`);
    });
    mkdirSync(cacheDir(), { recursive: true });
    // Copied beside the target and renamed into place, so a run killed half-way never leaves
    // a truncated binary behind.
    const partial = `${target}.partial-${process.pid}`;
    copyFileSync(join(work, 'root', PACKAGE.binary), partial);
    chmodSync(partial, 0o755);
    renameSync(partial, target);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  if (!existsSync(target) || (await binaryVersion(target)) !== PACKAGE.version) {
    throw new InfraError(`nats: the fetched nats-server at ${target} does not report version ${PACKAGE.version}`);
  }
}
