/**
 * HttpRequestDecoder beyond the vectors: every limit with its status and code, the header
 * timeout on the fake clock, option validation, keep-alive and HTTP/1.0 rules, Expect, the
 * upgrade hand-off, pipelining, chunked bodies, lazy headers, and what follows an error.
 */
import { expect } from 'chai';
import { HttpHeaders } from '../../../src/codec/http1/headers.js';
import {
  HttpExpectContinueEvent,
  HttpParseError,
  type HttpRequest,
  HttpRequestProgress,
} from '../../../src/codec/http1/request.js';
import { HttpRequestDecoder, type HttpRequestDecoderOptions } from '../../../src/codec/http1/request-decoder.js';
import { InvalidOptionError } from '../../../src/common/errors.js';
import { EmbeddedChannel } from '../../../src/pipeline/embedded.js';
import type { HandlerContext } from '../../../src/pipeline/pipeline.js';
import { byteByByte, prng, randomSplit, splitChunks, thrownBy } from '../../support.js';
import { bytes, decode, Recorder } from './harness.js';

/** The one error a run produced (and that it is the last thing that happened). */
function errorOf(rec: Recorder): HttpParseError {
  expect(rec.errors, 'exactly one error').to.have.length(1);
  expect(rec.order[rec.order.length - 1]).to.equal('error');
  const e = rec.errors[0];
  expect(e).to.be.instanceOf(HttpParseError);
  return e as HttpParseError;
}

/** Decodes `text` whole and byte by byte; both must give the same outcome, which is returned. */
function both(text: string | Buffer, options: HttpRequestDecoderOptions = {}): Recorder {
  const raw = typeof text === 'string' ? bytes(text) : text;
  const whole = decode([raw], options).rec;
  const single = decode(byteByByte(raw), options).rec;
  expect(single.order, 'byte by byte gives the same events').to.deep.equal(whole.order);
  expect(single.requests.map(summary)).to.deep.equal(whole.requests.map(summary));
  expect(single.errors.map(describeError)).to.deep.equal(whole.errors.map(describeError));
  return whole;
}

const summary = (r: HttpRequest) => ({
  method: r.method,
  url: r.url,
  version: r.httpVersion,
  headers: r.headers.toArray(),
  body: r.body.toString('latin1'),
  trailers: r.trailers.toArray(),
  keepAlive: r.keepAlive,
  upgrade: r.upgrade,
});

const describeError = (e: unknown) =>
  e instanceof HttpParseError ? `${e.statusCode} ${e.code} @${e.offset}` : `not an HttpParseError: ${String(e)}`;

function rejects(
  text: string | Buffer,
  status: number,
  code: string,
  options: HttpRequestDecoderOptions = {},
): HttpParseError {
  const rec = both(text, options);
  const e = errorOf(rec);
  expect(e.statusCode, e.message).to.equal(status);
  expect(e.code, e.message).to.equal(code);
  return e;
}

function accepts(text: string | Buffer, options: HttpRequestDecoderOptions = {}): HttpRequest[] {
  const rec = both(text, options);
  expect(rec.errors.map(describeError)).to.deep.equal([]);
  return rec.requests;
}

describe('HttpRequestDecoder', () => {
  describe('options', () => {
    it('has the documented defaults', () => {
      const d = new HttpRequestDecoder();
      expect(d.maxHeaderSize).to.equal(16384);
      expect(d.maxUrlLength).to.equal(8192);
      expect(d.maxHeaders).to.equal(100);
      expect(d.maxBodySize).to.equal(1048576);
      expect(d.allowUnknownMethods).to.equal(false);
    });

    for (const name of ['maxHeaderSize', 'maxUrlLength', 'maxHeaders'] as const) {
      it(`${name} must be a positive integer`, () => {
        for (const bad of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, '10', null]) {
          const err = thrownBy(() => new HttpRequestDecoder({ [name]: bad } as unknown as HttpRequestDecoderOptions));
          expect(err, `${name}: ${String(bad)}`).to.be.instanceOf(InvalidOptionError);
          expect((err as Error).message).to.contain(name);
        }
        expect(new HttpRequestDecoder({ [name]: 1 })[name]).to.equal(1);
      });
    }

    for (const name of ['maxBodySize'] as const) {
      it(`${name} must be a non-negative integer (0 allowed)`, () => {
        for (const bad of [-1, 0.5, Number.NaN, '1', {}]) {
          const err = thrownBy(() => new HttpRequestDecoder({ [name]: bad } as unknown as HttpRequestDecoderOptions));
          expect(err, `${name}: ${String(bad)}`).to.be.instanceOf(InvalidOptionError);
        }
        expect(new HttpRequestDecoder({ [name]: 0 })[name]).to.equal(0);
      });
    }

    it('allowUnknownMethods must be a boolean', () => {
      const err = thrownBy(
        () => new HttpRequestDecoder({ allowUnknownMethods: 1 } as unknown as HttpRequestDecoderOptions),
      );
      expect(err).to.be.instanceOf(InvalidOptionError);
    });
  });

  describe('limits', () => {
    const head = (fieldsLength: number) => {
      // A request line of 16 bytes + CRLF, one field `X: …` filling the rest, final CRLF.
      const line = 'GET / HTTP/1.1\r\n';
      const value = 'v'.repeat(fieldsLength - line.length - 'X: \r\n\r\n'.length);
      return `${line}X: ${value}\r\n\r\n`;
    };

    it('a head of exactly maxHeaderSize bytes is accepted; one byte more is 431 HPE_HEADER_OVERFLOW', () => {
      expect(head(200)).to.have.length(200);
      expect(accepts(head(200), { maxHeaderSize: 200 })).to.have.length(1);
      const e = rejects(head(201), 431, 'HPE_HEADER_OVERFLOW', { maxHeaderSize: 200 });
      expect(e.offset).to.equal(200);
    });

    it('431 as soon as the head outgrows the limit, without waiting for its end', () => {
      const { rec } = decode([bytes(`GET / HTTP/1.1\r\nX: ${'v'.repeat(300)}`)], { maxHeaderSize: 200 });
      expect(errorOf(rec).statusCode).to.equal(431);
    });

    it('the default limit is 16 KiB', () => {
      expect(accepts(head(16384))).to.have.length(1);
      rejects(head(16385), 431, 'HPE_HEADER_OVERFLOW');
    });

    it('maxHeaders fields are accepted, one more is 431', () => {
      const fields = (n: number) => Array.from({ length: n }, (_, i) => `F${i}: ${i}\r\n`).join('');
      expect(accepts(`GET / HTTP/1.1\r\n${fields(3)}\r\n`, { maxHeaders: 3 })[0]?.headers.size).to.equal(3);
      rejects(`GET / HTTP/1.1\r\n${fields(4)}\r\n`, 431, 'HPE_HEADER_OVERFLOW', { maxHeaders: 3 });
      expect(accepts(`GET / HTTP/1.1\r\n${fields(100)}\r\n`)[0]?.headers.size).to.equal(100);
      rejects(`GET / HTTP/1.1\r\n${fields(101)}\r\n`, 431, 'HPE_HEADER_OVERFLOW');
    });

    it('a target of maxUrlLength bytes is accepted, one more is 414 HPE_URI_TOO_LONG', () => {
      const url = (n: number) => `/${'a'.repeat(n - 1)}`;
      expect(accepts(`GET ${url(64)} HTTP/1.1\r\n\r\n`, { maxUrlLength: 64 })[0]?.url).to.have.length(64);
      const e = rejects(`GET ${url(65)} HTTP/1.1\r\n\r\n`, 414, 'HPE_URI_TOO_LONG', { maxUrlLength: 64 });
      expect(e.offset, 'points at the target').to.equal(4);
      expect(accepts(`GET ${url(8192)} HTTP/1.1\r\n\r\n`)).to.have.length(1);
      rejects(`GET ${url(8193)} HTTP/1.1\r\n\r\n`, 414, 'HPE_URI_TOO_LONG');
    });

    it('414 before the target ends, and when the request line alone outgrows maxHeaderSize', () => {
      const { rec } = decode([bytes(`GET /${'a'.repeat(100)}`)], { maxUrlLength: 64 });
      expect(errorOf(rec).statusCode).to.equal(414);
      rejects(`GET /${'a'.repeat(300)} HTTP/1.1\r\n\r\n`, 414, 'HPE_URI_TOO_LONG', {
        maxUrlLength: 1000,
        maxHeaderSize: 200,
      });
    });

    it('a Content-Length over maxBodySize is 413 HPE_BODY_TOO_LARGE at the head, before any body byte', () => {
      expect(accepts(`POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\n0123456789`, { maxBodySize: 10 })).to.have.length(1);
      const tooLarge = 'POST / HTTP/1.1\r\nContent-Length: 11\r\n\r\n';
      const e = rejects(tooLarge, 413, 'HPE_BODY_TOO_LARGE', { maxBodySize: 10 });
      expect(e.offset, 'at the end of the head').to.equal(tooLarge.length);
      rejects(`POST / HTTP/1.1\r\nContent-Length: 1048577\r\n\r\n`, 413, 'HPE_BODY_TOO_LARGE');
      expect(accepts(`POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n`, { maxBodySize: 0 })).to.have.length(1);
    });

    it('a chunked body whose total exceeds maxBodySize is 413 as soon as the chunk size says so', () => {
      const ok = 'POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n5\r\nworld\r\n0\r\n\r\n';
      expect(accepts(ok, { maxBodySize: 10 })[0]?.body.toString()).to.equal('helloworld');
      rejects('POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n', 413, 'HPE_BODY_TOO_LARGE', {
        maxBodySize: 10,
      });
      // A huge size is refused at its digits: no overflow, no waiting for the data.
      rejects('POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffffffff', 413, 'HPE_BODY_TOO_LARGE');
    });

    it('chunk extensions are capped per message (413 HPE_CHUNK_EXTENSIONS_OVERFLOW), chunk sizes at 16 digits', () => {
      const ext = `;${'e'.repeat(300)}`;
      rejects(
        `POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1${ext}\r\nA\r\n0\r\n\r\n`,
        413,
        'HPE_CHUNK_EXTENSIONS_OVERFLOW',
        { maxHeaderSize: 256 },
      );
      rejects(
        'POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n00000000000000001\r\nA\r\n0\r\n\r\n',
        400,
        'HPE_INVALID_CHUNK_SIZE',
      );
      expect(
        accepts(
          'POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0000000000000001\r\nA\r\n0\r\n\r\n',
        )[0]?.body.toString(),
      ).to.equal('A');
    });

    it('a trailer section has the head’s limits', () => {
      const trailers = (n: number) => Array.from({ length: n }, (_, i) => `T${i}: ${i}\r\n`).join('');
      const msg = (n: number) => `POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n${trailers(n)}\r\n`;
      expect(accepts(msg(3), { maxHeaders: 3 })[0]?.trailers.size).to.equal(3);
      rejects(msg(4), 431, 'HPE_HEADER_OVERFLOW', { maxHeaders: 3 });
      rejects(msg(40), 431, 'HPE_HEADER_OVERFLOW', { maxHeaderSize: 128 });
    });

    it('HTTP/2.0, HTTP/1.2 and HTTP/0.9 are 505; a malformed version is 400', () => {
      rejects('GET / HTTP/2.0\r\n\r\n', 505, 'HPE_INVALID_VERSION');
      rejects('GET / HTTP/1.2\r\n\r\n', 505, 'HPE_INVALID_VERSION');
      rejects('GET / HTTP/0.9\r\n\r\n', 505, 'HPE_INVALID_VERSION');
      rejects('GET /\r\n\r\n', 505, 'HPE_INVALID_VERSION');
      rejects('GET / HTTP/1.1 \r\n\r\n', 400, 'HPE_INVALID_VERSION');
      rejects('GET / HTTP/11\r\n\r\n', 400, 'HPE_INVALID_VERSION');
      rejects('GET / http/1.1\r\n\r\n', 400, 'HPE_INVALID_CONSTANT');
      rejects('GET / HTTP/1.1\n\r\n', 400, 'HPE_INVALID_VERSION');
    });

    it('the HTTP/2 preface is 505 HPE_PAUSED_H2_UPGRADE (HTTP/2 with prior knowledge is not spoken)', () => {
      rejects('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 505, 'HPE_PAUSED_H2_UPGRADE');
    });

    it('an unknown method is 501, a non-token method 400; allowUnknownMethods accepts any token', () => {
      rejects('BREW /pot HTTP/1.1\r\n\r\n', 501, 'HPE_INVALID_METHOD');
      rejects('get / HTTP/1.1\r\n\r\n', 501, 'HPE_INVALID_METHOD');
      rejects('G(T / HTTP/1.1\r\n\r\n', 400, 'HPE_INVALID_METHOD');
      rejects(' GET / HTTP/1.1\r\n\r\n', 400, 'HPE_INVALID_METHOD');
      // Longer than any known method: 501 without waiting for the space.
      const { rec } = decode([bytes('XXXXXXXXXXXXXXXX')]);
      expect(errorOf(rec).statusCode).to.equal(501);
      const [brew] = accepts('BREW /pot HTTP/1.1\r\n\r\n', { allowUnknownMethods: true });
      expect(brew?.method).to.equal('BREW');
      for (const m of ['GET', 'POST', 'PUT', 'HEAD', 'DELETE', 'OPTIONS', 'PATCH', 'TRACE', 'M-SEARCH', 'QUERY']) {
        expect(accepts(`${m} /x HTTP/1.1\r\n\r\n`)[0]?.method).to.equal(m);
      }
    });
  });

  describe('progress signals for the server stage clocks', () => {
    const channel = (options: HttpRequestDecoderOptions = {}) => {
      const rec = new Recorder();
      const ch = new EmbeddedChannel([new HttpRequestDecoder(options), rec]);
      return { ch, rec };
    };
    const { HEAD, BODY } = HttpRequestProgress;

    it('a request whole in one read signals nothing; one whose head spans reads signals HEAD once', () => {
      const { ch, rec } = channel();
      ch.writeInbound(bytes('GET /1 HTTP/1.1\r\nHost: a\r\n\r\n\r\n')); // empty lines after it start nothing
      expect(rec.progress).to.deep.equal([]);
      ch.writeInbound(bytes('GET /2 HT'));
      ch.writeInbound(bytes('TP/1.1\r\nHo'));
      ch.writeInbound(bytes('st: a\r\n'));
      expect(rec.progress).to.deep.equal([HEAD]);
      ch.writeInbound(bytes('\r\n'));
      expect(rec.requests.map((r) => r.url)).to.deep.equal(['/1', '/2']);
      expect(rec.progress).to.deep.equal([HEAD]);
    });

    it('after the requests a read completed: a request completed, then the next one started', () => {
      const rec = new Recorder();
      const seen: string[] = [];
      const ch = new EmbeddedChannel([
        new HttpRequestDecoder(),
        new (class extends Recorder {
          override onRead(ctx: HandlerContext, msg: unknown): void {
            seen.push('request');
            rec.onRead(ctx, msg);
          }
          override onUserEvent(ctx: HandlerContext, event: unknown): void {
            seen.push(event === HEAD ? 'head' : 'body');
            rec.onUserEvent(ctx, event);
          }
        })(),
      ]);
      ch.writeInbound(bytes('GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHo'));
      ch.writeInbound(bytes('st: a\r\n\r\nPOST /3 HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\nab'));
      ch.writeInbound(bytes('cd'));
      expect(seen).to.deep.equal(['request', 'head', 'request', 'body', 'request']);
    });

    it('a body that spans reads signals BODY once (Content-Length, chunked, trailers, streamed)', () => {
      for (const [options, parts] of [
        [{}, ['POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\n\r\nab', 'cd', 'ef']],
        [{}, ['POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n', '0\r\nX: 1', '\r\n\r\n']],
        [{ streamBodies: true }, ['POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\n\r\nab', 'cd', 'ef']],
      ] as const) {
        const { ch, rec } = channel(options);
        for (const p of parts) ch.writeInbound(bytes(p));
        expect(rec.progress, JSON.stringify(parts[0])).to.deep.equal([BODY]);
      }
      // Its head spanning reads too: HEAD, then BODY.
      const { ch, rec } = channel();
      for (const p of ['POST / HTTP/1.1\r\nHost: a\r\nCon', 'tent-Length: 2\r\n\r\n', 'ab']) ch.writeInbound(bytes(p));
      expect(rec.progress).to.deep.equal([HEAD, BODY]);
      expect(rec.requests).to.have.length(1);
    });

    it('nothing after an error, after Connection: close, or after an upgrade', () => {
      for (const text of [
        'GET / HTTP/1.1\r\nHost: a\r\nBad Header: x\r\n',
        'GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n',
        'GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: x\r\n\r\nGET / HTTP/1.1\r\n',
      ]) {
        const { ch, rec } = channel();
        ch.writeInbound(bytes(text));
        ch.writeInbound(bytes('GET /more HTTP/1.1\r\n'));
        expect(rec.progress, text).to.deep.equal([]);
      }
    });
  });

  describe('Host (RFC 9112 §3.2: exactly one, valid; HTTP/1.1 must have it)', () => {
    const SERVER = { requireHostHeader: true }; // the default, which the framing tests turn off

    it('is the default, and requireHostHeader must be a boolean', () => {
      expect(new HttpRequestDecoder().requireHostHeader).to.equal(true);
      const err = thrownBy(
        () => new HttpRequestDecoder({ requireHostHeader: 'no' } as unknown as HttpRequestDecoderOptions),
      );
      expect(err).to.be.instanceOf(InvalidOptionError);
    });

    it('an HTTP/1.1 request without Host: 400 HPE_MISSING_HOST at the end of its head, after the requests before it', () => {
      const e = rejects('GET / HTTP/1.1\r\nAccept: */*\r\n\r\n', 400, 'HPE_MISSING_HOST', SERVER);
      expect(e.offset, 'the empty line that ends the head').to.equal(29);
      const rec = both('GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\n\r\n', SERVER);
      expect(rec.requests.map((r) => r.url)).to.deep.equal(['/a']);
      expect(errorOf(rec).code).to.equal('HPE_MISSING_HOST');
      rejects('CONNECT a.example:443 HTTP/1.1\r\n\r\n', 400, 'HPE_MISSING_HOST', SERVER);
      rejects('POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc', 400, 'HPE_MISSING_HOST', SERVER);
    });

    it('HTTP/1.0 may omit it; with requireHostHeader false, HTTP/1.1 may too', () => {
      expect(accepts('GET / HTTP/1.0\r\n\r\n', SERVER)).to.have.length(1);
      expect(accepts('GET / HTTP/1.1\r\n\r\n', { requireHostHeader: false })).to.have.length(1);
    });

    it('a second Host field is 400 HPE_DUPLICATE_HOST at once, in any version and case, whatever requireHostHeader says', () => {
      for (const options of [SERVER, { requireHostHeader: false }]) {
        rejects('GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n', 400, 'HPE_DUPLICATE_HOST', options);
        rejects('GET / HTTP/1.0\r\nHOST: a\r\nX: y\r\nhost: b\r\n', 400, 'HPE_DUPLICATE_HOST', options);
      }
      // A Host in the trailers is not a second Host of the head (trailer fields are not the head's).
      const [r] = accepts(
        'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nHost: b\r\n\r\n',
        SERVER,
      );
      expect(r?.headers.get('host')).to.equal('a');
    });

    it('a Host value that is not uri-host [":" port] is 400 HPE_INVALID_HOST', () => {
      for (const bad of [
        'a b',
        'user@a',
        'a/b',
        'a?b',
        'a#b',
        'a:8o',
        'a:80:81',
        '[::1',
        '[::1]x',
        '"a"',
        'a\\b',
        '\xffa',
      ]) {
        rejects(`GET / HTTP/1.1\r\nHost: ${bad}\r\n\r\n`, 400, 'HPE_INVALID_HOST', SERVER);
      }
      for (const good of [
        '',
        'a',
        'a.example',
        'a.example:8080',
        'a:',
        '127.0.0.1:80',
        '[::1]',
        '[::1]:443',
        '[v1.x]',
        'xn--bcher-kva.example',
        "a-b_c~d%41!$&'()*+,;=",
      ]) {
        const [r] = accepts(`GET / HTTP/1.1\r\nHost: ${good}\r\n\r\n`, SERVER);
        expect(r?.headers.get('host'), good).to.equal(good);
      }
    });
  });

  describe('keep-alive', () => {
    const keepAlive = (text: string) => accepts(text)[0]?.keepAlive;

    it('HTTP/1.1 keeps the connection unless `Connection: close` (a token, any case, in a list)', () => {
      expect(keepAlive('GET / HTTP/1.1\r\n\r\n')).to.equal(true);
      expect(keepAlive('GET / HTTP/1.1\r\nConnection: close\r\n\r\n')).to.equal(false);
      expect(keepAlive('GET / HTTP/1.1\r\nConnection: Keep-Alive, CLOSE\r\n\r\n')).to.equal(false);
      expect(keepAlive('GET / HTTP/1.1\r\nConnection: te\r\nConnection: close\r\n\r\n')).to.equal(false);
      expect(keepAlive('GET / HTTP/1.1\r\nConnection: closed\r\n\r\n')).to.equal(true);
    });

    it('HTTP/1.0 keeps it only with `Connection: keep-alive` (as ab -k sends it)', () => {
      expect(keepAlive('GET / HTTP/1.0\r\n\r\n')).to.equal(false);
      expect(keepAlive('GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n')).to.equal(true);
      expect(keepAlive('GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n')).to.equal(false);
    });

    it('HTTP/1.0 with Transfer-Encoding is read, then the connection closes (RFC 9112 §6.1)', () => {
      const [r] = accepts(
        'POST / HTTP/1.0\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nA\r\n0\r\n\r\n',
      );
      expect(r?.body.toString()).to.equal('A');
      expect(r?.keepAlive).to.equal(false);
    });

    it('after a request that closes, empty lines are ignored and anything else is HPE_CLOSED_CONNECTION', () => {
      const quiet = both('GET / HTTP/1.0\r\n\r\n\r\n\r\n');
      expect(quiet.requests).to.have.length(1);
      expect(quiet.errors).to.have.length(0);
      const rec = both('GET / HTTP/1.0\r\n\r\nGET /next HTTP/1.1\r\n\r\n');
      expect(rec.requests.map((r) => r.url)).to.deep.equal(['/']);
      const e = errorOf(rec);
      expect(e.code).to.equal('HPE_CLOSED_CONNECTION');
      expect(e.statusCode).to.equal(400);
      expect(e.offset).to.equal(18);
    });
  });

  describe('Expect', () => {
    it('fires one HttpExpectContinueEvent when a head with a body to come expects 100-continue', () => {
      const text = 'PUT /up HTTP/1.1\r\nExpect: 100-Continue\r\nContent-Length: 5\r\n\r\n';
      for (const writes of [[bytes(text)], byteByByte(bytes(text))]) {
        const { ch, rec } = decode(writes);
        expect(rec.order).to.deep.equal(['event']);
        const ev = rec.events[0] as HttpExpectContinueEvent;
        expect(ev).to.be.instanceOf(HttpExpectContinueEvent);
        expect([ev.method, ev.url]).to.deep.equal(['PUT', '/up']);
        ch.writeInbound(bytes('hello'));
        expect(rec.order).to.deep.equal(['event', 'request']);
        expect(rec.requests[0]?.body.toString()).to.equal('hello');
      }
      const chunked = decode([bytes('POST / HTTP/1.1\r\nExpect: 100-continue\r\nTransfer-Encoding: chunked\r\n\r\n')]);
      expect(chunked.rec.events).to.have.length(1);
    });

    it('no event without a body, or on HTTP/1.0 (where Expect is ignored)', () => {
      expect(both('GET / HTTP/1.1\r\nExpect: 100-continue\r\n\r\n').order).to.deep.equal(['request']);
      expect(both('POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\nx').order).to.deep.equal([
        'request',
      ]);
      expect(accepts('GET / HTTP/1.0\r\nExpect: something-else\r\n\r\n')).to.have.length(1);
    });

    it('any other expectation is 417 HPE_EXPECTATION_FAILED (RFC 9110 §10.1.1)', () => {
      rejects(
        'PUT / HTTP/1.1\r\nExpect: 100-continue, fast\r\nContent-Length: 1\r\n\r\nx',
        417,
        'HPE_EXPECTATION_FAILED',
      );
    });
  });

  describe('upgrade and CONNECT', () => {
    const after = Buffer.from([0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58, 0x0d, 0x0a, 0x00]);

    it('emits the request with upgrade set, leaves the pipeline, and the bytes after it pass on unmodified', () => {
      const headText = 'GET /chat HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n\r\n';
      const raw = Buffer.concat([bytes(headText), after, bytes('GET / HTTP/1.1\r\n\r\n')]);
      for (const writes of [[raw], byteByByte(raw), randomSplit(raw, 5)]) {
        const { ch, rec, decoder } = decode(writes);
        expect(rec.requests).to.have.length(1);
        expect(rec.requests[0]?.upgrade).to.equal(true);
        expect(rec.order[0]).to.equal('request');
        expect(rec.order.slice(1).every((o) => o === 'raw')).to.equal(true);
        expect(rec.rawBytes().equals(raw.subarray(headText.length))).to.equal(true);
        expect(ch.pipeline.context(decoder), 'decoder removed').to.equal(undefined);
        ch.writeInbound(bytes('more'));
        expect(rec.rawBytes().subarray(-4).toString()).to.equal('more');
        expect(rec.errors).to.have.length(0);
      }
    });

    it('reads the body of an upgrade request first; CONNECT hands over right after its head', () => {
      const body = decode([
        bytes('POST /u HTTP/1.1\r\nConnection: upgrade\r\nUpgrade: x\r\nContent-Length: 3\r\n\r\nabcRAW'),
      ]).rec;
      expect(body.requests[0]?.body.toString()).to.equal('abc');
      expect(body.rawBytes().toString()).to.equal('RAW');
      const connect = decode([bytes('CONNECT example.com:443 HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcRAW')]).rec;
      expect(connect.requests[0]?.upgrade).to.equal(true);
      expect(connect.requests[0]?.url).to.equal('example.com:443');
      expect(connect.requests[0]?.body).to.have.length(0);
      expect(connect.rawBytes().toString()).to.equal('abcRAW');
    });

    it('is not an upgrade without both `Connection: upgrade` and `Upgrade`, nor in HTTP/1.0', () => {
      expect(accepts('GET / HTTP/1.1\r\nUpgrade: websocket\r\n\r\n')[0]?.upgrade).to.equal(false);
      expect(accepts('GET / HTTP/1.1\r\nConnection: upgrade\r\n\r\n')[0]?.upgrade).to.equal(false);
      expect(
        accepts('GET / HTTP/1.0\r\nConnection: upgrade, keep-alive\r\nUpgrade: websocket\r\n\r\n')[0]?.upgrade,
      ).to.equal(false);
    });
  });

  describe('pipelining and bodies', () => {
    const pipeline = [
      'GET /1 HTTP/1.1\r\nHost: a\r\n\r\n',
      'POST /2 HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello',
      'PUT /3 HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n3;a=b;c="d\\"e"\r\nabc\r\n0A\r\n0123456789\r\n0\r\nDigest: x\r\n\r\n',
      '\r\nDELETE /4 HTTP/1.1\r\nContent-Length: 0\r\n\r\n',
      'HEAD /5?q=1 HTTP/1.1\r\n\r\n',
    ].join('');

    it('requests of one write come out in order, with their bodies and trailers, however the reads split them', () => {
      const rnd = prng(42);
      const splits = [[bytes(pipeline)], byteByByte(bytes(pipeline))];
      for (let i = 0; i < 20; i++) splits.push(splitChunks(bytes(pipeline), rnd, 1 + Math.floor(rnd() * 40)));
      for (const writes of splits) {
        const { rec } = decode(writes);
        expect(rec.errors).to.have.length(0);
        expect(rec.requests.map((r) => `${r.method} ${r.url} ${r.body.toString()}`)).to.deep.equal([
          'GET /1 ',
          'POST /2 hello',
          'PUT /3 abc0123456789',
          'DELETE /4 ',
          'HEAD /5?q=1 ',
        ]);
        expect(rec.requests[2]?.trailers.get('digest')).to.equal('x');
        expect(rec.requests[4]?.path).to.equal('/5');
        expect(rec.requests[4]?.queryString).to.equal('q=1');
        expect({ ...rec.requests[4]?.query }).to.deep.equal({ q: '1' });
      }
    });

    it('request targets of the same length, alternating, on two connections, come out as sent', () => {
      // The decoder reuses the string of the last target the thread decoded when the bytes match.
      const urls = ['/aa', '/ab', '/aa', '/aa', '/ba', '/ab', '/a?', '/x/'];
      const a = decode([]);
      const b = decode([]);
      for (const [i, url] of urls.entries()) {
        (i % 3 === 0 ? b : a).ch.writeInbound(bytes(`GET ${url} HTTP/1.1\r\nHost: h\r\n\r\n`));
      }
      const got = [...a.rec.requests, ...b.rec.requests].map((r) => r.url).sort();
      expect(got).to.deep.equal([...urls].sort());
      expect(b.rec.requests.map((r) => r.url)).to.deep.equal(['/aa', '/aa', '/a?']);
      const long = `/${'x'.repeat(300)}`;
      const c = decode([bytes(`GET ${long} HTTP/1.1\r\n\r\nGET ${long} HTTP/1.1\r\n\r\nGET /y HTTP/1.1\r\n\r\n`)]);
      expect(c.rec.requests.map((r) => r.url)).to.deep.equal([long, long, '/y']);
    });

    it('split in two reads at every byte: the same requests and errors as whole', () => {
      // The first read of a head takes the straight path, which gives up on an incomplete head after
      // reading some field lines (Transfer-Encoding, Expect, Connection set flags): the state
      // machine that starts over must not see those flags twice. Also the cases it hands over:
      // unknown methods, absolute targets, CONNECT, bad field lines.
      const cases = [
        pipeline,
        'POST /t HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\nExpect: 100-continue\r\nConnection: keep-alive, x\r\n\r\n2\r\nok\r\n0\r\n\r\n',
        'GET http://a.example/x?y HTTP/1.1\r\nHost: a.example\r\n\r\nCONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n',
        'GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc',
        'GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n',
        'GET / HTTP/1.1\r\nHost: a\r\nX: a\x01b\r\n\r\n',
        'GET / HTTP/1.1\r\nHost : a\r\n\r\n',
        'GET /\x7f HTTP/1.1\r\n\r\n',
        'FOO / HTTP/1.1\r\n\r\n',
        'GET / HTTP/1.2\r\n\r\n',
        'GET / HTTP/1.1\r\nX:  padded \t \r\nEmpty:\r\n\r\n',
      ];
      for (const text of cases) {
        const raw = bytes(text);
        const whole = decode([raw]).rec;
        for (let at = 1; at < raw.length; at++) {
          const rec = decode([raw.subarray(0, at), raw.subarray(at)]).rec;
          const where = `${JSON.stringify(text)} split at ${at}`;
          expect(rec.requests.map(summary), where).to.deep.equal(whole.requests.map(summary));
          expect(rec.errors.map(describeError), where).to.deep.equal(whole.errors.map(describeError));
        }
      }
    });

    it('requests and their bodies stay intact when the caller reuses the buffer it wrote', () => {
      const buf = bytes(pipeline);
      const { ch, rec } = decode([]);
      ch.writeInbound(buf);
      buf.fill(0x58);
      ch.writeInbound(buf.subarray(0, 0));
      expect(rec.requests[0]?.headers.get('host')).to.equal('a');
      expect(rec.requests[1]?.body.toString()).to.equal('hello');
      expect(rec.requests[2]?.body.toString()).to.equal('abc0123456789');
    });

    it('an error after complete requests comes after them; later bytes are ignored', () => {
      const { ch, rec } = decode([
        bytes('GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\nGET /c HTTP/1.1\r\nBad Name: x\r\n\r\n'),
      ]);
      expect(rec.requests.map((r) => r.url)).to.deep.equal(['/a', '/b']);
      const e = errorOf(rec);
      expect(e.code).to.equal('HPE_INVALID_HEADER_TOKEN');
      expect(e.offset, 'offset in the connection’s stream').to.equal(38 + 17 + 3);
      ch.writeInbound(bytes('GET /d HTTP/1.1\r\n\r\n'), bytes('\x00\x01garbage'));
      expect(rec.requests).to.have.length(2);
      expect(rec.errors).to.have.length(1);
    });

    it('a request cut by the end of the connection is neither emitted nor an error', () => {
      const { ch, rec } = decode([bytes('POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc')]);
      ch.finish();
      expect(rec.order).to.deep.equal([]);
    });

    it('rejects framing that could smuggle a request', () => {
      rejects(
        'POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n',
        400,
        'HPE_INVALID_TRANSFER_ENCODING',
      );
      rejects(
        'POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n',
        400,
        'HPE_INVALID_CONTENT_LENGTH',
      );
      rejects('POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n', 400, 'HPE_INVALID_TRANSFER_ENCODING');
      rejects('POST / HTTP/1.1\r\nTransfer-Encoding: chunked, chunked\r\n\r\n', 400, 'HPE_INVALID_TRANSFER_ENCODING');
      rejects('POST / HTTP/1.1\r\nTransfer-Encoding:\r\n\r\n', 400, 'HPE_INVALID_TRANSFER_ENCODING');
      rejects(
        'POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n',
        400,
        'HPE_UNEXPECTED_CONTENT_LENGTH',
      );
      rejects('POST / HTTP/1.1\r\nContent-Length: 1, 1\r\n\r\n', 400, 'HPE_INVALID_CONTENT_LENGTH');
      rejects('POST / HTTP/1.1\r\nContent-Length: +1\r\n\r\n', 400, 'HPE_INVALID_CONTENT_LENGTH');
      rejects('POST / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n', 400, 'HPE_INVALID_CONTENT_LENGTH');
      rejects('GET / HTTP/1.1\r\nHost : a\r\n\r\n', 400, 'HPE_INVALID_HEADER_TOKEN');
      rejects('GET / HTTP/1.1\r\nA: b\r\n folded\r\n\r\n', 400, 'HPE_INVALID_HEADER_TOKEN');
      rejects('GET / HTTP/1.1\r\nA: b\nC: d\r\n\r\n', 400, 'HPE_CR_EXPECTED');
      rejects('GET / HTTP/1.1\r\nA: b\r\n\n', 400, 'HPE_INVALID_HEADER_TOKEN');
      rejects('GET / HTTP/1.1\r\nA: b\x7f\r\n\r\n', 400, 'HPE_INVALID_HEADER_TOKEN');
      rejects('GET /a\tb HTTP/1.1\r\n\r\n', 400, 'HPE_INVALID_URL');
      rejects('GET ! HTTP/1.1\r\n\r\n', 400, 'HPE_INVALID_URL');
      rejects('GET  / HTTP/1.1\r\n\r\n', 400, 'HPE_INVALID_URL');
      rejects(
        'POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1 \r\nA\r\n0\r\n\r\n',
        400,
        'HPE_INVALID_CHUNK_SIZE',
      );
      rejects('POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nAB\r\n0\r\n\r\n', 400, 'HPE_STRICT');
      rejects('POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1;a b\r\nA\r\n0\r\n\r\n', 400, 'HPE_STRICT');
    });

    it('accepts what RFC 9112 allows: identical repeated Content-Length, request-target forms, OWS around values', () => {
      expect(
        accepts('POST / HTTP/1.1\r\nContent-Length: 2\r\ncontent-length: 2\r\n\r\nab')[0]?.body.toString(),
      ).to.equal('ab');
      for (const target of ['/', '*', '/p?q=1#f', 'http://h.example:8080/p?q', 'https://u:p@h/', 'http://[::1]:80/']) {
        expect(accepts(`OPTIONS ${target} HTTP/1.1\r\n\r\n`)[0]?.url).to.equal(target);
      }
      const [r] = accepts('GET / HTTP/1.1\r\nA: \t x y \t \r\nB:\r\nC:\t\r\n\r\n');
      expect(r?.headers.toArray()).to.deep.equal([
        ['A', 'x y'],
        ['B', ''],
        ['C', ''],
      ]);
    });
  });

  describe('lazy headers', () => {
    const [req] = accepts(
      'GET / HTTP/1.1\r\nHost: example.com\r\nAccept: text/html\r\nCookie: a=1\r\nX-Dup: one\r\ncookie: b=2\r\n' +
        'x-dup: two\r\nX-Latin: caf\xe9\r\n\r\n',
    );
    const h = (req as HttpRequest).headers;

    it('get, has and getAll ignore case; names keep their case when listed', () => {
      expect(h.get('HOST')).to.equal('example.com');
      expect(h.has('accept')).to.equal(true);
      expect(h.has('content-length')).to.equal(false);
      expect(h.get('missing')).to.equal(undefined);
      expect(h.getAll('X-DUP')).to.deep.equal(['one', 'two']);
      expect(h.nameAt(3)).to.equal('X-Dup');
      expect(h.size).to.equal(7);
    });

    it('repeated fields join with ", ", cookies with "; "; values are latin1', () => {
      expect(h.get('x-dup')).to.equal('one, two');
      expect(h.get('cookie')).to.equal('a=1; b=2');
      expect(h.get('x-latin')).to.equal('café');
      expect(h.toObject()).to.deep.equal({
        host: 'example.com',
        accept: 'text/html',
        cookie: 'a=1; b=2',
        'x-dup': 'one, two',
        'x-latin': 'café',
      });
    });

    it('a request without fields shares the empty headers', () => {
      expect(accepts('GET / HTTP/1.1\r\n\r\n')[0]?.headers).to.equal(HttpHeaders.EMPTY);
    });
  });
});
