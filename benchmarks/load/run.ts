/**
 * multireactor-load against wrk, on the same server: the plaintext example with 2 workers.
 * Two scenarios — plain keep-alive and 16-deep pipelining, 50 connections — each load
 * generator in turn (interleaved: wrk, ours, wrk, ours …), each run after a 1 s warm-up on a
 * fresh server. Reports requests/s, p50/p90/p99 latency, and the CPU time per request of the
 * load generator itself and of the server (utime + stime from /proc).
 *
 *   apt-get install wrk            # the benchmark needs it; tests never do
 *   npm run build
 *   node dist/benchmarks/load/run.js --rounds 5 --duration 5 [--port 20090] [--workers 2] \
 *        [--svg docs/img/load-vs-wrk.svg]
 *
 * The load generators' own CPU time is read from a `sh` that runs them and waits: its cutime and
 * cstime (/proc/PID/stat fields 16–17) hold exactly the time of the children it reaped.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { cpus, release } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { LoadReport } from '../../src/client/load.js';
import { scriptCli } from '../common/cli.js';
import {
  assertPortFree,
  CLK_TCK,
  cpuSeconds,
  median,
  parseWrk,
  requireWrk,
  statFields,
  stopTree,
  tree,
  waitForPort,
} from '../common/measure.js';
import { barChartSvg, writeSvg } from '../common/svg.js';

const here = dirname(fileURLToPath(import.meta.url));
const values = scriptCli(import.meta.url, {
  rounds: { type: 'string', default: '5', integer: [1, 1000] },
  duration: { type: 'string', default: '5', integer: [1, 86_400] },
  workers: { type: 'string', default: '2', integer: [0, 1024] },
  port: { type: 'string', default: '18090', integer: [1, 65535] },
  connections: { type: 'string', default: '50', integer: [1, 10_000] },
  svg: { type: 'string' },
});
const PORT = values.port;
const URL = `http://127.0.0.1:${PORT}/plaintext`;
const LOAD = join(here, '..', '..', 'src', 'bin', 'load.js');
const PIPELINE_LUA = join(here, '..', '..', '..', 'benchmarks', 'http', 'pipeline.lua');
const C = String(values.connections);

interface Run {
  readonly rps: number;
  readonly requests: number;
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  /** CPU seconds the load generator used. */
  readonly cpu: number;
  readonly errors: string;
}

/** Runs `command args` under sh and returns its stdout and the CPU time of what sh reaped. */
function timed(command: string, args: readonly string[]): { stdout: string; cpu: number } {
  const r = spawnSync('/bin/sh', ['-c', '"$@"; cat /proc/$$/stat >&2', 'sh', command, ...args], { encoding: 'utf8' });
  const stat = r.stderr.trim().split('\n').pop() ?? '';
  const f = statFields(stat);
  // cutime, cstime: fields 16 and 17 of stat(5), 13 and 14 after the command name.
  const cpu = (Number(f[13]) + Number(f[14])) / CLK_TCK;
  if (r.status !== 0) throw new Error(`${command} failed: ${r.stderr}`);
  return { stdout: r.stdout, cpu };
}

const TOOLS = {
  wrk: {
    label: 'wrk 4.1 (C, 1 thread)',
    run(pipeline: number, seconds: string): Run {
      const script = pipeline > 1 ? ['-s', PIPELINE_LUA, URL, '--', String(pipeline)] : [URL];
      const { stdout, cpu } = timed('wrk', ['--latency', '-t1', `-c${C}`, `-d${seconds}s`, ...script]);
      const w = parseWrk(stdout);
      return { ...w, cpu };
    },
  },
  ours: {
    label: 'multireactor-load (1 Node process)',
    run(pipeline: number, seconds: string): Run {
      const { stdout, cpu } = timed(process.execPath, [
        LOAD,
        '--url',
        URL,
        '-c',
        C,
        '-d',
        `${seconds}s`,
        '--pipeline',
        String(pipeline),
        '--json',
      ]);
      const r = JSON.parse(stdout) as LoadReport;
      const e = r.errors;
      const errors = Object.values(e).some((n) => n > 0) ? JSON.stringify(e) : '';
      return {
        rps: r.requestsPerSecond,
        requests: r.requests,
        p50: r.latency.p50,
        p90: r.latency.p90,
        p99: r.latency.p99,
        cpu,
        errors,
      };
    },
  },
} as const;

const SCENARIOS = [
  { key: 'plain', label: `keep-alive, -c ${C}`, pipeline: 1 },
  { key: 'pipe16', label: `16-deep pipelining, -c ${C}`, pipeline: 16 },
] as const;

requireWrk();

type Acc = {
  rps: number[];
  p50: number[];
  p90: number[];
  p99: number[];
  genUs: number[];
  serverUs: number[];
  errors: string[];
};
const results = new Map<string, Acc>();

async function startServer(): Promise<ChildProcess> {
  await assertPortFree(PORT);
  const child = spawn(
    process.execPath,
    [
      join(here, '..', '..', 'examples', 'plaintext-server.js'),
      '--host',
      '127.0.0.1',
      '--port',
      String(PORT),
      '--workers',
      String(values.workers),
    ],
    { stdio: ['ignore', 'ignore', 'inherit'] },
  );
  await waitForPort(PORT);
  return child;
}

for (let round = 1; round <= values.rounds; round++) {
  for (const sc of SCENARIOS) {
    for (const [key, tool] of Object.entries(TOOLS)) {
      const server = await startServer();
      try {
        tool.run(sc.pipeline, '1'); // warm-up: the server's JIT, connection set-up
        const pids = tree(server.pid as number);
        const cpu0 = cpuSeconds(pids);
        const r = tool.run(sc.pipeline, String(values.duration));
        const serverCpu = cpuSeconds(pids) - cpu0;
        const k = `${sc.key}/${key}`;
        const acc = results.get(k) ?? { rps: [], p50: [], p90: [], p99: [], genUs: [], serverUs: [], errors: [] };
        acc.rps.push(r.rps);
        acc.p50.push(r.p50);
        acc.p90.push(r.p90);
        acc.p99.push(r.p99);
        acc.genUs.push((r.cpu * 1e6) / Math.max(1, r.requests));
        acc.serverUs.push((serverCpu * 1e6) / Math.max(1, r.requests));
        if (r.errors !== '') acc.errors.push(r.errors);
        results.set(k, acc);
        process.stderr.write(
          `round ${round} ${sc.key} ${key}: ${Math.round(r.rps)} req/s, p50 ${r.p50} p99 ${r.p99} ms, generator ${((r.cpu * 1e6) / Math.max(1, r.requests)).toFixed(2)} µs/req, server ${((serverCpu * 1e6) / Math.max(1, r.requests)).toFixed(2)} µs/req ${r.errors}\n`,
        );
      } finally {
        await stopTree(server);
      }
    }
  }
}

const range = (xs: number[], f: (v: number) => string) => `${f(Math.min(...xs))}–${f(Math.max(...xs))}`;
const k = (v: number) => `${Math.round(v / 1000)}k`;
const lines = [
  `Machine: ${cpus().length} × ${cpus()[0]?.model ?? 'unknown CPU'}, Linux ${release()}, Node ${process.version}, ${spawnSync('wrk', ['-v']).stdout.toString().split('\n')[0]?.trim() ?? 'wrk'}.`,
  `Server: examples/plaintext-server.js, ${values.workers} workers. ${values.duration} s per run after a 1 s warm-up, fresh server each run, ${values.rounds} rounds interleaved; medians (range).`,
  '',
  '| scenario | load generator | req/s | p50 ms | p90 ms | p99 ms | generator CPU µs/req | server CPU µs/req |',
  '|---|---|---:|---:|---:|---:|---:|---:|',
];
for (const sc of SCENARIOS) {
  for (const [key, tool] of Object.entries(TOOLS)) {
    const r = results.get(`${sc.key}/${key}`);
    if (r === undefined) continue;
    lines.push(
      `| ${sc.label} | ${tool.label} | ${Math.round(median(r.rps)).toLocaleString('en-US')} (${range(r.rps, k)}) | ${median(r.p50).toFixed(2)} | ${median(r.p90).toFixed(2)} | ${median(r.p99).toFixed(2)} | ${median(r.genUs).toFixed(2)} | ${median(r.serverUs).toFixed(2)} |`,
    );
  }
}
const errors = [...results.entries()].filter(([, r]) => r.errors.length > 0);
if (errors.length > 0) lines.push('', ...errors.map(([key, r]) => `errors in ${key}: ${r.errors.join('; ')}`));
console.log(lines.join('\n'));

if (values.svg !== undefined) {
  const colors: Record<string, string> = { wrk: '#7f7f7f', ours: '#1f77b4' };
  // One scale per panel (every bar in one group), as the numbers of a panel compare across scenarios.
  const rows = (f: (r: Acc) => number) =>
    SCENARIOS.flatMap((sc) =>
      Object.entries(TOOLS).flatMap(([key, tool]) => {
        const r = results.get(`${sc.key}/${key}`);
        return r === undefined
          ? []
          : [{ label: `${sc.label} · ${tool.label}`, value: f(r), color: colors[key] as string, group: 'all' }];
      }),
    );
  const svg = barChartSvg(
    'multireactor-load against wrk on the plaintext example',
    [
      { title: 'requests/s (higher is better)', bars: rows((r) => median(r.rps)), format: k },
      {
        title: 'load generator CPU µs per request (lower is better)',
        bars: rows((r) => median(r.genUs)),
        format: (v) => v.toFixed(2),
      },
      { title: 'p99 latency, ms', bars: rows((r) => median(r.p99)), format: (v) => v.toFixed(2) },
    ],
    { width: 980, labelWidth: 400, panelHeight: 34 + 22 * SCENARIOS.length * Object.keys(TOOLS).length },
  );
  writeSvg(values.svg, svg);
}
