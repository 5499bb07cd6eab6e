/**
 * `deferAccept`: TCP_DEFER_ACCEPT on the listening sockets (tcp(7)). Read back from the kernel
 * through the syscalls layer (getsockopt reports the period rounded up to the SYN-ACK
 * retransmission schedule, not the seconds given), its defaults (on for TLS and http(), off for
 * other pipelines), what it does to real clients (a silent connection is not accepted, one that
 * sends is answered; the silent one is accepted once the period ends), in a master's workers and
 * their reloaded successors (SIGUSR2), on a socket inherited the systemd way, and its validation.
 */
import { once } from 'node:events';
import { get as httpGet } from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { http, InvalidOptionError, type ServerOptions, type SingleHandle } from '../../src/index.js';
import { close as sysClose } from '../../src/syscalls/libc.js';
import { localAddress, openServerSocket, readDeferAccept } from '../../src/syscalls/socket.js';
import { type TestCertificates, tlsCertificates } from '../tls-support.js';
import { Cluster } from './cluster-support.js';
import { listeningDefer } from './defer-accept-support.js';
import { echoPipeline, Opened, waitFor } from './helpers.js';

const APP = join(dirname(fileURLToPath(import.meta.url)), 'defer-accept-app.js');

interface Answer {
  pid: number;
  defer: number[];
}

/** One GET on a new connection; resolves with the app's JSON (or `{}` for a plain answer). */
function get(port: number): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = httpGet({ host: '127.0.0.1', port, path: '/', agent: false }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => {
        body += d.toString();
      });
      res.on('end', () => resolve(body.startsWith('{') ? (JSON.parse(body) as Answer) : { pid: 0, defer: [] }));
    });
    req.on('error', reject);
  });
}

/** A client whose TCP handshake completed (its connect(2) returned) and that sends nothing. */
async function silentClient(port: number, sockets: net.Socket[]): Promise<net.Socket> {
  const s = net.connect({ host: '127.0.0.1', port });
  sockets.push(s);
  s.on('error', () => {});
  await once(s, 'connect');
  return s;
}

/** Sends a request on `s` and resolves with the first chunk of the answer. */
async function request(s: net.Socket): Promise<string> {
  const answer = once(s, 'data');
  s.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
  const [chunk] = (await answer) as [Buffer];
  return chunk.toString();
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('deferAccept (TCP_DEFER_ACCEPT)', () => {
  const opened = new Opened();
  const sockets: net.Socket[] = [];
  let cluster: Cluster | undefined;

  afterEach(async () => {
    for (const s of sockets.splice(0)) s.destroy();
    await opened.teardown();
    await cluster?.teardown();
    cluster = undefined;
  });

  it('the kernel reports the period rounded up to its SYN-ACK retransmission schedule (IPv4 and IPv6)', () => {
    // secs_to_retrans / retrans_to_secs (net/ipv4/tcp.c): 1 s, then +2, +4, … up to +120 s each.
    const expected: Array<[number, number]> = [
      [0, 0],
      [1, 1],
      [2, 3],
      [5, 7],
      [30, 31],
      [100, 127],
      [3600, 3607],
    ];
    for (const host of ['127.0.0.1', '::1']) {
      for (const [given, reported] of expected) {
        const fd = openServerSocket({ host, port: 0, backlog: 8, reusePort: false, deferAccept: given });
        try {
          expect(readDeferAccept(fd), `${host}, ${given} s`).to.equal(reported);
        } finally {
          sysClose(fd);
        }
      }
    }
  });

  describe('defaults, read back from the listening socket', () => {
    let certs: TestCertificates;
    before(function () {
      certs = tlsCertificates(this);
    });

    const cases: Array<[string, () => Partial<ServerOptions>, number]> = [
      ['http(): on, 1 s', () => ({ pipeline: http((_q, r) => r.end()) }), 1],
      ['a pipeline of its own: off', () => ({ pipeline: echoPipeline() }), 0],
      ['tls with any pipeline: on, 1 s', () => ({ pipeline: echoPipeline(), tls: certs.server }), 1],
      ['http() with deferAccept: false: off', () => ({ pipeline: http((_q, r) => r.end()), deferAccept: false }), 0],
      ['true: 1 s', () => ({ pipeline: echoPipeline(), deferAccept: true }), 1],
      ['10 s: reported 15', () => ({ pipeline: echoPipeline(), deferAccept: 10 }), 15],
      ['0 with tls: off', () => ({ pipeline: echoPipeline(), tls: certs.server, deferAccept: 0 }), 0],
    ];
    for (const [what, options, reported] of cases) {
      it(what, async () => {
        const server = await opened.listen({ host: '127.0.0.1', port: 0, ...options() } as ServerOptions);
        expect(listeningDefer(server.address().port)).to.deep.equal([reported]);
      });
    }

    it('IPv6 (::1)', async () => {
      const server = await opened.listen({ host: '::1', port: 0, pipeline: http((_q, r) => r.end()) });
      expect(listeningDefer(server.address().port)).to.deep.equal([1]);
    });
  });

  it('a silent client is not accepted while one that sends is answered; it is once it sends', async () => {
    const server = (await opened.listen({
      host: '127.0.0.1',
      port: 0,
      deferAccept: 30,
      pipeline: http((_q, r) => r.end('ok')),
    })) as SingleHandle;
    const { port } = server.address();
    const silent = await silentClient(port, sockets);
    await get(port);
    await get(port);
    await sleep(100);
    expect(server.stats().accepted, 'only the two requests were accepted').to.equal(2);
    expect(await request(silent)).to.match(/^HTTP\/1\.1 200/);
    expect(server.stats().accepted).to.equal(3);
  });

  it('without it the same silent client is accepted at once', async () => {
    const server = (await opened.listen({
      host: '127.0.0.1',
      port: 0,
      deferAccept: false,
      pipeline: http((_q, r) => r.end('ok')),
    })) as SingleHandle;
    await silentClient(server.address().port, sockets);
    await waitFor(() => server.stats().accepted === 1, 'the silent connection to be accepted', 2000);
  });

  it('a silent client is accepted anyway when the period ends (1 s: one last SYN-ACK, then the ACK)', async () => {
    const server = (await opened.listen({
      host: '127.0.0.1',
      port: 0,
      deferAccept: true,
      pipeline: http((_q, r) => r.end('ok')),
    })) as SingleHandle;
    const silent = await silentClient(server.address().port, sockets);
    const t0 = Date.now();
    await sleep(300);
    expect(server.stats().accepted, 'not within the period').to.equal(0);
    await waitFor(() => server.stats().accepted === 1, 'the silent connection to be accepted', 5000);
    expect(Date.now() - t0).to.be.greaterThan(500);
    expect(await request(silent)).to.match(/^HTTP\/1\.1 200/);
  });

  it('a client still deferred when the server closes was never accepted: its first bytes get a reset', async () => {
    const server = await opened.listen({
      host: '127.0.0.1',
      port: 0,
      deferAccept: 30,
      pipeline: http((_q, r) => r.end('ok')),
    });
    const silent = await silentClient(server.address().port, sockets);
    opened.forget(server);
    await server.close();
    // The kernel drops a request socket whose listener is gone (tcp_v4_rcv, net/ipv4/tcp_ipv4.c),
    // silently; the client's next segment finds no socket and is answered with RST.
    const failed = new Promise((resolve) => silent.once('close', resolve));
    const error = new Promise<string>((resolve) =>
      silent.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? '')),
    );
    silent.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    expect(await error).to.equal('ECONNRESET');
    await failed;
  });

  it('a master: every worker holds sockets with it, a reloaded (SIGUSR2) worker too, and the deferred client reaches the new one', async function () {
    this.timeout(30_000);
    cluster = await Cluster.start([], process.env, undefined, undefined, [APP, '--workers', '2', '--defer', '30']);
    const c = cluster;
    const { port } = c;
    /** GETs on new connections until every worker in `pids` answered; the sockets each reported. */
    const askAll = async (pids: number[]) => {
      const seen = new Map<number, number[]>();
      let gets = 0;
      while (seen.size < pids.length && gets < 60) {
        const a = await get(port);
        gets++;
        seen.set(a.pid, a.defer);
      }
      expect([...seen.keys()].sort(), 'every worker answered').to.deep.equal([...pids].sort());
      return { seen, gets };
    };
    const accepted = async () => (await c.command<{ total: { accepted: number } }>('stats')).total.accepted;

    const before = await c.readyPids();
    const first = await askAll(before);
    for (const d of first.seen.values()) expect(d, 'one socket per worker, 30 s → 31').to.deep.equal([31]);
    const silent = await silentClient(port, sockets);
    const more = await get(port);
    expect(before).to.include(more.pid);
    await sleep(100);
    expect(await accepted(), 'the requests only, not the silent client').to.equal(first.gets + 1);

    process.kill(c.pid, 'SIGUSR2');
    let after: number[] = [];
    const until = Date.now() + 20_000;
    while (!(after.length === 2 && after.every((p) => !before.includes(p))) && Date.now() < until) {
      after = await c.readyPids();
      await sleep(50);
    }
    expect(after.every((p) => !before.includes(p)) && after.length === 2, 'every worker replaced').to.equal(true);
    const second = await askAll(after);
    for (const d of second.seen.values()) expect(d, 'the same sockets, still 31').to.deep.equal([31]);
    await sleep(100);
    expect(await accepted(), 'the new workers accepted the requests only').to.equal(second.gets);
    const answer = JSON.parse((await request(silent)).split('\r\n\r\n')[1] as string) as Answer;
    expect(after, 'a new worker accepted the deferred connection').to.include(answer.pid);
    expect(await accepted()).to.equal(second.gets + 1);
  });

  for (const [defer, reported, what] of [
    ['unset', 7, 'systemd’s DeferAcceptSec= is kept when the option is not given (http() would default to 1 s)'],
    ['2', 3, 'an explicit deferAccept replaces it'],
  ] as const) {
    it(`LISTEN_FDS (systemd): ${what}; the sockets opened to join it get the same`, async function () {
      this.timeout(20_000);
      // What systemd makes for a unit with ReusePort=yes and DeferAcceptSec=7.
      const fd = openServerSocket({ host: '127.0.0.1', port: 0, backlog: 64, reusePort: true, deferAccept: 7 });
      try {
        const port = localAddress(fd).port;
        // sd_listen_fds: LISTEN_PID must name the process that reads it; the shell sets it and exec()s node.
        cluster = await Cluster.start([], { ...process.env, LISTEN_FDS: '1' }, [fd], '/bin/sh', [
          '-c',
          'LISTEN_PID=$$; export LISTEN_PID; exec "$0" "$@"',
          process.execPath,
          APP,
          '--workers',
          '2',
          '--defer',
          defer,
        ]);
        expect(cluster.port).to.equal(port);
        const pids = await cluster.readyPids();
        const seen = new Map<number, number[]>();
        for (let i = 0; i < 60 && seen.size < pids.length; i++) {
          const a = await get(port);
          seen.set(a.pid, a.defer);
        }
        expect(seen.size, 'both workers answered').to.equal(2);
        // One worker serves the inherited socket, the other the one the master opened to join it.
        for (const d of seen.values()) expect(d).to.deep.equal([reported]);
        if (defer !== 'unset')
          expect(cluster.stderr()).to.match(/deferAccept: inherited socket \d+ changed from 7 s to 3 s/);
      } finally {
        sysClose(fd);
      }
    });
  }

  describe('validation (at listen, before anything is opened)', () => {
    const failure = async (options: Record<string, unknown>) => {
      try {
        await opened.listen({ host: '127.0.0.1', port: 0, pipeline: echoPipeline(), ...options } as ServerOptions);
      } catch (err) {
        return err;
      }
      throw new Error('listen succeeded');
    };
    for (const bad of [-1, 1.5, 3601, 'yes', null, Number.NaN]) {
      it(`deferAccept: ${String(bad)} is an InvalidOptionError naming the key`, async () => {
        const err = await failure({ deferAccept: bad });
        expect(err).to.be.instanceOf(InvalidOptionError);
        expect((err as InvalidOptionError).option).to.equal('deferAccept');
      });
    }
    it('a Unix socket path with deferAccept on is refused; off (false, 0) is accepted', async () => {
      const path = join(tmpdir(), `mr-defer-${process.pid}.sock`);
      const err = await failure({ host: undefined, path, deferAccept: true });
      expect(err).to.be.instanceOf(InvalidOptionError);
      expect((err as InvalidOptionError).option).to.equal('deferAccept');
      expect((err as Error).message).to.match(/Unix socket/);
      for (const off of [false, 0]) {
        const server = await opened.listen({ path, pipeline: http((_q, r) => r.end()), deferAccept: off });
        expect(server.address().family).to.equal('Unix');
        await opened.teardown();
      }
      // The default (http() would turn it on) does not apply to a Unix socket.
      await opened.listen({ path, pipeline: http((_q, r) => r.end()) });
    });
  });
});
