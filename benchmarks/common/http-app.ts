/**
 * The HTTP service of the reload benchmark and the HTTP cluster test, run as a real master with
 * real workers: every request is answered with the serving worker's pid as the body. Draining
 * is the HTTP stage's own (docs/http.md, "Draining"): what is in flight is answered with
 * `Connection: close`, idle keep-alive connections are closed.
 *
 *   node dist/benchmarks/common/http-app.js --workers N [--host H] [--port P] [--drain-timeout MS]
 *
 * The master reads control commands on stdin (control.ts).
 */
import { http, Server } from '../../src/index.js';
import { scriptCli } from './cli.js';
import { controlFromStdin } from './control.js';

const values = scriptCli(import.meta.url, {
  workers: { type: 'string', default: '2', integer: [0, 1024] },
  'drain-timeout': { type: 'string', default: '5000', integer: [0, 3_600_000] },
  host: { type: 'string', default: '127.0.0.1' },
  port: { type: 'string', default: '0', integer: [0, 65535] },
});

const pid = String(process.pid);
const server = await Server.listen({
  host: values.host,
  port: values.port,
  workers: values.workers,
  drainTimeout: values['drain-timeout'],
  startTimeout: 5000,
  pipeline: http((_req, res) => {
    res.setHeader('Content-Type', 'text/plain');
    res.end(pid);
  }),
});

controlFromStdin(server);
