/**
 * Stress: pub/sub across workers (the master's relay writes the bytes it read to each receiving
 * worker, src/master/relay.ts; each worker hands them to its room's WebSocket group within a
 * relay burst, src/pubsub/cluster.ts) with a member that reads nothing while the room is busy and
 * others reading stop-and-go. examples/ws-chat-server with a master and two workers, `ws`
 * clients on both workers; three publishers, each message naming its publisher and sequence with
 * a seeded filler of 0–3,900 bytes. Every member must get exactly every publisher's messages, in
 * each publisher's order, intact ('wait', the example's policy, well within maxBufferedAmount).
 */
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import WsClient from 'ws';
import { prng, startListening } from './helpers.js';
import { until } from './stress-ws-support.js';

const CHAT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'examples', 'ws-chat-server.js');
const SEED = process.env.MULTIREACTOR_SEED !== undefined ? Number(process.env.MULTIREACTOR_SEED) : 0x7b5;
const PUBLISHERS = 3;
const COUNT = 250;

/** Publisher `p`'s message `seq`: its name, sequence and a seeded filler. */
function text(p: number, seq: number): string {
  const r = prng(SEED + p * 100_003 + seq);
  const n = Math.floor(r() * r() * 3900);
  let s = `p${p}:${seq}:`;
  for (let i = 0; i < n; i++) s += String.fromCharCode(0x30 + Math.floor(r() * 75));
  return s;
}

interface Member {
  readonly ws: WsClient;
  readonly pid: number;
  readonly got: Array<{ from: string; text: string }>;
  /** The probes heard (`probe N`: publisher N), kept out of `got`. */
  readonly probes: Set<string>;
}

describe('stress: pub/sub through the master relay with a stalled member', function () {
  this.timeout(60_000);
  const children: ChildProcess[] = [];
  const clients: WsClient[] = [];

  afterEach(async () => {
    for (const c of clients.splice(0)) c.terminate();
    await Promise.all(
      children.splice(0).map(async (child) => {
        if (child.exitCode !== null || child.signalCode !== null) return;
        const exited = once(child, 'exit');
        child.kill('SIGTERM');
        await exited;
      }),
    );
  });

  it('every member, on either worker, gets every publisher’s messages in order and intact', async () => {
    const started = await startListening([CHAT, '--port', '0', '--workers', '2', '--heartbeat', '60000']);
    children.push(started.child);
    const join = async (name: string): Promise<Member> => {
      const ws = new WsClient(`ws://127.0.0.1:${started.port}/ws?room=stress&name=${name}`, {
        perMessageDeflate: false,
      });
      clients.push(ws);
      const got: Member['got'] = [];
      const probes = new Set<string>();
      let pid = 0;
      ws.on('message', (d) => {
        const m = JSON.parse(d.toString()) as { type: string; pid?: number; from?: string; text?: string };
        if (m.type === 'hello') pid = m.pid as number;
        else if (m.type === 'message' && (m.text as string).startsWith('probe ')) probes.add(m.text as string);
        else if (m.type === 'message') got.push({ from: m.from as string, text: m.text as string });
      });
      await once(ws, 'open');
      await until(
        () => pid !== 0,
        () => `${name}'s hello`,
      );
      return { ws, pid, got, probes };
    };
    // Members until both workers have at least two (connections are spread by the kernel).
    const members: Member[] = [];
    for (let i = 0; i < 40; i++) {
      members.push(await join(`m${i}`));
      const pids = new Map<number, number>();
      for (const m of members) pids.set(m.pid, (pids.get(m.pid) ?? 0) + 1);
      if (pids.size === 2 && [...pids.values()].every((n) => n >= 2)) break;
    }
    const pids = [...new Set(members.map((m) => m.pid))];
    expect(pids.length, 'members on both workers').to.equal(2);
    // Publishers on both workers; the stalled member on the worker of publisher 1.
    const onA = members.filter((m) => m.pid === pids[0]);
    const onB = members.filter((m) => m.pid === pids[1]);
    const publishers = [onA[0], onB[0], onA[1]] as Member[];
    const stalled = onB[1] as Member;
    // Names of publishers: the chat names them by their query `name`; map member → index.
    const nameOf = new Map<Member, string>(members.map((m, i) => [m, `m${i}`]));
    const pubIndex = new Map<string, number>(publishers.map((p, i) => [nameOf.get(p) as string, i]));
    // A subscription reaches the master on its own worker's socket, so a member may not be
    // subscribed yet when a publisher on the other worker sends: probe until every member has
    // heard every publisher (probes are kept out of what is checked).
    const heardAll = () => members.every((m) => publishers.every((_, i) => m.probes.has(`probe ${i}`)));
    for (let attempt = 0; !heardAll(); attempt++) {
      expect(attempt, 'subscriptions to reach the master').to.be.lessThan(100);
      for (const [i, p] of publishers.entries()) p.ws.send(JSON.stringify({ type: 'message', text: `probe ${i}` }));
      await until(heardAll, () => 'the probes', 100).catch(() => {});
    }

    stalled.ws.pause();
    const stops = members
      .filter((m) => m !== stalled)
      .map((m, i) => {
        const rand = prng(SEED + 17 * i);
        let timer: NodeJS.Timeout | undefined;
        const step = (paused: boolean) => {
          if (paused) m.ws.pause();
          else m.ws.resume();
          timer = setTimeout(() => step(rand() < 0.5), Math.floor(rand() * 10));
        };
        step(false);
        return () => {
          clearTimeout(timer);
          m.ws.resume();
        };
      });
    await Promise.all(
      publishers.map(async (p, i) => {
        const rand = prng(SEED + 1000 + i);
        for (let seq = 0; seq < COUNT; seq++) {
          p.ws.send(JSON.stringify({ type: 'message', text: text(i, seq) }));
          if (rand() < 0.1) await sleep(Math.floor(rand() * 3));
        }
      }),
    );
    await sleep(300);
    stalled.ws.resume();
    for (const s of stops) s();
    await until(
      () => members.every((m) => m.got.length >= PUBLISHERS * COUNT),
      () => `the messages: ${members.map((m) => m.got.length).join(', ')} of ${PUBLISHERS * COUNT}`,
      30_000,
    );
    for (const [k, m] of members.entries()) {
      const next = new Array<number>(PUBLISHERS).fill(0);
      expect(m.got.length, `member ${k}`).to.equal(PUBLISHERS * COUNT);
      m.got.forEach((g, j) => {
        const p = pubIndex.get(g.from);
        expect(p, `member ${k} message ${j}: from ${g.from}`).to.not.equal(undefined);
        const seq = next[p as number] as number;
        expect(g.text === text(p as number, seq), `member ${k} message ${j}: publisher ${p} seq ${seq}`).to.equal(true);
        next[p as number] = seq + 1;
      });
    }
  });
});
