/**
 * Echo benchmark: multireactor's echo server against a node:net echo server with the same
 * framing, under the same load from our own generator (benchmarks/echo/load.ts), run side by
 * side in one session. Servers are run interleaved (A B C A B C …) and the table reports
 * medians, as bench-ref/README.md recommends on a noisy 2-core machine. Besides frames/s it
 * reports server CPU per frame (utime + stime from /proc/PID/stat over the run, divided by the
 * frames echoed), which is much steadier than throughput when the load generator shares the box.
 *
 *   npm run bench -- --rounds 5 --duration 5 --connections 50 --sizes 64,4096 --window 16
 */
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { cpus, release } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { listOption, parseInteger, scriptCli } from '../common/cli.js';

const here = dirname(fileURLToPath(import.meta.url));
const dist = join(here, '..', '..');

const values = scriptCli(import.meta.url, {
  rounds: { type: 'string', default: '3', integer: [1, 1000] },
  duration: { type: 'string', default: '5', number: [0.1, 86_400] },
  connections: { type: 'string', default: '50', integer: [1, 100_000] },
  sizes: { type: 'string', default: '64,4096' },
  window: { type: 'string', default: '16', integer: [1, 100_000] },
  servers: { type: 'string', default: 'epoll-level,epoll-edge,poll-level,node-net' },
});

interface ServerSpec {
  readonly key: string;
  readonly label: string;
  readonly args: readonly string[];
}

const ALL: readonly ServerSpec[] = [
  {
    key: 'epoll-level',
    label: 'multireactor epoll/level',
    args: [join(dist, 'examples', 'echo-server.js'), '--poller', 'epoll', '--trigger', 'level'],
  },
  {
    key: 'epoll-edge',
    label: 'multireactor epoll/edge',
    args: [join(dist, 'examples', 'echo-server.js'), '--poller', 'epoll', '--trigger', 'edge'],
  },
  {
    key: 'poll-level',
    label: 'multireactor poll/level',
    args: [join(dist, 'examples', 'echo-server.js'), '--poller', 'poll', '--trigger', 'level'],
  },
  { key: 'node-net', label: 'node:net (baseline)', args: [join(here, 'node-net-echo.js')] },
];
const servers = values.servers.split(',').map((k) => {
  const s = ALL.find((x) => x.key === k);
  if (s === undefined) throw new Error(`unknown server ${k}; known: ${ALL.map((x) => x.key).join(', ')}`);
  return s;
});

const ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;

/** utime + stime of a process, in seconds (/proc/PID/stat fields 14 and 15). */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name (field 2) may contain spaces; fields after it start behind the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / ticksPerSecond;
}

async function startServer(spec: ServerSpec) {
  const child = spawn(process.execPath, [...spec.args, '--host', '127.0.0.1', '--port', '0'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /listening on .*:(\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    child.once('exit', (code) => reject(new Error(`${spec.label} exited early with ${code}`)));
  });
  return { child, port };
}

interface LoadResult {
  frames: number;
  framesPerSecond: number;
  errors: number;
}

async function load(port: number, size: number): Promise<LoadResult> {
  const child = spawn(
    process.execPath,
    [
      join(here, 'load.js'),
      '--port',
      String(port),
      '--connections',
      String(values.connections),
      '--size',
      String(size),
      '--window',
      String(values.window),
      '--duration',
      String(values.duration),
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  let out = '';
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString();
  });
  const [code] = await once(child, 'exit');
  if (code !== 0) throw new Error(`load generator exited with ${code}`);
  return JSON.parse(out) as LoadResult;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

const sizes = listOption('sizes', values.sizes, (name, t) => parseInteger(name, t, 0, 65535));
const rounds = values.rounds;
const results = new Map<string, { fps: number[]; us: number[]; errors: number }>();

for (const size of sizes) {
  for (let round = 1; round <= rounds; round++) {
    for (const spec of servers) {
      const { child, port } = await startServer(spec);
      const cpu0 = cpuSeconds(child.pid as number);
      const r = await load(port, size);
      const cpu1 = cpuSeconds(child.pid as number);
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      await exited;
      const key = `${spec.key}/${size}`;
      const acc = results.get(key) ?? { fps: [], us: [], errors: 0 };
      acc.fps.push(r.framesPerSecond);
      acc.us.push(((cpu1 - cpu0) * 1e6) / Math.max(1, r.frames));
      acc.errors += r.errors;
      results.set(key, acc);
      process.stderr.write(
        `size ${size} round ${round} ${spec.label}: ${r.framesPerSecond} frames/s, ${(((cpu1 - cpu0) * 1e6) / Math.max(1, r.frames)).toFixed(2)} µs CPU/frame\n`,
      );
    }
  }
}

const lines: string[] = [];
lines.push(
  `Machine: ${cpus().length} × ${cpus()[0]?.model ?? 'unknown CPU'}, Linux ${release()}, Node ${process.version}.`,
  `Load: ${values.connections} connections × ${values.window} frames in flight, ${values.duration} s per run, ${rounds} rounds interleaved; medians.`,
  '',
  '| server | frame payload | frames/s | server CPU µs/frame | CPU/frame vs node:net | errors |',
  '|---|---:|---:|---:|---:|---:|',
);
for (const size of sizes) {
  const base = results.get(`node-net/${size}`);
  const baseUs = base ? median(base.us) : Number.NaN;
  for (const spec of servers) {
    const r = results.get(`${spec.key}/${size}`);
    if (r === undefined) continue;
    const us = median(r.us);
    lines.push(
      `| ${spec.label} | ${size} B | ${Math.round(median(r.fps)).toLocaleString('en-US')} | ${us.toFixed(2)} | ${Number.isNaN(baseUs) ? '–' : `${(us / baseUs).toFixed(2)}×`} | ${r.errors} |`,
    );
  }
}
console.log(lines.join('\n'));
