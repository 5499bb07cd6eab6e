// socket.io 4 for benchmarks/pubsub: WebSocket transport only; a connection with `?role=publisher`
// emits `m` events that go to the room `bench` of every server (`io.to('bench').emit`), every
// other connection joins that room. With REDIS_URL, @socket.io/redis-adapter (node-redis 4 clients)
// joins servers; with WORKERS > 1, node:cluster workers joined by @socket.io/cluster-adapter (the
// primary relays over IPC: setupPrimary). Needs socket.io, @socket.io/redis-adapter,
// @socket.io/cluster-adapter and redis on NODE_PATH (installed outside the repository, see
// benchmarks/pubsub/run.ts).
const cluster = require('node:cluster');
const PORT = +process.env.PORT || 9131;
const WORKERS = +process.env.WORKERS || 1;
const REDIS_URL = process.env.REDIS_URL;

if (WORKERS > 1 && cluster.isPrimary) {
  require('@socket.io/cluster-adapter').setupPrimary();
  for (let i = 0; i < WORKERS; i++) cluster.fork();
  process.on('SIGTERM', () => {
    for (const id in cluster.workers) cluster.workers[id].process.kill('SIGTERM');
    process.exit(0);
  });
} else {
  (async () => {
    const { Server } = require('socket.io');
    const io = new Server({ transports: ['websocket'], perMessageDeflate: false, serveClient: false });
    if (REDIS_URL) {
      const { createClient } = require('redis');
      const { createAdapter } = require('@socket.io/redis-adapter');
      const pub = createClient({ url: REDIS_URL });
      const sub = pub.duplicate();
      await Promise.all([pub.connect(), sub.connect()]);
      io.adapter(createAdapter(pub, sub));
    } else if (WORKERS > 1) {
      io.adapter(require('@socket.io/cluster-adapter').createAdapter());
    }
    io.on('connection', (socket) => {
      if (socket.handshake.query.role === 'publisher') socket.on('m', (m) => io.to('bench').emit('m', m));
      else socket.join('bench');
    });
    io.listen(PORT);
    process.on('SIGTERM', () => process.exit(0));
  })();
}
