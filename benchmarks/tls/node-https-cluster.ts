/**
 * Baseline of the TLS benchmark: node:https under node:cluster, answering every request with a
 * small text/plain body. `--no-resumption` refuses session tickets (SSL_OP_NO_TICKET) and keeps no
 * session cache, so that each new connection costs a full handshake (node offers no way to stop
 * the two TLS 1.3 NewSessionTicket messages OpenSSL then still sends, which no client can use).
 * `--plain` serves the same answer with node:http: the baseline that shows what TLS adds.
 *
 *   node dist/benchmarks/tls/node-https-cluster.js --cert FILE --key FILE [--port 18443] [--workers 2]
 *        [--no-resumption] [--plain]
 */
import cluster from 'node:cluster';
import { constants } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { scriptCli } from '../common/cli.js';
import { runPrimary } from '../http/baseline.js';

const values = scriptCli(import.meta.url, {
  cert: { type: 'string' },
  key: { type: 'string' },
  port: { type: 'string', default: '18443' },
  workers: { type: 'string', default: '2' },
  'no-resumption': { type: 'boolean', default: false },
  plain: { type: 'boolean', default: false },
});

if (cluster.isPrimary) runPrimary(Number(values.workers));
else {
  const answer = (_req: http.IncomingMessage, res: http.ServerResponse) => {
    res.writeHead(200, { Server: 'node', 'Content-Type': 'text/plain', 'Content-Length': 13 });
    res.end('Hello, World!');
  };
  const server = values.plain
    ? http.createServer(answer)
    : https.createServer(
        {
          cert: readFileSync(values.cert as string),
          key: readFileSync(values.key as string),
          ALPNProtocols: ['http/1.1'],
          ...(values['no-resumption'] ? { secureOptions: constants.SSL_OP_NO_TICKET } : {}),
        },
        answer,
      );
  server.keepAliveTimeout = 60_000;
  server.maxRequestsPerSocket = 0;
  server.listen(Number(values.port), '127.0.0.1');
}
