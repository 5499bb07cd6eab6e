/**
 * Noticing that the process we belong to has died: a master whose parent dies (`npm start` killed:
 * npm runs the script through `sh -c`, the shell dies, the master is re-parented to init) stops
 * gracefully instead of serving on as an orphan, and a worker whose master died — even by SIGKILL
 * — goes too.
 *
 * The kernel tells us: prctl(PR_SET_PDEATHSIG) makes it send a signal when the parent dies. Two
 * subtleties (prctl(2), kernel/exit.c `forget_original_parent`):
 * - it fires when the parent *thread* that forked us exits, not the parent process. A parent that
 *   spawned us from a thread that ends (a worker_thread, a Go runtime thread) signals us while it
 *   lives on; and a dying multi-threaded parent signals once per thread as its threads exit, the
 *   first times while its other threads still hold us. So the signal only means "look": the
 *   parent is gone when getppid() no longer names it (we were re-parented to init or a
 *   subreaper). A last signal always follows the final re-parenting, and Node reads getppid()
 *   when it runs our handler, after the signal; short re-checks back that up.
 * - the signal is SIGPWR, not SIGTERM, so that "the parent may be gone" is told apart from a
 *   SIGTERM someone sends on purpose (that stops us at once, whoever our parent is). Nothing sends
 *   SIGPWR to a server otherwise (init gets it from a UPS daemon). Its default action terminates,
 *   which is right for a process that has not installed the handler yet.
 *
 * A parent that died before the signal was armed is caught by looking at getppid() once right
 * after arming. A process whose parent is already init (pid 1: systemd, a container's init) has
 * nothing to watch: init does not die while we run.
 */
import { constants } from 'node:os';
import { isMainThread } from 'node:worker_threads';
import type { Logger } from '../common/logger.js';
import { setParentDeathSignal } from '../syscalls/libc.js';

/** What the kernel sends us when the thread that forked us exits. */
export const PARENT_DEATH_SIGNAL = 'SIGPWR' as const;

/** Re-checks after a signal that found the parent still there (its other threads may be exiting). */
const RECHECK_MS = [50, 500, 2000] as const;

export interface ParentWatch {
  /** Stops watching: no handler, no death signal. */
  close(): void;
}

/**
 * Arms the parent-death signal without a handler: from now on the death of the thread that forked
 * this process terminates it (SIGPWR's default action) — until {@link watchParent} installs a
 * handler. For a worker that is still loading its application when its master dies. Main thread
 * only (the setting is per thread); returns whether it was armed.
 */
export function armParentDeathSignal(): boolean {
  return isMainThread && setParentDeathSignal(constants.signals[PARENT_DEATH_SIGNAL]) === 0;
}

/**
 * Calls `onGone` once, when `parentPid` is no longer this process's parent (it died and we were
 * re-parented), as told by the parent-death signal. `onGone` runs from a signal handler or a
 * timer, never inside this call.
 */
export function watchParent(parentPid: number, onGone: () => void, logger?: Logger): ParentWatch {
  let open = true;
  const timers: NodeJS.Timeout[] = [];
  const close = () => {
    if (!open) return;
    open = false;
    for (const t of timers.splice(0)) clearTimeout(t);
    // Disarm before removing the handler: without a handler SIGPWR would terminate us.
    if (isMainThread) setParentDeathSignal(0);
    process.off(PARENT_DEATH_SIGNAL, onSignal);
  };
  const check = (): boolean => {
    if (!open || process.ppid === parentPid) return false;
    close();
    onGone();
    return true;
  };
  const onSignal = () => {
    if (check()) return;
    logger?.debug(
      `${PARENT_DEATH_SIGNAL}: the thread that started this process exited, its parent ${parentPid} lives on`,
    );
    for (const ms of RECHECK_MS) {
      const t = setTimeout(() => {
        timers.splice(timers.indexOf(t), 1);
        check();
      }, ms);
      t.unref();
      timers.push(t);
    }
  };
  process.on(PARENT_DEATH_SIGNAL, onSignal);
  armParentDeathSignal();
  // The parent may have died before the signal was armed.
  const first = setTimeout(() => {
    timers.splice(timers.indexOf(first), 1);
    check();
  }, 0);
  first.unref();
  timers.push(first);
  return { close };
}
