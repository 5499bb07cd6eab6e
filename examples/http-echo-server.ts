/**
 * Answers every request with what the server understood of it, as JSON:
 * `{ method, url, httpVersion, headers: [[name, value], …], body }` (body in base64), for
 * conformance checks from outside (curl, wrk, a fuzzer). Malformed requests get the decoder's
 * 400/413/431/… and a close.
 *
 *   node dist/examples/http-echo-server.js [--host 127.0.0.1] [--port 8081] [--workers N]
 *        [--balance reuseport|shared] [--tls-cert FILE --tls-key FILE]
 *
 * With --tls-cert and --tls-key it serves HTTPS (ALPN http/1.1; docs/tls.md).
 */
import { http } from '../src/index.js';
import { announce, cli, listenOrExit } from './cli.js';
import { tlsOptions } from './tls-files.js';

const USAGE = `
usage: node dist/examples/http-echo-server.js [--host 127.0.0.1] [--port 8081] [--workers N]
         [--balance reuseport|shared] [--tls-cert FILE --tls-key FILE]

Answers every request with JSON: { method, url, httpVersion, headers: [[name, value], …], body }
(body in base64). Malformed requests get the decoder's 400/413/431/… and a close.
--tls-cert/--tls-key (PEM files) serve HTTPS.
`;

const values = cli(USAGE, {
  host: { type: 'string', default: '127.0.0.1' },
  port: { type: 'string', default: '8081' },
  workers: { type: 'string', default: '0' },
  balance: { type: 'string', default: 'reuseport' },
  'tls-cert': { type: 'string' },
  'tls-key': { type: 'string' },
});

const server = await listenOrExit('http-echo-server', {
  host: values.host,
  port: Number(values.port),
  workers: Number(values.workers),
  balance: values.balance as 'reuseport' | 'shared',
  ...tlsOptions(values['tls-cert'], values['tls-key'], ['http/1.1']),
  pipeline: http((req, res) => {
    res.setHeader('Content-Type', 'application/json');
    res.end(
      `${JSON.stringify({
        method: req.method,
        url: req.url,
        httpVersion: req.httpVersion,
        headers: req.headers.toArray(),
        body: req.body.toString('base64'),
      })}\n`,
    );
  }),
});

announce(server);
