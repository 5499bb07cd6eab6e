/**
 * The TLS benchmark's multireactor server: the plaintext example's answer (`GET /plaintext` →
 * `Hello, World!` with `Server` and `Content-Type`, as examples/plaintext-server.ts) over TLS with
 * ALPN http/1.1, from PEM files. `--no-resumption` turns session tickets off (and with them every
 * resumption: no ticket is sent), so that each new connection costs a full handshake. `--plain`
 * serves the same answer without TLS: the baseline that shows what TLS adds.
 *
 *   node dist/benchmarks/tls/https-server.js --cert FILE --key FILE [--port 18443] [--workers 2]
 *        [--no-resumption] [--plain]
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
});
if (!values.plain && (values.cert === undefined || values.key === undefined)) {
  console.error('--cert and --key are required');
  process.exit(2);
}

const BODY = Buffer.from('Hello, World!');
const server = await Server.listen({
  host: '127.0.0.1',
  port: Number(values.port),
  workers: Number(values.workers),
  ...(values.plain
    ? {}
    : {
        tls: {
          cert: readFileSync(values.cert as string),
          key: readFileSync(values.key as string),
          alpn: ['http/1.1'],
          sessionTickets: !values['no-resumption'],
        },
      }),
  pipeline: http((req, res) => {
    if (req.path === '/plaintext') {
      res.setHeader('Server', 'multireactor');
      res.setHeader('Content-Type', 'text/plain');
      res.end(BODY);
    } else {
      res.statusCode = 404;
      res.end('Not Found\n');
    }
  }),
});
if (server.role !== 'worker') console.log(`listening on 127.0.0.1:${server.address().port}`);
