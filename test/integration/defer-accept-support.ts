/** What the deferAccept test and its app share (defer-accept.test.ts, defer-accept-app.ts). */
import { readdirSync } from 'node:fs';
import { isListening, isUnixSocket, localAddress, readDeferAccept } from '../../src/syscalls/index.js';

/**
 * TCP_DEFER_ACCEPT (seconds, as getsockopt(2) reports it) of each TCP socket listening on `port`
 * that this process holds: its descriptors in /proc/self/fd, asked through the syscalls layer.
 */
export function listeningDefer(port: number): number[] {
  const found: number[] = [];
  for (const name of readdirSync('/proc/self/fd')) {
    const fd = Number(name);
    if (!isListening(fd) || isUnixSocket(fd) || localAddress(fd).port !== port) continue;
    found.push(readDeferAccept(fd));
  }
  return found;
}
