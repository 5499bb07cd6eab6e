/**
 * RESP benchmark: examples/resp-server.ts (one process: one keyspace, like Redis' one thread)
 * against redis-server itself, under redis-benchmark: SET and GET, 50 connections, one command
 * at a time and 16 pipelined (-P 16). Servers interleaved, each run on a fresh server, medians.
 * Reports commands/s, server CPU time per command (utime+stime of the server process from /proc)
 * and redis-benchmark's p50/p99.
 *
 *   apt-get install redis-tools redis-server   # benchmark tools only; tests never need them
 *   npm run build && node dist/benchmarks/resp/run.js --rounds 3 --requests 500000
 *
 * Without redis-benchmark it says so and stops; without redis-server it measures ours alone.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { cpus, release } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { scriptCli } from '../common/cli.js';
import { assertPortFree, cpuSeconds, median, stopTree, waitForPort } from '../common/measure.js';

const here = dirname(fileURLToPath(import.meta.url));
const values = scriptCli(import.meta.url, {
  rounds: { type: 'string', default: '3', integer: [1, 1000] },
  /** Commands per run (per test). */
  requests: { type: 'string', default: '500000', integer: [1, 100_000_000] },
  connections: { type: 'string', default: '50', integer: [1, 10_000] },
  port: { type: 'string', default: '16380', integer: [1, 65535] },
});
const PORT = values.port;

function installed(cmd: string): boolean {
  try {
    execFileSync(cmd, ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
if (!installed('redis-benchmark')) {
  console.error(
    'redis-benchmark is not installed (apt-get install redis-tools); tests never need it, this benchmark does',
  );
  process.exit(2);
}

const SERVERS = [
  {
    key: 'multireactor',
    label: 'multireactor resp-server (1 process)',
    start: (): ChildProcess =>
      spawn(process.execPath, [join(here, '..', '..', 'examples', 'resp-server.js'), '--port', String(PORT)], {
        stdio: ['ignore', 'ignore', 'inherit'],
      }),
  },
  ...(installed('redis-server')
    ? [
        {
          key: 'redis',
          label: 'redis-server (C, 1 thread)',
          start: (): ChildProcess =>
            spawn('redis-server', ['--port', String(PORT), '--save', '', '--appendonly', 'no'], {
              stdio: ['ignore', 'ignore', 'inherit'],
            }),
        },
      ]
    : []),
];

const SCENARIOS = [
  { key: 'plain', label: 'one at a time', pipeline: 1 },
  { key: 'pipe16', label: '16 pipelined (-P 16)', pipeline: 16 },
];

interface Sample {
  readonly rps: number;
  readonly us: number;
  readonly p50: number;
  readonly p99: number;
}

/** One redis-benchmark run of `test` (set or get). */
function bench(test: string, pipeline: number, requests: string): { rps: number; p50: number; p99: number } {
  const csv = execFileSync(
    'redis-benchmark',
    ['-p', String(PORT), '-t', test, '-n', requests, '-c', String(values.connections), '-P', String(pipeline), '--csv'],
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] },
  );
  const f = (csv.trim().split('\n')[1] ?? '').split(',').map((c) => c.replaceAll('"', ''));
  return { rps: Number(f[1]), p50: Number(f[4]), p99: Number(f[6]) };
}

const results = new Map<string, Sample[]>();
for (let round = 1; round <= values.rounds; round++) {
  for (const scenario of SCENARIOS) {
    for (const server of SERVERS) {
      await assertPortFree(PORT);
      const child = server.start();
      try {
        await waitForPort(PORT);
        bench('set,get', scenario.pipeline, '20000'); // warm-up: JIT, connection setup; GET then finds its key
        for (const test of ['SET', 'GET']) {
          const cpu0 = cpuSeconds([child.pid as number]);
          const r = bench(test.toLowerCase(), scenario.pipeline, String(values.requests));
          const us = ((cpuSeconds([child.pid as number]) - cpu0) * 1e6) / values.requests;
          const key = `${scenario.key}/${test}/${server.key}`;
          const list = results.get(key) ?? [];
          list.push({ ...r, us });
          results.set(key, list);
          process.stderr.write(
            `round ${round} ${scenario.label} ${test} ${server.label}: ${Math.round(r.rps)} cmd/s, ${us.toFixed(2)} µs CPU/cmd, p50 ${r.p50} ms, p99 ${r.p99} ms\n`,
          );
        }
      } finally {
        await stopTree(child);
      }
    }
  }
}

const lines = [
  `Machine: ${cpus().length} × ${cpus()[0]?.model ?? 'unknown CPU'}, Linux ${release()}, Node ${process.version}, ${execFileSync('redis-benchmark', ['--version']).toString().trim()}.`,
  `${values.connections} connections, ${values.requests} commands per test, ${values.rounds} rounds interleaved; medians.`,
  '',
  '| commands | test | server | commands/s | server CPU µs/cmd | CPU vs redis | p50 ms | p99 ms |',
  '|---|---|---|---:|---:|---:|---:|---:|',
];
for (const scenario of SCENARIOS) {
  for (const test of ['SET', 'GET']) {
    const redisUs = median((results.get(`${scenario.key}/${test}/redis`) ?? []).map((s) => s.us));
    for (const server of SERVERS) {
      const list = results.get(`${scenario.key}/${test}/${server.key}`) ?? [];
      const us = median(list.map((s) => s.us));
      const ratio = Number.isNaN(redisUs) ? '–' : `${(us / redisUs).toFixed(2)}×`;
      lines.push(
        `| ${scenario.label} | ${test} | ${server.label} | ${Math.round(median(list.map((s) => s.rps))).toLocaleString('en-US')} | ${us.toFixed(2)} | ${ratio} | ${median(list.map((s) => s.p50)).toFixed(3)} | ${median(list.map((s) => s.p99)).toFixed(3)} |`,
      );
    }
  }
}
console.log(lines.join('\n'));
