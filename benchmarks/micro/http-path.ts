/**
 * The per-request cost of the HTTP path without sockets: wrk's request bytes through the real
 * decoder, server handler and a plaintext handler on an EmbeddedChannel, one request per read
 * (keep-alive) and 16 per read (pipelining). Use it to compare hot-path changes quickly; the
 * wrk benchmark (benchmarks/http) is the judge.
 *
 *   node dist/benchmarks/micro/http-path.js
 */
import { Bench } from 'tinybench';
import { EmbeddedChannel, http } from '../../src/index.js';
import { scriptCli } from '../common/cli.js';

scriptCli(import.meta.url, {}); // no options: --help, or a clear error for any

const REQUEST = Buffer.from('GET /plaintext HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n', 'latin1');
const PIPELINED = Buffer.concat(Array.from({ length: 16 }, () => REQUEST));
const BODY = Buffer.from('Hello, World!');

function channel(): EmbeddedChannel {
  const factory = http((_req, res) => {
    res.setHeader('Server', 'multireactor');
    res.setHeader('Content-Type', 'text/plain');
    res.end(BODY);
  });
  return new EmbeddedChannel(factory);
}

const one = channel();
const sixteen = channel();
const bench = new Bench({ name: 'HTTP path (no sockets)', time: 1000 });
bench
  .add('1 request per read', () => {
    one.writeInbound(REQUEST);
    one.outbound.length = 0;
  })
  .add('16 pipelined requests per read (per batch)', () => {
    sixteen.writeInbound(PIPELINED);
    sixteen.outbound.length = 0;
  });
await bench.run();
console.log(`${bench.name} — Node ${process.version}`);
console.table(bench.table());
