/**
 * multireactor's server for the HTTP benchmark's production-like scenarios, on `router()`, as an
 * application would be written (the plaintext scenarios keep examples/plaintext-server.ts):
 *
 *   GET  /plaintext, /api/*   `Hello, World!` as text/plain (the varied heads ask for /api/…)
 *   GET  /json                TechEmpower's JSON test: `{"message":"Hello, World!"}` serialised per request
 *   POST /echo                a JSON body parsed (`req.json()`), answered `{"items":N}`
 *   GET  /16k                 a 16 KiB text/plain body
 *
 *   node dist/benchmarks/http/bench-app.js --port 8080 --workers 2
 *
 * Prints `listening on 127.0.0.1:PORT` once every worker is ready. uws-app.cjs serves the same
 * endpoints with uWebSockets.js, node-http-cluster.ts with node:http.
 */
import { Buffer } from 'node:buffer';
import { http, router, Server } from '../../src/index.js';
import { scriptCli } from '../common/cli.js';

const values = scriptCli(import.meta.url, {
  port: { type: 'string', default: '8080' },
  workers: { type: 'string', default: '2' },
});

const HELLO = Buffer.from('Hello, World!');
const BIG = Buffer.alloc(16 * 1024, 'x');

const app = router();
const plaintext = (_req: unknown, res: import('../../src/index.js').HttpResponse) => {
  res.setHeader('Server', 'multireactor');
  res.setHeader('Content-Type', 'text/plain');
  res.end(HELLO);
};
app.get('/plaintext', plaintext);
app.get('/api/*', plaintext);
app.get('/json', (_req, res) => {
  res.setHeader('Server', 'multireactor');
  res.json({ message: 'Hello, World!' });
});
app.post('/echo', async (req, res) => {
  const order = await req.json<{ items: unknown[] }>();
  res.setHeader('Server', 'multireactor');
  res.json({ items: order.items.length });
});
app.get('/16k', (_req, res) => {
  res.setHeader('Server', 'multireactor');
  res.setHeader('Content-Type', 'text/plain');
  res.end(BIG);
});

const server = await Server.listen({
  host: '127.0.0.1',
  port: Number(values.port),
  workers: Number(values.workers),
  pipeline: http(app),
});
if (server.role !== 'worker') console.log(`listening on 127.0.0.1:${server.address().port}`);
if (server.role === 'single') process.once('SIGTERM', () => void server.close());
