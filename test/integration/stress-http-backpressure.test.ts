/**
 * Stress under backpressure, on real sockets: several raw clients at once pipeline bursts of
 * requests to an in-process HTTP/1.1 server (plain and TLS) whose send buffers are tiny (4 KiB),
 * and stall and resume reading at seeded moments, so that the server's connections block at
 * every point of their queues — in the middle of a response slab view (server.ts `flushPending`),
 * of a large body written as it is, of a chunked stream, of a TLS cipher slab view (scratch.ts).
 * Meanwhile the other connections' answers keep the thread's slabs and scratch buffers busy.
 *
 * Every response identifies its client and sequence number (`GET /n/<client>/<seq>/<size>/<mode>`
 * answered with `X-Id: <client>/<seq>` and a body derived from the three), and every byte each
 * client receives is checked: a byte corrupted, lost, duplicated, reordered or taken from another
 * connection fails the test (the class of defect 4216b93 fixed for the WebSocket encoder's slab).
 * The same is done for the plain echo path (length-field frames echoed as views of the read).
 *
 * Randomness is seeded (MULTIREACTOR_SEED to replay; the seed is printed on failure); the
 * assertions are on content only, never on timing.
 */
import { Buffer } from 'node:buffer';
import type net from 'node:net';
import tls from 'node:tls';
import { expect } from 'chai';
import {
  ChannelInboundHandler,
  type HandlerContext,
  http,
  LengthFieldFrameDecoder,
  LineFrameDecoder,
  Pipeline,
  type PollerKind,
  type ServerOptions,
  silentLogger,
} from '../../src/index.js';
import { type TestCertificates, tlsCertificates } from '../tls-support.js';
import { Opened, prng, testSeed } from './helpers.js';

type Transport = { readonly poller: PollerKind; readonly trigger: 'level' | 'edge' };
const MODES = 7;
const M_BUFFER = 0; // res.end(Buffer), synchronously
const M_STRING = 1; // res.end(string), synchronously
const M_STREAM = 2; // res.write() pieces (chunked), then end(), synchronously
const M_LATER = 3; // res.end(Buffer) from a timer: completes out of order, queued behind earlier ones
const M_STREAM_LATER = 4; // some pieces now, the rest from a timer after drained()
const M_ECHO = 5; // POST: res.end(req.body)
const M_TINY = 6; // res.write() of 1 to 3 bytes at a time: thousands of queued chunks (writev's IOV_MAX is 1024)

/** Sizes around the limits: inline body (4 KiB), slab response (16 KiB), slab (64 KiB), TLS record (16 KiB). */
const SIZES = [
  0, 1, 7, 100, 333, 1000, 4095, 4096, 4097, 6000, 8191, 8192, 12_345, 16_000, 16_383, 16_384, 16_385, 20_000, 32_767,
  65_535, 65_536, 65_537, 100_003,
];

/** Body byte `k` of client `c`'s request `s` (printable: the same in a string body). */
function bodyByte(c: number, s: number, k: number): number {
  return 0x21 + ((c * 37 + s * 101 + k * 7 + (k >> 9)) % 94);
}

function body(c: number, s: number, n: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  for (let k = 0; k < n; k++) b[k] = bodyByte(c, s, k);
  return b;
}

/** Splits `n` into 1 to 5 piece sizes from `rand`. */
function pieces(rand: () => number, n: number): number[] {
  const out: number[] = [];
  const count = 1 + Math.floor(rand() * 5);
  let left = n;
  for (let i = 0; i < count - 1 && left > 0; i++) {
    const p = Math.floor(rand() * left);
    if (p > 0) out.push(p);
    left -= p;
  }
  if (left > 0) out.push(left);
  return out;
}

/** The server: answers `/n/<client>/<seq>/<size>/<mode>` as the modes above say. */
function handler(streamBodies = false, maxPipelinedRequests = 64) {
  return http(
    async (req, res) => {
      const [, , cs, ss, ns, ms] = req.path.split('/');
      const c = Number(cs);
      const s = Number(ss);
      const n = Number(ns);
      const mode = Number(ms);
      res.setHeader('X-Id', `${c}/${s}`);
      // Piece sizes and delays derived from the request: the same request gets the same answer.
      const rand = prng(c * 100_003 + s);
      switch (mode) {
        case M_BUFFER:
          res.end(body(c, s, n));
          return;
        case M_STRING:
          res.end(body(c, s, n).toString('latin1'));
          return;
        case M_STREAM: {
          const b = body(c, s, n);
          let at = 0;
          for (const p of pieces(rand, n)) {
            res.write(rand() < 0.5 ? b.subarray(at, at + p) : b.subarray(at, at + p).toString('latin1'));
            at += p;
          }
          res.end();
          return;
        }
        case M_LATER:
          await new Promise((r) => setTimeout(r, Math.floor(rand() * 4)));
          res.end(body(c, s, n));
          return;
        case M_STREAM_LATER: {
          const b = body(c, s, n);
          const ps = pieces(rand, n);
          let at = 0;
          for (let i = 0; i < ps.length; i++) {
            const p = ps[i] as number;
            if (i > 0 && rand() < 0.5) {
              await new Promise((r) => setTimeout(r, Math.floor(rand() * 3)));
              await res.drained();
            }
            res.write(b.subarray(at, at + p));
            at += p;
          }
          res.end();
          return;
        }
        case M_ECHO: {
          const stream = req.bodyStream;
          if (stream === undefined) {
            res.end(req.body);
            return;
          }
          // Streamed (streamBodies): each piece back as it comes, as a chunk of the answer.
          for await (const piece of stream) {
            if (!res.write(piece)) await res.drained();
          }
          res.end();
          return;
        }
        case M_TINY: {
          const b = body(c, s, n);
          for (let at = 0; at < n; ) {
            const p = Math.min(n - at, 1 + Math.floor(rand() * 3));
            res.write(b.subarray(at, at + p));
            at += p;
          }
          res.end();
          return;
        }
        default:
          res.status(400).end('bad mode\n');
      }
    },
    { maxBodySize: 1 << 20, maxPipelinedRequests, streamBodies },
  );
}

interface Sent {
  readonly seq: number;
  readonly size: number;
  readonly mode: number;
  /**
   * The last request of a client ends its connection: it says `Connection: close` ('close'), or
   * it is malformed ('bad': answered 400, after every response before it, and closed), or it
   * speaks HTTP/1.0 without keep-alive ('http10': a streamed answer is delimited by the close).
   */
  readonly last?: 'close' | 'bad' | 'http10';
}

/** A HEAD request (some of the GETs): the head of the GET, no body (streamed ones: chunked, no chunks). */
function isHead(r: Sent): boolean {
  return r.mode !== M_ECHO && r.seq % 10 === 3 && r.last === undefined;
}

/** An echo POST that asks `Expect: 100-continue` (and sends its body at once, as curl does after a while). */
function expects(r: Sent): boolean {
  return r.mode === M_ECHO && r.seq % 4 === 2 && r.last === undefined;
}

/** Client `c`'s requests: `count` of them, sizes and modes from `rand` (small sizes more often, to fill slabs with batches). */
function plan(rand: () => number, count: number): Sent[] {
  const out: Sent[] = [];
  for (let seq = 0; seq < count; seq++) {
    const mode = Math.floor(rand() * MODES);
    let size = rand() < 0.5 ? Math.floor(rand() * 700) : (SIZES[Math.floor(rand() * SIZES.length)] as number);
    if (mode === M_TINY) size = Math.min(size, 4000);
    out.push({ seq, size, mode });
  }
  return out;
}

function requestBytes(c: number, r: Sent): Buffer {
  const path = `/n/${c}/${r.seq}/${r.size}/${r.mode}`;
  if (r.last === 'bad') return Buffer.from(`GET ${path} HTTP/1.1\r\nHost: x\r\nContent-Length: 1x\r\n\r\n`, 'latin1');
  const close = r.last === 'close' ? 'Connection: close\r\n' : '';
  if (r.last === 'http10') return Buffer.from(`GET ${path} HTTP/1.0\r\n\r\n`, 'latin1');
  if (isHead(r)) return Buffer.from(`HEAD ${path} HTTP/1.1\r\nHost: x\r\n\r\n`, 'latin1');
  if (r.mode === M_ECHO && r.seq % 2 === 1) {
    // A chunked request body, cut in pieces of seeded sizes.
    const b = body(c, r.seq, r.size);
    const parts: Buffer[] = [
      Buffer.from(`POST ${path} HTTP/1.1\r\nHost: x\r\n${close}Transfer-Encoding: chunked\r\n\r\n`, 'latin1'),
    ];
    let at = 0;
    for (const n of pieces(prng(c * 7919 + r.seq), r.size)) {
      parts.push(Buffer.from(`${n.toString(16)}\r\n`, 'latin1'), b.subarray(at, at + n), Buffer.from('\r\n'));
      at += n;
    }
    parts.push(Buffer.from('0\r\n\r\n'));
    return Buffer.concat(parts);
  }
  if (r.mode === M_ECHO) {
    const expect = expects(r) ? 'Expect: 100-continue\r\n' : '';
    const head = Buffer.from(
      `POST ${path} HTTP/1.1\r\nHost: x\r\n${close}${expect}Content-Length: ${r.size}\r\n\r\n`,
      'latin1',
    );
    return Buffer.concat([head, body(c, r.seq, r.size)]);
  }
  return Buffer.from(`GET ${path} HTTP/1.1\r\nHost: x\r\n${close}\r\n`, 'latin1');
}

/**
 * Checks the responses in `data` against what client `c` sent, in order; returns a description
 * of the first mismatch, or undefined when every byte is as it should be.
 */
function verify(
  c: number,
  sent: readonly Sent[],
  data: Buffer,
  prefix?: { count: number; closed: boolean },
): string | undefined {
  let at = 0;
  for (const r of sent) {
    if (prefix !== undefined) {
      // A server stop: the answers end at a response's end. The last one says Connection: close
      // when its head was still to be sent at the stop (else the close after it says it: a
      // streamed answer already under way); nothing comes after one that said it.
      if (at === data.length) return undefined;
      if (prefix.closed) return `client ${c}: bytes after the answer that said Connection: close`;
    }
    const where = `client ${c} response ${r.seq} (size ${r.size}, mode ${r.mode}) at byte ${at}`;
    // An interim 100 Continue may come first (whether it does depends on when the body arrived).
    if (expects(r) && data.toString('latin1', at, at + 25) === 'HTTP/1.1 100 Continue\r\n\r\n') at += 25;
    const end = data.indexOf('\r\n\r\n', at, 'latin1');
    if (end < 0) return `${where}: no complete head (${data.length - at} bytes left)`;
    const head = data.subarray(at, end).toString('latin1');
    const lines = head.split('\r\n');
    if (r.last === 'bad') {
      if (!lines[0]?.startsWith('HTTP/1.1 400 '))
        return `${where}: status line ${JSON.stringify(lines[0]?.slice(0, 80))}`;
      const m = /\r\ncontent-length: *(\d+)/i.exec(head);
      if (m === null) return `${where}: 400 without Content-Length`;
      at = end + 4 + Number(m[1]);
      if (at > data.length) return `${where}: 400 cut short`;
      continue;
    }
    if (lines[0] !== 'HTTP/1.1 200 OK') return `${where}: status line ${JSON.stringify(lines[0]?.slice(0, 80))}`;
    const headers = new Map<string, string>();
    for (const l of lines.slice(1)) {
      const i = l.indexOf(':');
      if (i < 0) return `${where}: bad header line ${JSON.stringify(l.slice(0, 80))}`;
      headers.set(l.slice(0, i).toLowerCase(), l.slice(i + 1).trim());
    }
    if (headers.get('x-id') !== `${c}/${r.seq}`) return `${where}: X-Id ${headers.get('x-id')}`;
    if (prefix !== undefined) {
      prefix.count++;
      prefix.closed = headers.get('connection') === 'close';
    } else if ((headers.get('connection') === 'close') !== (r.last === 'close' || r.last === 'http10')) {
      return `${where}: Connection ${headers.get('connection')}`;
    }
    at = end + 4;
    let got: Buffer;
    const length = headers.get('content-length');
    if (isHead(r)) {
      // Streamed: written before end() (an empty body is not: end() alone sends Content-Length: 0).
      const streamed = (r.mode === M_STREAM || r.mode === M_STREAM_LATER || r.mode === M_TINY) && r.size > 0;
      if (streamed ? headers.get('transfer-encoding') !== 'chunked' : length !== String(r.size)) {
        return `${where}: HEAD answered with Content-Length ${length}, Transfer-Encoding ${headers.get('transfer-encoding')}`;
      }
      continue;
    }
    if (length !== undefined) {
      const n = Number(length);
      if (data.length < at + n) return `${where}: body cut short`;
      got = data.subarray(at, at + n);
      at += n;
    } else if (headers.get('transfer-encoding') === 'chunked') {
      const parts: Buffer[] = [];
      for (;;) {
        const eol = data.indexOf('\r\n', at, 'latin1');
        if (eol < 0) return `${where}: chunk size line cut short`;
        const sizeText = data.subarray(at, eol).toString('latin1');
        if (!/^[0-9a-f]+$/.test(sizeText)) return `${where}: chunk size ${JSON.stringify(sizeText.slice(0, 40))}`;
        const n = Number.parseInt(sizeText, 16);
        at = eol + 2;
        if (n === 0) {
          if (data.toString('latin1', at, at + 2) !== '\r\n') return `${where}: no CRLF after the last chunk`;
          at += 2;
          break;
        }
        if (data.length < at + n + 2) return `${where}: chunk cut short`;
        parts.push(data.subarray(at, at + n));
        if (data.toString('latin1', at + n, at + n + 2) !== '\r\n') return `${where}: no CRLF after a chunk`;
        at += n + 2;
      }
      got = Buffer.concat(parts);
    } else if (r.last === 'http10') {
      got = data.subarray(at); // delimited by the close
      at = data.length;
    } else {
      return `${where}: no framing`;
    }
    if (got.length !== r.size) return `${where}: body of ${got.length} bytes`;
    for (let k = 0; k < got.length; k++) {
      if (got[k] !== bodyByte(c, r.seq, k)) {
        // Whose byte is it? Look for the sequence that would have put it there.
        return `${where}: body byte ${k} is ${got[k]}, expected ${bodyByte(c, r.seq, k)}`;
      }
    }
  }
  if (at !== data.length) return `client ${c}: ${data.length - at} bytes after the last response`;
  return undefined;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * One client: sends its requests in pipelined bursts (each burst one or a few writes), reading
 * with stalls — paused for a few ms at seeded moments — and returns everything it received until
 * the server closed (its last request asks for that), and whether it did.
 */
async function runClient(
  socket: net.Socket,
  c: number,
  sent: readonly Sent[],
  rand: () => number,
  burst: number,
): Promise<{ data: Buffer; ended: boolean }> {
  const chunks: Buffer[] = [];
  let ended = false;
  socket.on('data', (d: Buffer) => {
    chunks.push(d);
  });
  socket.on('end', () => {
    ended = true;
  });
  socket.on('close', () => {
    ended = true;
  });
  socket.pause();
  for (let i = 0; i < sent.length; i += burst) {
    const reqs = Buffer.concat(sent.slice(i, i + burst).map((r) => requestBytes(c, r)));
    // One write, or a few cut at seeded points: requests split across reads.
    let at = 0;
    while (at < reqs.length) {
      const n = rand() < 0.5 ? reqs.length - at : 1 + Math.floor(rand() * (reqs.length - at));
      if (!socket.write(reqs.subarray(at, at + n))) await new Promise((r) => socket.once('drain', r));
      at += n;
    }
    // Stall: let the server's queue for us fill and block, then read for a moment.
    await sleep(Math.floor(rand() * 8));
    socket.resume();
    await sleep(Math.floor(rand() * 4));
    socket.pause();
  }
  socket.resume();
  const deadline = Date.now() + 20_000;
  // The last request closes the connection: everything must have come before the server's FIN.
  while (!ended && Date.now() < deadline) await sleep(5);
  return { data: Buffer.concat(chunks), ended };
}

/**
 * A client of `port`: plain (through `opened`), or TLS trusting the test CA when `certs` is given
 * (remembered in `tlsSockets`, which the suite's afterEach destroys).
 */
async function connectClient(
  opened: Opened,
  tlsSockets: tls.TLSSocket[],
  port: number,
  certs: TestCertificates | undefined,
): Promise<net.Socket> {
  if (certs === undefined) return opened.client(port);
  const s = tls.connect({ host: '127.0.0.1', port, ca: certs.ca, servername: 'localhost' });
  tlsSockets.push(s);
  s.on('error', () => {});
  await new Promise<void>((resolve, reject) => {
    s.once('secureConnect', resolve);
    s.once('error', reject);
  });
  return s;
}

describe('HTTP/1.1 under backpressure: every byte of every pipelined response, on stalled readers', function () {
  this.timeout(30_000);
  const opened = new Opened();
  const tlsSockets: tls.TLSSocket[] = [];
  let certs: TestCertificates | undefined;

  afterEach(async () => {
    for (const s of tlsSockets.splice(0)) s.destroy();
    await opened.teardown();
  });

  const CLIENTS = 4;
  const REQUESTS = 240;
  const BURST = 120;

  async function stress(
    options: Partial<ServerOptions>,
    secure: boolean,
    seed: number,
    streamBodies = false,
    maxPipelined = 64,
  ): Promise<void> {
    const server = await opened.listen({
      host: '127.0.0.1',
      port: 0,
      logger: silentLogger,
      sendBufferSize: 4096,
      initialReadSize: 65536,
      minReadSize: 65536,
      pipeline: handler(streamBodies, maxPipelined),
      ...(secure ? { tls: (certs as TestCertificates).server } : {}),
      ...options,
    } as ServerOptions);
    const port = server.address().port;
    const open = () => connectClient(opened, tlsSockets, port, secure ? certs : undefined);
    const rand = prng(seed);
    const plans = Array.from({ length: CLIENTS }, (_, c) => {
      const p = plan(rand, REQUESTS);
      const last = p[p.length - 1] as Sent;
      // Streamed, so that an HTTP/1.0 answer is delimited by the close.
      const kind = (['close', 'bad', 'http10'] as const)[c % 3] as 'close' | 'bad' | 'http10';
      p[p.length - 1] = { ...last, mode: kind === 'http10' ? M_STREAM : last.mode, last: kind };
      return p;
    });
    const sockets = await Promise.all(plans.map(() => open()));
    const results = await Promise.all(
      sockets.map((s, c) => runClient(s, c + 1, plans[c] as Sent[], prng(seed + c + 1), BURST)),
    );
    results.forEach(({ data, ended }, c) => {
      const problem = verify(c + 1, plans[c] as Sent[], data);
      expect(problem, `seed ${seed}: ${problem}`).to.equal(undefined);
      expect(ended, `seed ${seed}: client ${c + 1}'s connection closed after its last response`).to.equal(true);
    });
  }

  const TRANSPORTS: Transport[] = [
    { poller: 'epoll', trigger: 'level' },
    { poller: 'epoll', trigger: 'edge' },
    { poller: 'poll', trigger: 'level' },
    { poller: 'poll', trigger: 'edge' },
  ];

  for (const t of TRANSPORTS) {
    it(`plain, ${t.poller}/${t.trigger}: ${CLIENTS} clients, bursts of ${BURST} pipelined requests, 4 KiB send buffers`, async () => {
      await stress(t, false, testSeed());
    });
  }

  it(`plain, epoll/level, streamBodies: request bodies (some chunked) echoed piece by piece`, async () => {
    await stress({}, false, testSeed(), true);
  });

  it('plain, maxPipelinedRequests 1, streamBodies: a streamed request is not held from its own body', async () => {
    // Reads are held while maxPipelinedRequests are in progress; a streamed request is in
    // progress from its head on, and its body comes through reads: held there, it never came
    // (the hold ends only once the request is answered).
    await stress({}, false, testSeed(), true, 1);
  });

  for (const secure of [false, true]) {
    it(`${secure ? 'TLS' : 'plain'}: a server stop in the middle of pipelined bursts — every answer sent is whole, none after Connection: close`, async function () {
      if (secure) certs ??= tlsCertificates(this);
      const seed = testSeed();
      const server = await opened.listen({
        host: '127.0.0.1',
        port: 0,
        logger: silentLogger,
        sendBufferSize: 4096,
        initialReadSize: 65536,
        minReadSize: 65536,
        pipeline: handler(),
        ...(secure ? { tls: (certs as TestCertificates).server } : {}),
      } as ServerOptions);
      const port = server.address().port;
      const rand = prng(seed);
      const plans = Array.from({ length: CLIENTS }, () => plan(rand, REQUESTS));
      const sockets = await Promise.all(
        plans.map(() => connectClient(opened, tlsSockets, port, secure ? certs : undefined)),
      );
      const running = sockets.map((s, c) => runClient(s, c + 1, plans[c] as Sent[], prng(seed + c + 1), BURST));
      // Stop while the first bursts are being answered (and their readers stall).
      await sleep(5 + Math.floor(rand() * 10));
      opened.forget(server);
      const closing = server.close({ timeout: 10_000 });
      const results = await Promise.all(running);
      await closing;
      results.forEach(({ data, ended }, c) => {
        const seen = { count: 0, closed: false };
        const problem = verify(c + 1, plans[c] as Sent[], data, seen);
        expect(problem, `seed ${seed}: ${problem} (after ${seen.count} answers)`).to.equal(undefined);
        expect(ended, `seed ${seed}: client ${c + 1}'s connection closed`).to.equal(true);
      });
    });
  }

  describe('over TLS', () => {
    before(function () {
      certs = tlsCertificates(this);
    });
    it(`TLS, epoll/level, streamBodies: request bodies (some chunked) echoed piece by piece`, async () => {
      await stress({}, true, testSeed(), true);
    });
    for (const t of TRANSPORTS.slice(0, 2)) {
      it(`TLS, ${t.poller}/${t.trigger}: ${CLIENTS} clients, bursts of ${BURST} pipelined requests, 4 KiB send buffers`, async () => {
        await stress(t, true, testSeed());
      });
    }
  });
});

/** Echoes what it gets as it gets it: a view of the read (or of the TLS plaintext buffer), or a decoded frame. */
class Echo extends ChannelInboundHandler {
  override onRead(ctx: HandlerContext, msg: unknown): void {
    ctx.write(msg);
  }
}

type Framing = 'raw' | 'length' | 'line';

function echoServerPipeline(framing: Framing): () => Pipeline {
  return () => {
    const p = new Pipeline();
    if (framing === 'length') {
      p.addLast('frames', new LengthFieldFrameDecoder({ lengthFieldLength: 2, maxFrameLength: 2 + 0xffff }));
    } else if (framing === 'line') {
      p.addLast('lines', new LineFrameDecoder({ maxLength: 0x10000, stripDelimiter: false }));
    }
    return p.addLast('echo', new Echo());
  };
}

/**
 * Client `c`'s stream: frames identifying the client and their index (length-prefixed, or lines),
 * sizes around the read, TLS-record and slab sizes, many small ones so that one read holds many.
 */
function echoStream(framing: Framing, c: number, rand: () => number, total: number): Buffer {
  const sizes = [1, 5, 100, 1000, 4093, 4096, 8190, 16_381, 16_384, 16_389, 30_000, 65_533, 65_535];
  const parts: Buffer[] = [];
  let have = 0;
  for (let i = 0; have < total; i++) {
    const n =
      rand() < 0.6 ? 6 + Math.floor(rand() * 300) : Math.max(6, sizes[Math.floor(rand() * sizes.length)] as number);
    const head = framing === 'length' ? 2 : 0;
    const b = Buffer.allocUnsafe(head + n);
    if (framing === 'length') b.writeUInt16BE(n, 0);
    // Bytes 0x21..0x7e (never a newline): client, index, then a pattern of both.
    for (let k = 0; k < n; k++) b[head + k] = 0x21 + ((c * 29 + i * 13 + k * 3) % 94);
    b[head] = 0x30 + c;
    b.write(i.toString(36).padStart(4, '0').slice(-4), head + 1, 'latin1');
    if (framing === 'line') b[head + n - 1] = 0x0a;
    parts.push(b);
    have += b.length;
  }
  return Buffer.concat(parts);
}

describe('the echo path under backpressure: what is read, echoed as views, to stalled readers', function () {
  this.timeout(30_000);
  const opened = new Opened();
  const tlsSockets: tls.TLSSocket[] = [];
  let certs: TestCertificates | undefined;
  afterEach(async () => {
    for (const s of tlsSockets.splice(0)) s.destroy();
    await opened.teardown();
  });

  async function stressEcho(framing: Framing, trigger: 'level' | 'edge', secure: boolean): Promise<void> {
    const seed = testSeed();
    const server = await opened.listen({
      host: '127.0.0.1',
      port: 0,
      logger: silentLogger,
      sendBufferSize: 4096,
      initialReadSize: 65536,
      minReadSize: 65536,
      trigger,
      pipeline: echoServerPipeline(framing),
      ...(secure ? { tls: (certs as TestCertificates).server } : {}),
    } as ServerOptions);
    const port = server.address().port;
    const open = () => connectClient(opened, tlsSockets, port, secure ? certs : undefined);
    const client = async (c: number): Promise<void> => {
      const rand = prng(seed + c);
      const s = await open();
      const want = echoStream(framing, c, rand, 3 * 1024 * 1024);
      const got: Buffer[] = [];
      let have = 0;
      s.on('data', (d: Buffer) => {
        got.push(d);
        have += d.length;
      });
      s.pause();
      for (let at = 0; at < want.length; ) {
        const n = Math.min(want.length - at, 1 + Math.floor(rand() * 200_000));
        if (!s.write(want.subarray(at, at + n))) {
          // Read a little so that the server can go on (it stops reading while its queue is full).
          s.resume();
          await new Promise((r) => s.once('drain', r));
          s.pause();
        }
        at += n;
        await sleep(Math.floor(rand() * 4));
        if (rand() < 0.5) {
          s.resume();
          await sleep(Math.floor(rand() * 3));
          s.pause();
        }
      }
      s.resume();
      const deadline = Date.now() + 20_000;
      while (have < want.length && Date.now() < deadline) await sleep(5);
      const data = Buffer.concat(got);
      const k = data.findIndex((b, j) => b !== want[j]);
      const around = k < 0 ? '' : `: ${JSON.stringify(data.toString('latin1', Math.max(0, k - 8), k + 24))}`;
      expect(k, `seed ${seed} client ${c}: first wrong byte${around}`).to.equal(-1);
      expect(data.length, `seed ${seed} client ${c}: bytes echoed`).to.equal(want.length);
    };
    await Promise.all([1, 2, 3, 4].map(client));
  }

  for (const framing of ['raw', 'length', 'line'] as const) {
    for (const trigger of ['level', 'edge'] as const) {
      it(`${framing}, epoll/${trigger}: 4 clients, 3 MiB each, every echoed byte`, async () => {
        await stressEcho(framing, trigger, false);
      });
    }
  }

  describe('over TLS', () => {
    before(function () {
      certs = tlsCertificates(this);
    });
    for (const framing of ['raw', 'length'] as const) {
      it(`${framing}, epoll/level, TLS: 4 clients, 3 MiB each, every echoed byte`, async () => {
        await stressEcho(framing, 'level', true);
      });
    }
  });
});
