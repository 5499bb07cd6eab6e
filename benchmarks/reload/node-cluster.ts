/**
 * The baselines of the reload benchmark, reloaded the way node:cluster users (and PM2) do it —
 * worker by worker: fork a new one, wait for 'listening', then disconnect the old one. A worker
 * that dies is re-forked.
 *
 * - `--protocol line`: the line service of benchmarks/common/line-app.ts on node:net; a draining
 *   worker answers the next request with " bye" and closes, exactly as ours does.
 * - `--protocol http`: node:http answering the worker's pid (benchmarks/common/http-app.ts);
 *   a draining worker answers with `Connection: close`, and `disconnect()` closes the server,
 *   which (Node >= 19) closes idle keep-alive connections — what our HTTP stage does on DRAINING.
 *
 *   node dist/benchmarks/reload/node-cluster.js --workers 2 [--protocol line|http]
 *
 * stdin: `workers` → "workers [{\"pid\":…}]". SIGUSR2 reloads; SIGTERM stops.
 */
import cluster, { type Worker } from 'node:cluster';
import { createServer } from 'node:http';
import net from 'node:net';
import { createInterface } from 'node:readline';
import { scriptCli } from '../common/cli.js';

const values = scriptCli(import.meta.url, {
  workers: { type: 'string', default: '2', integer: [1, 1024] },
  host: { type: 'string', default: '127.0.0.1' },
  port: { type: 'string', default: '0', integer: [0, 65535] },
  protocol: { type: 'string', default: 'line', choices: ['line', 'http'] },
});

if (cluster.isPrimary) {
  const n = values.workers;
  const retiring = new Set<Worker>();
  let stopping = false;
  const listening = (w: Worker) => new Promise<{ port: number }>((resolve) => w.once('listening', (a) => resolve(a)));
  const started = await Promise.all(Array.from({ length: n }, () => listening(cluster.fork())));
  console.log(`listening on ${values.host}:${started[0]?.port}`);

  cluster.on('exit', (w) => {
    if (retiring.delete(w) || stopping) return;
    cluster.fork(); // crashed: replace it
  });

  let reloading = false;
  process.on('SIGUSR2', async () => {
    if (reloading) return;
    reloading = true;
    for (const old of Object.values(cluster.workers ?? {})) {
      if (old === undefined || retiring.has(old)) continue;
      await listening(cluster.fork());
      retiring.add(old);
      old.send('drain');
      old.disconnect();
    }
    reloading = false;
    console.error('reload done');
  });
  process.on('SIGTERM', () => {
    stopping = true;
    for (const w of Object.values(cluster.workers ?? {})) w?.kill();
    process.exit(0);
  });
  createInterface({ input: process.stdin }).on('line', (cmd) => {
    if (cmd.trim() === 'workers') {
      const pids = Object.values(cluster.workers ?? {})
        .filter((w): w is Worker => w !== undefined && !retiring.has(w))
        .map((w) => ({ pid: w.process.pid, state: 'ready' }));
      console.log(`workers ${JSON.stringify(pids)}`);
    }
  });
} else if (values.protocol === 'http') {
  let draining = false;
  const pid = String(process.pid);
  createServer((_req, res) => {
    res.setHeader('Content-Type', 'text/plain');
    if (draining) res.setHeader('Connection', 'close');
    res.end(pid);
  }).listen(values.port, values.host);
  process.on('message', (m) => {
    if (m === 'drain') draining = true;
  });
} else {
  let draining = false;
  const sockets = new Set<net.Socket>();
  const server = net.createServer({ noDelay: true }, (socket) => {
    sockets.add(socket);
    socket.setEncoding('utf8');
    let buf = '';
    socket.on('data', (d: string) => {
      buf += d;
      for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
        const [, n] = buf.slice(0, i).split(' ');
        buf = buf.slice(i + 1);
        if (draining) {
          socket.end(`${n} ${process.pid} bye\n`);
          return;
        }
        socket.write(`${n} ${process.pid}\n`);
      }
    });
    socket.on('error', () => {});
    socket.on('close', () => sockets.delete(socket));
  });
  process.on('message', (m) => {
    if (m !== 'drain') return;
    draining = true;
    // Idle connections get 300 ms to ask something before they are closed (as in line-app.ts).
    setTimeout(() => {
      for (const s of sockets) s.end();
    }, 300).unref();
  });
  server.listen(values.port, values.host);
}
