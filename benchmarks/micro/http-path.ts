/**
 * The per-request cost of the HTTP path without sockets: request bytes through the real decoder,
 * server stage, a handler and the response encoder on an EmbeddedChannel, one request per read
 * (keep-alive) and 16 per read (pipelining). Reports ns per request (median of the rounds) and
 * bytes allocated per request (CPU time of the process: user + system, from `process.cpuUsage()`; V8's new space grows by the bytes between scavenges: rounds in which a scavenge ran are left
 * out of that figure).
 *
 * Scenarios: wrk's plaintext request, the same head every time (`identical`); browser-like heads
 * that differ on every request — a query string, user agent, accept headers, a cookie and a
 * request id that change, ~500–600 bytes, recorded once from a seeded generator (`varied`, the
 * benchmark's `varied-heads.lua` sends the same kind); the TechEmpower JSON test (`json`:
 * `{message: 'Hello, World!'}` serialised per request); a POST with a 1 KiB JSON body parsed and
 * answered (`post`).
 *
 *   node dist/benchmarks/micro/http-path.js [--rounds 15] [--scenarios identical,varied,json,post]
 *        [--compare /path/to/other/checkout]   # A/B: that checkout's dist/ in the same process, interleaved
 *
 * With `--compare`, each round runs both builds one after the other (which first alternates), so
 * that the machine's load changes hit both alike; the table gives both medians and their ratio.
 * The other build needs no `res.json`/`req.json`: the handlers here use only what every build has.
 */
import { Buffer } from 'node:buffer';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { getHeapSpaceStatistics } from 'node:v8';
import { scriptCli } from '../common/cli.js';
import { median } from '../common/measure.js';
import { browserHeads, JSON_BODY_1K } from '../http/requests.js';

const values = scriptCli(import.meta.url, {
  rounds: { type: 'string', default: '15' },
  scenarios: { type: 'string', default: 'identical,varied,json,post' },
  compare: { type: 'string' },
});

interface Build {
  readonly label: string;
  readonly EmbeddedChannel: new (
    factory: () => unknown,
  ) => {
    writeInbound(b: Buffer): void;
    outbound: unknown[];
  };
  readonly http: (handler: (req: MicroRequest, res: MicroResponse) => void) => () => unknown;
}
interface MicroRequest {
  readonly path: string;
  readonly body: Buffer;
}
interface MicroResponse {
  setHeader(name: string, value: string): unknown;
  end(body?: string | Uint8Array): void;
}

async function load(label: string, root: string): Promise<Build> {
  const index = (await import(pathToFileURL(resolve(root, 'dist/src/index.js')).href)) as Record<string, unknown>;
  return { label, EmbeddedChannel: index.EmbeddedChannel, http: index.http } as unknown as Build;
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
  readonly handler: (req: MicroRequest, res: MicroResponse) => void;
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
};

function newSpaceUsed(): number {
  for (const s of getHeapSpaceStatistics()) if (s.space_name === 'new_space') return s.space_used_size;
  return 0;
}

/** One round: ~`budget` ms of requests; ns per request and bytes allocated per request (NaN if a scavenge ran). */
function round(build: Build, sc: Scenario, budget: number): { ns: number; bytes: number } {
  const ch = new build.EmbeddedChannel(build.http(sc.handler));
  const reads = sc.reads;
  // Warm: every read once.
  for (const r of reads) ch.writeInbound(r);
  ch.outbound.length = 0;
  let n = 0;
  // CPU time, not wall time: on a shared machine the process is descheduled for a good part of
  // the wall clock, and that is no cost of the path.
  const c0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  const deadline = t0 + BigInt(budget * 1e6);
  let t = t0;
  let i = 0;
  while (t < deadline) {
    for (let k = 0; k < 64; k++) {
      ch.writeInbound(reads[i] as Buffer);
      ch.outbound.length = 0;
      i = i + 1 === reads.length ? 0 : i + 1;
    }
    n += 64;
    t = process.hrtime.bigint();
  }
  const c = process.cpuUsage(c0);
  const ns = ((c.user + c.system) * 1000) / (n * sc.perRead);
  // Allocation: a short batch between two readings of new space (discarded if it shrank).
  const before = newSpaceUsed();
  for (let k = 0; k < 64; k++) {
    ch.writeInbound(reads[i] as Buffer);
    ch.outbound.length = 0;
    i = i + 1 === reads.length ? 0 : i + 1;
  }
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
        const m = round(builds[k] as Build, sc, 200);
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
    const ratio = builds.length > 1 ? ` | ${(median(ns[0] as number[]) / median(ns[1] as number[])).toFixed(2)}×` : '';
    rows.push(`| ${sc.label} | ${cells.join(' | ')}${ratio} |`);
    process.stderr.write(`${rows[rows.length - 1]}\n`);
  }
}
console.log(`HTTP path without sockets — Node ${process.version}, ${rounds - 1} rounds of 200 ms (median)`);
console.log(
  `| scenario | ${builds.map((b) => `${b.label}: per request`).join(' | ')}${builds.length > 1 ? ' | ratio' : ''} |`,
);
console.log(`|---|${builds.map(() => '---:').join('|')}${builds.length > 1 ? '|---:' : ''}|`);
console.log(rows.join('\n'));
