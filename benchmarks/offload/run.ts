/**
 * Offload benchmark: what CPU-bound work does to the latency of everything else, run inline on
 * the loop vs offloaded to the pool. One server process (examples/offload-server.ts serving in
 * its own process, one pool thread) gets open-loop load (./load.ts): `GET /plaintext` at a fixed rate, plus
 * `GET /hash?rounds=N` (PBKDF2-SHA256, synchronous) at a fixed rate — the same hash work per
 * second in every mode. Modes: `inline` (the hash runs in the handler, on the loop), `offload`
 * (on a pool thread), and `no hash` (plaintext alone, the floor). Runs are interleaved, every run
 * on a fresh server; medians over the rounds.
 *
 *   npm run build && node dist/benchmarks/offload/run.js --rounds 3 --duration 5 --svg docs/img/offload-bench.svg
 *
 * Reports plaintext latency percentiles (from the moment each request was written), the hash requests'
 * latency, and the server's CPU time (all its threads, from /proc) as a share of one core.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { cpus, loadavg, release } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { listOption, parseInteger, scriptCli, usageError } from '../common/cli.js';
import { assertPortFree, cpuSeconds, median, stopTree, tree, waitForPort } from '../common/measure.js';
import { barChartSvg, writeSvg } from '../common/svg.js';

const here = dirname(fileURLToPath(import.meta.url));
const values = scriptCli(import.meta.url, {
  rounds: { type: 'string', default: '3', integer: [1, 1000] },
  duration: { type: 'string', default: '5', number: [0.1, 86_400] },
  port: { type: 'string', default: '19080', integer: [1, 65535] },
  'plain-rate': { type: 'string', default: '4000', number: [0, 1_000_000] },
  'plain-connections': { type: 'string', default: '16', integer: [0, 10_000] },
  /** Hash scenarios: rounds@requests-per-second, comma-separated. */
  hash: { type: 'string', default: '10000@40,50000@8' },
  svg: { type: 'string' },
});

const PORT = String(values.port);
const SERVER = join(here, '..', '..', 'examples', 'offload-server.js');
const LOAD = join(here, 'load.js');

interface Scenario {
  readonly key: string;
  readonly label: string;
  readonly rounds: number;
  readonly rate: number;
}
interface Mode {
  readonly key: 'none' | 'inline' | 'offload';
  readonly label: string;
  readonly color: string;
}
const MODES: Record<Mode['key'], Mode> = {
  none: { key: 'none', label: 'no hash (floor)', color: '#7f7f7f' },
  inline: { key: 'inline', label: 'hash inline on the loop', color: '#d62728' },
  offload: { key: 'offload', label: 'hash offloaded to the pool', color: '#1f77b4' },
};

const scenarios: Scenario[] = values.hash.split(',').map((s) => {
  const [rounds, rate] = listOption('hash', s.replace('@', ','), (name, t) => parseInteger(name, t, 1, 10_000_000));
  if (rounds === undefined || rate === undefined || !/^\d+@\d+$/.test(s))
    usageError(`--hash: expected rounds@rate, got ${s}`);
  return { key: s, label: `hash ${rounds} rounds × ${rate}/s`, rounds, rate };
});

interface Percentiles {
  sent: number;
  answered: number;
  status: Record<string, number>;
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
}
interface Run {
  plain: Percentiles;
  hash: Percentiles | undefined;
  /** Server CPU over the run, in cores (1 = one core busy all the time). */
  cores: number;
}

async function oneRun(mode: Mode, sc: Scenario): Promise<Run> {
  // workers 0: the process serves itself (no master), so its CPU time is the loop's and the pool's.
  const args = [SERVER, '--host', '127.0.0.1', '--port', PORT, '--workers', '0', '--threads', '1'];
  if (mode.key === 'inline') args.push('--inline');
  await assertPortFree(values.port);
  const server: ChildProcess = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'inherit'] });
  try {
    await waitForPort(values.port);
    const pids = tree(server.pid as number);
    const cpu0 = cpuSeconds(pids);
    const t0 = performance.now();
    const load = spawn(
      process.execPath,
      [
        LOAD,
        '--port',
        PORT,
        '--plain-rate',
        String(values['plain-rate']),
        '--plain-connections',
        String(values['plain-connections']),
        '--hash-rate',
        mode.key === 'none' ? '0' : String(sc.rate),
        '--rounds',
        String(sc.rounds),
        '--duration',
        String(values.duration),
        '--warmup',
        '1',
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let out = '';
    load.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
    });
    await once(load, 'exit');
    const cores = (cpuSeconds(tree(server.pid as number).concat(pids)) - cpu0) / ((performance.now() - t0) / 1000);
    const report = JSON.parse(out) as { plaintext: Percentiles; hash?: Percentiles };
    return { plain: report.plaintext, hash: report.hash, cores };
  } finally {
    await stopTree(server, { graceMs: 5000, settleMs: 0 });
  }
}

const results = new Map<string, Run[]>();
const load0 = loadavg()[0] ?? 0;
const rounds = values.rounds;
for (let round = 1; round <= rounds; round++) {
  const plan: Array<[Mode, Scenario]> = [[MODES.none, { key: 'none', label: 'no hash', rounds: 1, rate: 0 }]];
  for (const sc of scenarios) plan.push([MODES.inline, sc], [MODES.offload, sc]);
  for (const [mode, sc] of plan) {
    const r = await oneRun(mode, sc);
    const key = `${sc.key}/${mode.key}`;
    results.set(key, [...(results.get(key) ?? []), r]);
    const ms = (us: number) => (us / 1000).toFixed(2);
    process.stderr.write(
      `round ${round} ${sc.label} · ${mode.label}: plaintext p50 ${ms(r.plain.p50)} ms, p99 ${ms(r.plain.p99)} ms, p99.9 ${ms(r.plain.p999)} ms; ` +
        `hash p50 ${r.hash ? ms(r.hash.p50) : '–'} ms; server ${(r.cores * 100).toFixed(0)}% of a core\n`,
    );
  }
}

const rows: Array<{ sc: string; mode: Mode; label: string; runs: Run[] }> = [];
rows.push({ sc: 'none', mode: MODES.none, label: 'no hash', runs: results.get('none/none') ?? [] });
for (const sc of scenarios) {
  for (const mode of [MODES.inline, MODES.offload]) {
    rows.push({ sc: sc.key, mode, label: sc.label, runs: results.get(`${sc.key}/${mode.key}`) ?? [] });
  }
}
const med = (runs: Run[], f: (r: Run) => number | undefined) => median(runs.map((r) => f(r) ?? Number.NaN));
const ms = (us: number) => (Number.isNaN(us) ? '–' : (us / 1000).toFixed(2));
const lines = [
  `Machine: ${cpus().length} × ${cpus()[0]?.model ?? 'unknown CPU'}, Linux ${release()}, Node ${process.version}; load average ${load0.toFixed(2)} at the start, ${(loadavg()[0] ?? 0).toFixed(2)} at the end.`,
  `One server process (no master), one pool thread. Plaintext ${values['plain-rate']} req/s over ${values['plain-connections']} connections, hash requests over 4; open loop, latency from each request's write; ${values.duration} s measured after 1 s of warm-up, ${rounds} rounds interleaved; medians.`,
  '',
  '| load | where the hash runs | plaintext p50 ms | p90 ms | p99 ms | p99.9 ms | hash p50 ms | hash p99 ms | server CPU (cores) | non-200 |',
  '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|',
];
for (const row of rows) {
  const bad = row.runs.reduce(
    (n, r) =>
      n +
      (r.plain.sent - (r.plain.status['200'] ?? 0)) +
      (r.hash === undefined ? 0 : r.hash.sent - (r.hash.status['200'] ?? 0)),
    0,
  );
  lines.push(
    `| ${row.label} | ${row.mode.key === 'none' ? '–' : row.mode.key} | ${ms(med(row.runs, (r) => r.plain.p50))} | ${ms(med(row.runs, (r) => r.plain.p90))} | ${ms(med(row.runs, (r) => r.plain.p99))} | ${ms(med(row.runs, (r) => r.plain.p999))} | ${ms(med(row.runs, (r) => r.hash?.p50))} | ${ms(med(row.runs, (r) => r.hash?.p99))} | ${med(row.runs, (r) => r.cores).toFixed(2)} | ${bad} |`,
  );
}
console.log(lines.join('\n'));

if (values.svg !== undefined) {
  const panels = (
    [
      ['p99', 'plaintext p99 latency, ms (lower is better)'],
      ['p999', 'plaintext p99.9 latency, ms (lower is better)'],
    ] as const
  ).map(([metric, title]) => ({
    title,
    format: (v: number) => (v / 1000).toFixed(2),
    bars: rows.map((row) => ({
      label: row.mode.key === 'none' ? row.mode.label : `${row.label} · ${row.mode.label}`,
      value: med(row.runs, (r) => r.plain[metric]),
      color: row.mode.color,
      // One scale for the whole panel: the floor and both modes compare directly.
      group: 'all',
    })),
  }));
  writeSvg(
    values.svg,
    barChartSvg('Offload benchmark: plaintext latency with CPU-bound hashing inline or offloaded', panels, {
      panelHeight: 150,
      labelWidth: 400,
    }),
  );
}
