/**
 * Master upgrade, nginx's binary upgrade the systemd way: the old master starts a new one with
 * its listening sockets passed as `LISTEN_FDS=n`, `LISTEN_PID=<its pid>`, descriptors from 3
 * (sd_listen_fds(3)), and waits until the new one reports that it serves.
 */
import { spawn } from 'node:child_process';
import type { Logger } from '../common/logger.js';
import { describeExit } from './handle.js';

/** Set in a master spawned by `upgrade()`: report to the old master once serving. */
export const UPGRADE_ENV = 'MULTIREACTOR_UPGRADE';

/** Whether this process is a master started by another one's `upgrade()`. */
export function isUpgradedMaster(): boolean {
  return process.env[UPGRADE_ENV] === '1';
}

/**
 * Starts `script` as a new master on `fds` and resolves with its pid once it serves (rejects, the
 * new process killed, when it does not within `timeoutMs`).
 */
export async function spawnSuccessor(o: {
  readonly fds: readonly number[];
  readonly script: string;
  readonly args: readonly string[];
  readonly timeoutMs: number;
  readonly logger: Logger;
}): Promise<number> {
  // LISTEN_PID must name the new process itself (sd_listen_fds checks it). Its pid is only
  // known after the fork, so a shell sets it and exec()s node in the same process.
  const child = spawn(
    '/bin/sh',
    [
      '-c',
      'LISTEN_PID=$$; export LISTEN_PID; exec "$0" "$@"',
      process.execPath,
      ...process.execArgv,
      o.script,
      ...o.args,
    ],
    {
      stdio: ['ignore', 'inherit', 'inherit', ...o.fds, 'ipc'],
      env: { ...process.env, LISTEN_FDS: String(o.fds.length), [UPGRADE_ENV]: '1' },
    },
  );
  o.logger.info(`upgrade: started master ${child.pid} with ${o.fds.length} listening socket(s)`);
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`upgrade: the new master did not report ready within ${o.timeoutMs} ms`));
    }, o.timeoutMs);
    child.once('message', () => {
      clearTimeout(timer);
      resolve();
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`upgrade: the new master ${describeExit(code, signal)} before serving`));
    });
  });
  child.disconnect();
  child.unref();
  return child.pid as number;
}

/** In a master started by `upgrade()`, once it serves: tells its predecessor. */
export function notifyPredecessor(): void {
  if (!isUpgradedMaster()) return;
  delete process.env[UPGRADE_ENV];
  if (process.send !== undefined && process.connected) {
    process.send({ t: 'upgraded', pid: process.pid });
    process.disconnect();
  }
}
