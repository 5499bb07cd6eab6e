/**
 * The baseline: the same echo protocol on node:net, written the way a careful Node developer
 * would (frames parsed in place, leftover kept, one corked batch of writes per 'data').
 *
 *   node dist/benchmarks/echo/node-net-echo.js --port 0
 */
import net from 'node:net';
import { scriptCli } from '../common/cli.js';

const values = scriptCli(import.meta.url, {
  host: { type: 'string', default: '127.0.0.1' },
  port: { type: 'string', default: '7001', integer: [0, 65535] },
});

const server = net.createServer({ noDelay: true }, (socket) => {
  let pending: Buffer | null = null;
  socket.on('data', (chunk: Buffer) => {
    const data = pending === null ? chunk : Buffer.concat([pending, chunk]);
    let at = 0;
    socket.cork();
    while (data.length - at >= 2) {
      const end = at + 2 + data.readUInt16BE(at);
      if (end > data.length) break;
      socket.write(data.subarray(at, end));
      at = end;
    }
    socket.uncork();
    pending = at < data.length ? Buffer.from(data.subarray(at)) : null;
  });
  socket.on('error', () => {});
});
server.listen(values.port, values.host, () => {
  const a = server.address() as net.AddressInfo;
  console.log(`listening on ${a.address}:${a.port}`);
});
const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
