/**
 * The TLS stage's own cost per connection, without sockets: a server `TlsHandler` and a client one
 * on two embedded channels, wired back to back (the real OpenSSL on both sides). Each connection
 * makes the server's SSL, completes the handshake, carries one small request and its answer (a
 * plaintext-test sized 140-byte response) and closes with close_notify. Only the server side is
 * timed (the CPU time of its calls: getrusage before and after each), so that a change to
 * the stage shows without the client's work, the kernel's or wrk's, and far less noise than the
 * macro benchmark. Medians over rounds; run two builds alternately to compare them.
 *
 *   full       — resumption off: every connection a full handshake (ECDHE + certificate + signature)
 *   resumed    — the client offers the ticket of its previous connection (TLS 1.3 PSK with ECDHE)
 *   keepalive  — one connection, many request/answer pairs: µs per pair
 *   large      — the same with a `--large`-byte answer (256 KiB): µs per answer
 *
 * `--count-ffi` also counts the calls into OpenSSL per connection (server and client side together,
 * and the server's alone), by wrapping the bindings.
 *
 *   node dist/benchmarks/tls/handshake-micro.js [--rounds 9] [--connections 500]
 */

import { Buffer } from 'node:buffer';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ChannelInboundHandler,
  EmbeddedChannel,
  type HandlerContext,
  Pipeline,
  TlsContext,
  TlsHandler,
} from '../../src/index.js';
import { liveObjects } from '../../src/syscalls/openssl.js';
import { c as bindings } from '../../src/syscalls/openssl-lib.js';
import type { ClientTarget } from '../../src/tls/context.js';
import { scriptCli } from '../common/cli.js';
import { median } from '../common/measure.js';
import { makeBenchCertificate } from './certificate.js';

const values = scriptCli(import.meta.url, {
  rounds: { type: 'string', default: '9', integer: [1, 1000] },
  connections: { type: 'string', default: '500', integer: [1, 1_000_000] },
  requests: { type: 'string', default: '20000', integer: [1, 10_000_000] },
  scenarios: { type: 'string', default: 'full,resumed,keepalive,large' },
  large: { type: 'string', default: '262144', integer: [1, 64 * 1024 * 1024] },
  'count-ffi': { type: 'boolean', default: false },
});

const work = mkdtempSync(join(tmpdir(), 'mr-tls-micro-'));
let cert: Buffer;
let key: Buffer;
try {
  const files = makeBenchCertificate(work);
  cert = readFileSync(files.cert);
  key = readFileSync(files.key);
} finally {
  rmSync(work, { recursive: true, force: true });
}

const REQUEST = Buffer.from('GET /plaintext HTTP/1.1\r\nHost: 127.0.0.1:18443\r\nConnection: close\r\n\r\n');
const RESPONSE = Buffer.from(
  'HTTP/1.1 200 OK\r\nServer: multireactor\r\nContent-Type: text/plain\r\nContent-Length: 13\r\nDate: Mon, 07 Dec 2026 04:41:33 GMT\r\n\r\nHello, World!',
);
const TARGET: ClientTarget = { servername: undefined, verifyHost: '127.0.0.1', sessionKey: '127.0.0.1:18443' };

const LARGE = Buffer.alloc(Number(values.large), 'x');

/** The server's application: answers each read with the response (as the HTTP stage would: write, then flush at the read's end). */
class Answer extends ChannelInboundHandler {
  constructor(private readonly response: Buffer = RESPONSE) {
    super();
  }
  override onRead(ctx: HandlerContext): void {
    ctx.write(this.response);
  }
  override onReadComplete(ctx: HandlerContext): void {
    ctx.flush();
  }
}
/** The client's application: counts answers. */
class Count extends ChannelInboundHandler {
  bytes = 0;
  override onRead(_ctx: HandlerContext, msg: unknown): void {
    this.bytes += (msg as Uint8Array).length;
  }
}

// ---- FFI call counting (wraps the bindings; the wrappers in openssl.ts look them up at each call) ----
const calls = new Map<string, number>();
let counting = false;
let serverSide = false;
if (values['count-ffi']) {
  const table = bindings as unknown as Record<string, (...a: unknown[]) => unknown>;
  for (const [name, fn] of Object.entries(table)) {
    table[name] = (...args: unknown[]) => {
      if (counting) {
        calls.set(name, (calls.get(name) ?? 0) + 1);
        if (serverSide) calls.set(`server:${name}`, (calls.get(`server:${name}`) ?? 0) + 1);
      }
      return fn(...args);
    };
  }
}

let serverUs = 0;
/**
 * Runs `fn` as server-side work: timed, and its FFI calls counted as the server's. The time is the
 * process's CPU time (getrusage, µs): on a machine busy with other work, wall time would count the
 * time other processes ran.
 */
function server<T>(fn: () => T): T {
  serverSide = true;
  const t0 = process.cpuUsage();
  try {
    return fn();
  } finally {
    const t = process.cpuUsage(t0);
    serverUs += t.user + t.system;
    serverSide = false;
  }
}

function moveBytes(from: EmbeddedChannel, to: EmbeddedChannel, toServer: boolean): number {
  const out = from.outbound.splice(0) as Uint8Array[];
  if (out.length === 0 || !to.isActive) return 0;
  // What one flush queued arrives as one read (the kernel would deliver one segment).
  const data = out.length === 1 ? Buffer.from(out[0] as Uint8Array) : Buffer.concat(out);
  if (toServer) server(() => to.writeInbound(data));
  else to.writeInbound(data);
  return data.length;
}

function pump(cl: EmbeddedChannel, sv: EmbeddedChannel): void {
  for (let i = 0; i < 20; i++) {
    if (moveBytes(cl, sv, true) + moveBytes(sv, cl, false) === 0) return;
  }
  throw new Error('pump: still moving');
}

const serverFull = TlsContext.server({ cert, key, alpn: ['http/1.1'], sessionTickets: false });
const serverTickets = TlsContext.server({ cert, key, alpn: ['http/1.1'], ticketKeys: Buffer.alloc(80, 7) });
const clientFull = TlsContext.client({ rejectUnauthorized: false, alpn: ['http/1.1'], sessionCache: false });
const clientResume = TlsContext.client({ rejectUnauthorized: false, alpn: ['http/1.1'] });

/** One connection: handshake, one request and its answer, close_notify from the server. */
function connection(serverCtx: TlsContext, clientCtx: TlsContext): void {
  const sv = server(
    () => new EmbeddedChannel(new Pipeline().addLast('tls', new TlsHandler(serverCtx)).addLast('app', new Answer())),
  );
  const count = new Count();
  const cl = new EmbeddedChannel(
    new Pipeline().addLast('tls', new TlsHandler(clientCtx, TARGET)).addLast('app', count),
  );
  pump(cl, sv);
  cl.writeAndFlush(REQUEST);
  pump(cl, sv);
  server(() => sv.close());
  pump(cl, sv);
  cl.close();
  if (count.bytes !== RESPONSE.length) throw new Error(`the client read ${count.bytes} bytes`);
}

/** µs of server time per connection over `n` connections. */
function handshakes(serverCtx: TlsContext, clientCtx: TlsContext, n: number): number {
  serverUs = 0;
  for (let i = 0; i < n; i++) connection(serverCtx, clientCtx);
  return serverUs / n;
}

/** µs of server time per request/answer on one open connection. */
function keepalive(n: number, response: Buffer = RESPONSE): number {
  const sv = new EmbeddedChannel(
    new Pipeline().addLast('tls', new TlsHandler(serverFull)).addLast('app', new Answer(response)),
  );
  const count = new Count();
  const cl = new EmbeddedChannel(
    new Pipeline().addLast('tls', new TlsHandler(clientFull, TARGET)).addLast('app', count),
  );
  pump(cl, sv);
  serverUs = 0;
  for (let i = 0; i < n; i++) {
    cl.writeAndFlush(REQUEST);
    pump(cl, sv);
  }
  const us = serverUs / n;
  sv.close();
  pump(cl, sv);
  cl.close();
  if (count.bytes !== response.length * n) throw new Error(`the client read ${count.bytes} bytes`);
  return us;
}

const N = Number(values.connections);
const scenarios = values.scenarios.split(',');
const run: Record<string, () => number> = {
  full: () => handshakes(serverFull, clientFull, N),
  resumed: () => handshakes(serverTickets, clientResume, N),
  keepalive: () => keepalive(Number(values.requests)),
  large: () => keepalive(Math.max(100, Math.round((Number(values.requests) * 2048) / LARGE.length)), LARGE),
};
for (const s of scenarios) if (run[s] === undefined) throw new Error(`unknown scenario ${s}`);

// Warm-up: the JIT tiers the per-connection code up over the first few thousand connections.
for (const s of scenarios) for (let i = 0; i < 6; i++) (run[s] as () => number)();

const results = new Map<string, number[]>();
for (let round = 0; round < Number(values.rounds); round++) {
  for (const s of scenarios) {
    const us = (run[s] as () => number)();
    results.set(s, [...(results.get(s) ?? []), us]);
  }
}
const resumedStats = serverTickets.snapshot();
if (scenarios.includes('resumed') && resumedStats.resumed < resumedStats.handshakes / 2) {
  throw new Error(`only ${resumedStats.resumed} of ${resumedStats.handshakes} handshakes resumed`);
}

const lines = [
  `Node ${process.version} (OpenSSL ${process.versions.openssl}); server side only, µs per connection (keepalive: per request), median of ${values.rounds} rounds`,
  '| scenario | µs (median) | min | max |',
  '|---|---:|---:|---:|',
];
for (const s of scenarios) {
  const r = results.get(s) as number[];
  lines.push(`| ${s} | ${median(r).toFixed(2)} | ${Math.min(...r).toFixed(2)} | ${Math.max(...r).toFixed(2)} |`);
}
console.log(lines.join('\n'));

if (values['count-ffi']) {
  const per = (fn: () => void, n: number, label: string) => {
    calls.clear();
    counting = true;
    fn();
    counting = false;
    const total = [...calls].filter(([k]) => !k.startsWith('server:')).reduce((a, [, v]) => a + v, 0);
    const srv = [...calls].filter(([k]) => k.startsWith('server:'));
    const srvTotal = srv.reduce((a, [, v]) => a + v, 0);
    console.log(
      `\n${label}: ${(srvTotal / n).toFixed(2)} OpenSSL calls per connection on the server (${(total / n).toFixed(2)} with the client's)`,
    );
    for (const [k, v] of srv.sort((a, b) => b[1] - a[1]))
      console.log(`  ${k.slice(7).padEnd(26)} ${(v / n).toFixed(2)}`);
  };
  if (scenarios.includes('full')) per(() => handshakes(serverFull, clientFull, 200), 200, 'full handshake');
  if (scenarios.includes('resumed')) per(() => handshakes(serverTickets, clientResume, 200), 200, 'resumed');
  if (scenarios.includes('keepalive')) per(() => keepalive(1000), 1000, 'keep-alive request');
  if (scenarios.includes('large'))
    per(() => keepalive(20, LARGE), 20, `keep-alive request, ${LARGE.length}-byte answer`);
}

for (const ctx of [serverFull, serverTickets, clientFull, clientResume]) ctx.close();
if (liveObjects.ssl !== 0) throw new Error(`${liveObjects.ssl} SSL objects were not freed`);
