/**
 * Baseline: node:http under node:cluster, answering every request with a small text/plain body.
 *
 *   node dist/benchmarks/http/node-http-cluster.js --port 8082 --workers 2
 */
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
  const server = http.createServer((_req, res) => {
    res.writeHead(200, { Server: 'node', 'Content-Type': 'text/plain', 'Content-Length': 13 });
    res.end('Hello, World!');
  });
  server.keepAliveTimeout = 60_000;
  server.maxRequestsPerSocket = 0;
  server.listen(values.port, '127.0.0.1');
}
