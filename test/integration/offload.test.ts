/**
 * Offloading on real sockets and real processes: ordered pipelined replies with random task
 * durations, the per-connection limit, a flood beyond maxQueue (503s, bounded queue, the server
 * lives), a client that resets mid-flight, task errors, the generic stage under a line protocol,
 * and graceful stop and reload of a real master with tasks in flight.
 */
import type { ChildProcess } from 'node:child_process';
import { pbkdf2Sync } from 'node:crypto';
import { once } from 'node:events';
import type net from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import {
  ChannelInboundHandler,
  type ClusterStats,
  destroyOffloadPools,
  type HandlerContext,
  type HttpOptions,
  httpOffload,
  LineEncoder,
  LineFrameDecoder,
  type Logger,
  OffloadHandler,
  type OffloadOptions,
  type OffloadPoolStats,
  OffloadTaskError,
  offloadStats,
  Pipeline,
  type SingleHandle,
  StringDecoder,
} from '../../src/index.js';
import { prng } from '../support.js';
import { connect, destroyAll, Opened, ResponseReader, startListening, TRANSPORTS, waitFor } from './helpers.js';

const here = dirname(fileURLToPath(import.meta.url));
const TASKS = join(here, '..', 'offload-tasks.js');
const APP = join(here, 'offload-app.js');
const EXAMPLE = join(here, '..', '..', 'examples', 'offload-server.js');

type Response = Awaited<ReturnType<ResponseReader['next']>>;

/** `GET /sleep?ms&id[&fail]` offloaded to `sleep`; anything else answered on the loop with its path. */
function sleepApp(offload: Partial<OffloadOptions>, http: HttpOptions = {}) {
  return httpOffload(
    async (req, res, run) => {
      if (req.path !== '/sleep') {
        res.end(req.path);
        return;
      }
      const q = new URLSearchParams(req.queryString);
      const fail = q.get('fail');
      const task = { ms: Number(q.get('ms') ?? 0), id: q.get('id'), ...(fail === null ? {} : { fail }) };
      res.end(String(await run(task, { name: 'sleep' })));
    },
    { ...http, offload: { filename: TASKS, maxThreads: 2, ...offload } },
  );
}

function get(path: string): string {
  return `GET ${path} HTTP/1.1\r\nHost: t\r\n\r\n`;
}

async function responses(reader: ResponseReader, n: number): Promise<Response[]> {
  const out: Response[] = [];
  for (let i = 0; i < n; i++) out.push(await reader.next());
  return out;
}

function pool(): OffloadPoolStats {
  const [p] = offloadStats();
  if (p === undefined) throw new Error('no offload pool in this process');
  return p;
}

/** A logger that keeps warnings and errors. */
function recordingLogger(): Logger & { readonly seen: string[] } {
  const seen: string[] = [];
  return {
    seen,
    debug() {},
    info() {},
    warn: (m: string) => seen.push(`warn: ${m}`),
    error: (m: string) => seen.push(`error: ${m}`),
  };
}

describe('offload on real connections', function () {
  this.timeout(60_000);
  const opened = new Opened();

  afterEach(async () => {
    await opened.teardown();
    await destroyOffloadPools();
  });

  async function client(port: number): Promise<[net.Socket, ResponseReader]> {
    const s = await opened.client(port);
    return [s, new ResponseReader(s)];
  }

  it('answers pipelined requests in order while their tasks finish in random order', async () => {
    const server = await opened.listen({ pipeline: sleepApp({ maxInFlight: 64 }) });
    const [s, reader] = await client(server.address().port);
    const rnd = prng(0x5eed);
    const paths = Array.from({ length: 40 }, (_, i) =>
      i % 5 === 4 ? `/loop-${i}` : `/sleep?ms=${Math.floor(rnd() * 25)}&id=${i}`,
    );
    s.write(paths.map(get).join(''));
    const got = await responses(reader, paths.length);
    expect(got.map((r) => r.status)).to.deep.equal(paths.map(() => 200));
    expect(got.map((r) => r.body)).to.deep.equal(paths.map((p, i) => (p.startsWith('/loop') ? p : String(i))));
    expect(pool()).to.include({ completed: 32, failed: 0, overloaded: 0 });
  });

  for (const transport of TRANSPORTS) {
    it(`holds a connection to maxInFlight tasks: it stops reading (the rest waits in the kernel), answers all in order (${transport.poller}/${transport.trigger})`, async () => {
      const server = (await opened.listen({
        ...transport,
        pipeline: sleepApp({ maxThreads: 1, maxInFlight: 4 }),
      })) as SingleHandle;
      const [s, reader] = await client(server.address().port);
      const paths = Array.from({ length: 1500 }, (_, i) => `/sleep?ms=0&id=${i}`);
      const bytes = Buffer.from(paths.map(get).join(''));
      s.write(bytes);
      const first = await reader.next();
      // Reading stopped after the first read (its requests exceed maxInFlight) and resumes only when
      // they are nearly all answered: the server cannot have read everything yet.
      expect(server.stats().bytesIn).to.be.lessThan(bytes.length);
      const got = [first, ...(await responses(reader, paths.length - 1))];
      expect(got.map((r) => r.body)).to.deep.equal(paths.map((_, i) => String(i)));
      expect(server.stats().bytesIn).to.equal(bytes.length);
      // One running, at most three of this connection waiting: never more in the pool.
      expect(pool().peakQueued).to.be.at.most(3);
      expect(pool().submitted).to.equal(paths.length);
    });
  }

  it('a flood beyond maxQueue gets 503 + Retry-After, the queue stays bounded, and the server goes on', async () => {
    const errors: unknown[] = [];
    const server = await opened.listen({
      pipeline: sleepApp({ maxThreads: 1, maxQueue: 4, maxInFlight: 4 }, { onHandlerError: (e) => errors.push(e) }),
    });
    const port = server.address().port;
    let ok = 0;
    let busy = 0;
    for (let wave = 0; wave < 3; wave++) {
      const conns = await Promise.all(Array.from({ length: 12 }, () => client(port)));
      for (const [c, i] of conns.map(([sock], k) => [sock, k] as const)) {
        c.write([0, 1, 2, 3].map((j) => get(`/sleep?ms=15&id=${wave}-${i}-${j}`)).join(''));
      }
      const all = (await Promise.all(conns.map(([, r]) => responses(r, 4)))).flat();
      for (const r of all) {
        if (r.status === 200) ok++;
        else {
          expect(r.status).to.equal(503);
          expect(r.headers['retry-after']).to.equal('1');
          expect(r.body).to.contain('ERR_OFFLOAD_OVERLOADED');
          busy++;
        }
      }
      expect(pool()).to.include({ running: 0, queued: 0 });
      // A 503 keeps the connection: the client may retry on it.
      const [c0, r0] = conns[0] as [net.Socket, ResponseReader];
      c0.write(get('/loop'));
      expect((await r0.next()).body).to.equal('/loop');
    }
    expect(ok + busy).to.equal(3 * 12 * 4);
    expect(busy).to.be.greaterThan(0);
    const p = pool();
    expect(p.overloaded).to.equal(busy);
    expect(p.completed).to.equal(ok);
    expect(p.peakQueued).to.be.at.most(4);
    expect(errors).to.deep.equal([], 'overload is answered, not reported as a handler error');
    const [fresh, freshReader] = await client(port);
    fresh.write(get('/alive'));
    expect((await freshReader.next()).body).to.equal('/alive');
  });

  it('a client that resets mid-flight: its queued tasks are aborted, its result dropped, others are fine', async () => {
    const logger = recordingLogger();
    const server = (await opened.listen({ pipeline: sleepApp({ maxThreads: 1 }), logger })) as SingleHandle;
    const port = server.address().port;
    const [a] = await client(port);
    a.write([0, 1, 2, 3, 4, 5].map((i) => get(`/sleep?ms=300&id=a${i}`)).join(''));
    await waitFor(() => offloadStats()[0]?.queued === 5, "a's tasks: one running, five queued");
    const [b, bReader] = await client(port);
    b.write(get('/sleep?ms=5&id=b0') + get('/sleep?ms=5&id=b1'));
    await waitFor(() => pool().queued === 7, "b's two tasks queued behind");
    a.resetAndDestroy();
    await waitFor(() => server.connections === 1, 'the server to see the reset');
    expect(pool()).to.include({ aborted: 5, queued: 2 });
    const got = await responses(bReader, 2);
    expect(got.map((r) => r.body)).to.deep.equal(['b0', 'b1']);
    await waitFor(() => pool().dropped === 1, "a's running result dropped");
    expect(pool()).to.include({ completed: 3, aborted: 5, failed: 0 });
    expect(server.stats().closed.reset).to.equal(1);
    expect(logger.seen).to.deep.equal([], 'no error noise');
  });

  it('a task that throws is a 500 and reaches onHandlerError; its connection goes on, others are not affected', async () => {
    const errors: unknown[] = [];
    const server = await opened.listen({
      pipeline: sleepApp({}, { onHandlerError: (e) => errors.push(e) }),
    });
    const port = server.address().port;
    const [s, reader] = await client(port);
    const [t, other] = await client(port);
    s.write(get('/sleep?ms=1&id=ok') + get('/sleep?ms=1&id=x&fail=the%20task%20broke') + get('/sleep?ms=1&id=next'));
    t.write(get('/sleep?ms=20&id=fine'));
    const [first, second, third] = await responses(reader, 3);
    expect(first?.body).to.equal('ok');
    expect(second?.status).to.equal(500);
    expect(second?.headers.connection).to.equal(undefined);
    expect(third?.body, 'the request pipelined after it').to.equal('next');
    expect((await other.next()).body).to.equal('fine');
    expect(errors).to.have.length(1);
    expect(errors[0]).to.be.instanceOf(OffloadTaskError);
    expect(((errors[0] as OffloadTaskError).cause as Error).message).to.equal('the task broke');
  });

  it('a task that throws, without onHandlerError: 500, and the error logged once with the request line', async () => {
    const logger = recordingLogger();
    const server = await opened.listen({ logger, pipeline: sleepApp({}) });
    const [s, reader] = await client(server.address().port);
    s.write(get('/sleep?ms=1&id=x&fail=broken') + get('/after'));
    const [failed, after] = await responses(reader, 2);
    expect(failed?.status).to.equal(500);
    expect(after?.body).to.equal('/after');
    expect(logger.seen).to.have.length(1);
    expect(logger.seen[0]).to.match(/^error: .*"GET \/sleep\?ms=1&id=x&fail=broken HTTP\/1\.1".*answered 500/);
  });

  it('OffloadHandler under a line protocol: 300 pipelined lines answered in order through 8 in flight', async () => {
    const rnd = prng(7);
    class Reply extends ChannelInboundHandler<unknown> {
      override onRead(ctx: HandlerContext, msg: unknown): void {
        ctx.write(String(msg));
      }
      override onError(ctx: HandlerContext, error: unknown): void {
        ctx.write(`error ${(error as { code?: string }).code}`);
      }
    }
    const options = {
      filename: TASKS,
      name: 'sleep',
      maxThreads: 2,
      maxInFlight: 8,
      toTask: (line: string) => ({ ms: Math.floor(rnd() * 3), id: line }),
    };
    const server = await opened.listen({
      pipeline: () =>
        new Pipeline()
          .addLast(new LineFrameDecoder({ maxLength: 100 }))
          .addLast(new StringDecoder())
          .addLast(new LineEncoder())
          .addLast(new OffloadHandler(options))
          .addLast(new Reply()),
    });
    const s = await opened.client(server.address().port);
    const lines = Array.from({ length: 300 }, (_, i) => `line ${i}`);
    let got = '';
    s.setEncoding('utf8');
    s.on('data', (d: string) => {
      got += d;
    });
    s.write(`${lines.join('\n')}\n`);
    await waitFor(() => got.split('\n').length > 300, '300 answers', 20_000);
    expect(got.split('\n').slice(0, 300)).to.deep.equal(lines);
    expect(pool().peakQueued).to.be.at.most(8);
  });

  it('close() answers the requests whose tasks are in flight, then destroys the pool', async () => {
    const server = (await opened.listen({ pipeline: sleepApp({ maxThreads: 2 }) })) as SingleHandle;
    opened.forget(server);
    const [s, reader] = await client(server.address().port);
    s.write([0, 1, 2, 3].map((i) => get(`/sleep?ms=150&id=${i}`)).join(''));
    await waitFor(() => offloadStats()[0]?.submitted === 4, 'four tasks');
    const closing = server.close();
    const got = await responses(reader, 4);
    expect(got.map((r) => r.body)).to.deep.equal(['0', '1', '2', '3']);
    expect(got[3]?.headers.connection).to.equal('close');
    await closing;
    expect(offloadStats()).to.deep.equal([], 'the pool went with the last server of the process');
  });

  it('the pool outlives a server while another server of the process still serves', async () => {
    const app = sleepApp({ maxThreads: 1 });
    const a = (await opened.listen({ pipeline: app })) as SingleHandle;
    const b = (await opened.listen({ pipeline: app })) as SingleHandle;
    opened.forget(a);
    const [s, reader] = await client(a.address().port);
    s.write(get('/sleep?ms=1&id=a'));
    expect((await reader.next()).body).to.equal('a');
    await a.close();
    expect(offloadStats()).to.have.length(1, 'b is still open');
    const [t, bReader] = await client(b.address().port);
    t.write(get('/sleep?ms=1&id=b'));
    expect((await bReader.next()).body).to.equal('b');
    expect(pool().completed).to.equal(2, 'one pool served both');
    opened.forget(b);
    await b.close();
    expect(offloadStats()).to.deep.equal([]);
  });
});

/** Whether a process exists. */
function exists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('offload with a real master and worker', function () {
  this.timeout(60_000);
  let child: ChildProcess | undefined;
  const pids = new Set<number>();
  const sockets: net.Socket[] = [];

  async function start(args: string[]): Promise<number> {
    const started = await startListening([APP, ...args], process.execPath, { stdin: 'pipe' });
    child = started.child;
    pids.add(started.child.pid as number);
    return started.port;
  }

  /** The master's collectStats(), asked on its stdin. */
  async function masterStats(): Promise<ClusterStats> {
    const c = child as ChildProcess;
    let out = '';
    const onData = (d: Buffer) => {
      out += d.toString();
    };
    c.stdout?.on('data', onData);
    try {
      c.stdin?.write('stats\n');
      await waitFor(() => /^stats .*$/m.test(out), "the master's stats");
      return JSON.parse(/^stats (.*)$/m.exec(out)?.[1] as string) as ClusterStats;
    } finally {
      c.stdout?.off('data', onData);
    }
  }

  it("the master's collectStats carries every worker's pool counters (reports.offload)", async () => {
    const port = await start(['--workers', '2', '--threads', '1']);
    const readers: ResponseReader[] = [];
    for (let c = 0; c < 6; c++) {
      const s = await connect(port);
      sockets.push(s);
      readers.push(new ResponseReader(s));
      s.write(get(`/sleep?ms=1&id=${c}`));
    }
    for (const [c, r] of readers.entries()) expect((await r.next()).body).to.equal(String(c));
    const st = await masterStats();
    expect(st.workers).to.have.length(2);
    let completed = 0;
    for (const w of st.workers) {
      pids.add(w.pid);
      const pools = (w.reports.offload ?? []) as OffloadPoolStats[];
      for (const p of pools) {
        expect(p.filename).to.match(/offload-tasks\.js$/);
        expect(p.maxThreads).to.equal(1);
        completed += p.completed;
      }
    }
    expect(completed, 'every task, counted by the worker that ran it').to.equal(6);
  });

  /** The answering worker's pid and pool counters (on a connection of its own). */
  async function stats(port: number): Promise<{ pid: number; pools: OffloadPoolStats[] }> {
    const s = await connect(port);
    try {
      const reader = new ResponseReader(s);
      s.write(get('/stats'));
      const body = JSON.parse((await reader.next()).body) as { pid: number; pools: OffloadPoolStats[] };
      pids.add(body.pid);
      return body;
    } finally {
      s.destroy();
    }
  }

  async function inFlight(port: number, conns: number, perConn: number, ms: number) {
    const readers: ResponseReader[] = [];
    for (let c = 0; c < conns; c++) {
      const s = await connect(port);
      s.on('error', () => {});
      sockets.push(s);
      readers.push(new ResponseReader(s));
      s.write(Array.from({ length: perConn }, (_, i) => get(`/sleep?ms=${ms}&id=${c}-${i}`)).join(''));
    }
    let worker = 0;
    for (;;) {
      const st = await stats(port);
      worker = st.pid;
      if ((st.pools[0]?.submitted ?? 0) >= conns * perConn) break;
      await new Promise((r) => setTimeout(r, 10));
    }
    return { readers, worker };
  }

  afterEach(async () => {
    await destroyAll(sockets.splice(0));
    if (child !== undefined && child.exitCode === null && child.signalCode === null) {
      const exited = once(child, 'exit');
      child.kill('SIGKILL');
      await exited;
    }
    for (const pid of pids) if (exists(pid)) process.kill(pid, 'SIGKILL');
    await waitFor(() => [...pids].every((pid) => !exists(pid)), 'every process to be gone');
    pids.clear();
    child = undefined;
  });

  it('SIGTERM with tasks in flight: every accepted request is answered, then everything exits', async () => {
    const port = await start(['--workers', '1', '--threads', '2']);
    const { readers, worker } = await inFlight(port, 3, 4, 250);
    const exited = once(child as ChildProcess, 'exit');
    (child as ChildProcess).kill('SIGTERM');
    const got = await Promise.all(readers.map((r) => responses(r, 4)));
    got.forEach((rs, c) => {
      expect(rs.map((r) => r.status)).to.deep.equal([200, 200, 200, 200]);
      expect(rs.map((r) => r.body)).to.deep.equal([0, 1, 2, 3].map((i) => `${c}-${i}`));
      expect(rs[3]?.headers.connection).to.equal('close');
    });
    const [code, signal] = (await exited) as [number | null, string | null];
    expect({ code, signal }).to.deep.equal({ code: 0, signal: null });
    await waitFor(() => !exists(worker), 'the worker to exit');
  });

  it('SIGUSR2 with tasks in flight: the old worker answers them, a new one serves after it', async () => {
    const port = await start(['--workers', '1', '--threads', '2']);
    const { readers, worker } = await inFlight(port, 2, 4, 250);
    (child as ChildProcess).kill('SIGUSR2');
    const got = await Promise.all(readers.map((r) => responses(r, 4)));
    for (const [c, rs] of got.entries()) {
      expect(rs.map((r) => r.body)).to.deep.equal([0, 1, 2, 3].map((i) => `${c}-${i}`));
    }
    await waitFor(() => !exists(worker), 'the old worker to exit', 15_000);
    const after = await stats(port);
    expect(after.pid).not.to.equal(worker);
  });

  it('a task longer than the drain deadline does not hold the stop: the pool is destroyed, the worker exits', async () => {
    const port = await start(['--workers', '1', '--threads', '1', '--drain-timeout', '300']);
    const { readers, worker } = await inFlight(port, 1, 1, 30_000);
    const exited = once(child as ChildProcess, 'exit');
    (child as ChildProcess).kill('SIGTERM');
    // Long before the task would end (30 s): the connection is aborted at the deadline.
    await exited;
    await waitFor(() => !exists(worker), 'the worker to exit', 10_000);
    expect(await readers[0]?.rest()).to.equal('');
  });
});

describe('examples/offload-server.js', function () {
  this.timeout(30_000);
  let child: ChildProcess | undefined;
  let socket: net.Socket | undefined;

  afterEach(async () => {
    if (socket !== undefined) await destroyAll([socket]);
    if (child !== undefined && child.exitCode === null && child.signalCode === null) {
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      await exited;
    }
    child = socket = undefined;
  });

  for (const inline of [false, true]) {
    it(`answers /plaintext on the loop and /hash ${inline ? 'inline (--inline)' : 'on the pool'}`, async () => {
      const started = await startListening([
        EXAMPLE,
        '--host',
        '127.0.0.1',
        '--port',
        '0',
        '--workers',
        '0',
        ...(inline ? ['--inline'] : []),
      ]);
      child = started.child;
      socket = await connect(started.port);
      const reader = new ResponseReader(socket);
      socket.write(get('/hash?rounds=2000&password=secret') + get('/plaintext') + get('/hash?rounds=0') + get('/nope'));
      const [hash, plain, bad, missing] = await responses(reader, 4);
      const expected = pbkdf2Sync('secret', 'multireactor offload example', 2000, 32, 'sha256').toString('hex');
      expect(hash?.body).to.equal(`${expected}\n`);
      expect(plain?.body).to.equal('Hello, World!');
      expect(bad?.status).to.equal(400);
      expect(missing?.status).to.equal(404);
      socket.write(get('/stats'));
      const stats = JSON.parse((await reader.next()).body) as { pools: OffloadPoolStats[] };
      expect(stats.pools.map((p) => p.completed)).to.deep.equal(inline ? [] : [1]);
    });
  }
});
