/**
 * The client side of HTTP/1.1: HttpClientCodec decoding responses (every vector whole, byte by
 * byte and at random splits) and encoding requests, on an EmbeddedChannel.
 */
import { expect } from 'chai';
import {
  EmbeddedChannel,
  HttpClientCodec,
  type HttpClientCodecOptions,
  HttpClientResponse,
  HttpResponseError,
  InvalidOptionError,
} from '../../../src/index.js';
import { byteByByte, randomSplit } from '../../support.js';

interface Seen {
  status: number;
  reason: string;
  version: string;
  headers: Array<[string, string]>;
  body: string;
  trailers: Array<[string, string]>;
  keepAlive: boolean;
}

function seen(r: HttpClientResponse): Seen {
  return {
    status: r.statusCode,
    reason: r.statusMessage,
    version: r.httpVersion,
    headers: r.headers.toArray(),
    body: r.body.toString('latin1'),
    trailers: r.trailers.toArray(),
    keepAlive: r.keepAlive,
  };
}

/**
 * Feeds `chunks` to a codec (after announcing `methods` as requests sent), ends the input when
 * `eof`, and returns what came out: responses, raw bytes after an upgrade, errors.
 */
function decode(
  chunks: readonly Buffer[],
  options: { methods?: string[]; eof?: boolean; codec?: HttpClientCodecOptions } = {},
): { responses: Seen[]; raw: string; errors: unknown[] } {
  const ch = new EmbeddedChannel([new HttpClientCodec(options.codec)]);
  for (const m of options.methods ?? []) ch.writeOutbound({ method: m, path: '/' });
  for (const c of chunks) ch.writeInbound(c);
  if (options.eof) ch.shutdownInput();
  const responses: Seen[] = [];
  let raw = '';
  for (let m = ch.readInbound(); m !== undefined; m = ch.readInbound()) {
    if (m instanceof HttpClientResponse) responses.push(seen(m));
    else raw += Buffer.from(m as Uint8Array).toString('latin1');
  }
  return { responses, raw, errors: ch.errors };
}

interface Vector {
  readonly name: string;
  readonly input: string;
  readonly methods?: string[];
  readonly eof?: boolean;
  readonly responses: Array<Partial<Seen>>;
  readonly raw?: string;
}

const VECTORS: Vector[] = [
  {
    name: 'Content-Length body, headers as sent',
    input: 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\nX-Two:  a b  \r\n\r\nHello, World!',
    responses: [
      {
        status: 200,
        reason: 'OK',
        version: '1.1',
        headers: [
          ['Content-Type', 'text/plain'],
          ['Content-Length', '13'],
          ['X-Two', 'a b'],
        ],
        body: 'Hello, World!',
        keepAlive: true,
      },
    ],
  },
  {
    name: 'three pipelined responses',
    input:
      'HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\naHTTP/1.1 404 Not Found\r\nContent-Length: 2\r\n\r\nbbHTTP/1.1 500 \r\nContent-Length: 0\r\n\r\n',
    responses: [
      { status: 200, body: 'a' },
      { status: 404, reason: 'Not Found', body: 'bb' },
      { status: 500, reason: '', body: '' },
    ],
  },
  {
    name: 'chunked, with extensions and trailers; Transfer-Encoding wins over Content-Length',
    input:
      'HTTP/1.1 200 OK\r\nContent-Length: 999\r\nTransfer-Encoding: gzip, chunked\r\n\r\n5;ext=1\r\nHello\r\n2\r\n, \r\n6 ; a="b"\r\nWorld!\r\n0\r\nX-Sum: 42\r\nX-Other: y\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n',
    responses: [
      {
        status: 200,
        body: 'Hello, World!',
        trailers: [
          ['X-Sum', '42'],
          ['X-Other', 'y'],
        ],
      },
      { status: 204, body: '' },
    ],
  },
  {
    name: 'chunked without trailers; a chunk size in upper-case hex',
    input: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nA\r\n0123456789\r\n0\r\n\r\n',
    responses: [{ status: 200, body: '0123456789', trailers: [] }],
  },
  {
    name: 'a response to HEAD has no body whatever Content-Length says',
    input: 'HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok',
    methods: ['HEAD', 'GET'],
    responses: [
      { status: 200, body: '' },
      { status: 200, body: 'ok' },
    ],
  },
  {
    name: '204 and 304 have no body',
    input:
      'HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\nHTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx',
    responses: [{ status: 304 }, { status: 204 }, { status: 200, body: 'x' }],
  },
  {
    name: '1xx interim responses are skipped',
    input:
      'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n',
    responses: [{ status: 201, reason: 'Created' }],
  },
  {
    name: '101 Switching Protocols: what follows passes on raw',
    input: 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n\x81\x05hello',
    responses: [
      {
        status: 101,
        headers: [
          ['Upgrade', 'websocket'],
          ['Connection', 'Upgrade'],
        ],
      },
    ],
    raw: '\x81\x05hello',
  },
  {
    name: 'a 2xx to CONNECT opens a tunnel',
    input: 'HTTP/1.1 200 Connection Established\r\n\r\nraw bytes',
    methods: ['CONNECT'],
    responses: [{ status: 200 }],
    raw: 'raw bytes',
  },
  {
    name: 'HTTP/1.0 without a length: the body runs until the server closes',
    input: 'HTTP/1.0 200 OK\r\nServer: old\r\n\r\nall of this, until the end',
    eof: true,
    responses: [{ status: 200, version: '1.0', body: 'all of this, until the end', keepAlive: false }],
  },
  {
    name: 'HTTP/1.0 with keep-alive; HTTP/1.1 with Connection: close',
    input:
      'HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\naHTTP/1.1 200 OK\r\nConnection: foo, close\r\nContent-Length: 1\r\n\r\nb',
    responses: [
      { version: '1.0', keepAlive: true, body: 'a' },
      { version: '1.1', keepAlive: false, body: 'b' },
    ],
  },
  {
    name: 'repeated identical Content-Length values are one length',
    input: 'HTTP/1.1 200 OK\r\nContent-Length: 3, 3\r\nContent-Length: 3\r\n\r\nabc',
    responses: [{ body: 'abc' }],
  },
  {
    name: 'empty lines before a response are tolerated',
    input: '\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n',
    responses: [{ status: 200 }],
  },
];

function check(v: Vector, out: ReturnType<typeof decode>, how: string): void {
  expect(out.errors, `${v.name} (${how})`).to.deep.equal([]);
  expect(out.responses, `${v.name} (${how})`).to.have.length(v.responses.length);
  v.responses.forEach((want, i) => {
    expect(out.responses[i], `${v.name} #${i} (${how})`).to.deep.include(want);
  });
  expect(out.raw, `${v.name} (${how})`).to.equal(v.raw ?? '');
}

describe('HttpClientCodec: responses', () => {
  for (const v of VECTORS) {
    it(v.name, () => {
      const bytes = Buffer.from(v.input, 'latin1');
      const opts = { ...(v.methods ? { methods: v.methods } : {}), ...(v.eof ? { eof: true } : {}) };
      check(v, decode([bytes], opts), 'whole');
      check(v, decode(byteByByte(bytes), opts), 'byte by byte');
      for (let seed = 1; seed <= 20; seed++) check(v, decode(randomSplit(bytes, seed), opts), `split seed ${seed}`);
    });
  }

  const BAD: Array<[string, string, string, HttpClientCodecOptions?]> = [
    ['not HTTP', 'SSH-2.0-OpenSSH\r\n\r\n', 'HPE_INVALID_CONSTANT'],
    ['an unknown version', 'HTTP/2.0 200 OK\r\n\r\n', 'HPE_INVALID_VERSION'],
    ['a two-digit status', 'HTTP/1.1 20 OK\r\n\r\n', 'HPE_INVALID_STATUS'],
    ['a status below 100', 'HTTP/1.1 099 Odd\r\n\r\n', 'HPE_INVALID_STATUS'],
    ['whitespace before the colon', 'HTTP/1.1 200 OK\r\nContent-Length : 1\r\n\r\nx', 'HPE_INVALID_HEADER_TOKEN'],
    ['obs-fold', 'HTTP/1.1 200 OK\r\nX-A: 1\r\n  folded\r\nContent-Length: 0\r\n\r\n', 'HPE_INVALID_HEADER_TOKEN'],
    ['a bare LF in a value', 'HTTP/1.1 200 OK\r\nX-A: 1\nX-B: 2\r\n\r\n', 'HPE_INVALID_HEADER_TOKEN'],
    [
      'conflicting Content-Length',
      'HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nxx',
      'HPE_UNEXPECTED_CONTENT_LENGTH',
    ],
    [
      'a Content-Length that is no number',
      'HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\nx',
      'HPE_INVALID_CONTENT_LENGTH',
    ],
    ['a bad chunk size', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n', 'HPE_INVALID_CHUNK_SIZE'],
    ['a chunk without its CRLF', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nab\r\n', 'HPE_STRICT'],
    [
      'a head over maxHeaderSize',
      `HTTP/1.1 200 OK\r\nX-Big: ${'a'.repeat(200)}\r\n\r\n`,
      'HPE_HEADER_OVERFLOW',
      { maxHeaderSize: 100 },
    ],
    [
      'a head with no end over maxHeaderSize',
      `HTTP/1.1 200 OK\r\nX-Big: ${'a'.repeat(200)}`,
      'HPE_HEADER_OVERFLOW',
      { maxHeaderSize: 100 },
    ],
    ['too many fields', 'HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n', 'HPE_HEADER_OVERFLOW', { maxHeaders: 2 }],
    [
      'a body over maxBodySize',
      'HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\nhello world',
      'HPE_BODY_OVERFLOW',
      { maxBodySize: 10 },
    ],
    [
      'a chunked body over maxBodySize',
      'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nb\r\n',
      'HPE_BODY_OVERFLOW',
      { maxBodySize: 10 },
    ],
  ];
  for (const [what, input, code, codec] of BAD) {
    it(`rejects ${what} with ${code}, once, and ignores the rest of the stream`, () => {
      const bytes = Buffer.from(`${input}HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n`, 'latin1');
      for (const chunks of [[bytes], byteByByte(bytes)]) {
        const out = decode(chunks, codec ? { codec } : {});
        expect(out.errors, what).to.have.length(1);
        const err = out.errors[0] as HttpResponseError;
        expect(err).to.be.instanceOf(HttpResponseError);
        expect(err.code).to.equal(code);
        expect(err.offset).to.be.a('number');
        expect(out.responses).to.deep.equal([]);
      }
    });
  }

  it('a connection that ends inside a body or a head raises HPE_INVALID_EOF_STATE', () => {
    for (const input of [
      'HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc',
      'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab',
      'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nabcde\r\n',
      'HTTP/1.1 200 OK\r\nContent-Le',
    ]) {
      const out = decode([Buffer.from(input)], { eof: true });
      expect(
        out.errors.map((e) => (e as HttpResponseError).code),
        input,
      ).to.deep.equal(['HPE_INVALID_EOF_STATE']);
    }
  });

  it('bodies are whole Buffers the caller may keep', () => {
    const ch = new EmbeddedChannel([new HttpClientCodec()]);
    const input = Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello');
    ch.writeInbound(input);
    input.fill(0); // the read buffer is reused: the response must not see it
    const r = ch.readInbound<HttpClientResponse>();
    expect(r?.text()).to.equal('hello');
    expect(r?.headers.get('content-length')).to.equal('5');
  });
});

describe('HttpClientCodec: requests', () => {
  it('encodes method, target, headers, Host and Content-Length', () => {
    const ch = new EmbeddedChannel([new HttpClientCodec({ host: 'example.test' })]);
    ch.writeOutbound(
      { path: '/a?b=1' },
      {
        method: 'POST',
        path: '/items',
        headers: { 'Content-Type': 'application/json', Accept: ['a', 'b'] },
        body: '{"x":1}',
      },
      { method: 'PUT', path: '/empty' },
      { method: 'GET', headers: { Host: 'other:81' } },
    );
    expect(ch.readOutboundBytes().toString()).to.equal(
      'GET /a?b=1 HTTP/1.1\r\nHost: example.test\r\n\r\n' +
        'POST /items HTTP/1.1\r\nContent-Type: application/json\r\nAccept: a\r\nAccept: b\r\nHost: example.test\r\nContent-Length: 7\r\n\r\n{"x":1}' +
        'PUT /empty HTTP/1.1\r\nHost: example.test\r\nContent-Length: 0\r\n\r\n' +
        'GET / HTTP/1.1\r\nHost: other:81\r\n\r\n',
    );
  });

  it('defaults Host to the address connected to', () => {
    const ch = new EmbeddedChannel([new HttpClientCodec()]);
    ch.writeOutbound({ path: '/' });
    expect(ch.readOutboundBytes().toString()).to.contain('\r\nHost: 127.0.0.1:0\r\n');
  });

  it('passes bytes through as pre-encoded requests', () => {
    const ch = new EmbeddedChannel([new HttpClientCodec()]);
    ch.writeOutbound(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
    expect(ch.readOutboundBytes().toString()).to.equal('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
  });

  it('refuses requests that would break the framing', () => {
    for (const bad of [
      { method: 'G ET' },
      { path: '/a b' },
      { path: '/\r\nX: 1' },
      { headers: { 'Bad Name': 'x' } },
      { headers: { 'X-Injected': 'a\r\nEvil: 1' } },
    ]) {
      const ch = new EmbeddedChannel([new HttpClientCodec()]);
      ch.writeOutbound(bad);
      expect(ch.errors, JSON.stringify(bad)).to.have.length(1);
      expect(ch.errors[0]).to.be.instanceOf(TypeError);
      expect(ch.readOutboundBytes().length).to.equal(0);
    }
  });

  it('validates its options', () => {
    expect(() => new HttpClientCodec({ maxHeaderSize: 0 })).to.throw(InvalidOptionError, /maxHeaderSize/);
    expect(() => new HttpClientCodec({ maxBodySize: -1 })).to.throw(InvalidOptionError, /maxBodySize/);
    expect(() => new HttpClientCodec({ host: 'a\r\nb' })).to.throw(InvalidOptionError, /host/);
  });
});
