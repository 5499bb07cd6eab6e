/**
 * examples/ws-chat-server's rooms across processes, with real WebSocket clients (`ws`):
 *
 * - one server with two workers, no Redis: clients on worker 0 and on worker 1 (connect until both
 *   are hit: each client is told its process in a `hello`) hear each other through the master's
 *   relay — also after a reload has replaced both workers;
 * - two servers (two workers each) sharing one redis-server: a message from any client reaches the
 *   clients of the room on both servers and all their workers, in the order it was sent;
 * - Redis killed and restarted while a client keeps talking: the servers reconnect by themselves,
 *   the room hears the client again, and what was lost is exactly what the counters (`GET /stats`)
 *   say was missed.
 *
 * redis-server is started by the tests (test/integration/redis-support.ts); without it the Redis
 * cases are skipped, naming the package.
 */
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import WsClient from 'ws';
import type { PubSubStats } from '../../src/pubsub/pubsub.js';
import { startListening, waitFor } from './helpers.js';
import { type ParsedFamily, parseExposition, prometheusParserMissing, sampleValue } from './ops-support.js';
import { RedisServer, requireRedis, stopAll } from './redis-support.js';

const CHAT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'examples', 'ws-chat-server.js');

interface ChatMessage {
  readonly type: string;
  readonly pid?: number;
  readonly from?: string;
  readonly text?: string;
  readonly name?: string;
}

interface Chatter {
  readonly ws: WsClient;
  readonly name: string;
  /** The process serving it (from its hello). */
  readonly pid: number;
  readonly got: ChatMessage[];
  say(text: string): void;
  /** The texts of the chat messages it heard from `from`. */
  heard(from: string): string[];
}

describe('examples/ws-chat-server: rooms across workers and servers', function () {
  this.timeout(90_000);
  const children: ChildProcess[] = [];
  const clients: WsClient[] = [];

  afterEach(async () => {
    for (const c of clients.splice(0)) c.terminate();
    await Promise.all(
      children.splice(0).map(async (child) => {
        if (child.exitCode !== null || child.signalCode !== null) return;
        const exited = once(child, 'exit');
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
        await exited;
        clearTimeout(timer);
      }),
    );
    await stopAll();
  });

  /** The log (stderr) of each server started, by its port. */
  const logs = new Map<number, () => string>();

  async function server(...args: string[]): Promise<number> {
    const started = await startListening([CHAT, '--host', '127.0.0.1', '--port', '0', ...args]);
    children.push(started.child);
    logs.set(started.port, started.stderr);
    return started.port;
  }

  /** The master's /metrics, parsed by prometheus_client (its admin port is in the log). */
  async function metrics(port: number): Promise<ParsedFamily[]> {
    const m = /admin on 127\.0\.0\.1:(\d+)/.exec(logs.get(port)?.() ?? '');
    if (m === null) throw new Error(`no admin listener in the log of the server on ${port}`);
    const r = await fetch(`http://127.0.0.1:${m[1]}/metrics`, { headers: { connection: 'close' } });
    expect(r.status).to.equal(200);
    return parseExposition(await r.text());
  }

  async function chatter(port: number, room: string, name: string): Promise<Chatter> {
    const ws = new WsClient(`ws://127.0.0.1:${port}/ws?room=${room}&name=${name}`);
    clients.push(ws);
    const got: ChatMessage[] = [];
    ws.on('message', (d) => got.push(JSON.parse(d.toString()) as ChatMessage));
    ws.on('error', () => {});
    await once(ws, 'open');
    await waitFor(() => got.some((m) => m.type === 'hello'), `${name}'s hello`);
    const pid = got.find((m) => m.type === 'hello')?.pid as number;
    return {
      ws,
      name,
      pid,
      got,
      say: (text) => ws.send(JSON.stringify({ type: 'message', text })),
      heard: (from) => got.filter((m) => m.type === 'message' && m.from === from).map((m) => m.text as string),
    };
  }

  /** Connects clients until `workers` different processes serve one each; returns those (the others stay in the room). */
  async function onEveryWorker(port: number, room: string, workers: number, prefix: string): Promise<Chatter[]> {
    const byPid = new Map<number, Chatter>();
    for (let i = 0; byPid.size < workers; i++) {
      if (i >= 60) throw new Error(`60 connections reached only ${byPid.size} of ${workers} workers`);
      const c = await chatter(port, room, `${prefix}${i}`);
      if (!byPid.has(c.pid)) byPid.set(c.pid, c);
    }
    return [...byPid.values()];
  }

  /**
   * Subscribing takes effect when the broker has the subscription: a message another process
   * publishes in the same few milliseconds may be routed before it (docs/pubsub.md). Until
   * `listener` hears `speaker`, the speaker says `probe`.
   */
  async function live(speaker: Chatter, listener: Chatter): Promise<void> {
    for (let i = 0; listener.heard(speaker.name).length === 0; i++) {
      if (i >= 200) throw new Error(`${listener.name} never heard ${speaker.name}`);
      speaker.say('probe');
      await sleep(25);
    }
  }

  /** What `c` heard from `from`, without the probes. */
  const said = (c: Chatter, from: string) => c.heard(from).filter((t) => t !== 'probe');

  async function stats(port: number): Promise<{ pid: number; pubsub: PubSubStats }> {
    const r = await fetch(`http://127.0.0.1:${port}/stats`, { headers: { connection: 'close' } });
    return (await r.json()) as { pid: number; pubsub: PubSubStats };
  }

  it('without Redis: clients on worker 0 and worker 1 hear each other through the master, also after a reload; /metrics counts it', async () => {
    const port = await server('--workers', '2', '--admin-port', '0');
    const [a, b] = (await onEveryWorker(port, 'lobby', 2, 'c')) as [Chatter, Chatter];
    expect(a.pid).to.not.equal(b.pid);
    await live(a, b);
    await live(b, a);
    a.say('from the first worker');
    b.say('from the second worker');
    await waitFor(() => said(b, a.name).length === 1 && said(a, b.name).length === 1, 'both messages', 10_000);
    expect(said(b, a.name)).to.deep.equal(['from the first worker']);
    expect(said(a, b.name)).to.deep.equal(['from the second worker']);
    const s = await stats(port);
    expect(s.pubsub).to.include({ mode: 'cluster', connected: true, dropped: 0, missed: 0 });
    if (prometheusParserMissing() === undefined) {
      // Every worker's counters, per worker and summed, through the master's admin listener.
      const f = await metrics(port);
      const total = (event: string) => sampleValue(f, 'multireactor_pubsub_messages_total', { event }) ?? -1;
      for (const worker of ['0', '1']) {
        expect(sampleValue(f, 'multireactor_worker_pubsub_instances', { worker })).to.equal(1);
        expect(sampleValue(f, 'multireactor_worker_pubsub_broker_connected', { worker })).to.equal(1);
        expect(sampleValue(f, 'multireactor_worker_pubsub_subscriptions', { worker, kind: 'topic' })).to.equal(1);
        expect(
          sampleValue(f, 'multireactor_worker_pubsub_messages_total', { worker, event: 'received' }) ?? 0,
        ).to.be.above(0);
      }
      // Two joins, the probes and two messages were published; each reached the other worker.
      expect(total('published')).to.be.at.least(4);
      expect(total('received')).to.be.at.least(3);
      expect(total('delivered')).to.be.at.least(total('published'));
      expect([total('missed'), total('dropped'), total('unconfirmed')]).to.deep.equal([0, 0, 0]);
    } else {
      console.log(`      (/metrics part skipped: ${prometheusParserMissing()})`);
    }

    // A reload replaces both workers: each new one gets a relay of its own from the master.
    const old = new Set([a.pid, b.pid]);
    (children[0] as ChildProcess).kill('SIGUSR2');
    await waitFor(
      () => a.ws.readyState === WsClient.CLOSED && b.ws.readyState === WsClient.CLOSED,
      'the 1001s',
      30_000,
    );
    const fresh = await onEveryWorker(port, 'lobby', 2, 'n');
    expect(fresh.every((c) => !old.has(c.pid))).to.equal(true);
    const [c, d] = fresh as [Chatter, Chatter];
    await live(c, d);
    await live(d, c);
    c.say('after the reload');
    await waitFor(() => said(d, c.name).length === 1, 'the message after the reload', 10_000);
  });

  it('two servers, one Redis: every client of the room hears every message, in the order it was sent', async function () {
    requireRedis(this);
    const redis = await RedisServer.start();
    const one = await server('--workers', '2', '--redis', redis.url);
    const two = await server('--workers', '2', '--redis', redis.url);
    const onOne = await onEveryWorker(one, 'shared', 2, 'one-');
    const onTwo = await onEveryWorker(two, 'shared', 2, 'two-');
    const everyone = [...onOne, ...onTwo];
    // A worker subscribes the room with Redis when its first client joins; until its connection is
    // up, what others publish is not for it (at most once). Wait until all four are subscribed.
    await waitFor(
      () => redis.cli('PUBSUB', 'NUMSUB', 'room:shared').trim().split('\n')[1] === '4',
      'four subscribed workers',
      10_000,
    );
    const [speaker] = onOne as [Chatter];
    const [answerer] = onTwo as [Chatter];
    const lines = Array.from({ length: 100 }, (_, i) => `line ${i}`);
    for (const l of lines) speaker.say(l);
    answerer.say('heard you on the other server');
    await waitFor(
      () =>
        everyone.every((c) => c.heard(speaker.name).length === 100) &&
        everyone.every((c) => c.heard(answerer.name).length === 1),
      'every line on every worker of both servers',
      20_000,
    );
    for (const c of everyone) expect(c.heard(speaker.name)).to.deep.equal(lines);
    // Each server's worker has one subscriber connection (and one publisher) to Redis.
    const names = redis
      .cli('CLIENT', 'LIST')
      .split('\n')
      .map((l) => /name=(multireactor-(sub|pub)-\d+)/.exec(l)?.[1])
      .filter((n) => n !== undefined);
    expect(names.filter((n) => n?.includes('-sub-')).length).to.equal(4);
    expect(names.filter((n) => n?.includes('-pub-')).length).to.equal(4);
  });

  it('Redis killed and restarted: the room hears the speaker again by itself, and what was lost is what /stats says was missed', async function () {
    requireRedis(this);
    const redis = await RedisServer.start();
    const one = await server('--workers', '1', '--redis', redis.url);
    const two = await server('--workers', '1', '--redis', redis.url);
    const speaker = await chatter(one, 'r', 'speaker');
    const listener = await chatter(two, 'r', 'listener');
    await waitFor(
      () => redis.cli('PUBSUB', 'NUMSUB', 'room:r').trim().split('\n')[1] === '2',
      'both subscribed',
      10_000,
    );
    let n = 0;
    const say = () => speaker.say(String(++n));
    // Talk until the other server hears it (Redis subscriptions are live), then through a restart.
    const timer = setInterval(say, 10);
    try {
      await waitFor(() => listener.heard('speaker').length >= 20, 'the first lines', 10_000);
      await redis.restart();
      const until = Date.now() + 15_000;
      while ((await stats(two)).pubsub.reconnects < 2) {
        if (Date.now() > until) throw new Error('timed out waiting for the listener’s server to reconnect');
        await sleep(20);
      }
      const heardBefore = listener.heard('speaker').length;
      await waitFor(() => listener.heard('speaker').length >= heardBefore + 20, 'lines after the restart', 15_000);
    } finally {
      clearInterval(timer);
    }
    const last = n;
    await waitFor(() => listener.heard('speaker').at(-1) === String(last), 'the last line', 10_000);
    const heard = listener.heard('speaker').map(Number);
    expect(heard.every((v, i) => i === 0 || v > (heard[i - 1] as number))).to.equal(true);
    const lost = heard[heard.length - 1]! - heard[0]! + 1 - heard.length;
    const s = await stats(two);
    expect(s.pubsub.missed).to.equal(lost);
    expect(s.pubsub).to.include({ connected: true });
    expect(s.pubsub.resubscribed).to.be.at.least(1);
    // The speaker's server held what it published while Redis was away, and sent it once back.
    const sp = await stats(one);
    expect(sp.pubsub.reconnects).to.be.at.least(2);
    expect(sp.pubsub.dropped).to.equal(0);
  });
});
