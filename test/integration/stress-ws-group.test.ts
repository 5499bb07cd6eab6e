/**
 * Stress: a WebSocketGroup's publish (group.ts: one `sharedFrame` written to every member) to
 * members that read on seeded stop-and-go schedules, one of them not at all until the publishers
 * are done — under each backpressure policy, with raw clients (stress-ws-support.ts), 4 KiB send
 * buffers and 64 KiB reads. Every member checks every message it got: whole, intact, from
 * another member, and in each publisher's order —
 *
 * - `'wait'`: exactly every other publisher's messages;
 * - `'drop'`: a subsequence of them (whole messages dropped, never a torn one), and what it got
 *   plus what the server counted as dropped for it (`droppedMessages`) is everything;
 * - `'close'`: a prefix of each publisher's messages (nothing skipped before the close), the
 *   server reporting 1008 for every member it closed — the stalled one among them.
 */
import { Buffer } from 'node:buffer';
import { setTimeout as sleep } from 'node:timers/promises';
import { expect } from 'chai';
import { type WebSocket, WebSocketGroup, websocket } from '../../src/index.js';
import { Opened, prng } from './helpers.js';
import {
  ALL,
  messageBytes,
  OP_BINARY,
  OP_CLOSE,
  OP_TEXT,
  RawClient,
  type RxFrame,
  sizeFor,
  tagOf,
  until,
} from './stress-ws-support.js';

const SEED = process.env.MULTIREACTOR_SEED !== undefined ? Number(process.env.MULTIREACTOR_SEED) : 0x9a0b;
const MEMBERS = 5;
const PUBLISHERS = 3;
const COUNT = 200;
/** The member that reads nothing until the publishers are done. */
const STALLED = MEMBERS - 1;

type Policy = 'wait' | 'drop' | 'close';

describe('stress: group publish to stalled members under each backpressure policy', function () {
  this.timeout(30_000);
  const opened = new Opened();

  afterEach(async () => {
    await opened.teardown();
  });

  const cases: Array<[Policy, boolean]> = [
    ['wait', false],
    ['wait', true],
    ['drop', false],
    ['drop', true],
    ['close', false],
    ['close', true],
  ];
  for (const [policy, copyMessages] of cases) {
    it(`'${policy}' (copyMessages: ${copyMessages}): every member gets whole messages, in each publisher's order, as the policy allows`, async () => {
      const group = new WebSocketGroup();
      const byId = new Map<number, WebSocket>();
      const closedWith = new Map<number, number>();
      const processed = new Array<number>(MEMBERS).fill(0);
      let skipped = 0;
      const server = await opened.listen({
        host: '127.0.0.1',
        port: 0,
        sendBufferSize: 4096,
        initialReadSize: 65_536,
        minReadSize: 65_536,
        pipeline: websocket(
          (ws) => {
            ws.onClose = (code) => closedWith.set(ws.data as number, code);
            ws.onMessage = function (data, isBinary) {
              if (this.data === undefined) {
                this.data = Number(data.toString('latin1').slice(6)); // HELLO <id>
                byId.set(this.data as number, this);
                group.join(this);
                return;
              }
              processed[this.data as number] = (processed[this.data as number] as number) + 1;
              skipped += group.publish(data, isBinary, this).skipped;
            };
          },
          { copyMessages, backpressure: policy, maxBufferedAmount: 1 << 30 },
        ),
      });
      const port = server.address().port;
      const clients: RawClient[] = [];
      for (let id = 0; id < MEMBERS; id++) clients.push(new RawClient(await opened.client(port), id));
      await until(
        () => clients.every((c) => c.open),
        () => 'the handshakes',
      );
      const hello = prng(SEED);
      for (const c of clients) c.sendMessage(OP_TEXT, Buffer.from(`HELLO ${c.id}`), hello);
      await until(
        () => group.size === MEMBERS,
        () => 'every member joining',
      );

      const sent: Buffer[][] = clients.map(() => []);
      const ops: number[][] = clients.map(() => []);
      (clients[STALLED] as RawClient).socket.pause();
      for (const c of clients) if (c.id !== STALLED) c.stall(SEED + 31 * c.id, 10);
      const publisher = async (c: RawClient) => {
        const rand = prng(SEED + 1000 * c.id + (copyMessages ? 1 : 0));
        for (let seq = 0; seq < COUNT && !c.ended; seq++) {
          const text = rand() < 0.3;
          // At least the 10-byte tag: every message names its publisher and sequence.
          const payload = messageBytes(c.id, ALL, seq, Math.max(10, sizeFor(rand)), text);
          const pieces = rand() < 0.25 ? 2 + Math.floor(rand() * 3) : 1;
          const pings = Array.from({ length: pieces - 1 }, (_, i) => Buffer.from(`p${c.id}:${seq}:${i}`));
          c.sendMessage(text ? OP_TEXT : OP_BINARY, payload, rand, pieces, pings);
          (sent[c.id] as Buffer[]).push(payload);
          (ops[c.id] as number[]).push(text ? OP_TEXT : OP_BINARY);
          if (rand() < 0.05) await sleep(Math.floor(rand() * 4));
        }
      };
      await Promise.all(clients.slice(0, PUBLISHERS).map(publisher));
      // Every publisher's messages handled (or the publisher closed by the policy).
      await until(
        () => clients.slice(0, PUBLISHERS).every((c) => processed[c.id] === COUNT || closedWith.has(c.id)),
        () => `the publishes: ${processed.join(', ')}`,
      );
      for (const c of clients) c.stopStalling();
      // Then, once each open member's queue is empty, an END it cannot miss (sent while writable).
      const ended = new Set<number>();
      await until(
        () => {
          for (const [id, ws] of byId) {
            if (ended.has(id) || ws.readyState !== 'open' || ws.bufferedAmount > 0 || !ws.isWritable) continue;
            ws.send('END');
            ended.add(id);
          }
          return clients.every(
            (c) =>
              c.ended ||
              c.errors.length > 0 ||
              c.messages().some((f) => f.op === OP_TEXT && f.payload.toString() === 'END'),
          );
        },
        () => `the ENDs (${[...ended].join(', ')} sent)`,
      );

      for (const c of clients) {
        const r = c.id;
        expect(c.errors, `member ${r}`).to.deep.equal([]);
        const msgs = c.messages().filter((f) => !(f.op === OP_TEXT && f.payload.toString() === 'END'));
        expect(
          c.frames.filter((f) => f.op === OP_CLOSE),
          `member ${r}: no close frame`,
        ).to.deep.equal([]);
        const next = new Array<number>(MEMBERS).fill(0);
        let gaps = 0;
        msgs.forEach((f: RxFrame, k) => {
          const where = `member ${r} message ${k}`;
          expect(f.payload.length, `${where}: length`).to.be.at.least(10);
          const { from, seq } = tagOf(f.payload);
          expect(from, `${where}: publisher`).to.be.below(PUBLISHERS);
          expect(from, `${where}: its own message`).to.not.equal(r);
          const want = (sent[from] as Buffer[])[seq];
          expect(
            want !== undefined && f.payload.equals(want),
            `${where}: publisher ${from} seq ${seq} intact`,
          ).to.equal(true);
          expect(f.op, `${where}: opcode`).to.equal((ops[from] as number[])[seq]);
          const expected = next[from] as number;
          expect(seq, `${where}: publisher ${from} order`).to.be.at.least(expected);
          if (policy !== 'drop') expect(seq, `${where}: publisher ${from}, nothing skipped`).to.equal(expected);
          gaps += seq - expected;
          next[from] = seq + 1;
        });
        const others = clients.slice(0, PUBLISHERS).filter((p) => p.id !== r);
        const total = others.reduce((n, p) => n + (processed[p.id] as number), 0);
        const ws = byId.get(r) as WebSocket;
        if (policy === 'wait') {
          expect(closedWith.has(r), `member ${r} closed`).to.equal(false);
          expect(msgs.length, `member ${r}: every message`).to.equal(total);
        } else if (policy === 'drop') {
          expect(closedWith.has(r), `member ${r} closed`).to.equal(false);
          // Dropped at the end too (no gap after them) — so count what was not received at all.
          expect(msgs.length + ws.droppedMessages, `member ${r}: received + dropped`).to.equal(total);
          expect(gaps).to.be.at.most(ws.droppedMessages);
        } else if (closedWith.has(r)) {
          expect(closedWith.get(r), `member ${r}: close code`).to.equal(1008);
        } else expect(msgs.length, `member ${r}: every message`).to.equal(total);
      }
      // Deterministic consequences of a member that reads nothing while megabytes are published.
      if (policy === 'drop') expect((byId.get(STALLED) as WebSocket).droppedMessages).to.be.above(0);
      if (policy === 'close') expect(closedWith.get(STALLED)).to.equal(1008);
      if (policy === 'wait') expect(skipped).to.equal(0);
    });
  }
});
