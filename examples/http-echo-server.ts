/**
 * Answers every request with what the server understood of it, as JSON:
 * `{ method, url, httpVersion, headers: [[name, value], …], body }` (body in base64), for
 * conformance checks from outside (curl, wrk, a fuzzer), and the client's address as the server
 * sees it in an `X-Peer-Address` response header. Malformed requests get the decoder's
 * 400/413/431/… and a close.
 *
 *   node dist/examples/http-echo-server.js [--host 127.0.0.1] [--port 8081] [--workers N]
 *        [--balance reuseport|shared] [--proxy-protocol] [--tls-cert FILE --tls-key FILE]
 *
 * With `--proxy-protocol` every connection must start with a PROXY protocol header (v1 or v2)
 * from a loopback address (HAProxy's `send-proxy`/`send-proxy-v2` on the same machine), and
 * `X-Peer-Address` is the client the header names; without it, the socket's peer. With --tls-cert
 * and --tls-key it serves HTTPS (ALPN http/1.1; docs/tls.md).
 */
import {
  type Channel,
  type HttpRequest,
  HttpRequestDecoder,
  type HttpResponse,
  HttpServerHandler,
  Pipeline,
} from '../src/index.js';
import { announce, cli, listenOrExit } from './cli.js';
import { tlsOptions } from './tls-files.js';

const USAGE = `
usage: node dist/examples/http-echo-server.js [--host 127.0.0.1] [--port 8081] [--workers N]
         [--balance reuseport|shared] [--proxy-protocol] [--tls-cert FILE --tls-key FILE]

Answers every request with JSON: { method, url, httpVersion, headers: [[name, value], …], body }
(body in base64), and the client's address in an X-Peer-Address header. Malformed requests get
the decoder's 400/413/431/… and a close.

  --proxy-protocol   every connection starts with a PROXY protocol header (v1 or v2) from a
                     loopback address (HAProxy's send-proxy / send-proxy-v2); X-Peer-Address is
                     then the client the header names, not the proxy
  --tls-cert/--tls-key (PEM files) serve HTTPS.
`;

const values = cli(USAGE, {
  host: { type: 'string', default: '127.0.0.1' },
  port: { type: 'string', default: '8081', integer: [0, 65535] },
  workers: { type: 'string', default: '0', integer: [0, 1024] },
  balance: { type: 'string', default: 'reuseport', choices: ['reuseport', 'shared'] },
  'proxy-protocol': { type: 'boolean', default: false },
  'tls-cert': { type: 'string' },
  'tls-key': { type: 'string' },
});

/** `address:port`, with brackets around IPv6. */
function peerOf(channel: Channel): string {
  const a = channel.remoteAddress;
  if (a === undefined) return 'unknown';
  return a.family === 'IPv6' ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`;
}

function reflect(req: HttpRequest, res: HttpResponse, channel: Channel): void {
  res.setHeader('Content-Type', 'application/json');
  res.setHeader('X-Peer-Address', peerOf(channel));
  res.end(
    `${JSON.stringify({
      method: req.method,
      url: req.url,
      httpVersion: req.httpVersion,
      headers: req.headers.toArray(),
      body: req.body.toString('base64'),
    })}\n`,
  );
}

const server = await listenOrExit('http-echo-server', {
  host: values.host,
  port: values.port,
  workers: values.workers,
  balance: values.balance,
  ...(values['proxy-protocol'] ? { proxyProtocol: { trusted: ['127.0.0.0/8', '::1'] } } : {}),
  ...tlsOptions(values['tls-cert'], values['tls-key'], ['http/1.1']),
  // The handler reads the connection's address: a factory that gets the channel, and the two HTTP
  // stages `http()` would make.
  pipeline: (channel) =>
    new Pipeline()
      .addLast('http-decoder', new HttpRequestDecoder())
      .addLast('http', new HttpServerHandler((req, res) => reflect(req, res, channel))),
});

announce(server);
