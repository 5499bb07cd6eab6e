/**
 * What an idle TLS connection costs the server in memory. One multireactor server process
 * (`workers: 0`, https-server.ts with --expose-gc), N connections opened by this process (node:tls,
 * or node:net without TLS), each served one request — an answer of `--sizes` bytes — then left open
 * and idle. Before and after, the server collects garbage (SIGWINCH) and reports its RSS, JS heap
 * and external memory; the differences per connection are the table. Variants: plaintext HTTP (the
 * baseline), TLS with `releaseBuffers` (the default), TLS with `releaseBuffers: false`; `--ab DIR`
 * measures another build's TLS default too. Medians over `--rounds`.
 *
 *   node dist/benchmarks/tls/idle-memory.js [--connections 2000] [--large-connections 200]
 *        [--sizes 13,65536,1048576] [--rounds 3] [--ab DIR]
 *
 * Answers of 64 KiB and more use `--large-connections` connections (a build that keeps a whole
 * answer's ciphertext per connection would need gigabytes otherwise).
 */

import { Buffer } from 'node:buffer';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import tls from 'node:tls';
import { fileURLToPath } from 'node:url';
import { scriptCli } from '../common/cli.js';
import { median, stopTree, waitForPort } from '../common/measure.js';
import { makeBenchCertificate } from './certificate.js';

const here = dirname(fileURLToPath(import.meta.url));
const values = scriptCli(import.meta.url, {
  connections: { type: 'string', default: '2000', integer: [1, 20000] },
  'large-connections': { type: 'string', default: '200', integer: [1, 20000] },
  sizes: { type: 'string', default: '13,65536,1048576' },
  rounds: { type: 'string', default: '3', integer: [1, 100] },
  port: { type: 'string', default: '18460', integer: [1, 65535] },
  ab: { type: 'string' },
});

const PORT = Number(values.port);
const work = mkdtempSync(join(tmpdir(), 'mr-tls-mem-'));
const { cert: CERT, key: KEY } = makeBenchCertificate(work);

interface Variant {
  readonly label: string;
  readonly script: string;
  readonly tls: boolean;
  readonly args: readonly string[];
}
const variants: Variant[] = [
  { label: 'plain HTTP', script: join(here, 'https-server.js'), tls: false, args: ['--plain'] },
  { label: 'TLS, releaseBuffers (default)', script: join(here, 'https-server.js'), tls: true, args: [] },
  {
    label: 'TLS, releaseBuffers: false',
    script: join(here, 'https-server.js'),
    tls: true,
    args: ['--no-release-buffers'],
  },
];
if (values.ab !== undefined) {
  const dir = resolve(values.ab);
  variants.push({
    label: `TLS, releaseBuffers (${basename(dir)})`,
    script: join(dir, 'dist/benchmarks/tls/https-server.js'),
    tls: true,
    args: [],
  });
}

interface Mem {
  readonly rss: number;
  readonly heapUsed: number;
  readonly external: number;
}

class ServerProcess {
  readonly child: ChildProcess;
  private lines: string[] = [];
  private waiting: ((line: string) => void) | undefined;

  constructor(v: Variant) {
    this.child = spawn(
      process.execPath,
      ['--expose-gc', v.script, '--cert', CERT, '--key', KEY, '--port', String(PORT), '--workers', '0'].concat(
        ['--memory-signal'],
        v.args,
      ),
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let buffered = '';
    this.child.stdout?.on('data', (d: Buffer) => {
      buffered += d.toString();
      for (let i = buffered.indexOf('\n'); i >= 0; i = buffered.indexOf('\n')) {
        const line = buffered.slice(0, i);
        buffered = buffered.slice(i + 1);
        if (!line.startsWith('mem ')) continue;
        const w = this.waiting;
        this.waiting = undefined;
        if (w !== undefined) w(line);
        else this.lines.push(line);
      }
    });
  }

  /** Asks for a GC and the memory report. */
  async memory(): Promise<Mem> {
    const line = new Promise<string>((r) => {
      this.waiting = r;
    });
    this.child.kill('SIGWINCH');
    return JSON.parse((await line).slice(4)) as Mem;
  }
}

/** One connection, one request for `size` bytes, the whole answer read; resolves with the socket, left open. */
function openOne(useTls: boolean, size: number): Promise<net.Socket> {
  return new Promise((resolveSocket, reject) => {
    const request = `GET ${size === 13 ? '/plaintext' : `/bytes/${size}`} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`;
    const socket: net.Socket = useTls
      ? tls.connect({ host: '127.0.0.1', port: PORT, rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] }, () =>
          socket.write(request),
        )
      : net.connect(PORT, '127.0.0.1', () => socket.write(request));
    let head = Buffer.alloc(0);
    let want = -1;
    let got = 0;
    socket.on('data', (d: Buffer) => {
      if (want < 0) {
        head = Buffer.concat([head, d]);
        const end = head.indexOf('\r\n\r\n');
        if (end < 0) return;
        const m = /content-length: *(\d+)/i.exec(head.subarray(0, end).toString('latin1'));
        want = m === null ? 0 : Number(m[1]);
        got = head.length - end - 4;
      } else {
        got += d.length;
      }
      if (got >= want) resolveSocket(socket);
    });
    socket.on('error', reject);
  });
}

async function openMany(useTls: boolean, size: number, n: number): Promise<net.Socket[]> {
  const out: net.Socket[] = [];
  for (let i = 0; i < n; i += 50) {
    out.push(...(await Promise.all(Array.from({ length: Math.min(50, n - i) }, () => openOne(useTls, size)))));
  }
  return out;
}

const sizes = values.sizes.split(',').map(Number);
type Row = { rss: number[]; heap: number[]; external: number[] };
const rows = new Map<string, Row>();
try {
  for (let round = 1; round <= Number(values.rounds); round++) {
    for (const size of sizes) {
      const n = size >= 65536 ? Number(values['large-connections']) : Number(values.connections);
      for (const v of variants) {
        const server = new ServerProcess(v);
        try {
          await waitForPort(PORT);
          // Warm-up: the JIT and the allocator see connections come and go first.
          for (const s of await openMany(v.tls, size, 100)) s.destroy();
          await new Promise((r) => setTimeout(r, 300));
          const m0 = await server.memory();
          const sockets = await openMany(v.tls, size, n);
          await new Promise((r) => setTimeout(r, 300));
          const m1 = await server.memory();
          for (const s of sockets) s.destroy();
          const key = `${size}/${v.label}`;
          const row = rows.get(key) ?? { rss: [], heap: [], external: [] };
          row.rss.push((m1.rss - m0.rss) / n / 1024);
          row.heap.push((m1.heapUsed - m0.heapUsed) / n / 1024);
          row.external.push((m1.external - m0.external) / n / 1024);
          rows.set(key, row);
          process.stderr.write(
            `round ${round}, ${size}-byte answers, ${v.label}: ${((m1.rss - m0.rss) / n / 1024).toFixed(1)} KiB RSS per idle connection (${n})\n`,
          );
        } finally {
          await stopTree(server.child);
        }
      }
    }
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}

const lines = [
  `Node ${process.version} (OpenSSL ${process.versions.openssl}); one server process; KiB per idle connection after one request, medians of ${values.rounds} rounds (RSS after a GC; JS heap and external memory of V8 are part of it).`,
  '',
  '| answer | server | connections | RSS KiB | JS heap KiB | external KiB |',
  '|---:|---|---:|---:|---:|---:|',
];
for (const size of sizes) {
  const n = size >= 65536 ? Number(values['large-connections']) : Number(values.connections);
  for (const v of variants) {
    const r = rows.get(`${size}/${v.label}`);
    if (r === undefined) continue;
    lines.push(
      `| ${size.toLocaleString('en-US')} B | ${v.label} | ${n} | ${median(r.rss).toFixed(1)} | ${median(r.heap).toFixed(1)} | ${median(r.external).toFixed(1)} |`,
    );
  }
}
console.log(lines.join('\n'));
