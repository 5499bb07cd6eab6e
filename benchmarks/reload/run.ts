/**
 * Reload benchmark: answers per 100 ms while the server is reloaded twice (SIGUSR2) and loses a
 * worker (SIGKILL), for multireactor's master and for node:cluster restarted worker by worker,
 * under the same closed-loop load (benchmarks/common/closed-loop.ts: 50 connections). With
 * `--protocol line` both speak line-app.ts's protocol and close politely when draining, so the
 * comparison is the process model; with `--protocol http` it is multireactor's HTTP stage against
 * node:http, each draining its own way (keep-alive connections included).
 *
 *   npm run build && node dist/benchmarks/reload/run.js --rounds 3 --workers 2 --svg docs/img/reload-timeline.svg
 *   node dist/benchmarks/reload/run.js --protocol http --rounds 3 --workers 2 --svg docs/img/reload-http-timeline.svg
 *
 * Prints a markdown table (failures, answers/s before, during and after each event, the lowest
 * 100 ms window) and writes an SVG chart of the median timeline.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, release } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { scriptCli } from '../common/cli.js';
import { HTTP, LINE, type LoadReport, startLoad } from '../common/closed-loop.js';

const here = dirname(fileURLToPath(import.meta.url));
const values = scriptCli(import.meta.url, {
  rounds: { type: 'string', default: '3', integer: [1, 1000] },
  workers: { type: 'string', default: '2', integer: [1, 1024] },
  connections: { type: 'string', default: '50', integer: [1, 10_000] },
  svg: { type: 'string' },
  protocol: { type: 'string', default: 'line', choices: ['line', 'http'] },
});
const http = values.protocol === 'http';

const SERVERS = [
  {
    key: 'multireactor',
    label: http ? 'multireactor HTTP (master + workers)' : 'multireactor (master + workers)',
    args: [join(here, '..', 'common', http ? 'http-app.js' : 'line-app.js')],
  },
  {
    key: 'node-cluster',
    label: http ? 'node:cluster + node:http' : 'node:cluster + node:net',
    args: [join(here, 'node-cluster.js'), '--protocol', values.protocol],
  },
] as const;

/** The script of one run (ms from the start of the load). */
const EVENTS = [
  { at: 2000, what: 'SIGUSR2 (reload)' },
  { at: 4500, what: 'SIGUSR2 (reload)' },
  { at: 7000, what: 'SIGKILL one worker' },
] as const;
const DURATION = 10_000;

interface Run {
  readonly report: LoadReport;
}

async function startServer(
  args: readonly string[],
): Promise<{ child: ChildProcess; port: number; ask: (cmd: string) => Promise<string> }> {
  const child = spawn(
    process.execPath,
    [...args, '--workers', String(values.workers), '--host', '127.0.0.1', '--port', '0'],
    {
      stdio: ['pipe', 'pipe', 'inherit'],
    },
  );
  let out = '';
  child.stdout?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  const port = await new Promise<number>((resolve, reject) => {
    const poll = setInterval(() => {
      const m = /listening on .*:(\d+)/.exec(out);
      if (m) {
        clearInterval(poll);
        resolve(Number(m[1]));
      }
    }, 10);
    child.once('exit', (code) => {
      clearInterval(poll);
      reject(new Error(`${args[0]} exited with ${code}`));
    });
  });
  const ask = async (cmd: string): Promise<string> => {
    const from = out.length;
    child.stdin?.write(`${cmd}\n`);
    for (;;) {
      const m = new RegExp(`^${cmd} (.*)$`, 'm').exec(out.slice(from));
      if (m) return m[1] as string;
      await new Promise((r) => setTimeout(r, 10));
    }
  };
  return { child, port, ask };
}

async function oneRun(args: readonly string[]): Promise<Run> {
  const { child, port, ask } = await startServer(args);
  const load = startLoad(port, values.connections, { protocol: http ? HTTP : LINE });
  const t0 = performance.now();
  for (const e of EVENTS) {
    await new Promise((r) => setTimeout(r, e.at - (performance.now() - t0)));
    if (e.what.startsWith('SIGUSR2')) child.kill('SIGUSR2');
    else {
      const workers = JSON.parse(await ask('workers')) as Array<{ pid: number }>;
      process.kill((workers[0] as { pid: number }).pid, 'SIGKILL');
    }
  }
  await new Promise((r) => setTimeout(r, DURATION - (performance.now() - t0)));
  const report = await load.stop();
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  await exited;
  return { report };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length === 0 ? 0 : s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

const ticks = DURATION / 100;
const rounds = values.rounds;
const series = new Map<string, number[]>();
const rows: string[] = [];
for (const server of SERVERS) {
  const runs: Run[] = [];
  for (let r = 0; r < rounds; r++) {
    runs.push(await oneRun(server.args));
    const rep = (runs.at(-1) as Run).report;
    process.stderr.write(
      `${server.key} round ${r + 1}: ${rep.answered} answers, ${rep.unanswered} unanswered, resets ${JSON.stringify(rep.resets)}, failed connects ${JSON.stringify(rep.connectFailures)}, failures at ms ${JSON.stringify(rep.failureTimes)}\n`,
    );
  }
  // Median answers/s per 100 ms window across rounds.
  const med = Array.from({ length: ticks }, (_, i) => median(runs.map((run) => (run.report.perTick[i] ?? 0) * 10)));
  series.set(server.key, med);
  const sum = (f: (r: LoadReport) => number) => runs.reduce((a, run) => a + f(run.report), 0);
  // Failures before the kill are the reloads' (there must be none); after it, the killed
  // worker's own connections (lost with it, inevitably).
  const killAt = (EVENTS[2] as { at: number }).at;
  const beforeKill = sum((r) => r.failureTimes.filter((t) => t < killAt).length);
  const afterKill = sum((r) => r.failureTimes.filter((t) => t >= killAt).length);
  const avg = (from: number, to: number) => Math.round(median(med.slice(from / 100, to / 100)));
  const low = (from: number, to: number) => Math.round(Math.min(...med.slice(from / 100, to / 100)));
  rows.push(
    `| ${server.label} | ${avg(500, 2000).toLocaleString('en-US')} | ${low(2000, 3500).toLocaleString('en-US')} | ${low(4500, 6000).toLocaleString('en-US')} | ${low(7000, 8500).toLocaleString('en-US')} | ${avg(8500, 10_000).toLocaleString('en-US')} | ${beforeKill} | ${afterKill} |`,
  );
}

console.log(
  [
    `Machine: ${cpus().length} × ${cpus()[0]?.model ?? 'unknown CPU'}, Linux ${release()}, Node ${process.version}.`,
    `${values.workers} workers, ${values.connections} connections in a closed loop, ${rounds} rounds; medians per 100 ms window, as answers/s.`,
    '',
    '| server | steady (0.5–2 s) | lowest 100 ms after reload 1 | lowest after reload 2 | lowest after kill -9 | steady (8.5–10 s) | failures during the reloads | failures at the kill -9 |',
    '|---|---:|---:|---:|---:|---:|---:|---:|',
    ...rows,
  ].join('\n'),
);

if (values.svg !== undefined) {
  const w = 900;
  const h = 390;
  const pad = { l: 70, r: 20, t: 30, b: 70 };
  const max = Math.max(1, ...[...series.values()].flat()) * 1.1;
  const x = (i: number) => pad.l + (i / (ticks - 1)) * (w - pad.l - pad.r);
  const y = (v: number) => h - pad.b - (v / max) * (h - pad.t - pad.b);
  const colors: Record<string, string> = { multireactor: '#1f77b4', 'node-cluster': '#d62728' };
  const lines = [...series].map(
    ([key, s]) =>
      `<polyline fill="none" stroke="${colors[key]}" stroke-width="1.5" points="${s.map((v, i) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(' ')}"/>`,
  );
  const marks = EVENTS.map(
    (e) =>
      `<line x1="${x(e.at / 100)}" x2="${x(e.at / 100)}" y1="${pad.t}" y2="${h - pad.b}" stroke="#888" stroke-dasharray="4 3"/><text x="${x(e.at / 100) + 4}" y="${pad.t + 12}" font-size="11" fill="#555">${e.what}</text>`,
  );
  const yTicks = Array.from({ length: 5 }, (_, k) => {
    const v = (max / 4) * k;
    return `<text x="${pad.l - 6}" y="${y(v) + 4}" font-size="11" text-anchor="end">${Math.round(v / 1000)}k</text><line x1="${pad.l}" x2="${w - pad.r}" y1="${y(v)}" y2="${y(v)}" stroke="#eee"/>`;
  });
  const xTicks = Array.from(
    { length: 11 },
    (_, s) =>
      `<text x="${x(s * 10 - (s === 10 ? 1 : 0))}" y="${h - pad.b + 16}" font-size="11" text-anchor="middle">${s}s</text>`,
  );
  const legend = [...series.keys()].map(
    (key, i) =>
      `<rect x="${pad.l + i * 300}" y="${h - 22}" width="12" height="3" fill="${colors[key]}"/><text x="${pad.l + 16 + i * 300}" y="${h - 18}" font-size="11">${SERVERS.find((s) => s.key === key)?.label}</text>`,
  );
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" font-family="sans-serif" role="img">
<title>Answers per second per 100 ms across two reloads and a killed worker</title>
<rect width="100%" height="100%" fill="white"/>
<text x="${pad.l}" y="18" font-size="13">Answers/s per 100 ms (median of ${rounds} rounds): reloads and a killed worker</text>
${yTicks.join('\n')}
${xTicks.join('\n')}
${marks.join('\n')}
${lines.join('\n')}
${legend.join('\n')}
</svg>
`;
  mkdirSync(dirname(values.svg), { recursive: true });
  writeFileSync(values.svg, svg);
  process.stderr.write(`wrote ${values.svg}\n`);
}
