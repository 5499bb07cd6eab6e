/**
 * The servers of the connections benchmark (run.ts starts them; they are measuring instruments,
 * not examples). Every kind answers one request per connection and then holds the connection
 * idle until the peer leaves or the idle timeout passes:
 *   mr-http    multireactor's HTTP stage, `http()`, keepAliveTimeout = the idle timeout
 *   mr-lf      multireactor, 4-byte length-field frames: LengthFieldFrameDecoder, LengthFieldPrepender,
 *              HeartbeatHandler (a ping frame "p" after --ping ms of silence, pongs "o"; closes after
 *              the idle timeout of unanswered pings), an echo handler
 *   node-http  node:http (`--workers N`: node:cluster), keepAliveTimeout = the idle timeout
 *   uws-http   uWebSockets.js HTTP (its idle keep-alive timeout is fixed at 10 s)
 *   uws-ws     uWebSockets.js WebSocket on /ws (HTTP on the rest), echoing messages, pinging by
 *              itself (`sendPingsAutomatically`) with idleTimeout = the idle timeout
 *
 *   node --expose-gc dist/benchmarks/connections/server.js --kind mr-lf --workers 0 --port 18095 \
 *        [--ping MS] [--idle-timeout MS] [--max-connections N] [--uws DIR]
 *
 * Prints `serving PID` from every process that serves connections, then `listening PORT` once
 * all do. On SIGWINCH a serving process collects garbage twice (with --expose-gc) and prints
 * `mem PID {"rss":…,"heapUsed":…,…}` (bytes; rss is /proc/self/status VmRSS): the benchmark's GC
 * trigger, by signal so that it reaches workers forked by a master too. With --snapshot-dir it
 * also writes a heap snapshot there and names it in that line (heap.ts). SIGTERM stops.
 */

import { fork } from 'node:child_process';
import cluster from 'node:cluster';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { getHeapSpaceStatistics, writeHeapSnapshot } from 'node:v8';
import { scriptCli } from '../common/cli.js';

const values = scriptCli(import.meta.url, {
  kind: { type: 'string', default: 'mr-http' },
  workers: { type: 'string', default: '0' },
  port: { type: 'string', default: '18095' },
  ping: { type: 'string', default: '30000' },
  'idle-timeout': { type: 'string', default: '90000' },
  'max-connections': { type: 'string', default: '19000' },
  uws: { type: 'string' },
  /** Also write a heap snapshot there after each GC (heap.ts). */
  'snapshot-dir': { type: 'string' },
});

const KIND = values.kind;
const WORKERS = Number(values.workers);
const PORT = Number(values.port);
const PING_MS = Number(values.ping);
const IDLE_MS = Number(values['idle-timeout']);
const MAX_CONNECTIONS = Number(values['max-connections']);
for (const [name, v] of [
  ['workers', WORKERS],
  ['port', PORT],
  ['ping', PING_MS],
  ['idle-timeout', IDLE_MS],
  ['max-connections', MAX_CONNECTIONS],
] as const) {
  if (!Number.isInteger(v) || v < 0) {
    process.stderr.write(`--${name} must be a non-negative integer\n`);
    process.exit(2);
  }
}

const say = (line: string) => process.stdout.write(`${line}\n`);

/** VmRSS of this process, bytes: what the kernel counts resident, JS heap or not. */
function rss(): number {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync('/proc/self/status', 'utf8'));
  return m === null ? Number.NaN : Number(m[1]) * 1024;
}

let snapshots = 0;

/** The GC trigger of a serving process (see the header). */
function reportMemoryOnSignal(): void {
  process.on('SIGWINCH', () => {
    const gc = (globalThis as { gc?: () => void }).gc;
    gc?.();
    gc?.();
    const m = process.memoryUsage();
    // What of the heap is resident (committed pages V8 has touched), all spaces and new space.
    let heapPhysical = 0;
    let newSpacePhysical = 0;
    for (const sp of getHeapSpaceStatistics()) {
      heapPhysical += sp.physical_space_size;
      if (sp.space_name === 'new_space') newSpacePhysical += sp.physical_space_size;
    }
    const report = {
      rss: rss(),
      heapUsed: m.heapUsed,
      heapTotal: m.heapTotal,
      heapPhysical,
      newSpacePhysical,
      external: m.external,
      arrayBuffers: m.arrayBuffers,
      gc: gc !== undefined,
    };
    const snapshot =
      values['snapshot-dir'] === undefined
        ? undefined
        : writeHeapSnapshot(join(values['snapshot-dir'], `${process.pid}-${++snapshots}.heapsnapshot`));
    say(`mem ${process.pid} ${JSON.stringify({ ...report, snapshot })}`);
  });
}

function serving(): void {
  reportMemoryOnSignal();
  say(`serving ${process.pid}`);
}

async function multireactor(): Promise<void> {
  const mr = await import('../../src/index.js');
  const PING = Buffer.from('p');
  class Echo extends mr.ChannelInboundHandler {
    override onRead(ctx: import('../../src/index.js').HandlerContext, msg: unknown): void {
      ctx.write(msg);
    }
  }
  // The options once for all connections: closures made in the factory would be two objects
  // and a context per connection (~150 B), the application's cost rather than the framework's.
  const decoderOptions = { maxFrameLength: 64 * 1024, initialBytesToStrip: 4 } as const;
  const heartbeat = {
    interval: PING_MS,
    // Closed once the idle timeout has passed without an answer (ping, silence, ping, …).
    missed: Math.max(0, Math.ceil(IDLE_MS / PING_MS) - 1),
    ping: () => PING,
    isPong: (m: unknown) => (m as Buffer)[0] === 0x6f, // "o"
  };
  const lf = () =>
    new mr.Pipeline()
      .addLast('frame-decoder', new mr.LengthFieldFrameDecoder(decoderOptions))
      .addLast('frame-encoder', new mr.LengthFieldPrepender())
      .addLast('heartbeat', new mr.HeartbeatHandler(heartbeat))
      .addLast('echo', new Echo());
  const body = Buffer.from('Hello, World!');
  const server = await mr.Server.listen({
    host: '127.0.0.1',
    port: PORT,
    workers: WORKERS,
    maxConnections: MAX_CONNECTIONS,
    drainTimeout: 1000,
    startTimeout: 20_000,
    pipeline:
      KIND === 'mr-lf'
        ? lf
        : mr.http(
            (_req, res) => {
              res.setHeader('Content-Type', 'text/plain').end(body);
            },
            { keepAliveTimeout: IDLE_MS },
          ),
  });
  if (server.role !== 'master') serving();
  if (server.role !== 'worker') say(`listening ${server.address().port}`);
  if (server.role === 'single') {
    process.once('SIGTERM', () => process.exit(0));
    process.once('SIGINT', () => process.exit(0));
  }
}

function nodeHttp(): void {
  if (WORKERS > 0 && cluster.isPrimary) {
    let ready = 0;
    cluster.on('listening', () => {
      if (++ready === WORKERS) say(`listening ${PORT}`);
    });
    for (let i = 0; i < WORKERS; i++) cluster.fork();
    const stop = () => {
      for (const w of Object.values(cluster.workers ?? {})) w?.process.kill('SIGKILL');
      process.exit(0);
    };
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
    return;
  }
  const body = Buffer.from('Hello, World!');
  const server = createServer((_req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': body.length });
    res.end(body);
  });
  server.keepAliveTimeout = IDLE_MS;
  server.maxConnections = MAX_CONNECTIONS;
  server.listen({ port: PORT, host: '127.0.0.1', backlog: 4096 }, () => {
    serving();
    if (WORKERS === 0) say(`listening ${PORT}`);
  });
  process.once('SIGTERM', () => process.exit(0));
  if (cluster.isWorker) process.on('SIGINT', () => {}); // the primary coordinates
}

interface UwsResponse {
  writeHeader(k: string, v: string): UwsResponse;
  end(body: string): void;
}
interface UwsSocket {
  send(msg: ArrayBuffer, binary: boolean): number;
}
interface UwsApp {
  get(pattern: string, handler: (res: UwsResponse) => void): UwsApp;
  ws(pattern: string, behavior: Record<string, unknown>): UwsApp;
  listen(host: string, port: number, cb: (token: unknown) => void): UwsApp;
}

/**
 * uWS pings a WebSocket after `idleTimeout - margin` s of silence and closes it `margin` s later
 * if nothing came back, where the margin is 4, 8 or 16 s depending on idleTimeout (its
 * WebSocketContextData); its timers tick every 4 s. The smallest idleTimeout whose ping comes
 * after `ping` s of silence — so that uWS pings at the cadence the other servers use.
 */
function uwsIdleTimeout(ping: number): number {
  const margin = (t: number) => {
    let m = 4;
    while (t - m * 2 >= m * 2 && m < 16) m <<= 1;
    return m;
  };
  for (let t = Math.max(8, ping); t < ping + 64; t++) if (t - margin(t) >= ping) return t;
  return ping + 16;
}

function uws(): void {
  if (WORKERS > 0 && process.env.MR_UWS_CHILD === undefined) {
    // uSockets binds with SO_REUSEPORT on Linux: N processes on one port, the kernel spreads.
    const children = Array.from({ length: WORKERS }, () =>
      fork(process.argv[1] as string, process.argv.slice(2), {
        env: { ...process.env, MR_UWS_CHILD: '1' },
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
        execArgv: process.execArgv,
      }),
    );
    let ready = 0;
    for (const c of children) {
      c.on('message', (m) => {
        if (m === 'ready' && ++ready === WORKERS) say(`listening ${PORT}`);
      });
    }
    const stop = () => {
      for (const c of children) c.kill('SIGKILL');
      process.exit(0);
    };
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
    return;
  }
  if (values.uws === undefined)
    throw new Error('--uws DIR (a folder whose node_modules holds uWebSockets.js) is required');
  const req = createRequire(join(values.uws, 'noop.js'));
  let uWS: { App(): UwsApp };
  try {
    uWS = req('@trufflesuite/uws-js-unofficial');
  } catch {
    uWS = req('uWebSockets.js');
  }
  // The republished package falls back to a JavaScript imitation when its binary does not load:
  // that is not what we measure.
  if (!Object.keys(req.cache).some((k) => k.endsWith('.node'))) {
    throw new Error('uWebSockets.js loaded without its native binary (a fallback): not measured');
  }
  const app = uWS.App().get('/*', (res) => {
    res.writeHeader('Content-Type', 'text/plain').end('Hello, World!');
  });
  if (KIND === 'uws-ws') {
    app.ws('/ws', {
      idleTimeout: uwsIdleTimeout(Math.round(PING_MS / 1000)),
      sendPingsAutomatically: true,
      maxPayloadLength: 64 * 1024,
      message: (ws: UwsSocket, msg: ArrayBuffer, binary: boolean) => {
        ws.send(msg, binary);
      },
    });
  }
  app.listen('127.0.0.1', PORT, (token) => {
    if (!token) {
      process.stderr.write(`uWS: listen on ${PORT} failed\n`);
      process.exit(1);
    }
    serving();
    if (WORKERS === 0) say(`listening ${PORT}`);
    else process.send?.('ready');
  });
  process.once('SIGTERM', () => process.exit(0));
  process.on('SIGINT', () => {});
  process.on('disconnect', () => process.exit(0)); // the launcher is gone: no orphans
}

if (KIND === 'mr-http' || KIND === 'mr-lf') await multireactor();
else if (KIND === 'node-http') nodeHttp();
else if (KIND === 'uws-http' || KIND === 'uws-ws') uws();
else {
  process.stderr.write(`--kind must be mr-http, mr-lf, node-http, uws-http or uws-ws, got ${KIND}\n`);
  process.exit(2);
}
