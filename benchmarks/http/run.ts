/**
 * HTTP benchmark: multireactor's plaintext server against node:http under node:cluster, a raw
 * node:net cluster with the C server's reply logic, nginx (`return 200`) and the minimal C epoll
 * server of the team's bench-ref folder when given, under wrk:
 *   plain keep-alive at -c 50 and -c 256, and 16-deep pipelining at -c 50 (pipeline.lua),
 * servers interleaved, each run on a fresh server after a 1 s warm-up, medians over the rounds.
 * Reports requests/s, server CPU time per request (utime+stime of every process of the server's
 * tree, from /proc, over the measured run), and wrk's p50/p99 latency.
 *
 *   apt-get install wrk nginx      # benchmark tools only; tests never need them
 *   npm run build
 *   node dist/benchmarks/http/run.js --rounds 3 --duration 5 --workers 2 \
 *        [--cepoll /path/to/cepoll] [--svg docs/img/http-bench.svg]
 *
 * The load generator is wrk when it is installed; without it (or with `--load multireactor-load`)
 * the project's own `multireactor-load` plays its part — same connections, same 16-deep
 * pipelining, same latency percentiles — so the benchmark runs from `npm install` alone. It is an
 * npm-only fallback, not a replacement: it spends more CPU per request than wrk on this 2-core
 * machine, which lowers every server's req/s (docs/benchmarks.md, "multireactor-load against
 * wrk"); the CPU-per-request columns are the ones to compare across generators.
 */
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, release, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { LoadReport } from '../../src/client/load.js';
import { scriptCli } from '../common/cli.js';
import {
  assertPortFree,
  cpuSeconds,
  hasWrk,
  median,
  parseWrk,
  stopTree,
  tree,
  type WrkResult,
  waitForPort,
} from '../common/measure.js';
import { barChartSvg, writeSvg } from '../common/svg.js';

const here = dirname(fileURLToPath(import.meta.url));
const values = scriptCli(import.meta.url, {
  rounds: { type: 'string', default: '3', integer: [1, 1000] },
  duration: { type: 'string', default: '5', integer: [1, 86_400] },
  workers: { type: 'string', default: '2', integer: [1, 1024] },
  servers: { type: 'string', default: 'multireactor,koffi-floor,node-http,node-net,nginx,cepoll' },
  scenarios: { type: 'string', default: 'plain-c50,plain-c256,pipe16-c50' },
  cepoll: { type: 'string' },
  svg: { type: 'string' },
  port: { type: 'string', default: '18080', integer: [1, 65535] },
  /** wrk (the default when installed) or multireactor-load (the default without wrk). */
  load: { type: 'string' },
});

const PORT = values.port;
const WORKERS = String(values.workers);
const URL = `http://127.0.0.1:${PORT}/plaintext`;

interface ServerSpec {
  readonly key: string;
  readonly label: string;
  start(): ChildProcess;
  readonly cleanup?: () => void;
}

let nginxDir: string | undefined;

const SERVERS: Record<string, ServerSpec> = {
  multireactor: {
    key: 'multireactor',
    label: 'multireactor',
    start: () =>
      spawn(
        process.execPath,
        [join(here, '..', '..', 'examples', 'plaintext-server.js'), '--port', String(PORT), '--workers', WORKERS],
        {
          stdio: ['ignore', 'ignore', 'inherit'],
        },
      ),
  },
  'node-http': {
    key: 'node-http',
    label: 'node:http cluster',
    start: () =>
      spawn(process.execPath, [join(here, 'node-http-cluster.js'), '--port', String(PORT), '--workers', WORKERS], {
        stdio: ['ignore', 'ignore', 'inherit'],
      }),
  },
  'node-net': {
    key: 'node-net',
    label: 'node:net cluster (no parser)',
    start: () =>
      spawn(process.execPath, [join(here, 'node-net-cluster.js'), '--port', String(PORT), '--workers', WORKERS], {
        stdio: ['ignore', 'ignore', 'inherit'],
      }),
  },
  nginx: {
    key: 'nginx',
    label: 'nginx (return 200)',
    start: () => {
      nginxDir ??= mkdtempSync(join(tmpdir(), 'mr-nginx-'));
      mkdirSync(join(nginxDir, 'tmp'), { recursive: true });
      const conf = join(nginxDir, 'nginx.conf');
      writeFileSync(
        conf,
        `worker_processes ${WORKERS};\ndaemon off;\npid nginx.pid;\nerror_log nginx-error.log warn;\nevents { worker_connections 4096; }\nhttp {\n  access_log off;\n  server_tokens off;\n  keepalive_requests 100000000;\n  keepalive_timeout 120s;\n  client_body_temp_path tmp; proxy_temp_path tmp; fastcgi_temp_path tmp; uwsgi_temp_path tmp; scgi_temp_path tmp;\n  server {\n    listen 127.0.0.1:${PORT} reuseport;\n    default_type text/plain;\n    location / { return 200 "Hello, World!"; }\n  }\n}\n`,
      );
      return spawn('nginx', ['-p', nginxDir, '-c', conf], { stdio: ['ignore', 'ignore', 'inherit'] });
    },
    cleanup: () => {
      if (nginxDir !== undefined) rmSync(nginxDir, { recursive: true, force: true });
    },
  },
  'koffi-floor': {
    key: 'koffi-floor',
    label: 'koffi floor (no framework)',
    start: () =>
      spawn(process.execPath, [join(here, 'koffi-floor.js'), '--port', String(PORT), '--workers', WORKERS], {
        stdio: ['ignore', 'ignore', 'inherit'],
      }),
  },
  cepoll: {
    key: 'cepoll',
    label: 'C epoll (ceiling)',
    start: () => spawn(values.cepoll as string, [String(PORT), WORKERS], { stdio: ['ignore', 'ignore', 'inherit'] }),
  },
};

interface Scenario {
  readonly label: string;
  readonly connections: number;
  /** Requests in flight per connection (1: plain keep-alive). */
  readonly pipeline: number;
}
const SCENARIOS: Record<string, Scenario> = {
  'plain-c50': { label: 'keep-alive, -c 50', connections: 50, pipeline: 1 },
  'plain-c256': { label: 'keep-alive, -c 256', connections: 256, pipeline: 1 },
  'pipe16-c50': { label: '16-deep pipelining, -c 50', connections: 50, pipeline: 16 },
};

const LOAD = values.load ?? (hasWrk() ? 'wrk' : 'multireactor-load');
if (LOAD !== 'wrk' && LOAD !== 'multireactor-load') {
  console.error(`--load must be wrk or multireactor-load, got ${LOAD}`);
  process.exit(2);
}
if (LOAD === 'wrk' && !hasWrk()) {
  console.error('wrk is not installed (apt-get install wrk); --load multireactor-load needs nothing but npm');
  process.exit(2);
}
if (LOAD !== 'wrk' && values.load === undefined) {
  console.error('wrk is not installed (apt-get install wrk): using multireactor-load, the npm-only fallback');
}

/** One measured run of `scenario` for `seconds`, with the chosen generator. */
function load(scenario: Scenario, seconds: string): WrkResult {
  if (LOAD === 'wrk') {
    // wrk pipelines with a Lua script; it is not compiled: it lives next to this file's source.
    const pipelined =
      scenario.pipeline > 1
        ? [
            '-s',
            join(here, '..', '..', '..', 'benchmarks', 'http', 'pipeline.lua'),
            URL,
            '--',
            String(scenario.pipeline),
          ]
        : [URL];
    const args = ['--latency', '-d', `${seconds}s`, '-t1', `-c${scenario.connections}`, ...pipelined];
    return parseWrk(execFileSync('wrk', args, { encoding: 'utf8' }));
  }
  const bin = join(here, '..', '..', 'src', 'bin', 'load.js');
  const args = [bin, '--url', URL, '-c', String(scenario.connections), '-d', `${seconds}s`];
  args.push('--pipeline', String(scenario.pipeline), '--json');
  const r = JSON.parse(execFileSync(process.execPath, args, { encoding: 'utf8' })) as LoadReport;
  const e = r.errors;
  const failed = e.refused + e.reset + e.timeout + e.badStatus + e.protocol;
  return {
    rps: r.requestsPerSecond,
    requests: r.requests,
    p50: r.latency.p50,
    p90: r.latency.p90,
    p99: r.latency.p99,
    errors: failed > 0 ? `errors ${JSON.stringify(e)}` : '',
  };
}

const servers = values.servers
  .split(',')
  .filter((k) => (k !== 'cepoll' || values.cepoll !== undefined) && (k !== 'nginx' || hasNginx()))
  .map((k) => {
    const s = SERVERS[k];
    if (s === undefined) throw new Error(`unknown server ${k}`);
    return s;
  });
function hasNginx(): boolean {
  try {
    execFileSync('nginx', ['-v'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
const scenarios = values.scenarios.split(',');
type Result = { rps: number[]; us: number[]; p50: number[]; p99: number[]; errors: string[] };
const results = new Map<string, Result>();

for (const sc of scenarios) {
  const scenario = SCENARIOS[sc];
  if (scenario === undefined) throw new Error(`unknown scenario ${sc}`);
  for (let round = 1; round <= values.rounds; round++) {
    for (const server of servers) {
      await assertPortFree(PORT);
      const child = server.start();
      try {
        await waitForPort(PORT);
        load(scenario, '1'); // warm-up: JIT, connection setup
        const pids = tree(child.pid as number);
        const cpu0 = cpuSeconds(pids);
        const r = load(scenario, String(values.duration));
        const cpu1 = cpuSeconds(pids);
        const us = ((cpu1 - cpu0) * 1e6) / Math.max(1, r.requests);
        const key = `${sc}/${server.key}`;
        const acc = results.get(key) ?? { rps: [], us: [], p50: [], p99: [], errors: [] };
        acc.rps.push(r.rps);
        acc.us.push(us);
        acc.p50.push(r.p50);
        acc.p99.push(r.p99);
        if (r.errors !== '') acc.errors.push(r.errors);
        results.set(key, acc);
        process.stderr.write(
          `${sc} round ${round} ${server.label}: ${Math.round(r.rps)} req/s, ${us.toFixed(2)} µs CPU/req, p50 ${r.p50} ms, p99 ${r.p99} ms ${r.errors}\n`,
        );
      } finally {
        await stopTree(child, { signal: server.key === 'nginx' ? 'SIGQUIT' : 'SIGTERM' });
      }
    }
  }
}
for (const s of servers) s.cleanup?.();

const lines = [
  `Machine: ${cpus().length} × ${cpus()[0]?.model ?? 'unknown CPU'}, Linux ${release()}, Node ${process.version}, ${LOAD === 'wrk' ? (spawnSync('wrk', ['-v']).stdout.toString().split('\n')[0]?.trim() ?? 'wrk') : 'multireactor-load (wrk not used)'}.`,
  `${WORKERS} server processes each; ${LOAD === 'wrk' ? 'wrk -t1' : 'multireactor-load'}, ${values.duration} s per run after a 1 s warm-up, ${values.rounds} rounds interleaved; medians.`,
  '',
  '| scenario | server | req/s | server CPU µs/req | CPU/req vs C | req/s vs node:http | p50 ms | p99 ms |',
  '|---|---|---:|---:|---:|---:|---:|---:|',
];
for (const sc of scenarios) {
  const base = (k: string, f: (r: Result) => number[]) => {
    const r = results.get(`${sc}/${k}`);
    return r === undefined ? Number.NaN : median(f(r));
  };
  const cUs = base('cepoll', (r) => r.us);
  const nodeRps = base('node-http', (r) => r.rps);
  for (const server of servers) {
    const r = results.get(`${sc}/${server.key}`);
    if (r === undefined) continue;
    const rps = median(r.rps);
    const us = median(r.us);
    lines.push(
      `| ${SCENARIOS[sc]?.label} | ${server.label} | ${Math.round(rps).toLocaleString('en-US')} | ${us.toFixed(2)} | ${Number.isNaN(cUs) ? '–' : `${(us / cUs).toFixed(2)}×`} | ${Number.isNaN(nodeRps) ? '–' : `${(rps / nodeRps).toFixed(2)}×`} | ${median(r.p50).toFixed(2)} | ${median(r.p99).toFixed(2)} |`,
    );
  }
}
console.log(lines.join('\n'));

if (values.svg !== undefined) {
  const colors: Record<string, string> = {
    multireactor: '#1f77b4',
    'koffi-floor': '#9467bd',
    'node-http': '#d62728',
    'node-net': '#ff7f0e',
    nginx: '#2ca02c',
    cepoll: '#7f7f7f',
  };
  const panels = (
    [
      ['rps', 'requests/s (higher is better)', (v: number) => `${Math.round(v / 1000)}k`],
      ['us', 'server CPU µs per request (lower is better)', (v: number) => v.toFixed(2)],
    ] as const
  ).map(([metric, title, format]) => ({
    title,
    format,
    bars: scenarios.flatMap((sc) =>
      servers.flatMap((server) => {
        const r = results.get(`${sc}/${server.key}`);
        return r === undefined
          ? []
          : [
              {
                label: `${SCENARIOS[sc]?.label} · ${server.label}`,
                value: median(r[metric]),
                color: colors[server.key] as string,
                group: sc,
              },
            ];
      }),
    ),
  }));
  writeSvg(values.svg, barChartSvg('HTTP plaintext benchmark: requests per second and server CPU per request', panels));
}
