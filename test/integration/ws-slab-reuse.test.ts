/**
 * The WebSocket encoder rewrites its slabs once the frames in them were flushed (encode.ts,
 * `recycleSlabs`): on real connections, a peer that stops reading — its frames wait in the
 * connection's queue while other connections' traffic rewrites the slabs many times over — still
 * gets every byte it was sent, in order, and so do the busy peers, with messages of every size
 * around the slab's limits, some cut by reads (collected across them, websocket.ts `payload`).
 */
import { Buffer } from 'node:buffer';
import { once } from 'node:events';
import { expect } from 'chai';
import WsClient from 'ws';
import { websocket } from '../../src/index.js';
import { Opened } from './helpers.js';

/** Message `i`'s bytes: its size from a cycle around the slab limits, content from `i` and `seed`. */
function message(i: number, seed: number): Buffer {
  const sizes = [1, 32, 125, 126, 1000, 4096, 4100, 8192, 16_370, 16_384, 20_000];
  const n = sizes[(i * 7 + seed) % sizes.length] as number;
  const b = Buffer.allocUnsafe(n);
  for (let k = 0; k < n; k++) b[k] = (i * 131 + k * 7 + seed) & 0xff;
  return b;
}

async function until(cond: () => boolean, what: string, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('WebSocket slabs rewritten after a flush', function () {
  this.timeout(60_000);
  const opened = new Opened();
  const clients: WsClient[] = [];

  afterEach(async () => {
    for (const c of clients.splice(0)) c.terminate();
    await opened.teardown();
  });

  for (const copyMessages of [false, true]) {
    it(`a stalled reader gets every echo intact while busy peers rewrite the slabs (copyMessages: ${copyMessages})`, async () => {
      const server = await opened.listen({
        host: '127.0.0.1',
        port: 0,
        pipeline: websocket(
          (ws) => {
            ws.onMessage = function (data, isBinary) {
              this.send(data, isBinary);
            };
          },
          { copyMessages, maxBufferedAmount: 64 * 1024 * 1024 },
        ),
      });
      const url = `ws://127.0.0.1:${server.address().port}/`;
      const open = async () => {
        const c = new WsClient(url, { perMessageDeflate: false });
        clients.push(c);
        await once(c, 'open');
        return c;
      };
      const received = (c: WsClient) => {
        const got: Buffer[] = [];
        c.on('message', (d) => got.push(d as Buffer));
        return got;
      };

      // The stalled reader: ~10 MB of echoes, more than loopback's socket buffers hold, so that
      // the server's queue for it waits (and copies out what it must keep).
      const slow = await open();
      const slowGot = received(slow);
      slow.pause();
      const slowCount = 1200;
      for (let i = 0; i < slowCount; i++) slow.send(message(i, 1));
      await new Promise((r) => setTimeout(r, 300));

      // Busy peers, pipelining: every burst of theirs is flushed, then the slabs are rewritten.
      const busy = await Promise.all([open(), open(), open()]);
      const busyGot = busy.map(received);
      const busyCount = 1500;
      for (let round = 0; round < 3; round++) {
        for (let i = round * 500; i < (round + 1) * 500; i++) {
          for (let j = 0; j < busy.length; j++) (busy[j] as WsClient).send(message(i, 10 + j));
        }
        await until(() => busyGot.every((g) => g.length === (round + 1) * 500), 'the busy peers’ echoes');
      }
      busyGot.forEach((g, j) => {
        expect(g.length).to.equal(busyCount);
        g.forEach((m, i) => {
          expect(m.equals(message(i, 10 + j)), `busy ${j} message ${i}`).to.equal(true);
        });
      });

      slow.resume();
      await until(() => slowGot.length === slowCount, 'the stalled reader’s echoes');
      slowGot.forEach((m, i) => {
        expect(m.equals(message(i, 1)), `stalled message ${i}`).to.equal(true);
      });
    });
  }
});
