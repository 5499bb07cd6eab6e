/**
 * The master's pub/sub relay alone, on real AF_UNIX socket pairs (as the master makes them for
 * its workers): the test plays the workers, writing frames into their ends and reading what the
 * relay forwards. Routing by topic and by pattern, never back to the sender, once per worker;
 * subscriptions that go with a closed end; frames cut anywhere; a malformed frame; a receiver
 * that stops reading.
 */
import { Buffer } from 'node:buffer';
import { setTimeout as sleep } from 'node:timers/promises';
import { expect } from 'chai';
import { type Logger, silentLogger } from '../../../src/common/logger.js';
import { RelayHub } from '../../../src/master/relay.js';
import {
  RELAY_HEAD,
  RELAY_PSUB,
  RELAY_PUB,
  RELAY_PUNSUB,
  RELAY_SUB,
  RELAY_UNSUB,
} from '../../../src/master/relay-protocol.js';
import { EAGAIN } from '../../../src/syscalls/constants.js';
import { close, read, write } from '../../../src/syscalls/libc.js';

function frame(op: number, name: string, payload: Buffer = Buffer.alloc(0)): Buffer {
  const n = Buffer.byteLength(name);
  const f = Buffer.alloc(RELAY_HEAD + n + payload.length);
  f.writeUInt32BE(f.length - 4, 0);
  f[4] = op;
  f.writeUInt16BE(n, 5);
  f.write(name, RELAY_HEAD);
  payload.copy(f, RELAY_HEAD + n);
  return f;
}

async function until(what: string, cond: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(2);
  }
}

/** A worker's end: what it writes, and the frames it has been sent (name and payload). */
class Worker {
  private buf = Buffer.alloc(0);
  eof = false;

  constructor(readonly fd: number) {}

  send(bytes: Buffer): void {
    let at = 0;
    while (at < bytes.length) {
      const n = write(this.fd, bytes.subarray(at), bytes.length - at);
      if (n === -EAGAIN) continue;
      if (n < 0) throw new Error(`write failed: ${n}`);
      at += n;
    }
  }

  /** Reads what is there (non-blocking) and returns the complete frames received so far. */
  frames(): Array<{ op: number; name: string; payload: string }> {
    const chunk = Buffer.alloc(1 << 20);
    for (;;) {
      const n = read(this.fd, chunk, chunk.length);
      if (n > 0) this.buf = Buffer.concat([this.buf, chunk.subarray(0, n)]);
      else if (n === 0) {
        this.eof = true;
        break;
      } else if (n === -EAGAIN) break;
      else throw new Error(`read failed: ${n}`);
    }
    const out: Array<{ op: number; name: string; payload: string }> = [];
    let at = 0;
    while (this.buf.length - at >= 4 && this.buf.length - at >= 4 + this.buf.readUInt32BE(at)) {
      const end = at + 4 + this.buf.readUInt32BE(at);
      const nameEnd = at + RELAY_HEAD + this.buf.readUInt16BE(at + 5);
      out.push({
        op: this.buf[at + 4] as number,
        name: this.buf.toString('utf8', at + RELAY_HEAD, nameEnd),
        payload: this.buf.toString('latin1', nameEnd, end),
      });
      at = end;
    }
    this.buf = this.buf.subarray(at);
    return out;
  }
}

describe('master/relay: the pub/sub relay between workers', function () {
  this.timeout(15_000);
  let hub: RelayHub;
  const workers: Worker[] = [];
  const lines: string[] = [];
  const logger: Logger = { ...silentLogger, warn: (m) => lines.push(m), error: (m) => lines.push(m) };

  beforeEach(() => {
    hub = new RelayHub(logger);
    lines.length = 0;
  });

  afterEach(async () => {
    for (const w of workers.splice(0)) close(w.fd);
    await hub.close();
  });

  function worker(): Worker {
    const w = new Worker(hub.open(`worker ${workers.length}`));
    workers.push(w);
    return w;
  }

  /** Waits until every frame sent so far has been read by the relay (a SUB is answered by nothing). */
  async function settle(): Promise<void> {
    await sleep(20);
  }

  it('forwards a message to every other worker of the topic, as the bytes it read; never back to the sender', async () => {
    const [a, b, c, d] = [worker(), worker(), worker(), worker()];
    for (const w of [a, b, c]) w.send(frame(RELAY_SUB, 'room:1'));
    d.send(frame(RELAY_SUB, 'room:2'));
    await settle();
    const msg = frame(RELAY_PUB, 'room:1', Buffer.from('hello'));
    a.send(msg);
    const got = new Map<Worker, Array<{ op: number; name: string; payload: string }>>([
      [b, []],
      [c, []],
    ]);
    await until('b and c', () => {
      for (const [w, list] of got) list.push(...w.frames());
      return [...got.values()].every((l) => l.length === 1);
    });
    for (const list of got.values()) expect(list).to.deep.equal([{ op: RELAY_PUB, name: 'room:1', payload: 'hello' }]);
    await settle();
    expect(a.frames()).to.deep.equal([]);
    expect(d.frames()).to.deep.equal([]);
    expect(hub.stats()).to.include({ workers: 4, messages: 1, forwarded: 2, dropped: 0 });
  });

  it('forwards in order, once per worker whatever matched it: topic and patterns', async () => {
    const [pub, exact, pattern, both] = [worker(), worker(), worker(), worker()];
    exact.send(frame(RELAY_SUB, 'room:lobby'));
    pattern.send(frame(RELAY_PSUB, 'room:*'));
    both.send(Buffer.concat([frame(RELAY_SUB, 'room:lobby'), frame(RELAY_PSUB, 'room:*'), frame(RELAY_PSUB, '*')]));
    await settle();
    const sent = Array.from({ length: 100 }, (_, i) =>
      frame(RELAY_PUB, i % 2 === 0 ? 'room:lobby' : 'room:x', Buffer.from(`m${i}`)),
    );
    pub.send(Buffer.concat(sent));
    const received = new Map<Worker, string[]>([
      [exact, []],
      [pattern, []],
      [both, []],
    ]);
    await until('every message', () => {
      for (const [w, list] of received) for (const f of w.frames()) list.push(`${f.name}/${f.payload}`);
      return (received.get(both) as string[]).length >= 100 && (received.get(pattern) as string[]).length >= 100;
    });
    await settle();
    for (const [w, list] of received) for (const f of w.frames()) list.push(`${f.name}/${f.payload}`);
    const all = sent.map((_, i) => `${i % 2 === 0 ? 'room:lobby' : 'room:x'}/m${i}`);
    expect(received.get(both)).to.deep.equal(all);
    expect(received.get(pattern)).to.deep.equal(all);
    expect(received.get(exact)).to.deep.equal(all.filter((m) => m.startsWith('room:lobby/')));
    expect(pub.frames()).to.deep.equal([]);
  });

  it('stops on UNSUB and PUNSUB, and forgets a worker whose end closed', async () => {
    const [pub, a, b] = [worker(), worker(), worker()];
    a.send(Buffer.concat([frame(RELAY_SUB, 't'), frame(RELAY_PSUB, 'p*')]));
    b.send(frame(RELAY_SUB, 't'));
    await settle();
    expect([...hub.topics.keys()]).to.deep.equal(['t']);
    a.send(Buffer.concat([frame(RELAY_UNSUB, 't'), frame(RELAY_PUNSUB, 'p*')]));
    await settle();
    expect([...hub.patterns.keys()]).to.deep.equal([]);
    pub.send(Buffer.concat([frame(RELAY_PUB, 't', Buffer.from('1')), frame(RELAY_PUB, 'p1', Buffer.from('2'))]));
    await until('b', () => b.frames().length === 1);
    expect(a.frames()).to.deep.equal([]);
    // b's worker exits: its end closes, its subscriptions go.
    const i = workers.indexOf(b);
    workers.splice(i, 1);
    close(b.fd);
    await until('b forgotten', () => hub.topics.size === 0);
    expect(hub.stats().workers).to.equal(2);
  });

  it('reassembles frames cut anywhere, up to a message larger than a read', async () => {
    const [pub, sub] = [worker(), worker()];
    sub.send(frame(RELAY_SUB, 'big'));
    await settle();
    const large = Buffer.alloc(1 << 20, 'x');
    large.write('start', 0);
    large.write('end', large.length - 3);
    const bytes = Buffer.concat([
      frame(RELAY_PUB, 'big', Buffer.from('small')),
      frame(RELAY_PUB, 'big', large),
      frame(RELAY_PUB, 'big', Buffer.from('after')),
    ]);
    // The first 40 bytes one at a time, then the rest in pieces of 7 KiB.
    for (let at = 0; at < 40; at++) {
      pub.send(bytes.subarray(at, at + 1));
      if (at % 8 === 0) await sleep(1);
    }
    for (let at = 40; at < bytes.length; at += 7 * 1024) {
      pub.send(bytes.subarray(at, Math.min(bytes.length, at + 7 * 1024)));
      if (at % (70 * 1024) === 40) await sleep(1);
    }
    const got: string[] = [];
    await until('three messages', () => {
      for (const f of sub.frames()) got.push(f.payload);
      return got.length === 3;
    });
    expect(got[0]).to.equal('small');
    expect(got[1]?.length).to.equal(1 << 20);
    expect(got[1]?.startsWith('start') && got[1]?.endsWith('end')).to.equal(true);
    expect(got[2]).to.equal('after');
  });

  it('a malformed frame closes that worker’s relay, and says so', async () => {
    const [bad, other] = [worker(), worker()];
    other.send(frame(RELAY_SUB, 't'));
    bad.send(frame(RELAY_SUB, 't'));
    await settle();
    bad.send(frame(9, 't'));
    await until('the close', () => {
      bad.frames();
      return bad.eof;
    });
    expect(hub.stats()).to.include({ protocolErrors: 1, workers: 1 });
    expect(lines.join('\n')).to.match(/worker 0 sent an unknown op 9: closing its relay/);
    expect([...(hub.topics.get('t') ?? [])].length).to.equal(1);
  });

  it('a worker that does not read loses messages past its bound (counted); the others get them all', async () => {
    await hub.close();
    hub = new RelayHub(logger, 1024 * 1024);
    const [pub, slow, fast] = [worker(), worker(), worker()];
    slow.send(frame(RELAY_SUB, 't'));
    fast.send(frame(RELAY_SUB, 't'));
    await settle();
    const payload = Buffer.alloc(4096, 'y');
    let fastGot = 0;
    const total = 4000; // 16 MiB: far past the socket buffers and the 1 MiB bound
    for (let i = 0; i < total; i += 10) {
      pub.send(Buffer.concat(Array.from({ length: 10 }, () => frame(RELAY_PUB, 't', payload))));
      await sleep(0);
      fastGot += fast.frames().length;
    }
    await until('fast got them all', () => {
      fastGot += fast.frames().length;
      return fastGot === total;
    });
    const s = hub.stats();
    expect(s.messages).to.equal(total);
    expect(s.dropped).to.be.greaterThan(0);
    expect(s.forwarded + s.dropped).to.equal(2 * total);
    expect(lines.join('\n')).to.match(
      /worker 1 is not reading its messages .* dropping its messages until it catches up/,
    );
    // It reads now: what was kept for it arrives.
    let slowGot = 0;
    await until('slow drained', () => {
      slowGot += slow.frames().length;
      return slowGot === s.forwarded - total;
    });
  });
});
