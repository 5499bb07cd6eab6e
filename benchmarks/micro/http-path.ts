/**
 * The per-request cost of the HTTP path without sockets: request bytes through the real decoder,
 * server stage, a handler and the response encoder on an EmbeddedChannel, one request per read
 * (keep-alive) and 16 per read (pipelining). Reports ns per request — CPU time of the process
 * (user + system, `process.cpuUsage()`), median of the rounds — and bytes allocated per request
 * (V8's new space grows by the bytes between scavenges: rounds in which a scavenge ran are left
 * out of that figure). The reads reach the channel as the worker's loop hands them over: copied
 * into one read buffer, as a view of it.
 *
 * Scenarios: wrk's plaintext request, the same head every time (`identical`); browser-like heads
 * that differ on every request — a query string, user agent, accept headers, a cookie and a
 * request id that change, ~500–600 bytes, recorded once from a seeded generator (`varied`, the
 * benchmark's `varied-heads.lua` sends the same kind); the TechEmpower JSON test (`json`:
 * `{message: 'Hello, World!'}` serialised per request); a POST with a 1 KiB JSON body parsed and
 * answered (`post`) — these with plain handlers; and `app`: the varied heads, JSON and POST
 * through what the wrk benchmark runs (benchmarks/http/bench-app.ts: `router()`, `res.json()`,
 * `await req.json()`).
 *
 *   node dist/benchmarks/micro/http-path.js [--rounds 15] [--scenarios identical,varied,json,post,app]
 *        [--compare /path/to/other/checkout]   # A/B: that checkout's dist/ in the same process, interleaved
 *
 * With `--compare`, each round runs both builds one after the other (which first alternates), so
 * that the machine's load changes hit both alike; the table gives both medians and the median of
 * the rounds' ratios (this build / the other) with its quartiles. The other build needs `router()`,
 * `res.json()` and `req.json()` for the `app` scenarios only.
 */
import { Buffer } from 'node:buffer';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { getHeapSpaceStatistics } from 'node:v8';
import { bufferView } from '../../src/common/buffer-view.js';
import { scriptCli } from '../common/cli.js';
import { median } from '../common/measure.js';
import { browserHeads, JSON_BODY_1K } from '../http/requests.js';

const values = scriptCli(import.meta.url, {
  rounds: { type: 'string', default: '15' },
  scenarios: { type: 'string', default: 'identical,varied,json,post,app' },
  compare: { type: 'string' },
});

interface Build {
  readonly label: string;
  readonly EmbeddedChannel: new (factory: () => unknown) => Channel;
  readonly http: (handler: MicroHandler | MicroRouter) => () => unknown;
  readonly router: () => MicroRouter;
}
interface Channel {
  writeInbound(b: Buffer): void;
  outbound: unknown[];
}
interface MicroRequest {
  readonly path: string;
  readonly body: Buffer;
  json<T>(): Promise<T>;
}
interface MicroResponse {
  setHeader(name: string, value: string): unknown;
  end(body?: string | Uint8Array): void;
  json(value: unknown): void;
}
type MicroHandler = (req: MicroRequest, res: MicroResponse) => unknown;
interface MicroRouter {
  get(path: string, handler: MicroHandler): MicroRouter;
  post(path: string, handler: MicroHandler): MicroRouter;
}

async function load(label: string, root: string): Promise<Build> {
  const index = (await import(pathToFileURL(resolve(root, 'dist/src/index.js')).href)) as Record<string, unknown>;
  return { label, EmbeddedChannel: index.EmbeddedChannel, http: index.http, router: index.router } as unknown as Build;
}

const here = resolve(new URL('.', import.meta.url).pathname, '../../..');
const builds = [await load('this build', here)];
if (values.compare !== undefined) builds.push(await load(values.compare, values.compare));

const HELLO = Buffer.from('Hello, World!');

interface Scenario {
  readonly label: string;
  /** The reads fed to the channel, in turn; each holds `perRead` requests. */
  readonly reads: readonly Buffer[];
  readonly perRead: number;
  /** The handler, or (`app` scenarios) the build's router() serving benchmarks/http/bench-app.ts's routes. */
  readonly handler: MicroHandler | 'bench-app';
  /** The answers come from promises (req.json()): each read waits for its answers. */
  readonly async?: boolean;
}

const plaintext = (req: MicroRequest, res: MicroResponse) => {
  if (req.path === '/plaintext' || req.path.startsWith('/api/')) {
    res.setHeader('Server', 'multireactor');
    res.setHeader('Content-Type', 'text/plain');
    res.end(HELLO);
  } else res.end();
};
const jsonHandler = (_req: MicroRequest, res: MicroResponse) => {
  res.setHeader('Server', 'multireactor');
  res.setHeader('Content-Type', 'application/json');
  res.end(JSON.stringify({ message: 'Hello, World!' }));
};
const postHandler = (req: MicroRequest, res: MicroResponse) => {
  const value = JSON.parse(req.body.toString('utf8')) as { items: unknown[] };
  res.setHeader('Server', 'multireactor');
  res.setHeader('Content-Type', 'application/json');
  res.end(JSON.stringify({ received: value.items.length }));
};

/** What benchmarks/http/bench-app.ts serves under wrk, on the build's router(). */
const benchApp = (build: Build): MicroRouter => {
  const app = build.router();
  const text = (_req: MicroRequest, res: MicroResponse) => {
    res.setHeader('Server', 'multireactor');
    res.setHeader('Content-Type', 'text/plain');
    res.end(HELLO);
  };
  app.get('/plaintext', text);
  app.get('/api/*', text);
  app.get('/json', (_req, res) => {
    res.setHeader('Server', 'multireactor');
    res.json({ message: 'Hello, World!' });
  });
  app.post('/echo', async (req, res) => {
    const order = await req.json<{ items: unknown[] }>();
    res.setHeader('Server', 'multireactor');
    res.json({ items: order.items.length });
  });
  return app;
};

const WRK = Buffer.from('GET /plaintext HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n', 'latin1');
const varied = browserHeads(4096, 0x5eed).map((h) => Buffer.from(h, 'latin1'));
const groups = (list: readonly Buffer[], n: number) =>
  Array.from({ length: Math.floor(list.length / n) }, (_, i) => Buffer.concat(list.slice(i * n, i * n + n)));
const JSON_GET = Buffer.from('GET /json HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n', 'latin1');
const POST = Buffer.concat([
  Buffer.from(
    `POST /echo HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nContent-Type: application/json\r\nContent-Length: ${JSON_BODY_1K.length}\r\n\r\n`,
    'latin1',
  ),
  JSON_BODY_1K,
]);

const SCENARIOS: Record<string, Scenario[]> = {
  identical: [
    { label: 'identical heads, 1 per read', reads: [WRK], perRead: 1, handler: plaintext },
    { label: 'identical heads, 16 per read', reads: groups(Array(16).fill(WRK), 16), perRead: 16, handler: plaintext },
  ],
  varied: [
    { label: 'varied heads, 1 per read', reads: varied, perRead: 1, handler: plaintext },
    { label: 'varied heads, 16 per read', reads: groups(varied, 16), perRead: 16, handler: plaintext },
  ],
  json: [{ label: 'JSON (TechEmpower), 1 per read', reads: [JSON_GET], perRead: 1, handler: jsonHandler }],
  post: [{ label: 'POST 1 KiB JSON, 1 per read', reads: [POST], perRead: 1, handler: postHandler }],
  app: [
    { label: 'bench-app: varied heads, 1 per read', reads: varied, perRead: 1, handler: 'bench-app' },
    { label: 'bench-app: varied heads, 16 per read', reads: groups(varied, 16), perRead: 16, handler: 'bench-app' },
    { label: 'bench-app: JSON, 1 per read', reads: [JSON_GET], perRead: 1, handler: 'bench-app' },
    { label: 'bench-app: POST 1 KiB JSON, 1 per read', reads: [POST], perRead: 1, handler: 'bench-app', async: true },
  ],
};

function newSpaceUsed(): number {
  for (const s of getHeapSpaceStatistics()) if (s.space_name === 'new_space') return s.space_used_size;
  return 0;
}

/**
 * The reads reach the channel as the worker's loop hands them to a pipeline: copied into one read
 * buffer (as read(2) would), as a view of its first `n` bytes — the same view again when the size
 * repeats, a new one otherwise (src/worker/loop.ts `readView`). Decoders that keep something per
 * memory (the head scanner's DataView) then see what they see in a server.
 */
const readBuffer = Buffer.allocUnsafeSlow(64 * 1024);
const readMemory = readBuffer.buffer;
let lastView = bufferView(readMemory, 0, 0);
function readView(bytes: Buffer): Buffer {
  readBuffer.set(bytes, 0);
  if (lastView.length !== bytes.length) lastView = bufferView(readMemory, 0, bytes.length);
  return lastView;
}

/** Feeds `count` reads from `reads[i]` on; returns the next index. */
async function feed(ch: Channel, sc: Scenario, i: number, count: number): Promise<number> {
  const reads = sc.reads;
  if (sc.async === true) {
    for (let k = 0; k < count; k++) {
      ch.writeInbound(readView(reads[i] as Buffer));
      // The answer comes from a promise chain (req.json()): let it run to the response.
      for (let spin = 0; ch.outbound.length === 0; spin++) {
        if (spin > 1000) throw new Error(`${sc.label}: no answer`);
        await null;
      }
      ch.outbound.length = 0;
      i = i + 1 === reads.length ? 0 : i + 1;
    }
    return i;
  }
  for (let k = 0; k < count; k++) {
    ch.writeInbound(readView(reads[i] as Buffer));
    ch.outbound.length = 0;
    i = i + 1 === reads.length ? 0 : i + 1;
  }
  return i;
}

/** One round: ~`budget` ms of requests; ns per request and bytes allocated per request (NaN if a scavenge ran). */
async function round(build: Build, sc: Scenario, budget: number): Promise<{ ns: number; bytes: number }> {
  const ch = new build.EmbeddedChannel(
    build.http(sc.handler === 'bench-app' ? benchApp(build) : sc.handler),
  ) as Channel;
  // Warm: every read once.
  let i = await feed(ch, sc, 0, sc.reads.length);
  let n = 0;
  // CPU time, not wall time: on a shared machine the process is descheduled for a good part of
  // the wall clock, and that is no cost of the path.
  const c0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  const deadline = t0 + BigInt(budget * 1e6);
  let t = t0;
  while (t < deadline) {
    i = await feed(ch, sc, i, 64);
    n += 64;
    t = process.hrtime.bigint();
  }
  const c = process.cpuUsage(c0);
  const ns = ((c.user + c.system) * 1000) / (n * sc.perRead);
  // Allocation: a short batch between two readings of new space (discarded if it shrank).
  const before = newSpaceUsed();
  await feed(ch, sc, i, 64);
  const after = newSpaceUsed();
  const bytes = after >= before ? (after - before) / (64 * sc.perRead) : Number.NaN;
  return { ns, bytes };
}

const rounds = Number(values.rounds);
const rows: string[] = [];
for (const key of values.scenarios.split(',')) {
  const list = SCENARIOS[key];
  if (list === undefined) throw new Error(`unknown scenario ${key}`);
  for (const sc of list) {
    const ns = builds.map(() => [] as number[]);
    const bytes = builds.map(() => [] as number[]);
    for (let r = 0; r < rounds; r++) {
      const order = r % 2 === 0 ? builds.map((_, k) => k) : builds.map((_, k) => builds.length - 1 - k);
      for (const k of order) {
        const m = await round(builds[k] as Build, sc, 200);
        if (r > 0) {
          (ns[k] as number[]).push(m.ns);
          if (!Number.isNaN(m.bytes)) (bytes[k] as number[]).push(m.bytes);
        }
      }
    }
    const cells = builds.map((_, k) => {
      const b = bytes[k] as number[];
      return `${median(ns[k] as number[]).toFixed(0)} ns, ${b.length > 0 ? median(b).toFixed(0) : '?'} B`;
    });
    // The ratio of each round's pair (the two builds ran back to back), then their median and
    // quartiles: steadier than the ratio of the medians when the machine's load drifts.
    let ratio = '';
    if (builds.length > 1) {
      const a = ns[0] as number[];
      const b = ns[1] as number[];
      const pairs = a.map((x, i) => x / (b[i] as number)).sort((x, y) => x - y);
      const q = (f: number) => (pairs[Math.min(pairs.length - 1, Math.floor(f * pairs.length))] as number).toFixed(2);
      ratio = ` | ${median(pairs).toFixed(2)}× (${q(0.25)}–${q(0.75)})`;
    }
    rows.push(`| ${sc.label} | ${cells.join(' | ')}${ratio} |`);
    process.stderr.write(`${rows[rows.length - 1]}\n`);
  }
}
console.log(`HTTP path without sockets — Node ${process.version}, ${rounds - 1} rounds of 200 ms (median)`);
console.log(
  `| scenario | ${builds.map((b) => `${b.label}: per request`).join(' | ')}${builds.length > 1 ? ' | ratio (quartiles)' : ''} |`,
);
console.log(`|---|${builds.map(() => '---:').join('|')}${builds.length > 1 ? '|---:' : ''}|`);
console.log(rows.join('\n'));
