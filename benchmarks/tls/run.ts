/**
 * TLS benchmark: multireactor's HTTPS plaintext server against nginx terminating TLS and node:https
 * under node:cluster, 2 processes each, a P-256 certificate made with `openssl req`, under wrk:
 *   keepalive       — `wrk -t1 -c50 https://…`: records on open connections;
 *   close           — `-H "Connection: close"`: a new connection per request. wrk keeps the session
 *                     of the last connection and offers it on the next (TLS 1.3 tickets), so these
 *                     are resumed handshakes: ECDHE, but no certificate and no signature;
 *   close-full      — the same with resumption off on every server: a full handshake per request
 *                     (nginx also sends no ticket then, `ssl_conf_command NumTickets 0`, as
 *                     multireactor; node:https has no way to stop its two unusable tickets);
 *   plain-keepalive, plain-close — the same servers without TLS (node:http for node:https): the
 *                     baseline that shows what TLS itself adds to each.
 * Per scenario every server is started fresh, each on its own port, and warmed up: a JIT tiers a
 * fresh worker's per-connection code up over its first several thousand connections, which at a
 * few hundred handshakes per second per worker takes tens of seconds (`--warmup`, for the
 * handshake scenarios; 5 s at most for the others, which reach thousands of requests at once); the
 * warm-up's own CPU per request is reported too. Then rounds alternate between the warm servers
 * (an idle one costs nothing); medians over the rounds, with their spread. Reports requests/s,
 * server CPU time per request (utime+stime of every process of the server's tree, from /proc, over
 * the measured run), and wrk's p50/p99 latency. `--ab DIR` adds another build of
 * multireactor (DIR holds its checkout, built) as one more server, for A/B comparisons;
 * `--ab-args "ARGS"` passes more arguments to that server's https-server.js — with `--ab .` an A/B
 * of one option within this build (`--ab . --ab-args="--defer-accept false"`: with `=`, as the value
 * starts with a dash).
 *
 *   apt-get install wrk nginx openssl     # benchmark tools only; tests never need wrk or nginx
 *   npm run build
 *   npm run bench:tls                     # or: node dist/benchmarks/tls/run.js --rounds 5 --duration 5
 *
 * Targets (issue 18): keep-alive CPU per request ≤ nginx's; a full handshake ≤ 1.2× nginx's CPU;
 * both far below node:https.
 */

import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, release, tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { scriptCli } from '../common/cli.js';
import {
  assertPortFree,
  cpuSeconds,
  median,
  parseWrk,
  requireWrk,
  stopTree,
  tree,
  type WrkResult,
  waitForPort,
} from '../common/measure.js';
import { barChartSvg, writeSvg } from '../common/svg.js';
import { makeBenchCertificate } from './certificate.js';

const here = dirname(fileURLToPath(import.meta.url));
const values = scriptCli(import.meta.url, {
  rounds: { type: 'string', default: '5' },
  duration: { type: 'string', default: '5' },
  warmup: { type: 'string', default: '20' },
  workers: { type: 'string', default: '2' },
  connections: { type: 'string', default: '50' },
  servers: { type: 'string', default: 'multireactor,nginx,node-https' },
  scenarios: { type: 'string', default: 'keepalive,close,close-full,plain-keepalive,plain-close' },
  port: { type: 'string', default: '18443' }, // the first server's; the others take the next ones
  ab: { type: 'string' },
  'ab-args': { type: 'string' },
  svg: { type: 'string' },
});

requireWrk();
try {
  execFileSync('openssl', ['version'], { stdio: 'ignore' });
} catch {
  console.error('the openssl command is missing (apt-get install openssl): it makes the certificate');
  process.exit(2);
}

const PORT = Number(values.port);
const WORKERS = values.workers;
const url = (tls: boolean, port: number) => `${tls ? 'https' : 'http'}://127.0.0.1:${port}/plaintext`;
const work = mkdtempSync(join(tmpdir(), 'mr-tls-bench-'));
// The certificate of the reference nginx setup (bench-ref/nginx-tls.conf): P-256, self-signed.
const { cert: CERT, key: KEY } = makeBenchCertificate(work);

interface Scenario {
  readonly label: string;
  readonly close: boolean;
  readonly tls: boolean;
  /** Resumption off on the servers: every new connection is a full handshake. */
  readonly full: boolean;
}
const SCENARIOS: Record<string, Scenario> = {
  keepalive: { label: 'keep-alive', close: false, tls: true, full: false },
  close: { label: 'new connection per request (resumed)', close: true, tls: true, full: false },
  'close-full': { label: 'new connection per request (full handshake)', close: true, tls: true, full: true },
  'plain-keepalive': { label: 'keep-alive, no TLS', close: false, tls: false, full: false },
  'plain-close': { label: 'new connection per request, no TLS', close: true, tls: false, full: false },
};

interface ServerSpec {
  readonly key: string;
  readonly label: string;
  /** Its name without TLS (node:https is node:http then). */
  readonly plainLabel?: string;
  start(scenario: Scenario, port: number): ChildProcess;
}

/**
 * nginx as bench-ref/nginx-tls.conf has it, on our port and worker count; tickets and cache off
 * for a full handshake — and no TLS 1.3 tickets either (OpenSSL sends two by default, stateful ones
 * when tickets are off, which no client could use with the cache off); no `ssl` for plain runs.
 */
function nginxConf(scenario: Scenario, port: number): string {
  const resumption = !scenario.tls
    ? ''
    : scenario.full
      ? '  ssl_session_tickets off;\n  ssl_session_cache off;\n  ssl_conf_command NumTickets 0;\n'
      : '  ssl_session_cache shared:SSL:10m;\n';
  const tls = scenario.tls ? `    ssl_certificate ${CERT};\n    ssl_certificate_key ${KEY};\n` : '';
  return `worker_processes ${WORKERS};
daemon off;
pid nginx.pid;
error_log nginx-error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  server_tokens off;
  keepalive_requests 100000000;
  keepalive_timeout 120s;
  client_body_temp_path tmp; proxy_temp_path tmp; fastcgi_temp_path tmp; uwsgi_temp_path tmp; scgi_temp_path tmp;
  ssl_protocols TLSv1.2 TLSv1.3;
${resumption}  server {
    listen 127.0.0.1:${port}${scenario.tls ? ' ssl' : ''} reuseport;
${tls}    default_type text/plain;
    location / { return 200 "Hello, World!"; }
  }
}
`;
}

const node = (script: string, scenario: Scenario, port: number, extra: readonly string[] = []) =>
  spawn(
    process.execPath,
    [script, '--cert', CERT, '--key', KEY, '--port', String(port), '--workers', WORKERS].concat(
      scenario.full ? ['--no-resumption'] : [],
      scenario.tls ? [] : ['--plain'],
      extra,
    ),
    { stdio: ['ignore', 'ignore', 'inherit'] },
  );

const SERVERS: Record<string, ServerSpec> = {
  multireactor: {
    key: 'multireactor',
    label: 'multireactor',
    start: (sc, port) => node(join(here, 'https-server.js'), sc, port),
  },
  nginx: {
    key: 'nginx',
    label: 'nginx',
    start: (sc, port) => {
      const dir = join(work, 'nginx');
      mkdirSync(join(dir, 'tmp'), { recursive: true });
      writeFileSync(join(dir, 'nginx.conf'), nginxConf(sc, port));
      return spawn('nginx', ['-p', dir, '-c', join(dir, 'nginx.conf')], { stdio: ['ignore', 'ignore', 'inherit'] });
    },
  },
  'node-https': {
    key: 'node-https',
    label: 'node:https cluster',
    plainLabel: 'node:http cluster',
    start: (sc, port) => node(join(here, 'node-https-cluster.js'), sc, port),
  },
};
if (values.ab !== undefined) {
  // Another build of multireactor (its checkout, built): one more server, for A/B comparisons.
  const dir = resolve(values.ab);
  const extra = values['ab-args']?.split(' ').filter((a) => a !== '') ?? [];
  SERVERS.ab = {
    key: 'ab',
    label: `multireactor (${basename(dir)}${extra.length > 0 ? ` ${extra.join(' ')}` : ''})`,
    start: (sc, port) => node(join(dir, 'dist/benchmarks/tls/https-server.js'), sc, port, extra),
  };
}

function hasNginx(): boolean {
  try {
    execFileSync('nginx', ['-v'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

function wrk(scenario: Scenario, port: number, seconds: string): WrkResult {
  const args = ['--latency', '-d', `${seconds}s`, '-t1', `-c${values.connections}`];
  if (scenario.close) args.push('-H', 'Connection: close');
  return parseWrk(execFileSync('wrk', [...args, url(scenario.tls, port)], { encoding: 'utf8' }));
}

const servers = values.servers
  .split(',')
  .concat(values.ab !== undefined ? ['ab'] : [])
  .filter((k) => k !== 'nginx' || hasNginx())
  .map((k) => {
    const s = SERVERS[k];
    if (s === undefined) throw new Error(`unknown server ${k}`);
    return s;
  });
if (!servers.some((s) => s.key === 'nginx')) console.error('nginx is not installed (apt-get install nginx): skipped');
const scenarios = values.scenarios.split(',');
for (const sc of scenarios) if (SCENARIOS[sc] === undefined) throw new Error(`unknown scenario ${sc}`);
type Result = { rps: number[]; us: number[]; cold: number[]; p50: number[]; p99: number[]; errors: string[] };
const results = new Map<string, Result>();
const label = (server: ServerSpec, scenario: Scenario) =>
  scenario.tls ? server.label : (server.plainLabel ?? server.label);

try {
  for (const sc of scenarios) {
    const scenario = SCENARIOS[sc] as Scenario;
    const handshakes = scenario.tls && scenario.close;
    // Every server of the scenario runs at once, each on its own port (an idle one costs nothing),
    // so that the rounds alternate between warm servers.
    const running: Array<{ server: ServerSpec; port: number; child: ChildProcess; pids: number[] }> = [];
    try {
      for (const [i, server] of servers.entries()) {
        const port = PORT + i;
        await assertPortFree(port);
        const child = server.start(scenario, port);
        running.push({ server, port, child, pids: [] });
        await waitForPort(port);
        // The port answers once one worker listens: wait for the others (every server here
        // runs a parent and WORKERS children), so that the CPU of all of them is counted.
        (running.at(-1) as (typeof running)[number]).pids = await wholeTree(child.pid as number, 1 + Number(WORKERS));
      }
      // Warm-up (JIT, sessions); its own CPU per request is the "warm-up" figure.
      for (const { server, port, pids } of running) {
        const cpuW = cpuSeconds(pids);
        const w = wrk(scenario, port, handshakes ? values.warmup : String(Math.min(5, Number(values.warmup))));
        const cold = ((cpuSeconds(pids) - cpuW) * 1e6) / Math.max(1, w.requests);
        const key = `${sc}/${server.key}`;
        results.set(key, { rps: [], us: [], cold: [cold], p50: [], p99: [], errors: [] });
        process.stderr.write(`${sc} warm-up ${label(server, scenario)}: ${cold.toFixed(1)} µs CPU/req\n`);
      }
      for (let round = 1; round <= Number(values.rounds); round++) {
        for (const { server, port, pids } of running) {
          const cpu0 = cpuSeconds(pids);
          const r = wrk(scenario, port, values.duration);
          const us = ((cpuSeconds(pids) - cpu0) * 1e6) / Math.max(1, r.requests);
          const acc = results.get(`${sc}/${server.key}`) as Result;
          acc.rps.push(r.rps);
          acc.us.push(us);
          acc.p50.push(r.p50);
          acc.p99.push(r.p99);
          if (r.errors !== '') acc.errors.push(r.errors);
          process.stderr.write(
            `${sc} round ${round} ${label(server, scenario)}: ${Math.round(r.rps)} req/s, ${us.toFixed(2)} µs CPU/req, p50 ${r.p50} ms, p99 ${r.p99} ms ${r.errors}\n`,
          );
        }
      }
    } finally {
      for (const { server, child } of running) {
        await stopTree(child, { signal: server.key === 'nginx' ? 'SIGQUIT' : 'SIGTERM' });
      }
    }
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}

/** The process tree of `root` once it has `count` processes (or after 10 s, as it is then). */
async function wholeTree(root: number, count: number): Promise<number[]> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const pids = tree(root);
    if (pids.length >= count || Date.now() > deadline) return pids;
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** "median (min–max)" of a list: how far the rounds spread. */
const spread = (xs: number[], digits = 1) =>
  `${median(xs).toFixed(digits)} (${Math.min(...xs).toFixed(digits)}–${Math.max(...xs).toFixed(digits)})`;

const lines = [
  `Machine: ${cpus().length} × ${cpus()[0]?.model ?? 'unknown CPU'}, Linux ${release()}, Node ${process.version} (OpenSSL ${process.versions.openssl}), ${spawnSync('wrk', ['-v']).stdout.toString().split('\n')[0]?.trim() ?? 'wrk'}.`,
  `${WORKERS} server processes each; wrk -t1 -c${values.connections}; per scenario every server started fresh and warmed up for ${values.warmup} s, then ${values.rounds} rounds of ${values.duration} s alternating between them; medians (min–max over the rounds). P-256 certificate. Load average at the end: ${loadavg()
    .map((l) => l.toFixed(1))
    .join(' ')}.`,
  '',
  '| scenario | server | req/s | server CPU µs/req | vs nginx | vs node | warm-up µs/req | p50 ms | p99 ms |',
  '|---|---|---:|---:|---:|---:|---:|---:|---:|',
];
for (const sc of scenarios) {
  const base = (k: string) => {
    const r = results.get(`${sc}/${k}`);
    return r === undefined ? Number.NaN : median(r.us);
  };
  const nginxUs = base('nginx');
  const nodeUs = base('node-https');
  for (const server of servers) {
    const r = results.get(`${sc}/${server.key}`);
    if (r === undefined) continue;
    const us = median(r.us);
    lines.push(
      `| ${SCENARIOS[sc]?.label} | ${label(server, SCENARIOS[sc] as Scenario)} | ${Math.round(median(r.rps)).toLocaleString('en-US')} | ${spread(r.us)} | ${Number.isNaN(nginxUs) ? '–' : `${(us / nginxUs).toFixed(2)}×`} | ${Number.isNaN(nodeUs) ? '–' : `${(us / nodeUs).toFixed(2)}×`} | ${median(r.cold).toFixed(1)} | ${median(r.p50).toFixed(2)} | ${median(r.p99).toFixed(2)} |`,
    );
    if (r.errors.length > 0) lines.push(`|  | (wrk: ${r.errors[0]}) | | | | | | | |`);
  }
}
// What TLS itself adds to each server: the TLS scenario's median minus the plain one's.
const pairs = [
  ['keepalive', 'plain-keepalive', 'keep-alive'],
  ['close', 'plain-close', 'new connection, resumed'],
  ['close-full', 'plain-close', 'new connection, full handshake'],
] as const;
const shares: string[] = [];
for (const [withTls, plain, what] of pairs) {
  for (const server of servers) {
    const t = results.get(`${withTls}/${server.key}`);
    const p = results.get(`${plain}/${server.key}`);
    if (t === undefined || p === undefined) continue;
    const add = median(t.us) - median(p.us);
    shares.push(
      `| ${what} | ${server.label} | ${median(p.us).toFixed(1)} | ${median(t.us).toFixed(1)} | ${add.toFixed(1)} | ${((100 * add) / median(t.us)).toFixed(0)}% |`,
    );
  }
}
if (shares.length > 0) {
  lines.push(
    '',
    'What TLS adds (medians of the runs above; µs of server CPU per request):',
    '',
    '| scenario | server | without TLS | with TLS | TLS adds | TLS share |',
    '|---|---|---:|---:|---:|---:|',
    ...shares,
  );
}
console.log(lines.join('\n'));

if (values.svg !== undefined) {
  const colors: Record<string, string> = { multireactor: '#1f77b4', nginx: '#2ca02c', 'node-https': '#d62728' };
  const panels = (
    [
      [
        'rps',
        'requests/s (higher is better)',
        (v: number) => (v >= 10_000 ? `${Math.round(v / 1000)}k` : `${Math.round(v)}`),
      ],
      ['us', 'server CPU µs per request (lower is better)', (v: number) => v.toFixed(1)],
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
                label: `${SCENARIOS[sc]?.label} · ${label(server, SCENARIOS[sc] as Scenario)}`,
                value: median(r[metric]),
                color: colors[server.key] as string,
                group: sc,
              },
            ];
      }),
    ),
  }));
  writeSvg(values.svg, barChartSvg('TLS benchmark: requests per second and server CPU per request', panels));
}
