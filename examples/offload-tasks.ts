/**
 * The task module of examples/offload-server.ts: what runs on the pool's threads. Compiled to
 * dist/examples/offload-tasks.js, which is the `filename` the server gives the pool (piscina
 * loads the module in each thread; it must be JavaScript, not TypeScript).
 *
 * A task module imports `multireactor/offload-task` at most (here: nothing of multireactor at
 * all), never the main entry: that one loads the native loop, which a thread does not need.
 */
import { pbkdf2Sync } from 'node:crypto';

const SALT = Buffer.from('multireactor offload example');

/** The argument of `hash`. */
export interface HashTask {
  readonly password: string;
  readonly rounds: number;
}

/**
 * PBKDF2-HMAC-SHA256 of `password` with `rounds` iterations, as hex: synchronous, CPU-bound work —
 * exactly what must not run on a reactor's loop. (The server's `--inline` mode runs this same
 * function on the loop, for the benchmark's comparison.)
 */
export function hash(task: HashTask): string {
  return pbkdf2Sync(task.password, SALT, task.rounds, 32, 'sha256').toString('hex');
}

export default hash;
