// `ws` broadcast server for benchmarks/ws: every message goes to every client of the process (the
// sender included), the idiomatic way (`wss.clients.forEach(c => c.send(data))`). N processes
// under node:cluster, like bench-ref/ws-echo.cjs. Needs `ws` on NODE_PATH.
const cluster = require('node:cluster');
const PORT = +process.env.PORT || 8089;
const N = +process.env.WORKERS || 1;
if (cluster.isPrimary) {
  for (let i = 0; i < N; i++) cluster.fork();
  process.on('SIGTERM', () => {
    for (const id in cluster.workers) cluster.workers[id].process.kill('SIGTERM');
    process.exit(0);
  });
} else {
  const { WebSocketServer } = require('ws');
  const wss = new WebSocketServer({ host: '127.0.0.1', port: PORT, perMessageDeflate: false });
  wss.on('connection', (ws) => {
    ws.on('error', () => {});
    ws.on('message', (data, isBinary) => {
      for (const c of wss.clients) c.send(data, { binary: isBinary });
    });
  });
}
