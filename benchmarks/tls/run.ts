/**
 * TLS benchmark: multireactor's HTTPS plaintext server against nginx terminating TLS and node:https
 * under node:cluster, 2 processes each, a P-256 certificate made with `openssl req`, under wrk:
 *   keepalive   — `wrk -t1 -c50 https://…`: records on open connections;
 *   close       — `-H "Connection: close"`: a new connection per request. wrk keeps the session
 *                 of the last connection and offers it on the next (TLS 1.3 tickets), so these are
 *                 resumed handshakes: ECDHE, but no certificate and no signature;
 *   close-full  — the same with resumption off on every server: a full handshake per request.
 * Servers interleaved, each run on a fresh server after a 1 s warm-up, medians over the rounds.
 * Reports requests/s, server CPU time per request (utime+stime of every process of the server's
 * tree, from /proc, over the measured run), and wrk's p50/p99 latency.
 *
 *   apt-get install wrk nginx openssl     # benchmark tools only; tests never need wrk or nginx
 *   npm run build
 *   npm run bench:tls                     # or: node dist/benchmarks/tls/run.js --rounds 3 --duration 5
 *
 * Targets (issue 18): keep-alive CPU per request ≤ nginx's; a full handshake ≤ 1.2× nginx's CPU;
 * both far below node:https.
 */
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, release, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
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

const here = dirname(fileURLToPath(import.meta.url));
const values = scriptCli(import.meta.url, {
  rounds: { type: 'string', default: '3' },
  duration: { type: 'string', default: '5' },
  workers: { type: 'string', default: '2' },
  connections: { type: 'string', default: '50' },
  servers: { type: 'string', default: 'multireactor,nginx,node-https' },
  scenarios: { type: 'string', default: 'keepalive,close,close-full' },
  port: { type: 'string', default: '18443' },
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
const URL = `https://127.0.0.1:${PORT}/plaintext`;
const work = mkdtempSync(join(tmpdir(), 'mr-tls-bench-'));
const CERT = join(work, 'cert.pem');
const KEY = join(work, 'key.pem');
// The certificate of the reference nginx setup (bench-ref/nginx-tls.conf): P-256, self-signed.
execFileSync(
  'openssl',
  ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '30'].concat([
    '-subj',
    '/CN=localhost',
    '-keyout',
    KEY,
    '-out',
    CERT,
  ]),
  { stdio: 'ignore' },
);

interface Scenario {
  readonly label: string;
  readonly close: boolean;
  /** Resumption off on the servers: every new connection is a full handshake. */
  readonly full: boolean;
}
const SCENARIOS: Record<string, Scenario> = {
  keepalive: { label: 'keep-alive', close: false, full: false },
  close: { label: 'new connection per request (resumed)', close: true, full: false },
  'close-full': { label: 'new connection per request (full handshake)', close: true, full: true },
};

interface ServerSpec {
  readonly key: string;
  readonly label: string;
  start(full: boolean): ChildProcess;
}

/** nginx as bench-ref/nginx-tls.conf has it, on our port and worker count; tickets and cache off for a full handshake. */
function nginxConf(full: boolean): string {
  const resumption = full
    ? '  ssl_session_tickets off;\n  ssl_session_cache off;\n'
    : '  ssl_session_cache shared:SSL:10m;\n';
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
    listen 127.0.0.1:${PORT} ssl reuseport;
    ssl_certificate ${CERT};
    ssl_certificate_key ${KEY};
    default_type text/plain;
    location / { return 200 "Hello, World!"; }
  }
}
`;
}

const node = (script: string, full: boolean, extra: string[] = []) =>
  spawn(
    process.execPath,
    [join(here, script), '--cert', CERT, '--key', KEY, '--port', String(PORT), '--workers', WORKERS, ...extra].concat(
      full ? ['--no-resumption'] : [],
    ),
    { stdio: ['ignore', 'ignore', 'inherit'] },
  );

const SERVERS: Record<string, ServerSpec> = {
  multireactor: { key: 'multireactor', label: 'multireactor', start: (full) => node('https-server.js', full) },
  nginx: {
    key: 'nginx',
    label: 'nginx',
    start: (full) => {
      const dir = join(work, 'nginx');
      mkdirSync(join(dir, 'tmp'), { recursive: true });
      writeFileSync(join(dir, 'nginx.conf'), nginxConf(full));
      return spawn('nginx', ['-p', dir, '-c', join(dir, 'nginx.conf')], { stdio: ['ignore', 'ignore', 'inherit'] });
    },
  },
  'node-https': {
    key: 'node-https',
    label: 'node:https cluster',
    start: (full) => node('node-https-cluster.js', full),
  },
};

function hasNginx(): boolean {
  try {
    execFileSync('nginx', ['-v'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

function wrk(scenario: Scenario, seconds: string): WrkResult {
  const args = ['--latency', '-d', `${seconds}s`, '-t1', `-c${values.connections}`];
  if (scenario.close) args.push('-H', 'Connection: close');
  return parseWrk(execFileSync('wrk', [...args, URL], { encoding: 'utf8' }));
}

const servers = values.servers
  .split(',')
  .filter((k) => k !== 'nginx' || hasNginx())
  .map((k) => {
    const s = SERVERS[k];
    if (s === undefined) throw new Error(`unknown server ${k}`);
    return s;
  });
if (!servers.some((s) => s.key === 'nginx')) console.error('nginx is not installed (apt-get install nginx): skipped');
const scenarios = values.scenarios.split(',');
type Result = { rps: number[]; us: number[]; p50: number[]; p99: number[]; errors: string[] };
const results = new Map<string, Result>();

try {
  for (const sc of scenarios) {
    const scenario = SCENARIOS[sc];
    if (scenario === undefined) throw new Error(`unknown scenario ${sc}`);
    for (let round = 1; round <= Number(values.rounds); round++) {
      for (const server of servers) {
        await assertPortFree(PORT);
        const child = server.start(scenario.full);
        try {
          await waitForPort(PORT);
          wrk(scenario, '1'); // warm-up: JIT, sessions
          const pids = tree(child.pid as number);
          const cpu0 = cpuSeconds(pids);
          const r = wrk(scenario, values.duration);
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
} finally {
  rmSync(work, { recursive: true, force: true });
}

const lines = [
  `Machine: ${cpus().length} × ${cpus()[0]?.model ?? 'unknown CPU'}, Linux ${release()}, Node ${process.version} (OpenSSL ${process.versions.openssl}), ${spawnSync('wrk', ['-v']).stdout.toString().split('\n')[0]?.trim() ?? 'wrk'}.`,
  `${WORKERS} server processes each; wrk -t1 -c${values.connections}, ${values.duration} s per run after a 1 s warm-up, ${values.rounds} rounds interleaved; medians. P-256 certificate.`,
  '',
  '| scenario | server | req/s | server CPU µs/req | CPU/req vs nginx | CPU/req vs node:https | p50 ms | p99 ms |',
  '|---|---|---:|---:|---:|---:|---:|---:|',
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
      `| ${SCENARIOS[sc]?.label} | ${server.label} | ${Math.round(median(r.rps)).toLocaleString('en-US')} | ${us.toFixed(1)} | ${Number.isNaN(nginxUs) ? '–' : `${(us / nginxUs).toFixed(2)}×`} | ${Number.isNaN(nodeUs) ? '–' : `${(us / nodeUs).toFixed(2)}×`} | ${median(r.p50).toFixed(2)} | ${median(r.p99).toFixed(2)} |`,
    );
    if (r.errors.length > 0) lines.push(`|  | (wrk: ${r.errors[0]}) | | | | | | |`);
  }
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
                label: `${SCENARIOS[sc]?.label} · ${server.label}`,
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
