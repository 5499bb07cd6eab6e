/**
 * What the macro benchmarks measure with: CPU time of process trees from /proc, a port that
 * answers, wrk's output, medians.
 */
import { type ChildProcess, execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { readdirSync, readFileSync } from 'node:fs';
import net from 'node:net';

/** Clock ticks per second of /proc/PID/stat's times. */
export const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;

/** The fields of /proc/PID/stat after the command name (whose parentheses may hold spaces). */
export function statFields(stat: string): string[] {
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}

/** pids of `root` and all its descendants (scanning /proc for parent links). */
export function tree(root: number): number[] {
  const parent = new Map<number, number>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      parent.set(Number(name), Number(statFields(readFileSync(`/proc/${name}/stat`, 'utf8'))[1]));
    } catch {
      // gone meanwhile
    }
  }
  const out = [root];
  for (let i = 0; i < out.length; i++) for (const [pid, ppid] of parent) if (ppid === out[i]) out.push(pid);
  return out;
}

/** utime + stime of `pids`, in seconds. */
export function cpuSeconds(pids: readonly number[]): number {
  let ticks = 0;
  for (const pid of pids) {
    try {
      const f = statFields(readFileSync(`/proc/${pid}/stat`, 'utf8'));
      ticks += Number(f[11]) + Number(f[12]);
    } catch {
      // exited
    }
  }
  return ticks / CLK_TCK;
}

/**
 * Stops a server this benchmark started and everything it forked: `signal` to the root, up to
 * `graceMs` for it to exit, then SIGKILL to whatever of its tree is left (the tree is taken first:
 * children of nginx or the C server would be reparented to init and lost to a later look), then
 * `settleMs` for the port and the CPU to quiet down before the next run.
 */
export async function stopTree(
  child: ChildProcess,
  {
    signal = 'SIGTERM',
    graceMs = 3000,
    settleMs = 300,
  }: { signal?: NodeJS.Signals; graceMs?: number; settleMs?: number } = {},
): Promise<void> {
  const all = tree(child.pid as number);
  const exited = child.exitCode === null && child.signalCode === null ? once(child, 'exit') : Promise.resolve();
  child.kill(signal);
  await Promise.race([exited, new Promise((r) => setTimeout(r, graceMs))]);
  for (const pid of all) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  if (settleMs > 0) await new Promise((r) => setTimeout(r, settleMs));
}

/** Whether something accepts a connection on 127.0.0.1:port right now. */
function answers(port: number): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/** Resolves once something accepts connections on 127.0.0.1:port. */
export async function waitForPort(port: number, timeoutMs = 10_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    if (await answers(port)) return;
    if (Date.now() > until) throw new Error(`nothing listens on ${port}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * Throws when something already accepts connections on 127.0.0.1:port, before a benchmark starts
 * its server there. `waitForPort` cannot tell who answers: a process left listening on the port
 * would be measured in the server's place — with SO_REUSEPORT both bind, and one bound to
 * 127.0.0.1 takes every connection from one bound to 0.0.0.0 (the kernel prefers the more
 * specific address) — and the run would report the stray's req/s against a server tree whose CPU
 * time hardly moved.
 */
export async function assertPortFree(port: number): Promise<void> {
  if (await answers(port)) {
    throw new Error(`127.0.0.1:${port} already answers: another process listens there (stop it, or choose --port)`);
  }
}

function toMs(v: string, unit: string): number {
  return unit === 'us' ? Number(v) / 1000 : unit === 's' ? Number(v) * 1000 : Number(v);
}

export interface WrkResult {
  readonly rps: number;
  readonly requests: number;
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  /** wrk's "Socket errors" and "Non-2xx" lines, if any. */
  readonly errors: string;
}

/** Reads wrk's text output (run with --latency). */
export function parseWrk(text: string): WrkResult {
  const lat = (p: string) => {
    const m = new RegExp(`\\s${p}%\\s+([\\d.]+)(us|ms|s)`).exec(text);
    return m ? toMs(m[1] as string, m[2] as string) : Number.NaN;
  };
  return {
    rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(text)?.[1] ?? 0),
    requests: Number(/(\d+) requests in/.exec(text)?.[1] ?? 0),
    p50: lat('50'),
    p90: lat('90'),
    p99: lat('99'),
    errors: /Socket errors:[^\n]*|Non-2xx[^\n]*/.exec(text)?.[0] ?? '',
  };
}

/** Exits with a message when wrk is not installed. */
export function requireWrk(): void {
  if (!hasWrk()) {
    console.error('wrk is not installed (apt-get install wrk); tests never need it, this benchmark does');
    process.exit(2);
  }
}

/** Whether wrk is installed (`wrk --version` prints its version and exits 1: only a missing binary counts). */
export function hasWrk(): boolean {
  try {
    execFileSync('wrk', ['--version'], { stdio: 'ignore' });
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== 'ENOENT';
  }
  return true;
}

/** The median of the numbers that are not NaN (NaN if none). */
export function median(xs: readonly number[]): number {
  const s = xs.filter((x) => !Number.isNaN(x)).sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length === 0 ? Number.NaN : s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}
