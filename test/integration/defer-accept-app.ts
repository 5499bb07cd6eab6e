/**
 * The master of the deferAccept tests (defer-accept.test.ts): HTTP, and every answer says which
 * worker served it and the TCP_DEFER_ACCEPT of the listening sockets that worker holds, read back
 * from the kernel in the worker itself (the master's sockets, as the worker inherited them):
 *
 *   node dist/test/integration/defer-accept-app.js [--workers 2] [--defer unset|true|false|SECONDS]
 *
 * Answer body: `{"pid":…,"defer":[seconds per listening socket]}`. The master reads control commands
 * on stdin (benchmarks/common/control.ts: workers, stats, reload).
 */
import { parseArgs } from 'node:util';
import { controlFromStdin } from '../../benchmarks/common/control.js';
import { http, Server } from '../../src/index.js';
import { listeningDefer } from './defer-accept-support.js';

const { values } = parseArgs({
  options: {
    workers: { type: 'string', default: '2' },
    defer: { type: 'string', default: 'unset' },
  },
  strict: true,
});
const d = values.defer;
const deferAccept = d === 'unset' ? undefined : d === 'true' ? true : d === 'false' ? false : Number(d);

const server = await Server.listen({
  host: '127.0.0.1',
  port: 0,
  workers: Number(values.workers),
  drainTimeout: 1000,
  startTimeout: 5000,
  ...(deferAccept === undefined ? {} : { deferAccept }),
  pipeline: http((_req, res) => {
    res.setHeader('Content-Type', 'application/json');
    res.end(JSON.stringify({ pid: process.pid, defer: listeningDefer(server.address().port) }));
  }),
});
controlFromStdin(server);
