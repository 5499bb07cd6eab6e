/**
 * Answers every request with what the server understood of it, as JSON:
 * `{ method, url, httpVersion, headers: [[name, value], …], body }` (body in base64), for
 * conformance checks from outside (curl, wrk, a fuzzer). Malformed requests get the decoder's
 * 400/413/431/… and a close.
 *
 *   node dist/examples/http-echo-server.js [--host 127.0.0.1] [--port 8081] [--workers N]
 *        [--balance reuseport|shared]
 */
import { http } from '../src/index.js';
import { announce, cli, listenOrExit } from './cli.js';

const USAGE = `
usage: node dist/examples/http-echo-server.js [--host 127.0.0.1] [--port 8081] [--workers N]
         [--balance reuseport|shared]

Answers every request with JSON: { method, url, httpVersion, headers: [[name, value], …], body }
(body in base64). Malformed requests get the decoder's 400/413/431/… and a close.
`;

const values = cli(USAGE, {
  host: { type: 'string', default: '127.0.0.1' },
  port: { type: 'string', default: '8081', integer: [0, 65535] },
  workers: { type: 'string', default: '0', integer: [0, 1024] },
  balance: { type: 'string', default: 'reuseport', choices: ['reuseport', 'shared'] },
});

const server = await listenOrExit('http-echo-server', {
  host: values.host,
  port: values.port,
  workers: values.workers,
  balance: values.balance,
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
