/**
 * Stress: WebSocket echo under backpressure, with raw clients (stress-ws-support.ts) that read on
 * a seeded stop-and-go schedule — the class of defect 4216b93 fixed (a stalled reader sent bytes
 * the encoder had since rewritten), looked for on the other write paths:
 *
 * - sizes around every limit of the encoder (7/16/64-bit lengths, the 16 KiB slab bound), text and
 *   binary, messages cut into fragments with pings between them (§5.4: control frames inside a
 *   fragmented message), `copyMessages` on and off;
 * - echoes sent in `onMessage` (the read burst), later from timers, microtasks and setImmediate
 *   (outside any burst: `flushSoon` at once), and to another connection (during someone else's
 *   burst: `deferred`, flushed when the bursts end, before the slabs are recycled);
 * - a close asked for after many queued echoes: the close frame comes after every one of them and
 *   nothing after it.
 *
 * Every client checks every frame: its echoes (or its neighbour's messages) exactly, in order;
 * its pongs exactly, in order — and, where the server answers in the burst, interleaved exactly
 * where the pings were. Seeds are fixed (MULTIREACTOR_SEED overrides): assertions are on content
 * only, never on timing.
 */
import { Buffer } from 'node:buffer';
import { setTimeout as sleep } from 'node:timers/promises';
import { expect } from 'chai';
import { type WebSocket, websocket } from '../../src/index.js';
import { Opened, prng } from './helpers.js';
import {
  firstDifference,
  messageBytes,
  OP_BINARY,
  OP_CLOSE,
  OP_PONG,
  OP_TEXT,
  RawClient,
  type RxFrame,
  sizeFor,
  until,
} from './stress-ws-support.js';

const SEED = process.env.MULTIREACTOR_SEED !== undefined ? Number(process.env.MULTIREACTOR_SEED) : 0x5eed;
const CLIENTS = 4;
const COUNT = 250;

type Mode = 'sync' | 'deferred' | 'cross';

interface Expect {
  /** The data frames (op, payload) this client should receive, in order. */
  data: RxFrame[];
  /** The pong payloads, in order. */
  pongs: Buffer[];
  /** sync mode: the whole sequence (pongs where the pings were). */
  all: RxFrame[];
}

describe('stress: WebSocket echo with stalled raw readers', function () {
  this.timeout(30_000);
  const opened = new Opened();

  afterEach(async () => {
    await opened.teardown();
  });

  const cases: Array<[Mode, boolean]> = [
    ['sync', false],
    ['sync', true],
    ['deferred', true],
    ['deferred', false],
    ['cross', false],
    ['cross', true],
  ];
  for (const [mode, copyMessages] of cases) {
    it(`${mode} echoes (copyMessages: ${copyMessages}): every frame intact, in order, close frame last`, async () => {
      const byId = new Map<number, WebSocket>();
      const serverClose: Array<[number, number]> = [];
      let ticks = 0;
      // Sends made while the connection was above its high watermark: the test must reach them.
      let unwritable = 0;
      const server = await opened.listen({
        host: '127.0.0.1',
        port: 0,
        sendBufferSize: 4096,
        initialReadSize: 65_536,
        minReadSize: 65_536,
        pipeline: websocket(
          (ws) => {
            const fifo: Array<() => void> = [];
            let scheduled = false;
            const drain = () => {
              scheduled = false;
              for (const f of fifo.splice(0)) f();
            };
            // Later, in order: a timer, a microtask or setImmediate, whichever comes up.
            const later = (f: () => void) => {
              fifo.push(f);
              if (scheduled) return;
              scheduled = true;
              const k = ticks++ % 3;
              if (k === 0) setTimeout(drain, 0);
              else if (k === 1) queueMicrotask(drain);
              else setImmediate(drain);
            };
            ws.onClose = (code) => serverClose.push([ws.data as number, code]);
            ws.onMessage = function (data, isBinary) {
              if (!isBinary && data.length < 24 && data.toString('latin1').startsWith('HELLO ')) {
                this.data = Number(data.toString('latin1').slice(6));
                byId.set(this.data as number, this);
                this.send(data, false);
                return;
              }
              if (!isBinary && data.length < 24 && data.toString('latin1').startsWith('CLOSE ')) {
                const code = Number(data.toString('latin1').slice(6));
                if (mode === 'deferred') later(() => this.close(code, 'bye'));
                else this.close(code, 'bye');
                return;
              }
              if (mode === 'sync') {
                if (!this.isWritable) unwritable++;
                this.send(data, isBinary);
              } else if (mode === 'deferred') {
                // A lent message is the callback's only: kept for later, it is copied.
                const keep = copyMessages ? data : Buffer.from(data);
                later(() => {
                  if (!this.isWritable) unwritable++;
                  this.send(keep, isBinary);
                });
              } else {
                const to = byId.get(((this.data as number) + 1) % CLIENTS) as WebSocket;
                if (!to.isWritable) unwritable++;
                to.send(data, isBinary);
              }
            };
          },
          { copyMessages, maxBufferedAmount: 1 << 30 },
        ),
      });
      const port = server.address().port;
      const clients: RawClient[] = [];
      for (let id = 0; id < CLIENTS; id++) clients.push(new RawClient(await opened.client(port), id));
      await until(
        () => clients.every((c) => c.open),
        () => 'the handshakes',
      );
      const hello = prng(SEED);
      for (const c of clients) c.sendMessage(OP_TEXT, Buffer.from(`HELLO ${c.id}`), hello);
      await until(
        () => clients.every((c) => c.messages().length === 1),
        () => 'the hellos',
      );

      const expects: Expect[] = clients.map(() => ({ data: [], pongs: [], all: [] }));
      const sender = async (c: RawClient) => {
        const rand = prng(SEED + 1000 * c.id + (mode === 'cross' ? 7 : 0) + (copyMessages ? 13 : 0));
        const to = mode === 'cross' ? (c.id + 1) % CLIENTS : c.id;
        const mine = expects[c.id] as Expect;
        const theirs = expects[to] as Expect;
        c.stall(SEED + 77 * c.id, 12);
        for (let seq = 0; seq < COUNT; seq++) {
          const text = rand() < 0.3;
          const payload = messageBytes(c.id, to, seq, sizeFor(rand), text);
          const pieces = rand() < 0.3 ? 2 + Math.floor(rand() * 4) : 1;
          const pings: Buffer[] = [];
          for (let i = 0; i + 1 < pieces; i++) pings.push(Buffer.from(`ping ${c.id}:${seq}:${i}`));
          const op = text ? OP_TEXT : OP_BINARY;
          c.sendMessage(op, payload, rand, pieces, pings);
          const used = pieces > 1 && payload.length >= pieces ? pings : [];
          for (const p of used) {
            mine.pongs.push(p);
            mine.all.push({ fin: true, rsv: 0, op: OP_PONG, payload: p });
          }
          const echo = { fin: true, rsv: 0, op, payload };
          theirs.data.push(echo);
          theirs.all.push(echo);
          if (rand() < 0.05) await sleep(Math.floor(rand() * 4));
        }
      };
      await Promise.all(clients.map(sender));
      const dataOf = (c: RawClient) => c.messages().slice(1);
      await until(
        () => clients.every((c, i) => dataOf(c).length >= (expects[i] as Expect).data.length || c.errors.length > 0),
        () => `the echoes: ${clients.map((c, i) => `${dataOf(c).length}/${(expects[i] as Expect).data.length}`)}`,
      );
      // Close (the echo modes): asked for after everything; the close frame must come last.
      if (mode !== 'cross') {
        const r = prng(SEED + 5);
        for (const c of clients) c.sendMessage(OP_TEXT, Buffer.from(`CLOSE ${4000 + c.id}`), r);
        await until(
          () => clients.every((c) => c.frames.some((f) => f.op === OP_CLOSE) || c.errors.length > 0),
          () => 'the close frames',
        );
        for (const c of clients) c.sendClose(4000 + c.id, r);
        await until(
          () => clients.every((c) => c.ended),
          () => 'the server closing the connections',
        );
        // onClose fires once the server has read the client's FIN too (its graceful close).
        await until(
          () => serverClose.length === CLIENTS,
          () => `onClose on every connection (${serverClose.length})`,
        );
      }
      for (const c of clients) c.stopStalling();

      // Megabytes to readers that stop for up to 12 ms at a time through 4 KiB send buffers: the
      // queues must have waited (else this test checks nothing about backpressure).
      expect(unwritable, 'sends made above the high watermark').to.be.above(0);
      for (const [i, c] of clients.entries()) {
        const want = expects[i] as Expect;
        expect(c.errors, `client ${i}`).to.deep.equal([]);
        const got = dataOf(c);
        expect(
          firstDifference(
            got.map((f) => f.payload),
            want.data.map((f) => f.payload),
            `client ${i}`,
          ),
        ).to.equal('');
        got.forEach((f, k) => {
          expect(f.op, `client ${i} message ${k} opcode`).to.equal((want.data[k] as RxFrame).op);
          expect(f.fin && f.rsv === 0, `client ${i} message ${k} fin/rsv`).to.equal(true);
        });
        const pongs = c.frames.filter((f) => f.op === OP_PONG).map((f) => f.payload);
        expect(firstDifference(pongs, want.pongs, `client ${i} pongs`)).to.equal('');
        if (mode === 'sync') {
          // Answered in the burst: each pong right where its ping was, between the echoes.
          const seq = c.frames.slice(1).filter((f) => f.op !== OP_CLOSE);
          expect(
            firstDifference(
              seq.map((f) => Buffer.concat([Buffer.from([f.op]), f.payload])),
              want.all.map((f) => Buffer.concat([Buffer.from([f.op]), f.payload])),
              `client ${i} frame order`,
            ),
          ).to.equal('');
        }
        if (mode !== 'cross') {
          const last = c.frames[c.frames.length - 1] as RxFrame;
          expect(last.op, `client ${i}: the last frame is the close`).to.equal(OP_CLOSE);
          expect(last.payload.readUInt16BE(0)).to.equal(4000 + i);
          expect(last.payload.subarray(2).toString()).to.equal('bye');
          expect(c.frames.filter((f) => f.op === OP_CLOSE).length).to.equal(1);
        }
      }
      if (mode !== 'cross') {
        expect(serverClose.sort((a, b) => a[0] - b[0])).to.deep.equal(clients.map((c) => [c.id, 4000 + c.id]));
      }
    });
  }
});
