/**
 * An HTTP server with the loop for cheap requests and a thread pool for expensive ones:
 *
 *   GET /plaintext          → `Hello, World!`, answered on the loop
 *   GET /hash?rounds=N      → PBKDF2-SHA256 of `password` (query, default "password") with N
 *                             iterations (1 … 1 000 000), computed on a pool thread
 *   GET /stats              → this worker's pool counters (JSON)
 *
 * A full pool queue answers 503 with `Retry-After`; a task that throws, 500. `--inline` runs the
 * hash on the loop instead (the baseline of benchmarks/offload: every request then waits for it).
 *
 *   node dist/examples/offload-server.js [--host 0.0.0.0] [--port 8080] [--workers N]
 *        [--threads N] [--max-queue N] [--max-in-flight N] [--inline]
 *
 * Prints `listening on HOST:PORT` once every worker is ready.
 */
import { availableParallelism } from 'node:os';
import { httpOffload, offloadStats } from '../src/index.js';
import { announce, cli, listenOrExit } from './cli.js';
import { type HashTask, hash } from './offload-tasks.js';

const USAGE = `
usage: node dist/examples/offload-server.js [--host 0.0.0.0] [--port 8080] [--workers N]
         [--threads N] [--max-queue N] [--max-in-flight N] [--inline]

GET /plaintext on the loop; GET /hash?rounds=N (PBKDF2, 1 to 1 000 000 rounds) on a thread pool
(503 with Retry-After when its queue is full); GET /stats the worker's pool counters. --inline
hashes on the loop instead.
`;

const values = cli(USAGE, {
  host: { type: 'string', default: '0.0.0.0' },
  port: { type: 'string', default: '8080', integer: [0, 65535] },
  workers: { type: 'string', default: String(availableParallelism()), integer: [0, 1024] },
  threads: { type: 'string', default: '1', integer: [1, 1024] },
  'max-queue': { type: 'string', integer: [0, 1_000_000] },
  'max-in-flight': { type: 'string', default: '16', integer: [1, 65_536] },
  inline: { type: 'boolean', default: false },
});

const BODY = Buffer.from('Hello, World!');
const MAX_ROUNDS = 1_000_000;
const inline = values.inline;

// A thunk: httpOffload checks its options as it builds the factory, inside listenOrExit.
const server = await listenOrExit('offload-server', () => ({
  host: values.host,
  port: values.port,
  workers: values.workers,
  pipeline: httpOffload(
    async (req, res, offload) => {
      if (req.path === '/plaintext') {
        res.setHeader('Content-Type', 'text/plain').end(BODY);
        return;
      }
      if (req.path === '/hash') {
        const q = new URLSearchParams(req.queryString);
        const rounds = Number(q.get('rounds') ?? '1000');
        if (!Number.isInteger(rounds) || rounds < 1 || rounds > MAX_ROUNDS) {
          res
            .writeHead(400, { 'Content-Type': 'text/plain' })
            .end(`rounds must be an integer from 1 to ${MAX_ROUNDS}\n`);
          return;
        }
        const task: HashTask = { password: q.get('password') ?? 'password', rounds };
        // The same function either way; only where it runs differs.
        const digest = inline ? hash(task) : await offload<string>(task, { name: 'hash' });
        res.setHeader('Content-Type', 'text/plain').end(`${digest}\n`);
        return;
      }
      if (req.path === '/stats') {
        res
          .setHeader('Content-Type', 'application/json')
          .end(JSON.stringify({ pid: process.pid, pools: offloadStats() }));
        return;
      }
      res.writeHead(404, { 'Content-Type': 'text/plain' }).end('Not Found\n');
    },
    {
      offload: {
        filename: new URL('./offload-tasks.js', import.meta.url),
        minThreads: 1,
        maxThreads: values.threads,
        maxInFlight: values['max-in-flight'],
        ...(values['max-queue'] === undefined ? {} : { maxQueue: values['max-queue'] }),
      },
    },
  ),
}));

announce(server);
