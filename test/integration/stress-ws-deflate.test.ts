/**
 * Stress: permessage-deflate under backpressure (RFC 7692), with `ws` clients (they inflate with
 * or without context takeover, as negotiated) that pause and resume reading on seeded schedules,
 * through 4 KiB send buffers:
 *
 * - echo, with the shared compressor (server_no_context_takeover) and with each connection's own
 *   (context takeover), inflating with a shared or own context, `copyMessages` on and off, echoes
 *   sent in the burst and from timers;
 * - a group publishing to members on different terms — shared compression at two window sizes
 *   (one frame compressed once per window, group.ts), context takeover (sent uncompressed) —
 *   each member checking it got every other member's messages, whole and in order.
 *
 * Messages are compressible and incompressible, around the threshold and the slab bound, and
 * identify sender, receiver and sequence (stress-ws-support.ts `messageBytes`).
 */
import { Buffer } from 'node:buffer';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { expect } from 'chai';
import WsClient from 'ws';
import { type WebSocket, WebSocketGroup, websocket } from '../../src/index.js';
import { Opened, prng } from './helpers.js';
import { ALL, firstDifference, messageBytes, sizeFor, tagOf, until } from './stress-ws-support.js';

const SEED = process.env.MULTIREACTOR_SEED !== undefined ? Number(process.env.MULTIREACTOR_SEED) : 0xdef1;

/**
 * A message that compresses (runs of one byte after the tag) or hardly (seeded pseudo-random
 * bytes: messageBytes' own pattern repeats every 256 bytes and would shrink to nothing).
 */
function payloadFor(from: number, to: number, seq: number, rand: () => number): { data: Buffer; text: boolean } {
  const text = rand() < 0.4;
  const size = Math.max(10, sizeFor(rand));
  const data = messageBytes(from, to, seq, size, text);
  const compressible = rand() < 0.5;
  const noise = prng(from * 1_000_003 + to * 7919 + seq);
  for (let k = 10; k < size; k++) {
    const v = compressible ? seq & 0xff : Math.floor(noise() * 256);
    data[k] = text ? 0x21 + (v % 94) : v;
  }
  return { data, text };
}

/** Pauses and resumes a `ws` client's reading on a seeded schedule until `stop()`. */
function stall(c: WsClient, seed: number, maxMs: number): () => void {
  const rand = prng(seed);
  let timer: NodeJS.Timeout | undefined;
  const step = (paused: boolean) => {
    if (c.readyState !== WsClient.OPEN) return;
    if (paused) c.pause();
    else c.resume();
    timer = setTimeout(() => step(rand() < 0.6), Math.floor(rand() * maxMs));
  };
  step(true);
  return () => {
    clearTimeout(timer);
    if (c.readyState === WsClient.OPEN) c.resume();
  };
}

describe('stress: permessage-deflate with stalled readers', function () {
  this.timeout(30_000);
  const opened = new Opened();
  const clients: WsClient[] = [];

  afterEach(async () => {
    for (const c of clients.splice(0)) c.terminate();
    await opened.teardown();
  });

  async function open(port: number, pmd: WsClient.PerMessageDeflateOptions): Promise<WsClient> {
    const c = new WsClient(`ws://127.0.0.1:${port}/`, { perMessageDeflate: pmd });
    clients.push(c);
    await once(c, 'open');
    return c;
  }

  const echoCases: Array<[boolean, boolean, boolean]> = [
    // serverNoContextTakeover, clientNoContextTakeover, copyMessages
    [true, true, false],
    [true, true, true],
    [false, false, false],
    [false, true, true],
  ];
  for (const [serverNoCtx, clientNoCtx, copyMessages] of echoCases) {
    it(`echo (server context takeover ${!serverNoCtx}, client ${!clientNoCtx}, copyMessages ${copyMessages}): every message intact, in order`, async () => {
      let n = 0;
      // Queues that went above the high watermark and drained again: the test must reach them.
      let drains = 0;
      const echo = (ws: WebSocket, data: Buffer, isBinary: boolean) => ws.send(data, isBinary);
      const server = await opened.listen({
        host: '127.0.0.1',
        port: 0,
        sendBufferSize: 4096,
        // Low watermarks: a reader pausing for a few ms puts its queue above them.
        highWaterMark: 8192,
        lowWaterMark: 4096,
        initialReadSize: 65_536,
        minReadSize: 65_536,
        pipeline: websocket(
          (ws) => {
            ws.onDrain = () => drains++;
            ws.onMessage = function (data, isBinary) {
              // Every third echo later, from a timer (after the ones sent before it: a chain).
              if (n++ % 3 === 0) {
                const keep = copyMessages ? data : Buffer.from(data);
                const prev = (this.data as Promise<void> | undefined) ?? Promise.resolve();
                this.data = prev.then(() => sleep(0)).then(() => void echo(this, keep, isBinary));
              } else {
                const prev = this.data as Promise<void> | undefined;
                if (prev === undefined) echo(this, data, isBinary);
                else {
                  const keep = copyMessages ? data : Buffer.from(data);
                  this.data = prev.then(() => void echo(this, keep, isBinary));
                }
              }
            };
          },
          {
            copyMessages,
            maxBufferedAmount: 1 << 30,
            perMessageDeflate: {
              serverNoContextTakeover: serverNoCtx,
              clientNoContextTakeover: clientNoCtx,
              threshold: 100,
            },
          },
        ),
      });
      const port = server.address().port;
      const count = 150;
      const cs = await Promise.all([0, 1, 2].map(() => open(port, { threshold: 100 })));
      const runs = cs.map(async (c, id) => {
        const got: Array<{ data: Buffer; text: boolean }> = [];
        c.on('message', (d, isBinary) => got.push({ data: d as Buffer, text: !isBinary }));
        // Reading nothing while sending (a socket not read keeps its first, small receive buffer:
        // the server's queue waits), then stop-and-go.
        c.pause();
        const rand = prng(SEED + 100 * id + (serverNoCtx ? 1 : 0) + (copyMessages ? 2 : 0));
        const want: Array<{ data: Buffer; text: boolean }> = [];
        for (let seq = 0; seq < count; seq++) {
          const m = payloadFor(id, id, seq, rand);
          want.push(m);
          c.send(m.text ? m.data.toString('latin1') : m.data, { binary: !m.text });
          if (rand() < 0.1) await sleep(Math.floor(rand() * 3));
        }
        await sleep(300); // (`ws` compresses in the background: let its sends arrive)
        const stop = stall(c, SEED + id, 20);
        await until(
          () => got.length >= count,
          () => `client ${id}'s echoes (${got.length}/${count})`,
        );
        stop();
        return { got, want };
      });
      const results = await Promise.all(runs);
      expect(drains, 'queues drained after waiting').to.be.above(0);
      for (const [id, { got, want }] of results.entries()) {
        expect(
          firstDifference(
            got.map((m) => m.data),
            want.map((m) => m.data),
            `client ${id}`,
          ),
        ).to.equal('');
        got.forEach((m, k) => {
          expect(m.text, `client ${id} message ${k} text`).to.equal((want[k] as { text: boolean }).text);
        });
      }
    });
  }

  it('group publish to members on different terms (shared compression at two windows, context takeover, none): everything, in order', async () => {
    const group = new WebSocketGroup();
    let published = 0;
    let drains = 0;
    const server = await opened.listen({
      host: '127.0.0.1',
      port: 0,
      sendBufferSize: 4096,
      // Low watermarks, and member 4 reads nothing while the others publish: the queues wait.
      highWaterMark: 8192,
      lowWaterMark: 4096,
      initialReadSize: 65_536,
      minReadSize: 65_536,
      pipeline: websocket(
        (ws) => {
          group.join(ws);
          ws.onDrain = () => drains++;
          ws.onMessage = (data, isBinary) => {
            published++;
            group.publish(data, isBinary, ws);
          };
        },
        {
          copyMessages: false,
          maxBufferedAmount: 1 << 30,
          perMessageDeflate: { serverNoContextTakeover: false, threshold: 100 },
        },
      ),
    });
    const port = server.address().port;
    const terms: Array<WsClient.PerMessageDeflateOptions | false> = [
      { serverNoContextTakeover: true, threshold: 100 },
      { serverNoContextTakeover: true, serverMaxWindowBits: 10, threshold: 100 },
      { serverNoContextTakeover: false, threshold: 100 },
      false,
      { serverNoContextTakeover: true, serverMaxWindowBits: 10, threshold: 100 },
    ];
    const cs: WsClient[] = [];
    for (const t of terms) {
      const c = new WsClient(`ws://127.0.0.1:${port}/`, { perMessageDeflate: t });
      clients.push(c);
      await once(c, 'open');
      cs.push(c);
    }
    await until(
      () => group.size === terms.length,
      () => 'every member joining',
    );
    const count = 120;
    const got: Buffer[][] = cs.map(() => []);
    const sent: Buffer[][] = cs.map(() => []);
    cs.forEach((c, id) => {
      c.on('message', (d) => (got[id] as Buffer[]).push(d as Buffer));
    });
    (cs[4] as WsClient).pause();
    const stops = cs.map((c, id) => (id === 4 ? () => c.resume() : stall(c, SEED + 50 + id, 10)));
    await Promise.all(
      cs.map(async (c, id) => {
        const rand = prng(SEED + 7 * id);
        for (let seq = 0; seq < count; seq++) {
          const m = payloadFor(id, ALL, seq, rand);
          (sent[id] as Buffer[]).push(m.data);
          c.send(m.data, { binary: true });
          if (rand() < 0.1) await sleep(Math.floor(rand() * 3));
        }
      }),
    );
    await sleep(300); // (`ws` compresses in the background: let its sends arrive while 4 reads nothing)
    for (const s of stops) s();
    const total = (terms.length - 1) * count;
    await until(
      () => published === terms.length * count && got.every((g) => g.length >= total),
      () => `the publishes (${published}; ${got.map((g) => g.length).join(', ')} of ${total})`,
    );
    expect(drains, 'queues drained after waiting').to.be.above(0);
    got.forEach((g, r) => {
      expect(g.length, `member ${r}`).to.equal(total);
      const next = new Array<number>(terms.length).fill(0);
      g.forEach((m, k) => {
        const { from, seq } = tagOf(m);
        const where = `member ${r} message ${k} (from ${from} seq ${seq})`;
        expect(from, where).to.not.equal(r);
        expect(seq, `${where}: order`).to.equal(next[from]);
        expect(m.equals((sent[from] as Buffer[])[seq] as Buffer), `${where}: intact`).to.equal(true);
        next[from] = seq + 1;
      });
    });
  });
});
