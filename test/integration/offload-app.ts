/**
 * The offload tests' server, run as a real master with real workers (test/integration/offload.test.ts):
 *
 *   GET /sleep?ms=N&id=X   → X, after a pool thread blocked N ms
 *   GET /stats             → { pid, pools } of the worker that answers
 * stdin: `stats` → "stats <the master's collectStats() as JSON>" (benchmarks/common/control.ts)
 *
 *   node dist/test/integration/offload-app.js --workers N --drain-timeout MS --threads N
 */
import { parseArgs } from 'node:util';
import { controlFromStdin } from '../../benchmarks/common/control.js';
import { httpOffload, offloadStats, Server } from '../../src/index.js';

const { values } = parseArgs({
  options: {
    workers: { type: 'string', default: '1' },
    'drain-timeout': { type: 'string', default: '10000' },
    threads: { type: 'string', default: '2' },
  },
});

const server = await Server.listen({
  host: '127.0.0.1',
  port: 0,
  workers: Number(values.workers),
  drainTimeout: Number(values['drain-timeout']),
  pipeline: httpOffload(
    async (req, res, offload) => {
      const q = new URLSearchParams(req.queryString);
      if (req.path === '/sleep') {
        res.end(String(await offload({ ms: Number(q.get('ms')), id: q.get('id') }, { name: 'sleep' })));
      } else {
        res.end(JSON.stringify({ pid: process.pid, pools: offloadStats() }));
      }
    },
    { offload: { filename: new URL('../offload-tasks.js', import.meta.url), maxThreads: Number(values.threads) } },
  ),
});

// `listening on HOST:PORT`, then control commands on stdin (`stats` → the master's collectStats()).
controlFromStdin(server);
