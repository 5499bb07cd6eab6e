/**
 * The TLS benchmark's multireactor server: the plaintext example's answer (`GET /plaintext` →
 * `Hello, World!` with `Server` and `Content-Type`, as examples/plaintext-server.ts) over TLS with
 * ALPN http/1.1, from PEM files. `--no-resumption` turns session tickets off (and with them every
 * resumption: no ticket is sent), so that each new connection costs a full handshake. `--plain`
 * serves the same answer without TLS: the baseline that shows what TLS adds. `GET /bytes/N` answers
 * N bytes (at most 16 MiB: idle-memory.ts's large answers); `--no-release-buffers` sets
 * `releaseBuffers: false`. With `--memory-signal` (and node's --expose-gc), SIGWINCH makes a serving
 * process collect garbage twice and print `mem {"rss":…,"heapUsed":…,"external":…}` (bytes).
 * `--defer-accept true|false|SECONDS` sets `deferAccept` (default: not given, so the server's
 * default, on for http() and TLS): an A/B of TCP_DEFER_ACCEPT within one build (run.ts --ab-args).
 *
 *   node dist/benchmarks/tls/https-server.js --cert FILE --key FILE [--port 18443] [--workers 2]
 *        [--no-resumption] [--plain] [--no-release-buffers] [--memory-signal] [--defer-accept V]
 */
import { Buffer } from 'node:buffer';
import { readFileSync } from 'node:fs';
import { http, Server } from '../../src/index.js';
import { scriptCli } from '../common/cli.js';

const values = scriptCli(import.meta.url, {
  cert: { type: 'string' },
  key: { type: 'string' },
  port: { type: 'string', default: '18443' },
  workers: { type: 'string', default: '2' },
  'no-resumption': { type: 'boolean', default: false },
  plain: { type: 'boolean', default: false },
  'no-release-buffers': { type: 'boolean', default: false },
  'memory-signal': { type: 'boolean', default: false },
  'defer-accept': { type: 'string' },
});
const defer = values['defer-accept'];
const deferAccept =
  defer === undefined ? undefined : defer === 'true' ? true : defer === 'false' ? false : Number(defer);
if (!values.plain && (values.cert === undefined || values.key === undefined)) {
  console.error('--cert and --key are required');
  process.exit(2);
}

const BODY = Buffer.from('Hello, World!');
const MAX_BYTES = 16 * 1024 * 1024;
let bytes = Buffer.alloc(0);
const server = await Server.listen({
  host: '127.0.0.1',
  port: Number(values.port),
  workers: Number(values.workers),
  ...(deferAccept === undefined ? {} : { deferAccept }),
  ...(values.plain
    ? {}
    : {
        tls: {
          cert: readFileSync(values.cert as string),
          key: readFileSync(values.key as string),
          alpn: ['http/1.1'],
          sessionTickets: !values['no-resumption'],
          releaseBuffers: !values['no-release-buffers'],
        },
      }),
  pipeline: http((req, res) => {
    if (req.path === '/plaintext') {
      res.setHeader('Server', 'multireactor');
      res.setHeader('Content-Type', 'text/plain');
      res.end(BODY);
    } else if (req.path.startsWith('/bytes/')) {
      const n = Number(req.path.slice(7));
      if (!Number.isInteger(n) || n < 0 || n > MAX_BYTES) {
        res.statusCode = 400;
        res.end('bad size\n');
        return;
      }
      if (bytes.length < n) bytes = Buffer.alloc(n, 'x');
      res.setHeader('Content-Type', 'application/octet-stream');
      res.end(bytes.subarray(0, n));
    } else {
      res.statusCode = 404;
      res.end('Not Found\n');
    }
  }),
});
if (server.role !== 'worker') console.log(`listening on 127.0.0.1:${server.address().port}`);
if (values['memory-signal'] && server.role !== 'master') {
  process.on('SIGWINCH', () => {
    const gc = (globalThis as { gc?: () => void }).gc;
    gc?.();
    gc?.();
    const m = process.memoryUsage();
    console.log(`mem ${JSON.stringify({ rss: m.rss, heapUsed: m.heapUsed, external: m.external })}`);
  });
}
