/**
 * Connections benchmark: what an idle connection costs, and 100,000 of them held at once.
 *
 * Memory (one server process, `workers: 0`): N idle connections (--connections, default 10,000),
 * each after one request, from a client process of its own. Before and after, the server
 * collects garbage (it runs with --expose-gc; SIGWINCH asks it) and reports VmRSS and V8's
 * heapUsed, heapTotal, external and arrayBuffers; the differences per connection are the table.
 * The kernel's share per socket comes from /proc/net/sockstat (TCP inuse, mem pages) and
 * /proc/slabinfo (every slab cache, when readable).
 *
 * Scale (--workers processes, default 8, SO_REUSEPORT or node:cluster): --scale-connections
 * (default 100,000) opened by --clients processes (default 8), each from its own loopback
 * source addresses (127.0.0.2, 127.0.0.3, …: every address has its own ~28k ephemeral ports),
 * at --rate connections per second; then held for --hold seconds (default two ping rounds and
 * 5 s) with heartbeats running: the server pings every --ping seconds (default 30) and the
 * clients answer (length-field and WebSocket servers); HTTP cannot push, so there each client
 * sends a keep-alive request per connection every --ping seconds instead. The idle timeout
 * (--idle-timeout, default 3 pings) closes a connection that stays silent. Reports the time to
 * open them all, RSS and heap per connection of each worker (after a GC), CPU of each worker
 * over the window (utime+stime from /proc), and p50/p99 of a request on a fresh connection
 * (connect, request, answer; --latency-samples one after another) while all are held.
 *
 *   npm run build
 *   node dist/benchmarks/connections/run.js [--parts memory,scale] [--servers mr-http,mr-lf,node-http,uws-http,uws-ws]
 *        [--connections 10000] [--scale-connections 100000] [--workers 8] [--clients 8] [--rate 5000]
 *        [--ping 30] [--hold 65] [--uws DIR] [--json FILE]
 *
 * Servers: mr-http (multireactor's `http()`), mr-lf (multireactor, length-field frames and a
 * HeartbeatHandler), node-http (node:http; node:cluster with workers), uws-http and uws-ws
 * (uWebSockets.js, when --uws names a folder where it is installed:
 * `npm install @trufflesuite/uws-js-unofficial@20.30.0-unofficial.0` there; skipped, saying so,
 * without). uws-http closes idle keep-alive connections after 10 s (fixed in uWS), so it takes
 * part in the memory half only, its clients sending a request every 3 s meanwhile. The memory
 * half runs --rounds rounds (default 3), servers interleaved, and reports medians.
 *
 * Every process the run starts is stopped by pid when it ends, fails or gets Ctrl-C.
 */
import { existsSync, writeFileSync } from 'node:fs';
import { cpus, release } from 'node:os';
import { join } from 'node:path';
import { scriptCli } from '../common/cli.js';
import { cpuSeconds, median } from '../common/measure.js';
import {
  ClientRun,
  clientStats,
  fdCount,
  type Kernel,
  kernel,
  killEverything,
  killEverythingOnExit,
  log,
  type Mem,
  openAll,
  PAGE,
  ServerRun,
  slabGrowth,
  sleep,
  vmRss,
  warmUp,
} from './harness.js';
import {
  type ConnectionsOptions,
  FD_HEADROOM,
  fdLimit,
  portsPerAddress,
  resolveOptions,
  SERVER_KINDS,
  type ServerKind,
  sourceAddresses,
} from './options.js';

const raw = scriptCli(import.meta.url, {
  parts: { type: 'string', default: 'memory,scale' },
  servers: { type: 'string', default: 'mr-http,mr-lf,node-http,uws-http,uws-ws' },
  connections: { type: 'string', default: '10000' },
  'scale-connections': { type: 'string', default: '100000' },
  workers: { type: 'string', default: '8' },
  clients: { type: 'string', default: '8' },
  rate: { type: 'string', default: '5000' },
  ping: { type: 'string', default: '30' },
  'idle-timeout': { type: 'string' },
  hold: { type: 'string' },
  'latency-samples': { type: 'string', default: '500' },
  rounds: { type: 'string', default: '3' },
  port: { type: 'string', default: '18095' },
  uws: { type: 'string' },
  json: { type: 'string' },
});
let o: ConnectionsOptions;
try {
  o = resolveOptions(raw);
} catch (err) {
  process.stderr.write(`${(err as Error).message}\n`);
  process.exit(2);
}
const LIMIT = fdLimit();
killEverythingOnExit();
/** uWS closes an HTTP connection idle 10 s, on timers of 4 s granularity: heartbeats must come sooner. */
const UWS_HTTP_HEARTBEAT_MAX = 6;

function skipReason(kind: ServerKind, part: 'memory' | 'scale'): string | undefined {
  if (kind.startsWith('uws-')) {
    if (o.uws === undefined) {
      return 'uWebSockets.js not given: `npm install @trufflesuite/uws-js-unofficial@20.30.0-unofficial.0` in a scratch folder and pass --uws FOLDER';
    }
    if (!existsSync(join(o.uws, 'node_modules'))) return `--uws ${o.uws}: no node_modules there`;
  }
  if (kind === 'uws-http' && part === 'scale' && o.ping > UWS_HTTP_HEARTBEAT_MAX) {
    return `uWS closes idle HTTP keep-alive connections after 10 s (fixed), so it cannot hold them between heartbeats ${o.ping} s apart; uws-ws is uWS at scale`;
  }
  return undefined;
}

const KiB = 1024;
const kib = (bytes: number) => (Number.isFinite(bytes) ? (bytes / KiB).toFixed(2) : '–');
const pct = (xs: readonly number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? Number.NaN : (s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] as number);
};

// ---- memory half ----

interface MemoryResult {
  readonly kind: ServerKind;
  readonly round?: number;
  readonly held: number;
  readonly before: Mem;
  readonly after: Mem;
  readonly kernelBefore: Kernel;
  readonly kernelAfter: Kernel;
  readonly openMs: number;
  readonly gc: boolean;
}

async function memoryRun(kind: ServerKind): Promise<MemoryResult> {
  const protocol = SERVER_KINDS[kind].protocol;
  const server = await ServerRun.start(kind, 0, o.connections + 1000, o);
  const clients: ClientRun[] = [];
  try {
    const pid = server.serving[0] as number;
    // JIT and lazily built state only. Not the whole burst: the memory of connections that came
    // and went stays in the process (heap pages, malloc arenas) and the next ones would reuse it,
    // hiding what a connection costs a server growing to N.
    await warmUp(o.port, protocol, Math.min(200, o.connections));
    await sleep(500);
    const before = await server.memory(pid);
    const fds0 = fdCount(pid);
    const kernelBefore = kernel();
    const n = Math.max(1, Math.ceil(o.connections / (LIMIT - FD_HEADROOM)));
    for (let i = 0; i < n; i++) clients.push(new ClientRun());
    const addresses = sourceAddresses(o.connections, n, portsPerAddress());
    // As fast as the server answers (256 in flight per client). uWS closes an HTTP connection
    // idle for 10 s (fixed), and opening 10,000 may take longer on a busy machine: its clients
    // send a request on each connection every 3 s to keep them.
    const heartbeat = kind === 'uws-http' ? 3000 : 0;
    const opened = await openAll(o.port, clients, addresses, protocol, o.connections, 0, heartbeat);
    log(`  ${opened.ok} connections open in ${(opened.ms / 1000).toFixed(1)} s`);
    if (opened.failed > 0) log(`  ${kind}: ${opened.failed} connections failed ${JSON.stringify(opened.errors)}`);
    await sleep(300);
    const after = await server.memory(pid);
    const kernelAfter = kernel();
    const held = fdCount(pid) - fds0;
    const cs = await clientStats(clients);
    if (cs.open !== opened.ok || held !== opened.ok) {
      log(`  ${kind}: ${opened.ok} opened, ${cs.open} still open at the clients, ${held} at the server`);
    }
    return {
      kind,
      held,
      before,
      after,
      kernelBefore,
      kernelAfter,
      openMs: opened.ms,
      gc: after.gc,
    };
  } finally {
    for (const c of clients) await c.close();
    await server.stop();
  }
}

// ---- scale half ----

interface WorkerResult {
  readonly pid: number;
  readonly held: number;
  readonly before: Mem;
  readonly after: Mem;
  readonly cpuPercent: number;
}
interface ScaleResult {
  readonly kind: ServerKind;
  readonly opened: number;
  readonly failed: number;
  readonly errors: Record<string, number>;
  readonly openSeconds: number;
  readonly workers: readonly WorkerResult[];
  readonly masterRss: number;
  readonly heldAfter: number;
  readonly closedByPeer: number;
  readonly pingsPerConnection: number;
  readonly beatsPerConnection: number;
  readonly latencyTotal: readonly number[];
  readonly latencyRequest: readonly number[];
  readonly latencyFailed: number;
  readonly kernelBefore: Kernel;
  readonly kernelAfter: Kernel;
}

async function scaleRun(kind: ServerKind): Promise<ScaleResult> {
  const protocol = SERVER_KINDS[kind].protocol;
  const perWorker = Math.ceil(o.scaleConnections / o.workers);
  const maxConnections = Math.min(LIMIT - FD_HEADROOM, Math.ceil(perWorker * 1.25) + 1000);
  const server = await ServerRun.start(kind, o.workers, maxConnections, o);
  const clients: ClientRun[] = [];
  try {
    const pids = [...server.serving];
    await warmUp(o.port, protocol, 25 * o.workers);
    await sleep(500);
    const before = await Promise.all(pids.map((p) => server.memory(p)));
    const fds0 = pids.map(fdCount);
    const kernelBefore = kernel();
    for (let i = 0; i < o.clients; i++) clients.push(new ClientRun());
    const addresses = sourceAddresses(o.scaleConnections, o.clients, portsPerAddress());
    log(
      `  ${kind}: opening ${o.scaleConnections.toLocaleString('en-US')} connections from ${addresses.flat().length} source addresses ${o.rate > 0 ? `at ${o.rate}/s` : 'as fast as accepted'}`,
    );
    const progress = setInterval(() => {
      const held = pids.reduce((n, p, i) => n + fdCount(p) - (fds0[i] as number), 0);
      log(`    ${held.toLocaleString('en-US')} held by the workers`);
    }, 10_000);
    let opened: Awaited<ReturnType<typeof openAll>>;
    try {
      opened = await openAll(
        o.port,
        clients,
        addresses,
        protocol,
        o.scaleConnections,
        o.rate,
        protocol === 'http' ? o.ping * 1000 : 0,
      );
    } finally {
      clearInterval(progress);
    }
    log(`  ${kind}: ${opened.ok} open in ${(opened.ms / 1000).toFixed(1)} s, ${opened.failed} failed`);
    // The idle window: heartbeats only.
    const s0 = await clientStats(clients);
    const cpu0 = pids.map((p) => cpuSeconds([p]));
    const t0 = performance.now();
    for (let left = o.hold; left > 0; left -= 15) {
      await sleep(Math.min(15, left) * 1000);
      const s = await clientStats(clients);
      log(
        `    held ${s.open.toLocaleString('en-US')}, pings ${s.pings - s0.pings}, beats ${s.beats - s0.beats}, closed by the server ${s.closedByPeer}`,
      );
    }
    const seconds = (performance.now() - t0) / 1000;
    const cpu1 = pids.map((p) => cpuSeconds([p]));
    const s1 = await clientStats(clients);
    const after = await Promise.all(pids.map((p) => server.memory(p)));
    const fds1 = pids.map(fdCount);
    const kernelAfter = kernel();
    // A request on a fresh connection while all of them are held.
    const probe = new ClientRun();
    let lat: { total: number[]; request: number[]; failed: number };
    try {
      lat = await probe.ask(
        { cmd: 'latency', port: o.port, protocol, address: '127.0.0.1', samples: o.latencySamples },
        'latency',
      );
    } finally {
      await probe.close();
    }
    const workers = pids.map((pid, i) => ({
      pid,
      held: (fds1[i] as number) - (fds0[i] as number),
      before: before[i] as Mem,
      after: after[i] as Mem,
      cpuPercent: (((cpu1[i] as number) - (cpu0[i] as number)) / seconds) * 100,
    }));
    const heldAfter = s1.open;
    return {
      kind,
      opened: opened.ok,
      failed: opened.failed,
      errors: opened.errors,
      openSeconds: opened.ms / 1000,
      workers,
      masterRss: o.workers > 0 ? vmRss(server.child.pid as number) : Number.NaN,
      heldAfter,
      closedByPeer: s1.closedByPeer,
      pingsPerConnection: (s1.pings - s0.pings) / Math.max(1, heldAfter),
      beatsPerConnection: (s1.beats - s0.beats) / Math.max(1, heldAfter),
      latencyTotal: lat.total,
      latencyRequest: lat.request,
      latencyFailed: lat.failed,
      kernelBefore,
      kernelAfter,
    };
  } finally {
    for (const c of clients) await c.close();
    await server.stop();
  }
}

// ---- the run ----

const memory: MemoryResult[] = [];
const scale: ScaleResult[] = [];
const skipped: string[] = [];

async function attempt(part: 'memory' | 'scale', kind: ServerKind, run: () => Promise<void>): Promise<void> {
  try {
    await run();
  } catch (err) {
    log(`${part} · ${kind}: failed — ${(err as Error).message}`);
    skipped.push(`${part} · ${SERVER_KINDS[kind].label}: failed — ${(err as Error).message}`);
    killEverything();
    await sleep(1000);
  }
}

async function main(): Promise<void> {
  const runnable = (part: 'memory' | 'scale') =>
    o.servers.filter((kind) => {
      const why = skipReason(kind, part);
      if (why === undefined) return true;
      log(`${part} · ${kind}: skipped — ${why}`);
      skipped.push(`${part} · ${SERVER_KINDS[kind].label}: skipped — ${why}`);
      return false;
    });
  if (o.parts.includes('memory')) {
    const kinds = runnable('memory');
    // Interleaved (A B C A B C): the machine's noise spreads over every server alike.
    for (let round = 1; round <= o.rounds; round++) {
      for (const kind of kinds) {
        log(`memory · round ${round} · ${SERVER_KINDS[kind].label}`);
        await attempt('memory', kind, async () => {
          memory.push({ ...(await memoryRun(kind)), round });
        });
      }
    }
  }
  if (o.parts.includes('scale')) {
    for (const kind of runnable('scale')) {
      log(`scale · ${SERVER_KINDS[kind].label}`);
      await attempt('scale', kind, async () => {
        scale.push(await scaleRun(kind));
      });
    }
  }
}

function report(): string {
  const lines = [
    `Machine: ${cpus().length} × ${cpus()[0]?.model ?? 'unknown CPU'}, Linux ${release()}, Node ${process.version}; descriptors per process ${LIMIT}.`,
  ];
  const kinds = o.servers.filter((k) => memory.some((r) => r.kind === k));
  if (memory.length > 0) {
    lines.push(
      '',
      `Memory: ${o.connections.toLocaleString('en-US')} idle connections, one server process, after one request each; after a forced GC; per connection:`,
      '',
      '| server | held | RSS | young generation | RSS without it | JS heap used | ArrayBuffers | RSS outside the V8 heap |',
      '|---|---:|---:|---:|---:|---:|---:|---:|',
    );
    for (const kind of kinds) {
      const runs = memory.filter((r) => r.kind === kind);
      // Medians over the rounds, of each column on its own.
      const per = (f: (m: Mem) => number) => median(runs.map((r) => (f(r.after) - f(r.before)) / r.held));
      const held = median(runs.map((r) => r.held));
      lines.push(
        `| ${SERVER_KINDS[kind].label} | ${held.toLocaleString('en-US')} | ${kib(per((m) => m.rss))} | ${kib(per((m) => m.newSpacePhysical))} | ${kib(per((m) => m.rss - m.newSpacePhysical))} | ${kib(per((m) => m.heapUsed))} | ${kib(per((m) => m.arrayBuffers))} | ${kib(per((m) => m.rss - m.heapPhysical))} |`,
      );
    }
    lines.push(
      '',
      `KiB per connection, medians of ${o.rounds} round(s). RSS: VmRSS. Young generation: the resident pages of V8's new space, which grows with the allocation rate of the burst that opened the connections (by up to tens of MiB, then shrinks again) rather than with the connections that stay; RSS without it is what stays per connection. JS heap used: live objects (heapUsed). RSS outside the V8 heap: VmRSS less the heap's resident pages (physical_space_size of every space) — ArrayBuffer backing stores, malloc (libuv, native parsers, uSockets), code.`,
    );
    lines.push('', 'The kernel, per TCP socket (a loopback connection is two sockets, both counted):', '');
    lines.push(
      '| during the run of | sockets added | socket buffer pages (sockstat mem) bytes/socket | slab bytes/socket | the caches that grew most, bytes/socket |',
    );
    lines.push('|---|---:|---:|---:|---|');
    for (const r of memory.filter((m) => m.round === o.rounds)) {
      const d = r.kernelAfter.inuse - r.kernelBefore.inuse;
      lines.push(
        `| ${SERVER_KINDS[r.kind].label} | ${d.toLocaleString('en-US')} | ${Math.round(((r.kernelAfter.memPages - r.kernelBefore.memPages) * PAGE) / d)} | ${Number.isFinite(r.kernelAfter.slab) ? Math.round((r.kernelAfter.slab - r.kernelBefore.slab) / d) : '–'} | ${slabGrowth(r.kernelBefore, r.kernelAfter, d)} |`,
      );
    }
    if (memory.some((r) => !r.gc))
      lines.push('', 'Some servers ran without --expose-gc: their heap figures are before garbage collection.');
  }
  if (scale.length > 0) {
    lines.push(
      '',
      `Scale: ${o.scaleConnections.toLocaleString('en-US')} connections over ${o.workers} workers, ${o.clients} client processes, opened ${o.rate > 0 ? `at ${o.rate}/s` : 'as fast as accepted'}; held ${o.hold} s with heartbeats every ${o.ping} s (idle timeout ${o.idleTimeout} s); ${o.latencySamples} fresh-connection requests after the window:`,
      '',
      '| server | held | open time s | RSS KiB/conn per worker (median, max) | RSS without the young generation | JS heap used KiB/conn | CPU % of a core per worker while idle (median, max) | heartbeats per connection | closed by server | fresh connection p50 / p99 ms | of which the request p50 / p99 ms |',
      '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
    );
    for (const r of scale) {
      const rss = r.workers.map((w) => (w.after.rss - w.before.rss) / w.held);
      const heap = r.workers.map((w) => (w.after.heapUsed - w.before.heapUsed) / w.held);
      const old = r.workers.map(
        (w) => (w.after.rss - w.after.newSpacePhysical - (w.before.rss - w.before.newSpacePhysical)) / w.held,
      );
      const cpu = r.workers.map((w) => w.cpuPercent);
      const held = r.workers.reduce((n, w) => n + w.held, 0);
      const beats = SERVER_KINDS[r.kind].protocol === 'http' ? r.beatsPerConnection : r.pingsPerConnection;
      lines.push(
        `| ${SERVER_KINDS[r.kind].label} | ${held.toLocaleString('en-US')}${r.failed > 0 ? ` (${r.failed} failed)` : ''} | ${r.openSeconds.toFixed(1)} | ${kib(median(rss))}, ${kib(Math.max(...rss))} | ${kib(median(old))}, ${kib(Math.max(...old))} | ${kib(median(heap))} | ${median(cpu).toFixed(2)}, ${Math.max(...cpu).toFixed(2)} | ${beats.toFixed(2)} | ${r.closedByPeer} | ${pct(r.latencyTotal, 50).toFixed(2)} / ${pct(r.latencyTotal, 99).toFixed(2)} | ${pct(r.latencyRequest, 50).toFixed(2)} / ${pct(r.latencyRequest, 99).toFixed(2)} |`,
      );
    }
    lines.push('', 'Per worker (connections held, RSS before → after, MiB, CPU % while idle):', '');
    for (const r of scale) {
      const each = r.workers
        .map(
          (w) =>
            `${w.held} ${(w.before.rss / 2 ** 20).toFixed(0)}→${(w.after.rss / 2 ** 20).toFixed(0)} ${w.cpuPercent.toFixed(2)}%`,
        )
        .join('; ');
      const master = Number.isFinite(r.masterRss)
        ? `; the master/launcher ${(r.masterRss / 2 ** 20).toFixed(0)} MiB`
        : '';
      lines.push(`- ${SERVER_KINDS[r.kind].label}: ${each}${master}`);
      if (r.failed > 0 || r.latencyFailed > 0) {
        lines.push(`  failed: ${r.failed} opening ${JSON.stringify(r.errors)}, ${r.latencyFailed} latency probes`);
      }
    }
  }
  if (skipped.length > 0) lines.push('', ...skipped.map((s) => `- ${s}`));
  return lines.join('\n');
}

try {
  await main();
} finally {
  killEverything();
}
console.log(report());
if (o.json !== undefined) writeFileSync(o.json, JSON.stringify({ options: o, memory, scale, skipped }, null, 2));
// A server that failed (not one skipped for want of uWS) makes the run fail, after the report.
if (skipped.some((s) => s.includes(': failed — '))) process.exitCode = 1;
