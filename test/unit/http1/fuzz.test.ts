/**
 * 10,000 random byte strings (seeded): pure noise, HTTP-flavoured noise, and mutations of valid
 * requests (byte flips, truncations, inserted CR / LF / NUL / space / colon, duplicated and
 * dropped lines, glued requests), each decoded whole and in random splits, with default and
 * with tiny limits. The decoder may only emit HttpRequests (raw bytes after an upgrade, Expect
 * events) and raise HttpParseErrors — at most one, and nothing after it — never hang, and reach
 * the same result however the reads cut the input.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { expect } from 'chai';
import { HttpParseError, HttpRequest } from '../../../src/codec/http1/request.js';
import type { HttpRequestDecoderOptions } from '../../../src/codec/http1/request-decoder.js';
import { FIXTURES, prng, splitChunks } from '../../support.js';
import { bytes, decode, type Recorder } from './harness.js';

const SEEDS: string[] = [
  'GET / HTTP/1.1\r\nHost: a\r\n\r\n',
  'GET /plaintext HTTP/1.1\r\nConnection: keep-alive\r\nHost: h\r\nAccept: text/plain,*/*;q=0.7\r\n\r\n',
  'POST /form HTTP/1.1\r\nHost: a\r\nContent-Length: 7\r\nCookie: a=1\r\nCookie: b=2\r\n\r\nq=hello',
  'PUT /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nhello\r\n6;q="a\\"b"\r\n world\r\n0\r\nT: v\r\n\r\n',
  'GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\nGET /2 HTTP/1.0\r\n\r\n',
  'GET /ws HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n\x81\x05hello',
  'CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n\x16\x03\x01',
  'PATCH /x HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nokGET /next HTTP/1.1\r\n\r\n',
  'OPTIONS * HTTP/1.1\r\n\r\nGET http://u@h:1/p?q#f HTTP/1.1\r\nConnection: close\r\n\r\n',
];

interface LlhttpCase {
  readonly lenient: boolean;
  readonly expect: string;
  readonly raw_base64: string;
}
const corpus: Buffer[] = [
  ...SEEDS.map(bytes),
  ...(JSON.parse(readFileSync(resolve(FIXTURES, 'llhttp', 'llhttp-requests.json'), 'utf8')) as LlhttpCase[])
    .filter((c) => !c.lenient)
    .map((c) => Buffer.from(c.raw_base64, 'base64')),
];

const HTTPISH = bytes(
  'GETPOSTHEAD /?#:;=,"\\ \t\r\n\r\n0123456789abcdefABCDEF-chunkedContent-LengthTransfer-EncodingHTTP/1.1\x00\x7f\xff',
);
const INSERTS = [0x0d, 0x0a, 0x00, 0x20, 0x3a, 0x09, 0x3b, 0x22];

function randomBytes(rnd: () => number, n: number, alphabet?: Buffer): Buffer {
  const out = Buffer.alloc(n);
  for (let i = 0; i < n; i++) {
    out[i] =
      alphabet === undefined ? Math.floor(rnd() * 256) : (alphabet[Math.floor(rnd() * alphabet.length)] as number);
  }
  return out;
}

function pick<T>(rnd: () => number, list: readonly T[]): T {
  return list[Math.floor(rnd() * list.length)] as T;
}

/** One to four random edits of a valid input. */
function mutate(rnd: () => number, input: Buffer): Buffer {
  let b = Buffer.from(input);
  const edits = 1 + Math.floor(rnd() * 4);
  for (let e = 0; e < edits; e++) {
    const at = Math.floor(rnd() * (b.length + 1));
    switch (Math.floor(rnd() * 7)) {
      case 0: // flip a byte
        if (b.length > 0) b[Math.min(at, b.length - 1)] = Math.floor(rnd() * 256);
        break;
      case 1: // truncate
        b = b.subarray(0, at);
        break;
      case 2: // insert a delimiter-like byte
        b = Buffer.concat([b.subarray(0, at), Buffer.from([pick(rnd, INSERTS)]), b.subarray(at)]);
        break;
      case 3: {
        // duplicate a line (headers twice: Content-Length, Transfer-Encoding, Host …)
        const s = b.lastIndexOf(0x0a, at - 1) + 1;
        const lf = b.indexOf(0x0a, at);
        if (lf >= 0) b = Buffer.concat([b.subarray(0, lf + 1), b.subarray(s, lf + 1), b.subarray(lf + 1)]);
        break;
      }
      case 4: {
        // drop a byte
        if (b.length > 0) b = Buffer.concat([b.subarray(0, at), b.subarray(at + 1)]);
        break;
      }
      case 5: // glue another request on
        b = Buffer.concat([b, pick(rnd, corpus)]);
        break;
      default: // a random run
        b = Buffer.concat([b.subarray(0, at), randomBytes(rnd, 1 + Math.floor(rnd() * 8), HTTPISH), b.subarray(at)]);
    }
  }
  return b;
}

function input(rnd: () => number, i: number): Buffer {
  switch (i % 4) {
    case 0:
      return randomBytes(rnd, Math.floor(rnd() * 200));
    case 1:
      return randomBytes(rnd, Math.floor(rnd() * 200), HTTPISH);
    default:
      return mutate(rnd, pick(rnd, corpus));
  }
}

const TINY: HttpRequestDecoderOptions = {
  maxHeaderSize: 48,
  maxUrlLength: 12,
  maxHeaders: 2,
  maxBodySize: 6,
  allowUnknownMethods: true,
};

/** What a run amounts to, for comparing runs; checks the invariants on the way. */
function outcome(rec: Recorder, options: HttpRequestDecoderOptions): string {
  const errorAt = rec.order.indexOf('error');
  expect(
    rec.order.filter((o) => o === 'other'),
    'only requests, raw bytes, events and errors',
  ).to.deep.equal([]);
  for (const e of rec.errors) {
    if (!(e instanceof HttpParseError)) throw new Error(`not an HttpParseError: ${String((e as Error)?.stack ?? e)}`);
    expect([400, 413, 414, 417, 431, 501, 505]).to.include(e.statusCode);
    expect(e.code).to.match(/^HPE_[A-Z0-9_]+$/);
  }
  if (errorAt >= 0) expect(errorAt, 'nothing after an error').to.equal(rec.order.length - 1);
  const firstRaw = rec.order.indexOf('raw');
  if (firstRaw >= 0) {
    expect(rec.requests[rec.requests.length - 1]?.upgrade, 'raw bytes only after an upgrade').to.equal(true);
    expect(rec.errors).to.have.length(0);
  }
  const parts: string[] = [];
  for (const r of rec.requests) {
    expect(r).to.be.instanceOf(HttpRequest);
    expect(['1.0', '1.1']).to.include(r.httpVersion);
    expect(r.method.length).to.be.greaterThan(0);
    expect(r.body.length).to.be.at.most(options.maxBodySize ?? 1024 * 1024);
    expect(r.headers.size).to.be.at.most(options.maxHeaders ?? 100);
    parts.push(
      `${r.method} ${r.url} ${r.httpVersion} ${JSON.stringify(r.headers.toArray())} ${r.body.toString('hex')} ${JSON.stringify(r.trailers.toArray())} ${r.keepAlive} ${r.upgrade}`,
    );
  }
  parts.push(`events ${rec.events.length}`);
  parts.push(`raw ${rec.rawBytes().toString('hex')}`);
  for (const e of rec.errors)
    parts.push(
      `error ${(e as HttpParseError).statusCode} ${(e as HttpParseError).code} @${(e as HttpParseError).offset}`,
    );
  return parts.join('\n');
}

describe('HttpRequestDecoder fuzz: 10,000 random inputs', function () {
  this.timeout(30_000);

  it('emits only requests and HttpParseErrors, whole or split, and the same either way', () => {
    const rnd = prng(0x5eed);
    let requests = 0;
    let errors = 0;
    const codes = new Set<string>();
    for (let i = 0; i < 10_000; i++) {
      const data = input(rnd, i);
      const options = i % 5 === 4 ? TINY : {};
      const whole = decode([data], options);
      const split = decode(splitChunks(data, rnd, 1 + Math.floor(rnd() * 16)), options);
      const a = outcome(whole.rec, options);
      const b = outcome(split.rec, options);
      if (a !== b)
        throw new Error(`input ${i} (${data.toString('hex')}) decodes differently when split:\n${a}\n---\n${b}`);
      // After an error the stream is dead: a valid request that follows is not decoded.
      if (whole.rec.errors.length > 0) {
        const before = whole.rec.order.length;
        whole.ch.writeInbound(bytes('GET / HTTP/1.1\r\n\r\n'));
        expect(whole.rec.order.length, 'nothing after an error').to.equal(before);
      }
      whole.ch.finish();
      expect(whole.ch.errors, 'nothing unhandled reached the tail').to.deep.equal([]);
      requests += whole.rec.requests.length;
      errors += whole.rec.errors.length;
      for (const e of whole.rec.errors) codes.add((e as HttpParseError).code);
    }
    // The mix reaches both outcomes, and many kinds of error.
    expect(requests).to.be.greaterThan(500);
    expect(errors).to.be.greaterThan(5000);
    expect(codes.size).to.be.at.least(12);
  });
});

describe('HttpRequestDecoder: heads sent again', () => {
  it('each repeat of a head gets its own body, version and keep-alive', () => {
    const post = (body: string) => bytes(`POST /f HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\n${body}`);
    const old = bytes('GET /x HTTP/1.0\r\nConnection: keep-alive\r\n\r\n');
    const close = bytes('GET /x HTTP/1.1\r\nConnection: close\r\n\r\n');
    const { rec } = decode([Buffer.concat([post('abc'), post('xyz')]), post('123'), old, old, close]);
    expect(rec.errors).to.deep.equal([]);
    expect(rec.requests.map((r) => [r.method, r.url, r.httpVersion, r.body.toString(), r.keepAlive])).to.deep.equal([
      ['POST', '/f', '1.1', 'abc', true],
      ['POST', '/f', '1.1', 'xyz', true],
      ['POST', '/f', '1.1', '123', true],
      ['GET', '/x', '1.0', '', true],
      ['GET', '/x', '1.0', '', true],
      ['GET', '/x', '1.1', '', false],
    ]);
  });

  it("requests keep their headers when the read buffer is reused, as the loop's is", () => {
    const heads = ['GET /a HTTP/1.1\r\nHost: one\r\nX: 1\r\n\r\n', 'GET /b HTTP/1.1\r\nHost: two\r\nX: 22\r\n\r\n'];
    const plan = [0, 0, 0, 1, 1, 0, 0, 1, 0, 0, 0];
    const readBuffer = Buffer.alloc(64);
    const { ch, rec } = decode([]);
    for (const i of plan) {
      const n = readBuffer.write(heads[i] as string, 'latin1');
      ch.writeInbound(readBuffer.subarray(0, n));
      readBuffer.fill(0x2a); // what the next read would leave there
    }
    expect(rec.errors).to.deep.equal([]);
    expect(rec.requests.map((r) => `${r.url} ${JSON.stringify(r.headers.toArray())}`)).to.deep.equal(
      plan.map((i) => (i === 0 ? '/a [["Host","one"],["X","1"]]' : '/b [["Host","two"],["X","22"]]')),
    );
  });

  it('a head that differs from the last one only in its last bytes is parsed on its own, and rejected when invalid', () => {
    const { rec } = decode([
      bytes('GET / HTTP/1.1\r\nX: ab\r\n\r\nGET / HTTP/1.1\r\nX: ac\r\n\r\nGET / HTTP/1.1\r\nX: a\x01\r\n\r\n'),
    ]);
    expect(rec.requests.map((r) => r.headers.get('x'))).to.deep.equal(['ab', 'ac']);
    expect(rec.errors).to.have.length(1);
    expect((rec.errors[0] as HttpParseError).statusCode).to.equal(400);
  });
});
