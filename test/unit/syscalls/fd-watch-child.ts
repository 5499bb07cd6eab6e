/**
 * Child process for fd-watch.test.ts: exercises `watchReadable` in a fresh process (the watch
 * mechanism is chosen once per process, from MULTIREACTOR_FD_WATCH) and prints one JSON line.
 * With argument `keep-ref`, it ends leaving a referenced watch open (the process must then stay
 * alive); otherwise it leaves an unreferenced one (the process must exit by itself).
 */
import { setImmediate as nextTurn } from 'node:timers/promises';
import { EFD_CLOEXEC, EFD_NONBLOCK } from '../../../src/syscalls/constants.js';
import {
  close,
  eventfd,
  eventfdRead,
  eventfdWrite,
  fdWatchKind,
  pendingWatchCloses,
  watchReadable,
} from '../../../src/syscalls/libc.js';

async function until(cond: () => boolean, ms = 2000): Promise<boolean> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) return false;
    await nextTurn();
  }
  return true;
}

const order: string[] = [];
let calls = 0;
const efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
const watch = watchReadable(efd, () => {
  calls++;
  eventfdRead(efd);
  order.push('callback');
  void Promise.resolve().then(() => order.push('promise job'));
  setImmediate(() => order.push('immediate'));
});
eventfdWrite(efd, 1);
const fired = await until(() => order.length >= 3);

// Closed: no callback any more, even with the fd readable.
watch.close();
watch.close(); // twice is harmless
eventfdWrite(efd, 1);
await new Promise((r) => setTimeout(r, 50));
const callsAfterClose = calls;
close(efd);

// Many watches opened and closed: every close completes (uv_close calls back asynchronously).
const fds: number[] = [];
let churnCalls = 0;
const watches = [];
for (let i = 0; i < 200; i++) {
  const fd = eventfd(1, EFD_NONBLOCK | EFD_CLOEXEC);
  fds.push(fd);
  watches.push(
    watchReadable(fd, () => {
      churnCalls++;
      eventfdRead(fd);
    }),
  );
}
const churned = await until(() => churnCalls === 200);
for (const w of watches) w.close();
const closing = pendingWatchCloses();
const released = await until(() => pendingWatchCloses() === 0);
for (const fd of fds) close(fd);

// The last watch stays open, referenced or not.
const last = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
const lastWatch = watchReadable(last, () => eventfdRead(last));
if (process.argv[2] !== 'keep-ref') lastWatch.unref();

console.log(
  JSON.stringify({ kind: fdWatchKind(), fired, order, calls, callsAfterClose, churned, churnCalls, closing, released }),
);
