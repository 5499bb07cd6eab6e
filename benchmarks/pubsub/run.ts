/**
 * Pub/sub fan-out: 1,000 WebSocket members per server in one topic, one publisher, 64 B messages
 * (benchmarks/pubsub/load.ts is the load for every server alike):
 *
 * - `cluster`: multireactor, one server with 2 workers, in-cluster mode (the master's relay);
 * - `redis-1x2`: the same server through Redis instead of the relay;
 * - `redis-2x1`: two multireactor servers of one worker each sharing a Redis (1,000 members each);
 * - `socketio-cluster`: socket.io 4, node:cluster with 2 workers and @socket.io/cluster-adapter;
 * - `socketio-redis-2x1`: two socket.io servers sharing a Redis through @socket.io/redis-adapter.
 *
 * For each: throughput, closed loop (`--window` messages in flight, the next one when one has
 * reached every member: deliveries per second), and latency from publish to delivery (p50/p99)
 * in an open loop of `--rate` messages a second, a load every server keeps up with. Server CPU
 * per delivery from /proc (every process of the servers' trees, and redis-server). Interleaved
 * rounds, medians. The machine is shared: figures are preliminary — re-run in a quiet period.
 *
 * redis-server (Debian package) is started here on `--redis-port`. socket.io is installed outside
 * the repository: `mkdir /tmp/mr-bench-pubsub && cd /tmp/mr-bench-pubsub && npm install
 * socket.io@4 @socket.io/redis-adapter@8 @socket.io/cluster-adapter redis@4`; `--modules` names
 * its node_modules (socket.io scenarios are skipped, saying so, without it).
 *
 *   npm run bench:pubsub -- --rounds 3 --duration 5 --modules /tmp/mr-bench-pubsub/node_modules
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { cpus, release, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { scriptCli } from '../common/cli.js';
import { assertPortFree, cpuSeconds, median, stopTree, tree, waitForPort } from '../common/measure.js';

const here = dirname(fileURLToPath(import.meta.url));
const dist = join(here, '..', '..');
const repo = join(dist, '..');

const values = scriptCli(import.meta.url, {
  rounds: { type: 'string', default: '3', integer: [1, 100] },
  duration: { type: 'string', default: '5', number: [1, 600] },
  members: { type: 'string', default: '1000', integer: [1, 100_000] },
  size: { type: 'string', default: '64', integer: [26, 65_536] },
  window: { type: 'string', default: '8', integer: [1, 1000] },
  rate: { type: 'string', default: '20', integer: [1, 100_000] },
  port: { type: 'string', default: '9121', integer: [1, 65_000] },
  'redis-port': { type: 'string', default: '9139', integer: [1, 65_535] },
  scenarios: {
    type: 'string',
    default: 'cluster,redis-1x2,redis-2x1,socketio-cluster,socketio-redis-2x1',
  },
  modules: { type: 'string', default: '/tmp/mr-bench-pubsub/node_modules' },
  json: { type: 'boolean', default: false },
});

const redisUrl = `redis://127.0.0.1:${values['redis-port']}`;
const hasSocketIo = ['socket.io', '@socket.io/redis-adapter', '@socket.io/cluster-adapter', 'redis'].every((m) =>
  existsSync(join(values.modules, m)),
);

interface Scenario {
  readonly key: string;
  readonly label: string;
  readonly servers: number;
  readonly workers: number;
  readonly redis: boolean;
  readonly socketio: boolean;
}

const SCENARIOS: readonly Scenario[] = [
  {
    key: 'cluster',
    label: 'multireactor, 1 server × 2 workers, in-cluster',
    servers: 1,
    workers: 2,
    redis: false,
    socketio: false,
  },
  {
    key: 'redis-1x2',
    label: 'multireactor, 1 server × 2 workers, Redis',
    servers: 1,
    workers: 2,
    redis: true,
    socketio: false,
  },
  {
    key: 'redis-2x1',
    label: 'multireactor, 2 servers × 1 worker, Redis',
    servers: 2,
    workers: 1,
    redis: true,
    socketio: false,
  },
  {
    key: 'socketio-cluster',
    label: 'socket.io, 1 server × 2 workers, cluster adapter',
    servers: 1,
    workers: 2,
    redis: false,
    socketio: true,
  },
  {
    key: 'socketio-redis-2x1',
    label: 'socket.io, 2 servers × 1 process, Redis adapter',
    servers: 2,
    workers: 1,
    redis: true,
    socketio: true,
  },
];

const scenarios = values.scenarios.split(',').map((k) => {
  const s = SCENARIOS.find((x) => x.key === k);
  if (s === undefined) throw new Error(`unknown scenario ${k}; known: ${SCENARIOS.map((x) => x.key).join(', ')}`);
  return s;
});

/** redis-server, started once for the whole run (and flushed of nothing: pub/sub keeps no data). */
let redis: ChildProcess | undefined;
let redisDir: string | undefined;

async function startRedis(): Promise<void> {
  try {
    execFileSync('redis-server', ['--version'], { stdio: 'ignore' });
  } catch {
    throw new Error('redis-server is missing: apt-get install -y redis-server');
  }
  await assertPortFree(values['redis-port']);
  redisDir = mkdtempSync(join(tmpdir(), 'mr-bench-redis-'));
  redis = spawn(
    'redis-server',
    [
      '--port',
      String(values['redis-port']),
      '--bind',
      '127.0.0.1',
      '--save',
      '',
      '--appendonly',
      'no',
      '--dir',
      redisDir,
    ],
    { stdio: 'ignore' },
  );
  await waitForPort(values['redis-port']);
}

async function startServers(s: Scenario): Promise<ChildProcess[]> {
  const children: ChildProcess[] = [];
  for (let i = 0; i < s.servers; i++) {
    const port = values.port + i;
    await assertPortFree(port);
    const child = s.socketio
      ? spawn(process.execPath, [join(repo, 'benchmarks', 'pubsub', 'socketio-server.cjs')], {
          env: {
            ...process.env,
            NODE_PATH: values.modules,
            PORT: String(port),
            WORKERS: String(s.workers),
            ...(s.redis ? { REDIS_URL: redisUrl } : {}),
          },
          stdio: ['ignore', 'ignore', 'inherit'],
        })
      : spawn(
          process.execPath,
          [
            join(dist, 'benchmarks', 'pubsub', 'server.js'),
            '--port',
            String(port),
            '--workers',
            String(s.workers),
            ...(s.redis ? ['--redis', redisUrl] : []),
          ],
          { stdio: ['ignore', 'ignore', 'inherit'] },
        );
    children.push(child);
    await waitForPort(port);
  }
  // Every worker of every server listening before the members connect.
  await new Promise((r) => setTimeout(r, 700));
  return children;
}

interface LoadResult {
  readonly deliveries: number;
  readonly deliveriesPerSecond: number;
  readonly p50us: number;
  readonly p99us: number;
  readonly lost: number;
}

/** Runs load.js against the servers; returns its result and the servers' CPU seconds over the measured part. */
function load(
  s: Scenario,
  children: readonly ChildProcess[],
  extra: string[],
): Promise<{ r: LoadResult; cpu: number }> {
  const urls = Array.from({ length: s.servers }, (_, i) => `ws://127.0.0.1:${values.port + i}/`).join(',');
  const pids = () => [
    ...children.flatMap((c) => tree(c.pid as number)),
    ...(s.redis && redis !== undefined ? [redis.pid as number] : []),
  ];
  return new Promise((resolve, reject) => {
    const c = spawn(
      process.execPath,
      [
        join(dist, 'benchmarks', 'pubsub', 'load.js'),
        '--url',
        urls,
        '--members',
        String(values.members),
        '--duration',
        String(values.duration),
        '--size',
        String(values.size),
        '--protocol',
        s.socketio ? 'socketio' : 'multireactor',
        ...extra,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let text = '';
    let before = 0;
    let after = 0;
    c.stdout.on('data', (d: Buffer) => {
      const t = d.toString();
      if (!text.includes('ready') && t.includes('ready')) before = cpuSeconds(pids());
      if (!text.includes('{') && t.includes('{')) after = cpuSeconds(pids());
      text += t;
    });
    c.once('exit', (code) => {
      if (code !== 0) {
        reject(new Error(`load exited ${code}: ${text}`));
        return;
      }
      resolve({ r: JSON.parse(text.trim().split('\n').pop() as string) as LoadResult, cpu: after - before });
    });
  });
}

interface Sample {
  readonly rate: number;
  readonly cpuUs: number;
  readonly p50: number;
  readonly p99: number;
  readonly lost: number;
}

async function measure(s: Scenario): Promise<Sample | string> {
  if (s.socketio && !hasSocketIo) return `socket.io is not in ${values.modules} (see --help)`;
  const children = await startServers(s);
  try {
    const t = await load(s, children, ['--window', String(values.window)]);
    const l = await load(s, children, ['--rate', String(values.rate)]);
    return {
      rate: t.r.deliveriesPerSecond,
      cpuUs: (t.cpu / t.r.deliveries) * 1e6,
      p50: l.r.p50us / 1000,
      p99: l.r.p99us / 1000,
      lost: t.r.lost + l.r.lost,
    };
  } finally {
    for (const c of children) await stopTree(c);
  }
}

const results = new Map<string, Sample[]>();
const skipped = new Map<string, string>();
try {
  if (scenarios.some((s) => s.redis)) await startRedis();
  for (let round = 1; round <= values.rounds; round++) {
    for (const s of scenarios) {
      if (skipped.has(s.key)) continue;
      process.stderr.write(`round ${round}: ${s.label} … `);
      const r = await measure(s);
      if (typeof r === 'string') {
        skipped.set(s.key, r);
        process.stderr.write(`skipped: ${r}\n`);
        continue;
      }
      process.stderr.write(
        `${Math.round(r.rate)} deliveries/s, ${r.cpuUs.toFixed(2)} µs CPU/delivery, p50 ${r.p50.toFixed(1)} ms, p99 ${r.p99.toFixed(1)} ms${r.lost > 0 ? `, ${r.lost} lost` : ''}\n`,
      );
      const list = results.get(s.key) ?? [];
      list.push(r);
      results.set(s.key, list);
    }
  }
} finally {
  if (redis !== undefined) await stopTree(redis, { settleMs: 0 });
  if (redisDir !== undefined) rmSync(redisDir, { recursive: true, force: true });
}

const rows = scenarios
  .filter((s) => results.has(s.key))
  .map((s) => {
    const list = results.get(s.key) as Sample[];
    return {
      scenario: s.label,
      deliveriesPerSecond: Math.round(median(list.map((x) => x.rate))),
      cpuUsPerDelivery: median(list.map((x) => x.cpuUs)),
      p50ms: median(list.map((x) => x.p50)),
      p99ms: median(list.map((x) => x.p99)),
      lost: list.reduce((a, x) => a + x.lost, 0),
    };
  });

if (values.json) {
  process.stdout.write(`${JSON.stringify({ rows, skipped: Object.fromEntries(skipped) })}\n`);
} else {
  const cpu = cpus()[0]?.model ?? 'unknown CPU';
  console.log(
    `\n${cpus().length} × ${cpu}, Linux ${release()}, Node ${process.version}; ${values.members} members per server, ${values.size} B messages, ${values.rounds} rounds of ${values.duration} s, medians\n`,
  );
  console.log(
    `| scenario | deliveries/s (window ${values.window}) | server CPU per delivery | p50 at ${values.rate} msg/s | p99 at ${values.rate} msg/s |`,
  );
  console.log('|---|---|---|---|---|');
  for (const r of rows) {
    console.log(
      `| ${r.scenario} | ${r.deliveriesPerSecond.toLocaleString('en-US')} | ${r.cpuUsPerDelivery.toFixed(2)} µs | ${r.p50ms.toFixed(1)} ms | ${r.p99ms.toFixed(1)} ms |${r.lost > 0 ? ` (${r.lost} messages lost)` : ''}`,
    );
  }
  for (const [k, why] of skipped) console.log(`\n${k}: skipped (${why})`);
}
