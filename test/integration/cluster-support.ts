/**
 * What the tests of master and workers share (cluster.test.ts, master-faults.test.ts): a master
 * started as a child of the test and driven through its stdin (benchmarks/common/control.ts), the
 * apps they run, and small probes. Every process a test starts is known by pid, and `teardown()`
 * kills what is left of the tree, also when a test fails.
 */
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { connect, destroyAll, startListening, waitFor } from './helpers.js';

const here = dirname(fileURLToPath(import.meta.url));
/** The line service of the reload benchmark (benchmarks/common/line-app.ts). */
export const APP = join(here, '..', '..', 'benchmarks', 'common', 'line-app.js');
/** The same over HTTP (benchmarks/common/http-app.ts). */
export const HTTP_APP = join(here, '..', '..', 'benchmarks', 'common', 'http-app.js');
/** The app of the fault tests, with switches for crashes and slow starts (master-app.ts). */
export const FAULT_APP = join(here, 'master-app.js');

export interface WorkerRow {
  slot: number;
  pid: number;
  generation: number;
  state: string;
}

/** Whether a process exists (signal 0 probes without sending anything). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

/** One master of the cluster app, started as a child of the test. */
export class Cluster {
  readonly pids = new Set<number>();
  private out = '';

  private constructor(
    readonly child: ChildProcess,
    readonly port: number,
    readonly stderr: () => string,
  ) {
    this.pids.add(child.pid as number);
    child.stdout?.on('data', (d: Buffer) => {
      this.out += d.toString();
    });
  }

  static async start(
    args: string[],
    env: NodeJS.ProcessEnv = process.env,
    fds?: number[],
    command?: string,
    commandArgs?: string[],
  ): Promise<Cluster> {
    const started = await startListening(commandArgs ?? [APP, ...args], command, {
      stdin: 'pipe',
      env,
      ...(fds ? { fds } : {}),
    });
    const c = new Cluster(started.child, started.port, started.stderr);
    for (const w of await c.workers()) c.pids.add(w.pid);
    return c;
  }

  /** Everything the process wrote to stdout so far. */
  stdout(): string {
    return this.out;
  }

  get pid(): number {
    return this.child.pid as number;
  }

  /** Sends a control command and resolves with the JSON of its answer line. */
  async command<T>(name: string, timeoutMs = 15_000): Promise<T> {
    const from = this.out.length;
    this.child.stdin?.write(`${name}\n`);
    let line: string | undefined;
    await waitFor(
      () => {
        const m = new RegExp(`^${name} (.*)$`, 'm').exec(this.out.slice(from));
        line = m?.[1];
        return line !== undefined;
      },
      `the answer to ${name}`,
      timeoutMs,
    );
    return JSON.parse(line as string) as T;
  }

  async workers(): Promise<WorkerRow[]> {
    const rows = await this.command<WorkerRow[]>('workers');
    for (const w of rows) this.pids.add(w.pid);
    return rows;
  }

  /** Asks for the workers every 20 ms until one matches `pred`; resolves with it. */
  async waitForWorker(pred: (w: WorkerRow) => boolean, what: string, timeoutMs = 10_000): Promise<WorkerRow> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const found = (await this.workers()).find(pred);
      if (found !== undefined) return found;
      if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  async readyPids(): Promise<number[]> {
    return (await this.workers()).filter((w) => w.state === 'ready').map((w) => w.pid);
  }

  /** Kills whatever is left of the tree (by pid) and waits until every process is gone. */
  async teardown(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      const exited = once(this.child, 'exit');
      this.child.kill('SIGKILL');
      await exited;
    }
    for (const pid of this.pids) if (alive(pid)) process.kill(pid, 'SIGKILL');
    await waitFor(() => [...this.pids].every((pid) => !alive(pid)), 'every process of the tree to be gone');
  }
}

/** Sends `line` on a new connection and resolves with the answer line, trimmed. */
export async function ask(port: number, line: string): Promise<string> {
  const s = await connect(port);
  try {
    return await new Promise<string>((resolve, reject) => {
      s.once('data', (d: Buffer) => resolve(d.toString().trim()));
      s.once('error', reject);
      s.write(`${line}\n`);
    });
  } finally {
    await destroyAll([s]);
  }
}

/** Asks one new connection which worker serves it. */
export async function whoServes(port: number): Promise<number> {
  return Number(await ask(port, 'pid'));
}
