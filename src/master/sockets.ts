/**
 * The listening sockets of a master: inherited (LISTEN_FDS) or opened here, one per slot
 * (`reuseport`) or one for all (`shared`), and how they are dealt out to the slots.
 */
import { lstatSync } from 'node:fs';
import type { Logger } from '../common/logger.js';
import { DEFAULT_SOCKET_MODE, resolveDeferAccept, type ServerOptions } from '../server-options.js';
import { describeAddress, type SocketAddress } from '../syscalls/sockaddr.js';
import {
  localAddress,
  openServerSocket,
  openUnixListenSocket,
  readDeferAccept,
  setDeferAccept,
  type UnixListenSocket,
} from '../syscalls/socket.js';
import { hasReusePort, takeListenFds } from './listen-fds.js';
import { isUpgradedMaster } from './upgrade.js';

export { describeAddress };

export type Balance = 'reuseport' | 'shared';

/**
 * Opens (or inherits) the sockets for `n` slots. Each descriptor is pushed to `into` as soon as it
 * is open, so that the caller closes them all if a later step throws. Returns the address served,
 * the balance in effect (inherited sockets without SO_REUSEPORT force `shared`) and the
 * TCP_DEFER_ACCEPT seconds of the sockets, for any socket opened later to join them
 * (`openGroupSocket`). The workers accept from these very sockets, and reloaded workers get them
 * again, so what is set here holds for every generation of workers.
 */
export function openMasterSockets(
  options: ServerOptions,
  n: number,
  balance: Balance,
  logger: Logger,
  into: number[],
): { addr: SocketAddress; balance: Balance; deferAccept: number; unix?: UnixListenSocket } {
  const inherited = takeListenFds();
  const deferAccept = resolveDeferAccept(options);
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
      if (options.deferAccept !== undefined && deferAccept > 0) {
        logger.warn('deferAccept: the inherited socket is a Unix socket, which has no TCP handshake to defer: ignored');
      }
      return {
        addr,
        balance: 'shared',
        deferAccept: 0,
        ...(file ? { unix: { fd: inherited[0] as number, path: addr.address, file, replacedStale: false } } : {}),
      };
    }
    const defer = inheritedDeferAccept(inherited, options, deferAccept, logger);
    if (balance === 'reuseport' && inherited.length < n) {
      if (!hasReusePort(inherited[0] as number)) {
        logger.warn('inherited sockets lack SO_REUSEPORT: balancing with one shared socket instead');
        return { addr, balance: 'shared', deferAccept: defer };
      }
      while (into.length < n) into.push(openGroupSocket(addr, options, defer));
    }
    return { addr, balance, deferAccept: defer };
  }
  if (options.path !== undefined) {
    const unix = openUnixListenSocket({
      path: options.path,
      backlog: options.backlog ?? 511,
      mode: options.socketMode ?? DEFAULT_SOCKET_MODE,
    });
    into.push(unix.fd);
    if (unix.replacedStale) logger.warn(`${options.path}: replaced a stale socket file (nothing listened on it)`);
    return { addr: localAddress(unix.fd), balance: 'shared', deferAccept: 0, unix };
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
    deferAccept,
  });
  into.push(first);
  const addr = localAddress(first);
  // reuseport: the rest bound to the port the first one got (port 0 picks it).
  while (balance === 'reuseport' && into.length < n) into.push(openGroupSocket(addr, options, deferAccept));
  return { addr, balance, deferAccept };
}

/**
 * One more socket in our own SO_REUSEPORT group on `addr` (the first socket opened it), with the
 * group's TCP_DEFER_ACCEPT: the kernel hashes each new connection to one socket of the group, so a
 * socket without it would accept a share of the connections early.
 */
export function openGroupSocket(addr: SocketAddress, options: ServerOptions, deferAccept: number): number {
  return openServerSocket({
    host: addr.address,
    port: addr.port,
    reusePort: true,
    backlog: options.backlog ?? 511,
    ipv6Only: options.ipv6Only ?? false,
    deferAccept,
  });
}

/**
 * TCP_DEFER_ACCEPT on inherited TCP sockets; returns the seconds in effect (as the kernel reports
 * them), for the sockets we open to join them. Who made them decides:
 * - a predecessor master (`upgrade()`): they are ours, and get this server's value — default
 *   included — as if opened here (the old workers still draining on them see it too, harmlessly:
 *   it changes when new connections are accepted, not how);
 * - systemd: the unit's `DeferAcceptSec=` made them, and is kept unless `deferAccept` is given —
 *   the operator's socket unit is where that is configured, and a default must not undo it; an
 *   explicit option is the program's word and wins (logged when it changes the socket).
 * The kernel takes the option on a socket that already listens: it is read per arriving ACK.
 */
function inheritedDeferAccept(fds: readonly number[], options: ServerOptions, seconds: number, logger: Logger): number {
  const ours = isUpgradedMaster();
  if (!ours && options.deferAccept === undefined) return readDeferAccept(fds[0] as number);
  for (const fd of fds) {
    const had = readDeferAccept(fd);
    setDeferAccept(fd, seconds);
    const now = readDeferAccept(fd);
    if (!ours && now !== had) logger.info(`deferAccept: inherited socket ${fd} changed from ${had} s to ${now} s`);
  }
  return readDeferAccept(fds[0] as number);
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
