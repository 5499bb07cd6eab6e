/**
 * The zlib engine: a kept context used synchronously (the fast path, available on this Node) and
 * the one-shot fallback give the same bytes; both refuse output past the limit and invalid input.
 */
import { Buffer } from 'node:buffer';
import zlib from 'node:zlib';
import { expect } from 'chai';
import {
  ENGINE_REUSE,
  InvalidDeflateDataError,
  OutputTooLargeError,
  ZlibEngine,
} from '../../../src/websocket/zlib-engine.js';

const TRAILER = Buffer.from([0, 0, 0xff, 0xff]);

describe('websocket/zlib-engine', () => {
  it('reuses zlib contexts synchronously on this Node', () => {
    expect(ENGINE_REUSE).to.equal(true);
  });

  for (const oneShot of [false, true]) {
    describe(oneShot ? 'one-shot fallback' : 'kept context', () => {
      it('compresses what zlib inflates, and inflates what zlib compresses (1 B to 300 KiB)', () => {
        const d = new ZlibEngine('deflate', { windowBits: 15, level: 1, oneShot });
        const i = new ZlibEngine('inflate', { windowBits: 15, oneShot });
        for (const n of [1, 100, 5000, 70_000, 300_000]) {
          const data = Buffer.from(Array.from({ length: n }, (_, k) => (k * 7) % 251));
          const c = d.process(data, Number.MAX_SAFE_INTEGER);
          d.reset();
          expect(zlib.inflateRawSync(c, { finishFlush: zlib.constants.Z_SYNC_FLUSH }).equals(data)).to.equal(true);
          const theirs = zlib.deflateRawSync(data, { finishFlush: zlib.constants.Z_SYNC_FLUSH });
          expect(i.process(theirs, n).equals(data)).to.equal(true);
          i.reset();
        }
        expect(d.open).to.equal(!oneShot);
        d.close();
        i.close();
        expect(d.open).to.equal(false);
      });

      it('refuses output past the limit, and invalid data', () => {
        const bomb = zlib.deflateRawSync(Buffer.alloc(4 * 1024 * 1024), { finishFlush: zlib.constants.Z_SYNC_FLUSH });
        const i = new ZlibEngine('inflate', { windowBits: 15, oneShot });
        expect(() => i.process(bomb, 1024 * 1024)).to.throw(OutputTooLargeError);
        expect(() => i.process(Buffer.concat([Buffer.from([0xff, 0xff, 0xff]), TRAILER]), 1000)).to.throw(
          InvalidDeflateDataError,
        );
        // Usable again afterwards (a fresh context).
        const ok = zlib.deflateRawSync(Buffer.from('fine'), { finishFlush: zlib.constants.Z_SYNC_FLUSH });
        expect(i.process(ok, 100).toString()).to.equal('fine');
        i.close();
      });
    });
  }
});
