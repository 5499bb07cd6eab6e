/**
 * Streamed request bodies (`streamBodies: true`): the request at its head, the body as it comes,
 * backpressure, answers given before the body is read, and bodies cut short.
 */
import { expect } from 'chai';
import type { HttpRequestBody } from '../../../src/codec/http1/body.js';
import { type HttpOptions, http } from '../../../src/codec/http1/http.js';
import { HttpParseError, type HttpRequest } from '../../../src/codec/http1/request.js';
import { HttpRequestDecoder, type HttpRequestDecoderOptions } from '../../../src/codec/http1/request-decoder.js';
import type { HttpResponse } from '../../../src/codec/http1/response.js';
import type { HttpHandler } from '../../../src/codec/http1/server.js';
import { ChannelClosedError, InvalidOptionError } from '../../../src/common/errors.js';
import { EmbeddedChannel } from '../../../src/pipeline/embedded.js';
import { byteByByte, prng, splitChunks, thrownBy } from '../../support.js';

/** The pipeline as users build it: `http(handler, { streamBodies: true, … })`. */
function server(handler: HttpHandler, options: HttpOptions = {}): EmbeddedChannel {
  return new EmbeddedChannel(http(handler, { streamBodies: true, ...options }));
}

const text = (ch: EmbeddedChannel) => ch.readOutboundBytes().toString('latin1');
const tick = () => new Promise((r) => setImmediate(r));

/** Answers every request with `<method> <url> <body length> <trailers as JSON>`, reading the stream. */
const echoLength: HttpHandler = async (req, res) => {
  const body = req.bodyStream === undefined ? req.body : await req.bodyStream.bytes();
  res.end(`${req.method} ${req.url} ${body.length} ${JSON.stringify(req.bodyStream?.trailers.toArray() ?? [])}`);
};

describe('streamed request bodies (streamBodies)', () => {
  it('the request comes at its head; the body as it arrives; the answer after', async () => {
    const seen: string[] = [];
    let request: HttpRequest | undefined;
    const ch = server(async (req, res) => {
      request = req;
      seen.push(`head ${req.streamed} ${req.body.length}`);
      for await (const chunk of req.bodyStream as HttpRequestBody) seen.push(`chunk ${chunk.toString()}`);
      res.end('done');
    });
    ch.writeInbound(Buffer.from('POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nhel'));
    await tick();
    expect(seen).to.deep.equal(['head true 0', 'chunk hel']);
    ch.writeInbound(Buffer.from('lo wo'));
    await tick();
    ch.writeInbound(Buffer.from('rl'));
    await tick();
    expect(((request as HttpRequest).bodyStream as HttpRequestBody).complete).to.equal(true);
    expect(seen).to.deep.equal(['head true 0', 'chunk hel', 'chunk lo wo', 'chunk rl']);
    expect(text(ch)).to.match(/\r\n\r\ndone$/);
  });

  it('chunked bodies stream chunk by chunk and bring their trailers; requests without a body are not streamed', async () => {
    const ch = server(echoLength);
    ch.writeInbound(
      Buffer.from(
        'POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\nDigest: x\r\n\r\nGET /g HTTP/1.1\r\nHost: x\r\n\r\n',
      ),
    );
    await tick();
    const out = text(ch);
    expect(out).to.contain('POST /c 11 [["Digest","x"]]');
    expect(out).to.contain('GET /g 0 []');
    expect(out.indexOf('POST /c')).to.be.lessThan(out.indexOf('GET /g'));
  });

  it('the body is the same however the reads cut it', async () => {
    const body = Buffer.alloc(5000, 'b');
    const raw = Buffer.concat([
      Buffer.from(`PUT /x HTTP/1.1\r\nHost: x\r\nContent-Length: ${body.length}\r\n\r\n`),
      body,
      Buffer.from('POST /y HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3e8\r\n'),
      Buffer.alloc(1000, 'c'),
      Buffer.from('\r\n0\r\n\r\n'),
    ]);
    const rnd = prng(11);
    for (const writes of [[raw], byteByByte(raw), splitChunks(raw, rnd, 7), splitChunks(raw, rnd, 900)]) {
      const ch = server(echoLength);
      for (const w of writes) {
        ch.writeInbound(w);
        await Promise.resolve();
      }
      await tick();
      const out = text(ch);
      expect(out).to.contain('PUT /x 5000 []');
      expect(out).to.contain('POST /y 1000 []');
    }
  });

  it('a body not read past its high watermark stops the reading; reading it resumes', async () => {
    let body: HttpRequestBody | undefined;
    const ch = server((req) => {
      body = req.bodyStream;
    });
    ch.writeInbound(Buffer.from(`POST / HTTP/1.1\r\nHost: x\r\nContent-Length: ${200 * 1024}\r\n\r\n`));
    for (let i = 0; i < 5; i++) ch.writeInbound(Buffer.alloc(20 * 1024));
    expect(ch.isReadingPaused, 'over 64 KiB unread').to.equal(true);
    const b = body as HttpRequestBody;
    let read = 0;
    while (read < 80 * 1024) read += ((await b.next()).value as Buffer).length;
    expect(ch.isReadingPaused, 'under half read: reading again').to.equal(false);
  });

  it('an answer before the body was read: the rest is dropped and the next request is answered', async () => {
    const ch = server((req, res) => res.end(`${req.method} ${req.url}`));
    ch.writeInbound(Buffer.from(`POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: ${100 * 1024}\r\n\r\n`));
    for (let i = 0; i < 10; i++) ch.writeInbound(Buffer.alloc(10 * 1024, 1));
    expect(ch.isReadingPaused).to.equal(false);
    ch.writeInbound(Buffer.from('GET /b HTTP/1.1\r\nHost: x\r\n\r\n'));
    await tick();
    const out = text(ch);
    expect(out).to.contain('POST /a');
    expect(out).to.contain('GET /b');
  });

  it('a body cut short by a protocol error: the reader gets it, and it is the answer to that request', async () => {
    let failure: unknown;
    const ch = server(async (req, res) => {
      try {
        await (req.bodyStream as HttpRequestBody).bytes();
        res.end('whole');
      } catch (err) {
        failure = err;
      }
    });
    ch.writeInbound(Buffer.from('POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\nzz\r\n'));
    await tick();
    expect(failure).to.be.instanceOf(HttpParseError);
    expect((failure as HttpParseError).statusCode).to.equal(400);
    const out = text(ch);
    expect(out).to.match(/^HTTP\/1\.1 400 Bad Request\r\n/);
    expect(out).to.contain('Connection: close');
    expect(out.match(/HTTP\/1\.1 /g)).to.have.length(1);
    expect(ch.isActive).to.equal(false);
  });

  it('maxBodySize and requestTimeout bound a streamed body too (413, 408)', async () => {
    const big = server(echoLength, { maxBodySize: 10 });
    big.writeInbound(
      Buffer.from('POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n8\r\n12345678\r\n8\r\n'),
    );
    await tick();
    expect(text(big)).to.match(/^HTTP\/1\.1 413 /);
    const slow = server(echoLength, { requestTimeout: 1000 });
    slow.writeInbound(Buffer.from('POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nab'));
    slow.advanceTime(1000);
    await tick();
    expect(text(slow)).to.match(/^HTTP\/1\.1 408 /);
  });

  it('the connection closing mid-body rejects the reader with ChannelClosedError', async () => {
    let failure: unknown;
    const ch = server(async (req, res) => {
      try {
        await (req.bodyStream as HttpRequestBody).bytes();
      } catch (err) {
        failure = err;
      }
      res.end();
    });
    ch.writeInbound(Buffer.from('POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nab'));
    ch.close();
    await tick();
    expect(failure).to.be.instanceOf(ChannelClosedError);
  });

  it('1,000 random inputs, whole and split: only HTTP errors, every body read whole or rejected', async () => {
    const rnd = prng(99);
    const pieces = [
      'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n',
      'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n',
      'GET / HTTP/1.1\r\nHost: x\r\n\r\n',
      '5\r\nhello\r\n',
      '0\r\n\r\n',
      'abc',
      '\r\n',
      'X: y\r\n',
      'Content-Length: 3\r\n',
      'zz\r\n',
    ];
    for (let i = 0; i < 1000; i++) {
      let text = '';
      for (let j = 1 + Math.floor(rnd() * 8); j > 0; j--) text += pieces[Math.floor(rnd() * pieces.length)];
      const raw = Buffer.from(text, 'latin1');
      for (const writes of [[raw], splitChunks(raw, rnd, 1 + Math.floor(rnd() * 10))]) {
        const outcomes: string[] = [];
        const ch = server(async (req, res) => {
          try {
            const body = req.bodyStream === undefined ? req.body : await req.bodyStream.bytes();
            outcomes.push(`ok ${body.length}`);
            res.end();
          } catch (err) {
            expect(err, JSON.stringify(text)).to.satisfy(
              (e: unknown) => e instanceof HttpParseError || e instanceof ChannelClosedError,
            );
            outcomes.push('rejected');
          }
        });
        for (const w of writes) ch.writeInbound(w);
        ch.close();
        await tick();
        for (const e of ch.errors) expect(e, JSON.stringify(text)).to.be.instanceOf(HttpParseError);
      }
    }
  });

  it('one reader, once; streamBodies is validated', async () => {
    let res: HttpResponse | undefined;
    let body: HttpRequestBody | undefined;
    const ch = server((req, r) => {
      body = req.bodyStream;
      res = r;
    });
    ch.writeInbound(Buffer.from('POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nab'));
    const b = body as HttpRequestBody;
    expect(await b.text()).to.equal('ab');
    expect(() => b[Symbol.asyncIterator]()).to.throw(/once/);
    (res as HttpResponse).end();
    const err = thrownBy(() => new HttpRequestDecoder({ streamBodies: 'yes' } as unknown as HttpRequestDecoderOptions));
    expect(err).to.be.instanceOf(InvalidOptionError);
  });
});
