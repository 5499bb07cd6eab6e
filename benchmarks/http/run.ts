/**
 * HTTP benchmark: multireactor against node:http under node:cluster, a raw node:net cluster with the
 * C server's reply logic, nginx, uWebSockets.js (when installed: `--uws DIR`), and the minimal C
 * epoll server of the team's bench-ref folder when given, under wrk. Scenarios:
 *   plain-c50, plain-c256, pipe16-c50   the same plaintext head on every request (pipeline.lua);
 *                                       multireactor: examples/plaintext-server.ts
 *   varied-c50, varied-pipe16-c50       browser-like heads that differ on every request
 *                                       (varied-heads.lua: cookie, request id, traceparent, query)
 *   json-c50                            TechEmpower's JSON test, serialised per request
 *   post-c50                            POST of a 1 KiB JSON body, parsed and answered (post-json.lua)
 *   big16k-c50                          a 16 KiB response
 * (the last five: multireactor's bench-app.ts on router(), uws-app.cjs, node-http-cluster.ts; C
 * answers its fixed 5-byte reply to every request, the ceiling of a server that parses nothing;
 * nginx does not take part in post-c50: it cannot parse JSON),
 * servers interleaved, each run on a fresh server after a 1 s warm-up, medians over the rounds.
 * Reports requests/s, server CPU time per request (utime+stime of every process of the server's
 * tree, from /proc, over the measured run) with its ratio to C and to the best peer (nginx, uWS,
 * node:http, node:net), and wrk's p50/p99 latency.
 *
 *   apt-get install wrk nginx      # benchmark tools only; tests never need them
 *   npm run build
 *   node dist/benchmarks/http/run.js --rounds 3 --duration 5 --workers 2 \
 *        [--cepoll /path/to/cepoll] [--uws /path/to/scratch] [--scenarios …] [--svg docs/img/http-bench.svg]
 *
 * The load generator is wrk when it is installed; without it (or with `--load multireactor-load`)
 * the project's own `multireactor-load` plays its part — same connections, same 16-deep
 * pipelining, same latency percentiles — so the benchmark runs from `npm install` alone. It is an
 * npm-only fallback, not a replacement: it spends more CPU per request than wrk on this 2-core
 * machine, which lowers every server's req/s (docs/benchmarks.md, "multireactor-load against
 * wrk"); the CPU-per-request columns are the ones to compare across generators.
 */
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
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
  servers: { type: 'string', default: 'multireactor,koffi-floor,node-http,node-net,nginx,uws,cepoll' },
  scenarios: { type: 'string', default: 'plain-c50,plain-c256,pipe16-c50' },
  cepoll: { type: 'string' },
  /** A scratch folder with uWebSockets.js installed (see uws-app.cjs); without it uWS is left out. */
  uws: { type: 'string' },
  svg: { type: 'string' },
  port: { type: 'string', default: '18080', integer: [1, 65535] },
  /** wrk (the default when installed) or multireactor-load (the default without wrk). */
  load: { type: 'string' },
  /**
   * Another checkout (its `npm run build` done): its multireactor runs as server `compare`, and the
   * table adds the median of the per-round ratios of this build's CPU per request to its — an A/B
   * of two builds under the same load, interleaved (`--servers multireactor,compare`).
   */
  compare: { type: 'string' },
});

const PORT = values.port;
const WORKERS = String(values.workers);
const BASE = `http://127.0.0.1:${PORT}`;

interface ServerSpec {
  readonly key: string;
  readonly label: string;
  start(scenario: Scenario): ChildProcess;
  /** Scenarios it cannot serve (left out of them). */
  readonly skips?: readonly string[];
  readonly cleanup?: () => void;
}

let nginxDir: string | undefined;

const SERVERS: Record<string, ServerSpec> = {
  multireactor: {
    key: 'multireactor',
    label: 'multireactor',
    start: (scenario) =>
      spawn(
        process.execPath,
        [
          scenario.app ? join(here, 'bench-app.js') : join(here, '..', '..', 'examples', 'plaintext-server.js'),
          '--port',
          String(PORT),
          '--workers',
          WORKERS,
        ],
        {
          stdio: ['ignore', 'ignore', 'inherit'],
        },
      ),
  },
  compare: {
    key: 'compare',
    label: `multireactor (${values.compare ?? 'compare'})`,
    start: (scenario) =>
      spawn(
        process.execPath,
        [
          join(
            values.compare ?? '',
            'dist',
            scenario.app ? join('benchmarks', 'http', 'bench-app.js') : join('examples', 'plaintext-server.js'),
          ),
          '--port',
          String(PORT),
          '--workers',
          WORKERS,
        ],
        { stdio: ['ignore', 'ignore', 'inherit'] },
      ),
  },
  uws: {
    key: 'uws',
    label: 'uWebSockets.js 20.30',
    start: () =>
      // Not compiled: it lives next to this file's source.
      spawn(process.execPath, [join(here, '..', '..', '..', 'benchmarks', 'http', 'uws-app.cjs')], {
        stdio: ['ignore', 'ignore', 'inherit'],
        env: { ...process.env, PORT: String(PORT), WORKERS, NODE_PATH: join(values.uws ?? '', 'node_modules') },
      }),
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
    // nginx cannot parse a JSON body (it would answer without reading it).
    skips: ['post-c50'],
    start: () => {
      nginxDir ??= mkdtempSync(join(tmpdir(), 'mr-nginx-'));
      mkdirSync(join(nginxDir, 'tmp'), { recursive: true });
      const conf = join(nginxDir, 'nginx.conf');
      writeFileSync(join(nginxDir, '16k'), Buffer.alloc(16 * 1024, 'x'));
      // nginx's workers run as an unprivileged user: they must be able to read the file.
      chmodSync(nginxDir, 0o755);
      chmodSync(join(nginxDir, '16k'), 0o644);
      writeFileSync(
        conf,
        `worker_processes ${WORKERS};\ndaemon off;\npid nginx.pid;\nerror_log nginx-error.log warn;\nevents { worker_connections 4096; }\nhttp {\n  access_log off;\n  server_tokens off;\n  keepalive_requests 100000000;\n  keepalive_timeout 120s;\n  client_body_temp_path tmp; proxy_temp_path tmp; fastcgi_temp_path tmp; uwsgi_temp_path tmp; scgi_temp_path tmp;\n  server {\n    listen 127.0.0.1:${PORT} reuseport;\n    default_type text/plain;\n    location / { return 200 "Hello, World!"; }\n    location = /json { default_type application/json; return 200 '{"message":"Hello, World!"}'; }\n    location = /16k { alias ${join(nginxDir, '16k')}; }\n  }\n}\n`,
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
  readonly key: string;
  readonly label: string;
  readonly connections: number;
  /** Requests in flight per connection (1: plain keep-alive). */
  readonly pipeline: number;
  /** The path wrk asks for (a script may ask for others). */
  readonly path: string;
  /** wrk's Lua script (in benchmarks/http), if any; the pipeline depth is its argument. */
  readonly script?: string;
  /** multireactor serves it with bench-app.ts (router(), every endpoint) rather than the plaintext example. */
  readonly app?: boolean;
}
const SCENARIO_LIST: Scenario[] = [
  { key: 'plain-c50', label: 'keep-alive, -c 50', connections: 50, pipeline: 1, path: '/plaintext' },
  { key: 'plain-c256', label: 'keep-alive, -c 256', connections: 256, pipeline: 1, path: '/plaintext' },
  {
    key: 'pipe16-c50',
    label: '16-deep pipelining, -c 50',
    connections: 50,
    pipeline: 16,
    path: '/plaintext',
    script: 'pipeline.lua',
  },
  {
    key: 'varied-c50',
    label: 'varied heads, keep-alive, -c 50',
    connections: 50,
    pipeline: 1,
    path: '/api/items/1',
    script: 'varied-heads.lua',
    app: true,
  },
  {
    key: 'varied-pipe16-c50',
    label: 'varied heads, 16-deep pipelining, -c 50',
    connections: 50,
    pipeline: 16,
    path: '/api/items/1',
    script: 'varied-heads.lua',
    app: true,
  },
  { key: 'json-c50', label: 'JSON, keep-alive, -c 50', connections: 50, pipeline: 1, path: '/json', app: true },
  {
    key: 'post-c50',
    label: 'POST 1 KiB JSON, keep-alive, -c 50',
    connections: 50,
    pipeline: 1,
    path: '/echo',
    script: 'post-json.lua',
    app: true,
  },
  {
    key: 'big16k-c50',
    label: '16 KiB response, keep-alive, -c 50',
    connections: 50,
    pipeline: 1,
    path: '/16k',
    app: true,
  },
];
const SCENARIOS: Record<string, Scenario> = Object.fromEntries(SCENARIO_LIST.map((sc) => [sc.key, sc]));

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
    // wrk pipelines and varies requests with Lua scripts; they are not compiled: they live next to
    // this file's source.
    const url = `${BASE}${scenario.path}`;
    const script = scenario.script ?? (scenario.pipeline > 1 ? 'pipeline.lua' : undefined);
    const pipelined =
      script !== undefined
        ? ['-s', join(here, '..', '..', '..', 'benchmarks', 'http', script), url, '--', String(scenario.pipeline)]
        : [url];
    const args = ['--latency', '-d', `${seconds}s`, '-t1', `-c${scenario.connections}`, ...pipelined];
    return parseWrk(execFileSync('wrk', args, { encoding: 'utf8' }));
  }
  if (scenario.script !== undefined && scenario.script !== 'pipeline.lua') {
    throw new Error(`${scenario.key} needs wrk (its requests come from ${scenario.script})`);
  }
  const bin = join(here, '..', '..', 'src', 'bin', 'load.js');
  const args = [bin, '--url', `${BASE}${scenario.path}`, '-c', String(scenario.connections), '-d', `${seconds}s`];
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
  .filter(
    (k) =>
      (k !== 'cepoll' || values.cepoll !== undefined) &&
      (k !== 'nginx' || hasNginx()) &&
      (k !== 'uws' || values.uws !== undefined) &&
      (k !== 'compare' || values.compare !== undefined),
  )
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
    // Which server goes first alternates between rounds: a load that drifts during a round then
    // hits each server early and late alike.
    for (const server of round % 2 === 1 ? servers : [...servers].reverse()) {
      if (server.skips?.includes(sc) === true) continue;
      await assertPortFree(PORT);
      const child = server.start(scenario);
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
  '| scenario | server | req/s | server CPU µs/req | CPU/req vs C | CPU/req vs best peer | req/s vs node:http | p50 ms | p99 ms |',
  '|---|---|---:|---:|---:|---:|---:|---:|---:|',
];
for (const sc of scenarios) {
  const base = (k: string, f: (r: Result) => number[]) => {
    const r = results.get(`${sc}/${k}`);
    return r === undefined ? Number.NaN : median(f(r));
  };
  const cUs = base('cepoll', (r) => r.us);
  const nodeRps = base('node-http', (r) => r.rps);
  // The best peer: the lowest CPU per request among the servers people run (not C, not the floor).
  const peers = ['nginx', 'uws', 'node-http', 'node-net']
    .map((k) => base(k, (r) => r.us))
    .filter((v) => !Number.isNaN(v));
  const bestUs = peers.length > 0 ? Math.min(...peers) : Number.NaN;
  for (const server of servers) {
    const r = results.get(`${sc}/${server.key}`);
    if (r === undefined) continue;
    const rps = median(r.rps);
    const us = median(r.us);
    lines.push(
      `| ${SCENARIOS[sc]?.label} | ${server.label} | ${Math.round(rps).toLocaleString('en-US')} | ${us.toFixed(2)} | ${Number.isNaN(cUs) ? '–' : `${(us / cUs).toFixed(2)}×`} | ${Number.isNaN(bestUs) ? '–' : `${(us / bestUs).toFixed(2)}×`} | ${Number.isNaN(nodeRps) ? '–' : `${(rps / nodeRps).toFixed(2)}×`} | ${median(r.p50).toFixed(2)} | ${median(r.p99).toFixed(2)} |`,
    );
  }
}
console.log(lines.join('\n'));
if (values.compare !== undefined) {
  // The A/B: this build's CPU per request over the other's, round by round (both ran in the same
  // round, one after the other), then the median and range of those ratios.
  const ab = [
    '',
    `| scenario | this build / ${values.compare}: CPU per request, median of the rounds' ratios (range) |`,
    '|---|---:|',
  ];
  for (const sc of scenarios) {
    const a = results.get(`${sc}/multireactor`)?.us;
    const b = results.get(`${sc}/compare`)?.us;
    if (a === undefined || b === undefined) continue;
    const ratios = a.map((x, i) => x / (b[i] as number)).filter((r) => Number.isFinite(r));
    const sorted = [...ratios].sort((x, y) => x - y);
    ab.push(
      `| ${SCENARIOS[sc]?.label} | ${median(ratios).toFixed(2)}× (${(sorted[0] as number).toFixed(2)}–${(sorted[sorted.length - 1] as number).toFixed(2)}) |`,
    );
  }
  console.log(ab.join('\n'));
}

if (values.svg !== undefined) {
  const colors: Record<string, string> = {
    multireactor: '#1f77b4',
    'koffi-floor': '#9467bd',
    'node-http': '#d62728',
    'node-net': '#ff7f0e',
    nginx: '#2ca02c',
    uws: '#8c564b',
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
