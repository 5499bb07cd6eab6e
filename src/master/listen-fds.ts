/**
 * Listening sockets inherited the systemd way (sd_listen_fds(3)): `LISTEN_FDS=n` and
 * `LISTEN_PID=<our pid>` say that descriptors 3 … 3+n-1 are listening sockets set up for us — by
 * systemd socket activation, or by a previous master handing its sockets over. LISTEN_PID guards
 * against a child inheriting the variables by accident: they only count in the process they name.
 */
import { F_GETFD, F_SETFD, FD_CLOEXEC, SO_REUSEPORT, SOL_SOCKET } from '../syscalls/constants.js';
import { fcntl, getsockoptInt } from '../syscalls/libc.js';
import { check, isListening, setNonBlocking } from '../syscalls/socket.js';

/** First inherited descriptor (SD_LISTEN_FDS_START). */
export const LISTEN_FDS_START = 3;

/**
 * The inherited listening sockets, or [] when there are none for this process. Clears the
 * variables (as sd_listen_fds(1) does) so that our own children do not see them, and marks the
 * descriptors close-on-exec and non-blocking.
 */
export function takeListenFds(env: NodeJS.ProcessEnv = process.env, pid = process.pid): number[] {
  const count = env.LISTEN_FDS;
  const owner = env.LISTEN_PID;
  delete env.LISTEN_FDS;
  delete env.LISTEN_PID;
  delete env.LISTEN_FDNAMES;
  if (count === undefined || owner === undefined) return [];
  if (Number(owner) !== pid) return [];
  const n = Number(count);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`LISTEN_FDS must be a positive integer, got ${count}`);
  const fds: number[] = [];
  for (let fd = LISTEN_FDS_START; fd < LISTEN_FDS_START + n; fd++) {
    if (!isListening(fd)) throw new Error(`LISTEN_FDS: descriptor ${fd} is not a listening socket`);
    const flags = check('fcntl(F_GETFD)', fcntl(fd, F_GETFD, 0));
    check('fcntl(F_SETFD)', fcntl(fd, F_SETFD, flags | FD_CLOEXEC));
    setNonBlocking(fd);
    fds.push(fd);
  }
  return fds;
}

/** Whether a listening socket has SO_REUSEPORT (so that more sockets can join its port). */
export function hasReusePort(fd: number): boolean {
  return getsockoptInt(fd, SOL_SOCKET, SO_REUSEPORT) === 1;
}

/** Marks an inherited descriptor close-on-exec (a worker's own children must not inherit it). */
export function setCloseOnExec(fd: number): void {
  const flags = check('fcntl(F_GETFD)', fcntl(fd, F_GETFD, 0));
  if ((flags & FD_CLOEXEC) === 0) check('fcntl(F_SETFD)', fcntl(fd, F_SETFD, flags | FD_CLOEXEC));
}
