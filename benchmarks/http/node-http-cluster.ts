/**
 * Baseline: node:http under node:cluster, serving bench-app.ts's endpoints: `/json`
 * (`{"message":"Hello, World!"}` serialised per request), `POST /echo` (a JSON body parsed,
 * answered `{"items":N}`), `/16k` (16 KiB), and a small text/plain body for everything else.
 *
 *   node dist/benchmarks/http/node-http-cluster.js --port 8082 --workers 2
 */
import { Buffer } from 'node:buffer';
import cluster from 'node:cluster';
import http from 'node:http';
import { scriptCli } from '../common/cli.js';
import { runPrimary } from './baseline.js';

const values = scriptCli(import.meta.url, {
  port: { type: 'string', default: '8082', integer: [0, 65535] },
  workers: { type: 'string', default: '2', integer: [1, 1024] },
});

if (cluster.isPrimary) runPrimary(values.workers);
else {
  const big = Buffer.alloc(16 * 1024, 'x');
  const server = http.createServer((req, res) => {
    const url = req.url ?? '/';
    if (url === '/json') {
      const body = JSON.stringify({ message: 'Hello, World!' });
      res.writeHead(200, {
        Server: 'node',
        'Content-Type': 'application/json',
        'Content-Length': Buffer.byteLength(body),
      });
      res.end(body);
    } else if (url === '/echo' && req.method === 'POST') {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const order = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { items: unknown[] };
        const body = JSON.stringify({ items: order.items.length });
        res.writeHead(200, {
          Server: 'node',
          'Content-Type': 'application/json',
          'Content-Length': Buffer.byteLength(body),
        });
        res.end(body);
      });
    } else if (url === '/16k') {
      res.writeHead(200, { Server: 'node', 'Content-Type': 'text/plain', 'Content-Length': big.length });
      res.end(big);
    } else {
      res.writeHead(200, { Server: 'node', 'Content-Type': 'text/plain', 'Content-Length': 13 });
      res.end('Hello, World!');
    }
  });
  server.keepAliveTimeout = 60_000;
  server.maxRequestsPerSocket = 0;
  server.listen(values.port, '127.0.0.1');
}
