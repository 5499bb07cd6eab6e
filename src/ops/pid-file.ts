/**
 * The master's pid file: its pid in decimal and a newline (what systemd's `PIDFile=` and init
 * scripts read), written when the master starts and removed when it stops.
 *
 * Written with O_EXCL (`wx`), so that of two masters started at once only one gets it. A file
 * already there names a process that is either alive — then this start is refused — or gone: a
 * stale file left by a master that was killed, replaced, and the log says so. A pid is "alive" when
 * kill(pid, 0) finds it, unless it is this very process (a container's master is pid 1 at every
 * start, and its stale pid file would otherwise refuse every restart). A master started by
 * `upgrade()` takes the file over from its predecessor, which is alive by design.
 */
import { readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import type { Logger } from '../common/logger.js';

/** The pid a pid file names, or undefined when it names none (empty, garbage). */
export function readPidFile(path: string): number | undefined {
  const text = readFileSync(path, 'utf8').trim();
  return /^[1-9][0-9]*$/.test(text) ? Number(text) : undefined;
}

/** Whether a process with this pid exists (EPERM: it does, owned by someone else). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Writes this process's pid to `path`. Throws when the file names another live process (not
 * `takeOverFrom`). Returns a function that removes the file — if it still names this process.
 */
export function writePidFile(path: string, logger: Logger, takeOverFrom?: number): () => void {
  const text = `${process.pid}\n`;
  for (let attempt = 0; ; attempt++) {
    try {
      writeFileSync(path, text, { flag: 'wx', mode: 0o644 });
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 0) throw err;
    }
    let pid: number | undefined;
    try {
      pid = readPidFile(path);
    } catch {
      continue; // removed meanwhile: try again
    }
    if (pid !== undefined && pid === takeOverFrom) {
      writeFileSync(path, text, { mode: 0o644 });
      logger.info(`pid file ${path}: taken over from master ${pid} (upgrade)`);
      break;
    }
    if (pid !== undefined && pid !== process.pid && processAlive(pid)) {
      throw new Error(
        `pid file ${path} names process ${pid}, which is running: is another master serving? (remove the file if that process is not one)`,
      );
    }
    logger.warn(
      `pid file ${path}: replacing a stale one (${pid === undefined ? 'it names no pid' : `process ${pid} is gone`})`,
    );
    try {
      unlinkSync(path);
    } catch {
      // gone meanwhile
    }
  }
  return () => {
    try {
      if (readPidFile(path) === process.pid) unlinkSync(path);
    } catch {
      // already gone
    }
  };
}
