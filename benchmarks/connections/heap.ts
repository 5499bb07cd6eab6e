/**
 * What an idle connection holds, object by object: a multireactor server (`workers: 0`) holding
 * N idle connections (--connections, default 10,000), each after one request, is asked for a
 * heap snapshot before and after them (after a forced GC each; server.ts --snapshot-dir). The
 * difference, divided by N, is what one connection costs: objects and self bytes per kind
 * (constructor, closure, or the container and the object holding it), and what the main objects
 * retain (their dominator subtrees). Beside it, VmRSS, V8's resident heap pages and ArrayBuffers
 * per connection, for what lies outside the JS heap.
 *
 *   npm run build
 *   node dist/benchmarks/connections/heap.js [--servers mr-http,mr-lf] [--connections 10000] [--top 30] [--keep DIR]
 *
 * Servers: mr-http (multireactor's `http()`), mr-lf (length-field frames, HeartbeatHandler,
 * echo). Snapshots are written to a temporary folder and removed, or kept in --keep DIR (a 10k
 * snapshot is ~100 MB; Chrome DevTools' Memory tab opens them).
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { scriptCli } from '../common/cli.js';
import {
  ClientRun,
  killEverything,
  killEverythingOnExit,
  log,
  type Mem,
  openAll,
  ServerRun,
  sleep,
  warmUp,
} from './harness.js';
import { FD_HEADROOM, fdLimit, SERVER_KINDS, type ServerKind } from './options.js';
import { HeapSnapshot } from './snapshot.js';

const values = scriptCli(import.meta.url, {
  servers: { type: 'string', default: 'mr-http,mr-lf' },
  connections: { type: 'string', default: '10000' },
  top: { type: 'string', default: '30' },
  port: { type: 'string', default: '18096' },
  keep: { type: 'string' },
});
const N = Number(values.connections);
const TOP = Number(values.top);
const PORT = Number(values.port);
const kinds = values.servers.split(',').map((s) => s.trim());
const bad =
  !Number.isInteger(N) || N < 1 || N > fdLimit() - FD_HEADROOM
    ? `--connections must be an integer 1–${fdLimit() - FD_HEADROOM}`
    : !Number.isInteger(TOP) || TOP < 1
      ? '--top must be a positive integer'
      : !Number.isInteger(PORT) || PORT < 1 || PORT > 65535
        ? '--port must be 1–65535'
        : kinds.find((k) => k !== 'mr-http' && k !== 'mr-lf') !== undefined
          ? '--servers: mr-http and/or mr-lf (the snapshot is of multireactor)'
          : undefined;
if (bad !== undefined) {
  process.stderr.write(`${bad}\n`);
  process.exit(2);
}
killEverythingOnExit();

const config = { port: PORT, ping: 30, idleTimeout: 90, uws: undefined };

/** The classes (and their handlers) whose retained size is reported: the per-connection roots. */
const ROOTS = [
  'Connection',
  'Pipeline',
  'HandlerContext',
  'OutboundQueue',
  'HttpRequestDecoder',
  'HttpServerHandler',
  'LengthFieldFrameDecoder',
  'LengthFieldPrepender',
  'HeartbeatHandler',
  'Echo',
  'WheelTimeout',
];

async function snapshots(kind: ServerKind, dir: string): Promise<{ before: Mem; after: Mem; held: number }> {
  const protocol = SERVER_KINDS[kind].protocol;
  const server = await ServerRun.start(kind, 0, N + 1000, config, ['--snapshot-dir', dir]);
  const client = new ClientRun();
  try {
    const pid = server.serving[0] as number;
    await warmUp(PORT, protocol, Math.min(200, N));
    await sleep(500);
    const before = await server.memory(pid);
    const opened = await openAll(PORT, [client], [['127.0.0.2']], protocol, N, 0, 0);
    await sleep(300);
    const after = await server.memory(pid);
    return { before, after, held: opened.ok };
  } finally {
    await client.close();
    await server.stop();
  }
}

const num = (x: number, digits = 2) => x.toLocaleString('en-US', { maximumFractionDigits: digits });

function analyse(kind: ServerKind, before: Mem, after: Mem, held: number): string {
  const lines: string[] = [];
  const per = (f: (m: Mem) => number) => (f(after) - f(before)) / held;
  lines.push(
    `### ${SERVER_KINDS[kind].label}: ${held.toLocaleString('en-US')} idle connections`,
    '',
    // Not VmRSS: writing the first snapshot grows the process by tens of MiB (run.ts measures RSS).
    `Per connection, after a GC: JS heap used ${num(per((m) => m.heapUsed))} B; ArrayBuffers ${num(per((m) => m.arrayBuffers))} B; external ${num(per((m) => m.external))} B.`,
    '',
  );
  const a = new HeapSnapshot(before.snapshot as string);
  const ca = a.census();
  const b = new HeapSnapshot(after.snapshot as string);
  const cb = b.census();
  const rows: { key: string; count: number; bytes: number }[] = [];
  for (const [key, v] of cb) {
    const w = ca.get(key) ?? { count: 0, bytes: 0 };
    rows.push({ key, count: (v.count - w.count) / held, bytes: (v.bytes - w.bytes) / held });
  }
  for (const [key, w] of ca) if (!cb.has(key)) rows.push({ key, count: -w.count / held, bytes: -w.bytes / held });
  const total = rows.reduce((s, r) => s + r.bytes, 0);
  rows.sort((x, y) => y.bytes - x.bytes);
  lines.push(
    `Snapshot difference: ${num(total, 0)} B of JS heap per connection (self sizes of every object reachable). The largest items:`,
    '',
    '| what (constructor; closure; or holder.edge (container)) | objects per connection | bytes per connection | share |',
    '|---|---:|---:|---:|',
  );
  for (const r of rows.slice(0, TOP)) {
    lines.push(`| \`${r.key}\` | ${num(r.count)} | ${num(r.bytes, 0)} | ${((100 * r.bytes) / total).toFixed(1)}% |`);
  }
  const rest = rows.slice(TOP).reduce((s, r) => s + r.bytes, 0);
  lines.push(
    `| the rest (${rows.length - TOP} kinds) | | ${num(rest, 0)} | ${((100 * rest) / total).toFixed(1)}% |`,
    '',
  );
  lines.push(
    'Retained per object (its dominator subtree: what would be freed with it alone) in the second snapshot, averaged over the objects of each class:',
    '',
    '| class | objects per connection | self bytes | retained bytes |',
    '|---|---:|---:|---:|',
  );
  for (const cls of ROOTS) {
    const nodes = b.nodesOf(cls);
    const added = nodes.length - a.nodesOf(cls).length;
    if (nodes.length === 0 || added <= 0) continue;
    const self = nodes.reduce((s, i) => s + (b.selfSize[i] as number), 0) / nodes.length;
    const ret = nodes.reduce((s, i) => s + (b.retained[i] as number), 0) / nodes.length;
    lines.push(`| \`${cls}\` | ${num(added / held)} | ${num(self, 0)} | ${num(ret, 0)} |`);
  }
  return lines.join('\n');
}

const out: string[] = [];
try {
  for (const kind of kinds as ServerKind[]) {
    const dir = values.keep ?? mkdtempSync(join(tmpdir(), 'mr-heap-'));
    mkdirSync(dir, { recursive: true });
    try {
      log(`${kind}: ${N} connections, two heap snapshots in ${dir}`);
      const { before, after, held } = await snapshots(kind, dir);
      log(`${kind}: analysing`);
      out.push(analyse(kind, before, after, held));
    } finally {
      if (values.keep === undefined) rmSync(dir, { recursive: true, force: true });
    }
  }
} finally {
  killEverything();
}
console.log(out.join('\n\n'));
