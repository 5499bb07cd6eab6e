/**
 * What the connections benchmark (run.ts) and its heap analysis (heap.ts) share: the server and
 * client processes they start — every one tracked and stopped by pid, also on failure and Ctrl-C —
 * and the /proc readings (VmRSS, descriptors, sockstat, slabinfo).
 */
import { type ChildProcess, fork, spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { assertPortFree, tree, waitForPort } from '../common/measure.js';
import type { ClientCommand, OpenCommand } from './client.js';
import type { Protocol, ServerKind } from './options.js';

const here = dirname(fileURLToPath(import.meta.url));

/** Where and how the servers of one run listen. */
export interface ServerConfig {
  readonly port: number;
  /** Heartbeat interval and idle timeout, seconds. */
  readonly ping: number;
  readonly idleTimeout: number;
  /** A folder whose node_modules holds uWebSockets.js. */
  readonly uws: string | undefined;
}

export const log = (s: string) => process.stderr.write(`${s}\n`);
export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

// ---- every process this run starts, stopped by pid on every way out ----

const started = new Set<ChildProcess>();

/** Whether `pid` still runs: not gone and not a zombie (state Z in /proc/PID/stat, proc(5)). */
function running(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat[stat.lastIndexOf(')') + 2] !== 'Z';
  } catch {
    return false;
  }
}

/**
 * SIGKILL to every process started here, and to what they forked (their trees, by pid), then waits
 * (at most 5 s) until they have exited. kill(2) only queues the signal: a process tearing down a
 * large address space keeps running for a while (on a busy 2-core machine, past this process'
 * own exit), and whoever looks right after Ctrl-C must find nothing left. Synchronous, because it
 * also runs from the 'exit' event, where nothing asynchronous runs any more.
 */
export function killEverything(): void {
  const killed: number[] = [];
  for (const c of started) {
    if (c.pid === undefined) continue;
    // The tree first: a master's workers would be reparented to init once it dies.
    for (const pid of tree(c.pid).reverse()) {
      try {
        process.kill(pid, 'SIGKILL');
        killed.push(pid);
      } catch {
        // already gone
      }
    }
  }
  started.clear();
  const nap = new Int32Array(new SharedArrayBuffer(4));
  const deadline = Date.now() + 5000;
  while (killed.some(running) && Date.now() < deadline) Atomics.wait(nap, 0, 0, 10);
}
/** Stops every process started here when this one exits, fails or gets a signal (Ctrl-C). */
export function killEverythingOnExit(): void {
  process.on('exit', killEverything);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(sig, () => {
      log(`\n${sig}: stopping every process this run started`);
      killEverything();
      process.exit(130);
    });
  }
}

export async function stop(child: ChildProcess, graceMs = 3000): Promise<void> {
  if (child.pid === undefined) return;
  const all = tree(child.pid);
  if (child.exitCode === null && child.signalCode === null) {
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await Promise.race([exited, sleep(graceMs)]);
  }
  for (const pid of all) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
  started.delete(child);
}

// ---- /proc readings ----

export interface Mem {
  readonly rss: number;
  readonly heapUsed: number;
  readonly heapTotal: number;
  /** Resident pages of the V8 heap (physical_space_size over all spaces), and of new space. */
  readonly heapPhysical: number;
  readonly newSpacePhysical: number;
  readonly external: number;
  readonly arrayBuffers: number;
  /** Whether the server could collect garbage first (it runs with --expose-gc). */
  readonly gc: boolean;
  /** The heap snapshot written after the GC, when the server was given --snapshot-dir. */
  readonly snapshot?: string;
}

export function vmRss(pid: number): number {
  try {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m === null ? Number.NaN : Number(m[1]) * 1024;
  } catch {
    return Number.NaN;
  }
}

/** Open descriptors of a process (its connections, less the few it always has). */
export function fdCount(pid: number): number {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return Number.NaN;
  }
}

export const PAGE = 4096;
export interface Kernel {
  /** TCP sockets in use (both ends of a loopback connection count). */
  readonly inuse: number;
  /** Pages of socket buffer memory (tcp_memory_allocated). */
  readonly memPages: number;
  /** Bytes in every slab cache (active objects × object size); NaN without /proc/slabinfo. */
  readonly slab: number;
  /** The same per cache (empty without /proc/slabinfo). */
  readonly caches: Record<string, number>;
}
export function kernel(): Kernel {
  const s = readFileSync('/proc/net/sockstat', 'utf8');
  const tcp = /^TCP: inuse (\d+) .*mem (\d+)/m.exec(s);
  let slab = 0;
  const caches: Record<string, number> = {};
  try {
    for (const line of readFileSync('/proc/slabinfo', 'utf8').split('\n').slice(2)) {
      const f = line.split(/\s+/);
      if (f.length <= 4) continue;
      const bytes = Number(f[1]) * Number(f[3]);
      caches[f[0] as string] = bytes;
      slab += bytes;
    }
  } catch {
    slab = Number.NaN; // readable by root only
  }
  return { inuse: Number(tcp?.[1] ?? Number.NaN), memPages: Number(tcp?.[2] ?? Number.NaN), slab, caches };
}

/** The slab caches that grew most between two readings, bytes per socket added: `TCP 2368, …`. */
export function slabGrowth(a: Kernel, b: Kernel, sockets: number, top = 6): string {
  return Object.entries(b.caches)
    .map(([name, bytes]) => [name, (bytes - (a.caches[name] ?? 0)) / sockets] as const)
    .sort((x, y) => y[1] - x[1])
    .slice(0, top)
    .map(([name, per]) => `${name} ${Math.round(per)}`)
    .join(', ');
}

// ---- a server under test ----

export class ServerRun {
  readonly serving: number[] = [];
  private readonly waiters = new Map<string, (line: string) => void>();
  private listening: (() => void) | undefined;

  private constructor(
    readonly kind: ServerKind,
    readonly child: ChildProcess,
  ) {
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
      const [what, a] = line.split(' ');
      if (what === 'serving') this.serving.push(Number(a));
      else if (what === 'listening') this.listening?.();
      else if (what === 'mem') this.waiters.get(a as string)?.(line.slice(line.indexOf('{')));
      else log(`[${kind}] ${line}`);
    });
  }

  static async start(
    kind: ServerKind,
    workers: number,
    maxConnections: number,
    o: ServerConfig,
    extra: readonly string[] = [],
  ): Promise<ServerRun> {
    await assertPortFree(o.port);
    const args = ['--expose-gc', join(here, 'server.js'), '--kind', kind, '--workers', String(workers)];
    args.push('--port', String(o.port), '--ping', String(o.ping * 1000));
    args.push('--idle-timeout', String(o.idleTimeout * 1000), '--max-connections', String(maxConnections));
    if (o.uws !== undefined) args.push('--uws', o.uws);
    args.push(...extra);
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    started.add(child);
    const run = new ServerRun(kind, child);
    const failed = new Promise<never>((_, reject) =>
      child.once('exit', (code, sig) => reject(new Error(`${kind} server exited (${code ?? sig}) before it served`))),
    );
    const ready = new Promise<void>((resolve) => {
      run.listening = resolve;
    });
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${kind}: not ready in 30 s`)), 30_000);
    });
    try {
      await Promise.race([ready, failed, late]);
    } finally {
      clearTimeout(timer);
    }
    const want = Math.max(1, workers);
    for (let i = 0; run.serving.length < want && i < 100; i++) await sleep(50);
    if (run.serving.length !== want)
      throw new Error(`${kind}: ${run.serving.length} serving processes, expected ${want}`);
    await waitForPort(o.port);
    return run;
  }

  /** Asks a serving process to collect garbage and report its memory. */
  memory(pid: number): Promise<Mem> {
    return new Promise<Mem>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(String(pid));
        reject(new Error(`${this.kind}: process ${pid} did not report its memory in 30 s`));
      }, 30_000);
      this.waiters.set(String(pid), (json) => {
        clearTimeout(timer);
        this.waiters.delete(String(pid));
        resolve(JSON.parse(json) as Mem);
      });
      process.kill(pid, 'SIGWINCH');
    });
  }

  stop(): Promise<void> {
    return stop(this.child);
  }
}

// ---- client processes ----

export class ClientRun {
  private readonly queue: unknown[] = [];
  private wake: (() => void) | undefined;
  readonly child: ChildProcess;

  constructor() {
    this.child = fork(join(here, 'client.js'), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    started.add(this.child);
    this.child.on('message', (m) => {
      this.queue.push(m);
      this.wake?.();
    });
    this.child.on('exit', () => this.wake?.());
  }

  async ask<T>(cmd: ClientCommand, ev: string, timeoutMs = 600_000): Promise<T> {
    this.child.send(cmd);
    const until = Date.now() + timeoutMs;
    for (;;) {
      const i = this.queue.findIndex((m) => (m as { ev: string }).ev === ev);
      if (i >= 0) return this.queue.splice(i, 1)[0] as T;
      if (this.child.exitCode !== null || this.child.signalCode !== null) throw new Error(`a client exited`);
      if (Date.now() > until) throw new Error(`a client did not answer ${cmd.cmd} in time`);
      await new Promise<void>((r) => {
        this.wake = r;
        setTimeout(r, 1000);
      });
    }
  }

  async close(): Promise<void> {
    if (this.child.connected) {
      await this.ask({ cmd: 'close' }, 'closed', 30_000).catch(() => undefined);
    }
    await stop(this.child, 2000);
  }
}

export interface Opened {
  readonly ok: number;
  readonly failed: number;
  readonly ms: number;
  readonly errors: Record<string, number>;
}
export interface ClientStats {
  readonly open: number;
  readonly pings: number;
  readonly beats: number;
  readonly closedByPeer: number;
  readonly errors: Record<string, number>;
}

/** Opens `count` connections over `clients`, from their source addresses; resolves when all are answered. */
export async function openAll(
  port: number,
  clients: readonly ClientRun[],
  addresses: readonly (readonly string[])[],
  protocol: Protocol,
  count: number,
  rate: number,
  heartbeat: number,
): Promise<{ ok: number; failed: number; ms: number; errors: Record<string, number> }> {
  const t0 = performance.now();
  const results = await Promise.all(
    clients.map((c, i) => {
      const share = Math.floor(count / clients.length) + (i < count % clients.length ? 1 : 0);
      const cmd: OpenCommand = {
        cmd: 'open',
        port,
        protocol,
        addresses: addresses[i] as string[],
        count: share,
        rate: rate > 0 ? rate / clients.length : 0,
        concurrency: 256,
        heartbeat,
      };
      return c.ask<Opened>(cmd, 'opened');
    }),
  );
  const errors: Record<string, number> = {};
  for (const r of results) for (const [k, v] of Object.entries(r.errors)) errors[k] = (errors[k] ?? 0) + v;
  return {
    ok: results.reduce((n, r) => n + r.ok, 0),
    failed: results.reduce((n, r) => n + r.failed, 0),
    ms: performance.now() - t0,
    errors,
  };
}

export async function clientStats(clients: readonly ClientRun[]): Promise<ClientStats> {
  const all = await Promise.all(clients.map((c) => c.ask<ClientStats>({ cmd: 'stats' }, 'stats', 30_000)));
  const errors: Record<string, number> = {};
  for (const r of all) for (const [k, v] of Object.entries(r.errors)) errors[k] = (errors[k] ?? 0) + v;
  const sum = (f: (s: ClientStats) => number) => all.reduce((n, s) => n + f(s), 0);
  return {
    open: sum((s) => s.open),
    pings: sum((s) => s.pings),
    beats: sum((s) => s.beats),
    closedByPeer: sum((s) => s.closedByPeer),
    errors,
  };
}

/** A few connections through the whole path first: JIT, lazily built state, the read buffer. */
export async function warmUp(port: number, protocol: Protocol, count: number): Promise<void> {
  const c = new ClientRun();
  try {
    const r = await openAll(port, [c], [['127.0.0.1']], protocol, count, 0, 0);
    if (r.ok !== count)
      throw new Error(`warm-up: ${r.failed} of ${count} connections failed ${JSON.stringify(r.errors)}`);
  } finally {
    await c.close();
  }
}
