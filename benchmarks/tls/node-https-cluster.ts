/**
 * Baseline of the TLS benchmark: node:https under node:cluster, answering every request with a
 * small text/plain body. `--no-resumption` refuses session tickets (SSL_OP_NO_TICKET) and keeps no
 * session cache, so that each new connection costs a full handshake.
 *
 *   node dist/benchmarks/tls/node-https-cluster.js --cert FILE --key FILE [--port 18443] [--workers 2]
 *        [--no-resumption]
 */
import cluster from 'node:cluster';
import { constants } from 'node:crypto';
import { readFileSync } from 'node:fs';
import https from 'node:https';
import { scriptCli } from '../common/cli.js';
import { runPrimary } from '../http/baseline.js';

const values = scriptCli(import.meta.url, {
  cert: { type: 'string' },
  key: { type: 'string' },
  port: { type: 'string', default: '18443' },
  workers: { type: 'string', default: '2' },
  'no-resumption': { type: 'boolean', default: false },
});

if (cluster.isPrimary) runPrimary(Number(values.workers));
else {
  const server = https.createServer(
    {
      cert: readFileSync(values.cert as string),
      key: readFileSync(values.key as string),
      ALPNProtocols: ['http/1.1'],
      ...(values['no-resumption'] ? { secureOptions: constants.SSL_OP_NO_TICKET } : {}),
    },
    (_req, res) => {
      res.writeHead(200, { Server: 'node', 'Content-Type': 'text/plain', 'Content-Length': 13 });
      res.end('Hello, World!');
    },
  );
  server.keepAliveTimeout = 60_000;
  server.maxRequestsPerSocket = 0;
  server.listen(Number(values.port), '127.0.0.1');
}
