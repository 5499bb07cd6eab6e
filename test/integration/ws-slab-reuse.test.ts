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
  it('stalled readers whose read bursts fill a slab all but a few bytes get their own echoes, never another connection’s', async () => {
    // Each burst: 504 masked 120-byte frames in one 64 KiB read, echoed as 61,488 bytes — one slab
    // less 4,048 bytes, merged by the connection into one view. With a 4 KiB send buffer the
    // socket blocks at random points of such a view; a rule that let views within 4 KiB of their
    // slab's size wait uncopied sent the next burst's frames (another client's) in their place.
    const SIZE = 120;
    const PER = 504;
    const BURSTS = 100;
    const server = await opened.listen({
      host: '127.0.0.1',
      port: 0,
      sendBufferSize: 4096,
      initialReadSize: 65536,
      minReadSize: 65536,
      pipeline: websocket(
        (ws) => {
          ws.onMessage = function (data, isBinary) {
            this.send(data, isBinary);
          };
        },
        { copyMessages: false, maxBufferedAmount: 1 << 30 },
      ),
    });
    const port = server.address().port;
    const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
    const stalledReader = async (id: number): Promise<Buffer> => {
      const s = await opened.client(port);
      s.write(
        'GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
          'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
      );
      const chunks: Buffer[] = [];
      let head = true;
      let got = 0;
      s.on('data', (d: Buffer) => {
        if (head) {
          const end = d.indexOf('\r\n\r\n');
          if (end < 0) return;
          head = false;
          d = d.subarray(end + 4);
        }
        chunks.push(d);
        got += d.length;
      });
      await until(() => !head, 'the handshake');
      s.pause();
      let seq = 0;
      for (let b = 0; b < BURSTS; b++) {
        const burst = Buffer.alloc(PER * (6 + SIZE)); // mask key 0: the payload as it is
        for (let k = 0; k < PER; k++, seq++) {
          const at = k * (6 + SIZE);
          burst[at] = 0x82;
          burst[at + 1] = 0x80 | SIZE;
          burst.writeUInt32BE(seq, at + 6);
          burst.fill(id, at + 10, at + 6 + SIZE);
        }
        s.write(burst);
        await sleep(5);
        if (b % 4 === 3) {
          // Read a little now and then: the socket blocks again at another point of a burst.
          s.resume();
          await sleep(1 + (b % 7));
          s.pause();
        }
      }
      s.resume();
      await until(() => got >= seq * (2 + SIZE), `client ${id}’s echoes`);
      return Buffer.concat(chunks);
    };
    const ids = [1, 2, 3];
    const echoes = await Promise.all(ids.map(stalledReader));
    echoes.forEach((data, j) => {
      const id = ids[j] as number;
      expect(data.length).to.equal(BURSTS * PER * (2 + SIZE));
      let wrong = 0;
      let first = '';
      for (let i = 0, at = 0; i < BURSTS * PER; i++, at += 2 + SIZE) {
        const ok =
          data[at] === 0x82 &&
          data[at + 1] === SIZE &&
          data.readUInt32BE(at + 2) === i &&
          data[at + 6] === id &&
          data[at + 1 + SIZE] === id;
        if (!ok && wrong++ === 0) first = `message ${i}: seq ${data.readUInt32BE(at + 2)} of client ${data[at + 6]}`;
      }
      expect(wrong, `client ${id}: ${wrong} echoes not its own, first ${first}`).to.equal(0);
    });
  });
});
