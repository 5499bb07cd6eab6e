/**
 * The TechEmpower plaintext test: `GET /plaintext` answers 200 with `Content-Type: text/plain`,
 * `Server`, `Date`, `Content-Length: 13` and `Hello, World!`. The body buffer is shared; the
 * response (status line and headers) is composed per request, as the rules require.
 *
 *   node dist/examples/plaintext-server.js [--host 0.0.0.0] [--port 8080] [--workers N]
 *        [--balance reuseport|shared] [--poller epoll|poll] [--trigger level|edge]
 *        [--tls-cert FILE --tls-key FILE]
 *
 * With --tls-cert and --tls-key it serves HTTPS (ALPN http/1.1; docs/tls.md).
 * Prints `listening on HOST:PORT` once every worker is ready. `npm start` runs it on port 8080
 * with one worker per CPU.
 */
import { availableParallelism } from 'node:os';
import { http } from '../src/index.js';
import { announce, cli, listenOrExit } from './cli.js';
import { tlsOptions } from './tls-files.js';

const USAGE = `
usage: node dist/examples/plaintext-server.js [--host 0.0.0.0] [--port 8080] [--workers N]
         [--balance reuseport|shared] [--poller epoll|poll] [--trigger level|edge]
         [--tls-cert FILE --tls-key FILE]

The TechEmpower plaintext test: GET /plaintext answers "Hello, World!". --workers defaults to one
per CPU; 0 serves in this process. --tls-cert/--tls-key (PEM files) serve HTTPS.
`;

const values = cli(USAGE, {
  host: { type: 'string', default: '0.0.0.0' },
  port: { type: 'string', default: '8080', integer: [0, 65535] },
  workers: { type: 'string', default: String(availableParallelism()), integer: [0, 1024] },
  balance: { type: 'string', default: 'reuseport', choices: ['reuseport', 'shared'] },
  poller: { type: 'string', default: 'epoll', choices: ['epoll', 'poll'] },
  trigger: { type: 'string', default: 'level', choices: ['level', 'edge'] },
  'tls-cert': { type: 'string' },
  'tls-key': { type: 'string' },
});

const BODY = Buffer.from('Hello, World!');

const server = await listenOrExit('plaintext-server', {
  host: values.host,
  port: values.port,
  workers: values.workers,
  balance: values.balance,
  poller: values.poller,
  trigger: values.trigger,
  ...tlsOptions(values['tls-cert'], values['tls-key'], ['http/1.1']),
  pipeline: http((req, res) => {
    if (req.path === '/plaintext') {
      res.setHeader('Server', 'multireactor');
      res.setHeader('Content-Type', 'text/plain');
      res.end(BODY);
    } else {
      res.statusCode = 404;
      res.setHeader('Content-Type', 'text/plain');
      res.end('Not Found\n');
    }
  }),
});

announce(server);
