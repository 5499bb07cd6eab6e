/**
 * Baseline: raw node:net under node:cluster with the reply logic of the C reference server: count
 * complete request heads (CRLF CRLF) in what arrived and answer each with the same response
 * bytes, one write per batch. No real HTTP parsing: a ceiling for Node's stream machinery, not a
 * server anyone should deploy.
 *
 *   node dist/benchmarks/http/node-net-cluster.js --port 8083 --workers 2
 */
import cluster from 'node:cluster';
import net from 'node:net';
import { scriptCli } from '../common/cli.js';
import { cannedReply, MAX_BATCH as MAX, runPrimary } from './baseline.js';

const values = scriptCli(import.meta.url, {
  port: { type: 'string', default: '8083', integer: [0, 65535] },
  workers: { type: 'string', default: '2', integer: [1, 1024] },
});

if (cluster.isPrimary) runPrimary(values.workers);
else {
  const { one: RESP, batch: RESPN } = cannedReply('node');
  net
    .createServer({ noDelay: true }, (socket) => {
      let pending: Buffer | null = null;
      socket.on('data', (chunk: Buffer) => {
        const d = pending === null ? chunk : Buffer.concat([pending, chunk]);
        let count = 0;
        let start = 0;
        for (let i = d.indexOf(10, 3); i >= 0; i = d.indexOf(10, i + 1)) {
          if (d[i - 1] === 13 && d[i - 2] === 10 && d[i - 3] === 13 && i - 3 >= start) {
            count++;
            start = i + 1;
          }
        }
        pending = start < d.length ? d.subarray(start) : null;
        while (count > 0) {
          const k = Math.min(count, MAX);
          socket.write(k === MAX ? RESPN : RESPN.subarray(0, k * RESP.length));
          count -= k;
        }
      });
      socket.on('error', () => {});
    })
    .listen(values.port, '127.0.0.1');
}
