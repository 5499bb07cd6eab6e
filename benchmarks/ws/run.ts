/**
 * WebSocket benchmark: multireactor against `ws` (under node:cluster) and uWebSockets.js, side by
 * side, with the same load generator for all (`multireactor-load --ws`, benchmarks/ws/fanout.ts):
 *
 * - echo: 32 B and 4 KiB binary messages on 50 connections (4 in flight each) and on 1,000
 *   (1 in flight), 2 server processes each (bench-ref/ws-echo.cjs, bench-ref/uws-ws-echo.cjs,
 *   benchmarks/ws/server.ts --mode echo). Messages/s and µs of server CPU per echoed message
 *   (utime + stime of the server's process tree from /proc, over the run, divided by messages).
 * - fan-out: 1,000 members of one broadcast (every message to every connection), one server
 *   process each (a broadcast reaches the connections of its own process), member 0 publishing
 *   32 B messages 4 at a time: deliveries/s and µs of server CPU per delivery.
 * - idle: 10,000 WebSockets that do nothing, one server process each, RSS per connection (every
 *   server process preloads gc-preload.cjs: a collection a second, for all alike; RSS is read once
 *   it has settled, before and after).
 *
 * Servers run interleaved (A B C A B C …), `--rounds` times; the table gives medians. The machine
 * is shared: figures are preliminary — re-run in a quiet period. References are installed outside
 * the repository (bench-ref/README.md): `--modules` is a node_modules holding `ws` and
 * `@trufflesuite/uws-js-unofficial`; a server whose package is missing is skipped, named.
 *
 *   npm run bench:ws -- --rounds 3 --duration 5 --modules /tmp/mr-bench-ws/node_modules
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { cpus, release } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { scriptCli } from '../common/cli.js';
import { assertPortFree, cpuSeconds, median, stopTree, tree, waitForPort } from '../common/measure.js';

const here = dirname(fileURLToPath(import.meta.url));
const dist = join(here, '..', '..');
const repo = join(dist, '..');

const values = scriptCli(import.meta.url, {
  rounds: { type: 'string', default: '3' },
  duration: { type: 'string', default: '5' },
  port: { type: 'string', default: '9111' },
  servers: { type: 'string', default: 'multireactor,ws,uws' },
  scenarios: { type: 'string', default: 'echo-32-50,echo-4096-50,echo-32-1000,echo-4096-1000,fanout,idle' },
  modules: { type: 'string', default: '/tmp/mr-bench-ws/node_modules' },
  'bench-ref': { type: 'string', default: '/work/shared/bench-ref' },
  'idle-count': { type: 'string', default: '10000' },
  members: { type: 'string', default: '1000' },
  json: { type: 'boolean', default: false },
  /** Another checkout (its root, built): its multireactor runs as one more server, `compare`, for A/B runs. */
  compare: { type: 'string', default: '' },
});

const port = Number(values.port);
const duration = Number(values.duration);
const benchRef = values['bench-ref'];
const modules = values.modules;
const preload = join(repo, 'benchmarks', 'ws', 'gc-preload.cjs');

type Kind = 'echo' | 'broadcast';
interface ServerSpec {
  readonly key: string;
  readonly label: string;
  /** Command (after `node`) and environment, for `kind`, with `workers` processes. */
  command(kind: Kind, workers: number, memory: boolean): { args: string[]; env: NodeJS.ProcessEnv } | string;
}

const nodePath = (dir: string) => ({ ...process.env, NODE_PATH: dir, PORT: String(port) });
const gcArgs = (memory: boolean) => (memory ? ['--expose-gc', '-r', preload] : []);
const wsModules = existsSync(join(modules, 'ws')) ? modules : join(repo, 'node_modules');
const hasUws = existsSync(join(modules, '@trufflesuite', 'uws-js-unofficial'));

/** Our server script (this checkout's, or `--compare`'s), in `kind` mode; 0 workers (one process) for memory. */
const ourServer =
  (script: string): ServerSpec['command'] =>
  (kind, workers, memory) => ({
    args: [
      ...gcArgs(memory),
      script,
      '--mode',
      kind,
      '--port',
      String(port),
      '--workers',
      String(memory ? 0 : workers),
    ],
    env: process.env,
  });

const SERVERS: ServerSpec[] = [
  {
    key: 'multireactor',
    label: 'multireactor',
    command: ourServer(join(dist, 'benchmarks', 'ws', 'server.js')),
  },
  {
    key: 'ws',
    label: 'ws (node:cluster)',
    command: (kind, workers, memory) => ({
      args: [
        ...gcArgs(memory),
        kind === 'echo' ? join(benchRef, 'ws-echo.cjs') : join(repo, 'benchmarks', 'ws', 'ws-broadcast.cjs'),
      ],
      env: { ...nodePath(wsModules), WORKERS: String(workers) },
    }),
  },
  {
    key: 'uws',
    label: 'uWebSockets.js',
    command: (kind, workers, memory) =>
      hasUws
        ? {
            args: [
              ...gcArgs(memory),
              kind === 'echo' ? join(benchRef, 'uws-ws-echo.cjs') : join(repo, 'benchmarks', 'ws', 'uws-broadcast.cjs'),
            ],
            env: { ...nodePath(modules), WORKERS: String(workers) },
          }
        : `@trufflesuite/uws-js-unofficial is not in ${modules} (see bench-ref/README.md)`,
  },
];

if (values.compare !== '') {
  const other = join(values.compare, 'dist', 'benchmarks', 'ws', 'server.js');
  if (!existsSync(other)) throw new Error(`--compare: ${other} not found (build that checkout first)`);
  SERVERS.push({
    key: 'compare',
    label: `multireactor (${values.compare})`,
    command: ourServer(other),
  });
}
const servers = [...values.servers.split(','), ...(values.compare !== '' ? ['compare'] : [])].map((k) => {
  const s = SERVERS.find((x) => x.key === k);
  if (s === undefined) throw new Error(`unknown server ${k}; known: ${SERVERS.map((x) => x.key).join(', ')}`);
  return s;
});

async function start(spec: ServerSpec, kind: Kind, workers: number, memory = false): Promise<ChildProcess | string> {
  const cmd = spec.command(kind, workers, memory);
  if (typeof cmd === 'string') return cmd;
  await assertPortFree(port);
  const child = spawn(process.execPath, cmd.args, { env: cmd.env, stdio: ['ignore', 'ignore', 'inherit'] });
  await waitForPort(port);
  // Every process of the tree listening (cluster workers, reuseport slots) before the load starts.
  await new Promise((r) => setTimeout(r, 700));
  return child;
}

/** Runs a node script to its end and returns its stdout. */
function run(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    child.once('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`${args[0]} exited ${code}: ${out}`))));
  });
}

function rss(pids: readonly number[]): number {
  let kib = 0;
  for (const pid of pids) {
    try {
      const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
      kib += Number(m?.[1] ?? 0);
    } catch {
      // gone
    }
  }
  return kib * 1024;
}

/**
 * RSS of `pids` once it stopped moving: after a burst of connections V8 gives freed heap pages back
 * only after several seconds of quiet (its memory reducer; measured here: RSS stays at its peak for
 * ~5 s, then drops), so a sample taken too early counts garbage. Waits 10 s, then samples every
 * second until three in a row agree within 1% (40 s at most). The same for every server.
 */
async function settledRss(pids: () => readonly number[]): Promise<number> {
  await new Promise((r) => setTimeout(r, 10_000));
  let last = rss(pids());
  let steady = 0;
  for (let i = 0; i < 40 && steady < 3; i++) {
    await new Promise((r) => setTimeout(r, 1000));
    const now = rss(pids());
    steady = Math.abs(now - last) <= last * 0.01 ? steady + 1 : 0;
    last = now;
  }
  return last;
}

interface Sample {
  readonly rate: number;
  readonly cpuUs: number;
}

async function echo(spec: ServerSpec, size: number, connections: number): Promise<Sample | string> {
  const child = await start(spec, 'echo', 2);
  if (typeof child === 'string') return child;
  try {
    const pids = tree(child.pid as number);
    const before = cpuSeconds(pids);
    const out = await run([
      join(dist, 'src', 'bin', 'load.js'),
      '--ws',
      '--url',
      `ws://127.0.0.1:${port}/`,
      '-c',
      String(connections),
      '-d',
      `${duration}s`,
      '--pipeline',
      connections <= 50 ? '4' : '1',
      '--size',
      String(size),
      '--timeout',
      '10s',
      '--json',
    ]);
    const cpu = cpuSeconds(pids) - before;
    const r = JSON.parse(out) as { requests: number; requestsPerSecond: number; errors: Record<string, number> };
    const errors = Object.values(r.errors).reduce((a, b) => a + b, 0);
    if (errors > 0) console.error(`  ${spec.key}: ${errors} errors`, r.errors);
    return { rate: r.requestsPerSecond, cpuUs: (cpu / r.requests) * 1e6 };
  } finally {
    await stopTree(child);
  }
}

async function fanout(spec: ServerSpec): Promise<Sample | string> {
  const child = await start(spec, 'broadcast', 1);
  if (typeof child === 'string') return child;
  try {
    const pids = tree(child.pid as number);
    // The members connect first (not measured); `ready` marks the start of the publishing.
    let before = 0;
    let after = 0;
    const out = await new Promise<string>((resolve, reject) => {
      const c = spawn(
        process.execPath,
        [
          join(dist, 'benchmarks', 'ws', 'fanout.js'),
          '--url',
          `ws://127.0.0.1:${port}/`,
          '--members',
          values.members,
          '--duration',
          String(duration),
        ],
        { stdio: ['ignore', 'pipe', 'inherit'] },
      );
      let text = '';
      c.stdout.on('data', (d: Buffer) => {
        if (!text.includes('ready') && d.toString().includes('ready')) before = cpuSeconds(pids);
        // The result line comes before the members are closed: the teardown is not counted.
        if (!text.includes('{') && d.toString().includes('{')) after = cpuSeconds(pids);
        text += d.toString();
      });
      c.once('exit', (code) => (code === 0 ? resolve(text) : reject(new Error(`fanout exited ${code}: ${text}`))));
    });
    const last = out.trim().split('\n').pop() as string;
    const r = JSON.parse(last) as { deliveries: number; deliveriesPerSecond: number; seconds: number };
    const cpu = after - before;
    return { rate: r.deliveriesPerSecond, cpuUs: (cpu / r.deliveries) * 1e6 };
  } finally {
    await stopTree(child);
  }
}

async function idle(spec: ServerSpec): Promise<Sample | string> {
  const child = await start(spec, 'echo', 1, true);
  if (typeof child === 'string') return child;
  const count = Number(values['idle-count']);
  try {
    const before = await settledRss(() => tree(child.pid as number));
    const clients = spawn(
      process.execPath,
      [join(dist, 'benchmarks', 'ws', 'idle-clients.js'), '--port', String(port), '--count', String(count)],
      { stdio: ['pipe', 'pipe', 'inherit'] },
    );
    let out = '';
    await new Promise<void>((resolve, reject) => {
      clients.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        if (/open \d+/.test(out)) resolve();
      });
      clients.once('exit', () => reject(new Error(`idle clients ended: ${out}`)));
    });
    const opened = Number(/open (\d+)/.exec(out)?.[1]);
    const after = await settledRss(() => tree(child.pid as number));
    clients.stdin.end();
    await new Promise((r) => clients.once('exit', r));
    if (opened !== count) console.error(`  ${spec.key}: only ${opened} of ${count} upgraded`);
    return { rate: opened, cpuUs: (after - before) / opened };
  } finally {
    await stopTree(child);
  }
}

const SCENARIOS: Record<
  string,
  { title: string; unit: [string, string]; run: (s: ServerSpec) => Promise<Sample | string> }
> = {
  'echo-32-50': { title: 'echo 32 B, 50 conn × 4', unit: ['msg/s', 'µs CPU/msg'], run: (s) => echo(s, 32, 50) },
  'echo-4096-50': { title: 'echo 4 KiB, 50 conn × 4', unit: ['msg/s', 'µs CPU/msg'], run: (s) => echo(s, 4096, 50) },
  'echo-32-1000': { title: 'echo 32 B, 1,000 conn × 1', unit: ['msg/s', 'µs CPU/msg'], run: (s) => echo(s, 32, 1000) },
  'echo-4096-1000': {
    title: 'echo 4 KiB, 1,000 conn × 1',
    unit: ['msg/s', 'µs CPU/msg'],
    run: (s) => echo(s, 4096, 1000),
  },
  fanout: { title: 'fan-out 32 B to 1,000 members', unit: ['deliveries/s', 'µs CPU/delivery'], run: fanout },
  idle: { title: 'idle WebSockets (10,000)', unit: ['connections', 'bytes RSS/conn'], run: idle },
};

const results: Record<string, Record<string, Sample[]>> = {};
const skipped = new Map<string, string>();
for (const name of values.scenarios.split(',')) {
  const sc = SCENARIOS[name];
  if (sc === undefined) throw new Error(`unknown scenario ${name}; known: ${Object.keys(SCENARIOS).join(', ')}`);
  const rounds = name === 'idle' ? 1 : Number(values.rounds);
  results[name] = {};
  for (let r = 0; r < rounds; r++) {
    for (const s of servers) {
      const got = await sc.run(s);
      if (typeof got === 'string') {
        skipped.set(s.key, got);
        continue;
      }
      const byServer = results[name] as Record<string, Sample[]>;
      if (byServer[s.key] === undefined) byServer[s.key] = [];
      byServer[s.key]?.push(got);
      console.error(
        `${name} round ${r + 1} ${s.key}: ${got.rate.toFixed(0)} ${sc.unit[0]}, ${got.cpuUs.toFixed(2)} ${sc.unit[1]}`,
      );
    }
  }
}

const lines: string[] = [];
lines.push(
  `WebSocket benchmark — ${cpus()[0]?.model ?? 'cpu'} × ${cpus().length}, Linux ${release()}, Node ${process.version}, ${values.rounds} rounds of ${duration} s, medians (preliminary: shared machine)`,
  '',
  `| scenario | ${servers.map((s) => s.label).join(' | ')} | multireactor / ws | multireactor / uWS |${values.compare !== '' ? ' multireactor / compare |' : ''}`,
  `|---|${servers.map(() => '---|').join('')}---|---|${values.compare !== '' ? '---|' : ''}`,
);
const fmt = (n: number, big: boolean) =>
  Number.isNaN(n) ? '—' : big ? Math.round(n).toLocaleString('en') : n.toFixed(2);
for (const [name, byServer] of Object.entries(results)) {
  const sc = SCENARIOS[name] as (typeof SCENARIOS)[string];
  const m = (key: string, f: (s: Sample) => number) => median((byServer[key] ?? []).map(f));
  const cells = servers.map((s) => {
    const rate = m(s.key, (x) => x.rate);
    const cost = m(s.key, (x) => x.cpuUs);
    return name === 'idle'
      ? `${fmt(cost / 1024, false)} KiB`
      : `${fmt(rate, true)} ${sc.unit[0]}, ${fmt(cost, false)} µs`;
  });
  const ratio = (other: string) => {
    const ours = m('multireactor', (x) => x.cpuUs);
    const theirs = m(other, (x) => x.cpuUs);
    return Number.isNaN(ours / theirs) ? '—' : `${(ours / theirs).toFixed(2)}×`;
  };
  // A/B: the median of the rounds' own ratios (each round runs both within seconds of each other).
  const paired = (other: string) => {
    const a = byServer.multireactor ?? [];
    const b = byServer[other] ?? [];
    const r = median(a.slice(0, b.length).map((x, i) => x.cpuUs / (b[i] as Sample).cpuUs));
    return Number.isNaN(r) ? '—' : `${r.toFixed(3)}×`;
  };
  lines.push(
    `| ${sc.title} | ${cells.join(' | ')} | ${ratio('ws')} | ${ratio('uws')} |${values.compare !== '' ? ` ${paired('compare')} |` : ''}`,
  );
}
if (skipped.size > 0) lines.push('', ...[...skipped].map(([k, why]) => `skipped ${k}: ${why}`));
lines.push(
  '',
  "Ratios compare server CPU per message (per delivery; RSS per connection for idle): lower is better; against `--compare`, the median of the rounds' ratios.",
);
console.log(values.json ? JSON.stringify(results) : lines.join('\n'));
