/**
 * What permessage-deflate costs per message with node:zlib, the measurements behind
 * src/websocket/zlib-engine.ts: the one-shot synchronous functions (a zlib context made and freed
 * per call) against one context kept and reset between messages (`_handle.writeSync`, what the
 * engine does), and kept without reset (context takeover); inflation the same way. JSON-like
 * messages of 32 B to 64 KiB, level 1. Prints µs per message.
 *
 *   node dist/benchmarks/ws/zlib-costs.js
 */
import { Buffer } from 'node:buffer';
import zlib from 'node:zlib';
import { scriptCli } from '../common/cli.js';

scriptCli(import.meta.url, {});
const { Z_SYNC_FLUSH } = zlib.constants;

interface Internals {
  _handle: {
    writeSync(f: number, i: Uint8Array, io: number, il: number, o: Uint8Array, oo: number, ol: number): void;
    reset(): void;
  };
  _writeState: Uint32Array;
}

function time(n: number, fn: () => void): number {
  for (let i = 0; i < n / 10; i++) fn();
  const t = process.hrtime.bigint();
  for (let i = 0; i < n; i++) fn();
  return Number(process.hrtime.bigint() - t) / n / 1000;
}

const out = Buffer.allocUnsafe(256 * 1024);
function run(stream: zlib.DeflateRaw | zlib.InflateRaw, input: Buffer): void {
  const s = stream as unknown as Internals;
  s._handle.writeSync(Z_SYNC_FLUSH, input, 0, input.length, out, 0, out.length);
}

console.log('size      deflateRawSync  kept+reset  kept(takeover)  inflateRawSync  kept+reset   (µs per message)');
for (const size of [32, 512, 4096, 65536]) {
  const msg = Buffer.from(
    JSON.stringify(Array.from({ length: size }, (_, i) => ({ id: i, t: 'hello' }))).slice(0, size),
  );
  const n = size < 1000 ? 20_000 : size < 10_000 ? 5000 : 500;
  const d = zlib.createDeflateRaw({ level: 1, chunkSize: 64 });
  const comp = zlib.deflateRawSync(msg, { finishFlush: Z_SYNC_FLUSH, level: 1 });
  const inf = zlib.createInflateRaw({ chunkSize: 64 });
  const cols = [
    time(n, () => zlib.deflateRawSync(msg, { finishFlush: Z_SYNC_FLUSH, level: 1 })),
    time(n, () => {
      run(d, msg);
      (d as unknown as Internals)._handle.reset();
    }),
    time(n, () => run(d, msg)),
    time(n, () => zlib.inflateRawSync(comp, { finishFlush: Z_SYNC_FLUSH })),
    time(n, () => {
      run(inf, comp);
      (inf as unknown as Internals)._handle.reset();
    }),
  ];
  console.log(`${String(size).padEnd(10)}${cols.map((c) => c.toFixed(2).padStart(14)).join('')}`);
  d.close();
  inf.close();
}
