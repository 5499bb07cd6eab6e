/**
 * The listening sockets of a master: inherited (LISTEN_FDS) or opened here, one per slot
 * (`reuseport`) or one for all (`shared`), and how they are dealt out to the slots.
 */
import { lstatSync } from 'node:fs';
import type { Logger } from '../common/logger.js';
import { DEFAULT_SOCKET_MODE, type ServerOptions } from '../server-options.js';
import { describeAddress, type SocketAddress } from '../syscalls/sockaddr.js';
import { localAddress, openServerSocket, openUnixListenSocket, type UnixListenSocket } from '../syscalls/socket.js';
import { hasReusePort, takeListenFds } from './listen-fds.js';
import { isUpgradedMaster } from './upgrade.js';

export { describeAddress };

export type Balance = 'reuseport' | 'shared';

/**
 * Opens (or inherits) the sockets for `n` slots. Each descriptor is pushed to `into` as soon as it
 * is open, so that the caller closes them all if a later step throws. Returns the address served
 * and the balance in effect (inherited sockets without SO_REUSEPORT force `shared`).
 */
export function openMasterSockets(
  options: ServerOptions,
  n: number,
  balance: Balance,
  logger: Logger,
  into: number[],
): { addr: SocketAddress; balance: Balance; unix?: UnixListenSocket } {
  const inherited = takeListenFds();
  if (inherited.length > 0) {
    into.push(...inherited);
    const addr = localAddress(inherited[0] as number);
    logger.info(
      `master ${process.pid}: serving on ${inherited.length} inherited socket(s) (LISTEN_FDS), ${describeAddress(addr)}`,
    );
    // A Unix socket has no SO_REUSEPORT group to add to: every worker shares it. Its file is
    // systemd's (RemoveOnStop=), or — handed over by upgrade() — ours to remove now.
    if (addr.family === 'Unix') {
      const file = isUpgradedMaster() ? socketFileOf(addr.address) : undefined;
      return {
        addr,
        balance: 'shared',
        ...(file ? { unix: { fd: inherited[0] as number, path: addr.address, file, replacedStale: false } } : {}),
      };
    }
    if (balance === 'reuseport' && inherited.length < n) {
      if (!hasReusePort(inherited[0] as number)) {
        logger.warn('inherited sockets lack SO_REUSEPORT: balancing with one shared socket instead');
        return { addr, balance: 'shared' };
      }
      while (into.length < n) into.push(openGroupSocket(addr, options));
    }
    return { addr, balance };
  }
  if (options.path !== undefined) {
    const unix = openUnixListenSocket({
      path: options.path,
      backlog: options.backlog ?? 511,
      mode: options.socketMode ?? DEFAULT_SOCKET_MODE,
    });
    into.push(unix.fd);
    if (unix.replacedStale) logger.warn(`${options.path}: replaced a stale socket file (nothing listened on it)`);
    return { addr: localAddress(unix.fd), balance: 'shared', unix };
  }
  // The first socket refuses an address something already listens on ('exclusive', see
  // openListenSocket): without that, SO_REUSEPORT would let this master join another server's
  // port and silently take part of its connections. `reusePort: true` joins on purpose. Either
  // way the socket ends up with SO_REUSEPORT: our other slots (reuseport balance), a reload of
  // an abandoned slot and a successor master (upgrade) add sockets to the port.
  const first = openServerSocket({
    host: options.host,
    port: options.port ?? 0,
    reusePort: options.reusePort === true ? true : 'exclusive',
    backlog: options.backlog ?? 511,
    ipv6Only: options.ipv6Only ?? false,
  });
  into.push(first);
  const addr = localAddress(first);
  // reuseport: the rest bound to the port the first one got (port 0 picks it).
  while (balance === 'reuseport' && into.length < n) into.push(openGroupSocket(addr, options));
  return { addr, balance };
}

/** One more socket in our own SO_REUSEPORT group on `addr` (the first socket opened it). */
export function openGroupSocket(addr: SocketAddress, options: ServerOptions): number {
  return openServerSocket({
    host: addr.address,
    port: addr.port,
    reusePort: true,
    backlog: options.backlog ?? 511,
    ipv6Only: options.ipv6Only ?? false,
  });
}

/**
 * The sockets of slot `i` of `n`: every one with `shared`; with `reuseport` socket i, and any
 * sockets beyond the worker count (more were inherited) dealt out round-robin, so that no socket
 * is left without a worker to accept from it.
 */
export function slotSockets(sockets: readonly number[], n: number, i: number, balance: Balance): number[] {
  return balance === 'shared' ? [...sockets] : sockets.filter((_, j) => j % n === i);
}

/** The device and inode of a socket file, or undefined (abstract, or gone). */
function socketFileOf(path: string): { dev: number; ino: number } | undefined {
  if (path === '' || path.startsWith('@')) return undefined;
  try {
    const st = lstatSync(path);
    return st.isSocket() ? { dev: st.dev, ino: st.ino } : undefined;
  } catch {
    return undefined;
  }
}
