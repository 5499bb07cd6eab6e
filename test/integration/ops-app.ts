/**
 * The HTTP master of the operations tests (ops.test.ts, deploy.test.ts): a real master with real
 * workers and the operations options on its command line.
 *
 *   node dist/test/integration/ops-app.js [--workers 2] [--port 0 | --path SOCKET [--socket-mode 0660]]
 *        [--pid-file F] [--control S] [--admin-port P | --admin-path S] [--shutdown-delay MS]
 *        [--drain-timeout MS] [--log json|pino|text]
 *
 * Every request is answered with the serving worker's pid; `/slow?ms=N` answers after N ms (a
 * request in flight during a drain), `/missing` 404, `/throw` makes the handler throw (500, and an
 * error line with the Error in the log). A worker that finds the file FAIL_START_FILE (environment)
 * exits with status 3 before it serves (a reload that fails). Prints `listening on HOST:PORT` (or `listening on unix:PATH:0`)
 * once every worker is ready, in the master or the single process.
 */
import { existsSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { http, jsonLogger, type Logger, Server, type ServerOptions } from '../../src/index.js';

const { values } = parseArgs({
  options: {
    workers: { type: 'string', default: '2' },
    host: { type: 'string', default: '127.0.0.1' },
    port: { type: 'string', default: '0' },
    path: { type: 'string' },
    'socket-mode': { type: 'string' },
    'pid-file': { type: 'string' },
    control: { type: 'string' },
    'admin-port': { type: 'string' },
    'admin-path': { type: 'string' },
    'shutdown-delay': { type: 'string' },
    'drain-timeout': { type: 'string', default: '3000' },
    log: { type: 'string', default: 'text' },
  },
  strict: true,
});

let logger: Logger | undefined;
if (values.log === 'json') logger = jsonLogger();
// pino's own destination: fd 2, synchronous, so that nothing is lost when a worker exits.
else if (values.log === 'pino') logger = pino({ base: { pid: process.pid, app: 'ops-app' } }, pino.destination(2));

const pid = String(process.pid);
const options: ServerOptions = {
  workers: Number(values.workers),
  drainTimeout: Number(values['drain-timeout']),
  startTimeout: 5000,
  ...(values.path !== undefined
    ? {
        path: values.path,
        ...(values['socket-mode'] !== undefined ? { socketMode: Number.parseInt(values['socket-mode'], 8) } : {}),
      }
    : { host: values.host, port: Number(values.port) }),
  ...(values['pid-file'] !== undefined ? { pidFile: values['pid-file'] } : {}),
  ...(values.control !== undefined ? { control: values.control } : {}),
  ...(values['admin-port'] !== undefined ? { admin: { port: Number(values['admin-port']) } } : {}),
  ...(values['admin-path'] !== undefined ? { admin: { path: values['admin-path'] } } : {}),
  ...(values['shutdown-delay'] !== undefined ? { shutdownDelay: Number(values['shutdown-delay']) } : {}),
  ...(logger !== undefined ? { logger } : {}),
  pipeline: http((req, res) => {
    res.setHeader('Content-Type', 'text/plain');
    if (req.path === '/slow') {
      const ms = Number(new URLSearchParams(req.url.split('?')[1] ?? '').get('ms') ?? '500');
      setTimeout(() => res.end(pid), ms);
      return;
    }
    if (req.path === '/throw') throw new Error('thrown on purpose by /throw');
    if (req.path === '/missing') {
      res.writeHead(404).end('no');
      return;
    }
    res.end(pid);
  }),
};

const failFile = process.env.FAIL_START_FILE;
if (process.env.MULTIREACTOR_WORKER !== undefined && failFile !== undefined && existsSync(failFile)) {
  process.stderr.write(`ops-app: worker ${process.pid} fails to start (${failFile} exists)\n`);
  process.exit(3);
}

let server: Awaited<ReturnType<typeof Server.listen>>;
try {
  server = await Server.listen(options);
} catch (err) {
  process.stderr.write(`ops-app: ${(err as Error).message}\n`);
  process.exit(1);
}
if (server.role !== 'worker') {
  const a = server.address();
  console.log(a.family === 'Unix' ? `listening on unix:${a.address}:0` : `listening on ${a.address}:${a.port}`);
}
if (server.role === 'single') {
  process.once('SIGTERM', () => void server.close());
}
