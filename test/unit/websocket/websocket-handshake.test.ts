/**
 * The server handshake (RFC 6455 §4.2) on an EmbeddedChannel through `websocket()`'s pipeline,
 * permessage-deflate negotiation (RFC 7692 §5, §7), and groups.
 */
import { Buffer } from 'node:buffer';
import { expect } from 'chai';
import { InvalidOptionError } from '../../../src/common/errors.js';
import { EmbeddedChannel } from '../../../src/pipeline/embedded.js';
import { DeflateConfig, parseExtensions } from '../../../src/websocket/deflate.js';
import { WebSocketGroup } from '../../../src/websocket/group.js';
import { acceptKey, type WebSocketServerOptions, websocket } from '../../../src/websocket/handshake.js';
import { WebSocketConfig } from '../../../src/websocket/options.js';
import { WebSocket, WebSocketHandler } from '../../../src/websocket/websocket.js';
import { byteByByte } from '../../support.js';
import { encodeFrame, parseFrames } from '../../ws-frames.js';

const KEY = 'dGhlIHNhbXBsZSBub25jZQ==';

function request(extra: Record<string, string> = {}, first = 'GET /chat HTTP/1.1'): string {
  const fields: Record<string, string> = {
    Host: 'server.example.com',
    Upgrade: 'websocket',
    Connection: 'Upgrade',
    'Sec-WebSocket-Key': KEY,
    'Sec-WebSocket-Version': '13',
    ...extra,
  };
  let s = `${first}\r\n`;
  for (const [k, v] of Object.entries(fields)) if (v !== '') s += `${k}: ${v}\r\n`;
  return `${s}\r\n`;
}

interface Answer {
  readonly status: number;
  readonly headers: Map<string, string>;
  readonly rest: Buffer;
}

function answer(bytes: Buffer): Answer {
  const end = bytes.indexOf('\r\n\r\n');
  const lines = bytes.subarray(0, end).toString('latin1').split('\r\n');
  const headers = new Map<string, string>();
  for (const l of lines.slice(1)) {
    const i = l.indexOf(':');
    headers.set(l.slice(0, i).toLowerCase(), l.slice(i + 1).trim());
  }
  return { status: Number(lines[0]?.split(' ')[1]), headers, rest: bytes.subarray(end + 4) };
}

function serve(options: WebSocketServerOptions = {}) {
  const sockets: WebSocket[] = [];
  const received: string[] = [];
  const ch = new EmbeddedChannel(
    websocket((ws, req) => {
      sockets.push(ws);
      ws.data = req.path;
      ws.onMessage = (d) => {
        received.push(d.toString());
        ws.send(d, false);
      };
    }, options),
  );
  return { ch, sockets, received };
}

describe('websocket handshake', () => {
  it('computes Sec-WebSocket-Accept as RFC 6455 §1.3 shows', () => {
    expect(acceptKey(KEY)).to.equal('s3pPLMBiTxaQ9kYGzzhZRbK+xOo=');
  });

  for (const how of ['whole', 'byte by byte'] as const) {
    it(`answers 101 and hands the bytes after the request to the WebSocket (${how})`, () => {
      const { ch, sockets, received } = serve();
      const bytes = Buffer.concat([Buffer.from(request()), encodeFrame({ opcode: 1, payload: 'pipelined' })]);
      if (how === 'whole') ch.writeInbound(bytes);
      else for (const b of byteByByte(bytes)) ch.writeInbound(b);
      const out = ch.readOutboundBytes();
      const a = answer(out);
      expect(a.status).to.equal(101);
      expect(a.headers.get('upgrade')).to.equal('websocket');
      expect(a.headers.get('connection')).to.equal('Upgrade');
      expect(a.headers.get('sec-websocket-accept')).to.equal('s3pPLMBiTxaQ9kYGzzhZRbK+xOo=');
      expect(a.headers.has('sec-websocket-protocol')).to.equal(false);
      expect(a.headers.has('sec-websocket-extensions')).to.equal(false);
      expect(sockets).to.have.length(1);
      expect(sockets[0]?.data).to.equal('/chat');
      expect(received).to.deep.equal(['pipelined']);
      expect(parseFrames(a.rest).map((f) => f.payload.toString())).to.deep.equal(['pipelined']);
      expect(ch.pipeline.names()).to.deep.equal(['ws']);
    });
  }

  const refusals: Array<[string, string, number, [string, string][]?]> = [
    ['a POST', request({}, 'POST /chat HTTP/1.1'), 405, [['allow', 'GET']]],
    ['HTTP/1.0', request({}, 'GET /chat HTTP/1.0'), 400],
    ['a plain GET', 'GET / HTTP/1.1\r\nHost: x\r\n\r\n', 426, [['upgrade', 'websocket']]],
    ['Upgrade: h2c', request({ Upgrade: 'h2c' }), 426, [['upgrade', 'websocket']]],
    ['version 8', request({ 'Sec-WebSocket-Version': '8' }), 426, [['sec-websocket-version', '13']]],
    ['no version', request({ 'Sec-WebSocket-Version': '' }), 426, [['sec-websocket-version', '13']]],
    ['no key', request({ 'Sec-WebSocket-Key': '' }), 400],
    ['a key of 15 bytes', request({ 'Sec-WebSocket-Key': Buffer.alloc(15).toString('base64') }), 400],
    ['a key that is not base64', request({ 'Sec-WebSocket-Key': 'not base64, not at all!!' }), 400],
    ['a malformed head', 'GET /chat HTTP/1.1\r\nBad Header\r\n\r\n', 400],
  ];
  for (const [what, req, status, fields] of refusals) {
    it(`refuses ${what} with ${status} and closes`, () => {
      const { ch, sockets } = serve();
      ch.writeInbound(Buffer.from(req));
      const a = answer(ch.readOutboundBytes());
      expect(a.status).to.equal(status);
      for (const [k, v] of fields ?? []) expect(a.headers.get(k)).to.equal(v);
      expect(a.headers.get('connection')).to.equal('close');
      expect(ch.isActive).to.equal(false);
      expect(sockets).to.have.length(0);
    });
  }

  it('refuses two Sec-WebSocket-Key fields', () => {
    const { ch } = serve();
    ch.writeInbound(Buffer.from(request().replace('\r\n\r\n', `\r\nSec-WebSocket-Key: ${KEY}\r\n\r\n`)));
    expect(answer(ch.readOutboundBytes()).status).to.equal(400);
  });

  it('lets the application refuse an Origin (403) and choose a subprotocol', () => {
    const opts: WebSocketServerOptions = {
      origin: (o) => o === 'https://good.example',
      protocols: (offered) => offered.find((p) => p === 'chat.v2'),
    };
    const bad = serve(opts);
    bad.ch.writeInbound(Buffer.from(request({ Origin: 'https://evil.example' })));
    expect(answer(bad.ch.readOutboundBytes()).status).to.equal(403);
    const good = serve(opts);
    good.ch.writeInbound(
      Buffer.from(request({ Origin: 'https://good.example', 'Sec-WebSocket-Protocol': 'chat.v1, chat.v2' })),
    );
    const a = answer(good.ch.readOutboundBytes());
    expect(a.status).to.equal(101);
    expect(a.headers.get('sec-websocket-protocol')).to.equal('chat.v2');
    expect(good.sockets[0]?.protocol).to.equal('chat.v2');
  });

  it('answers 500 when the protocol callback picks a protocol that was not offered', () => {
    const { ch } = serve({ protocols: () => 'other' });
    ch.writeInbound(Buffer.from(request({ 'Sec-WebSocket-Protocol': 'chat' })));
    expect(answer(ch.readOutboundBytes()).status).to.equal(500);
    expect(ch.errors).to.have.length(1);
  });

  it('negotiates permessage-deflate when enabled', () => {
    const { ch, sockets } = serve({ perMessageDeflate: true });
    ch.writeInbound(
      Buffer.from(request({ 'Sec-WebSocket-Extensions': 'x-unknown, permessage-deflate; client_max_window_bits' })),
    );
    const a = answer(ch.readOutboundBytes());
    expect(a.headers.get('sec-websocket-extensions')).to.equal(
      'permessage-deflate; server_no_context_takeover; client_no_context_takeover',
    );
    expect(sockets[0]?.extensions).to.equal(a.headers.get('sec-websocket-extensions'));
    const off = serve();
    off.ch.writeInbound(Buffer.from(request({ 'Sec-WebSocket-Extensions': 'permessage-deflate' })));
    expect(answer(off.ch.readOutboundBytes()).headers.has('sec-websocket-extensions')).to.equal(false);
  });

  it('closes a connection whose handshake does not come within handshakeTimeout (408)', () => {
    const { ch } = serve({ handshakeTimeout: 1000 });
    ch.writeInbound(Buffer.from('GET /chat HTTP/1.1\r\n'));
    ch.advanceTime(1001);
    expect(answer(ch.readOutboundBytes()).status).to.equal(408);
    expect(ch.isActive).to.equal(false);
  });

  it('adds the heartbeat stage when asked, and pings a silent peer', () => {
    const { ch } = serve({ heartbeat: { interval: 1000, missed: 1 } });
    ch.writeInbound(Buffer.from(request()));
    ch.readOutboundBytes();
    expect(ch.pipeline.names()).to.deep.equal(['ws-heartbeat', 'ws']);
    ch.advanceTime(1001);
    expect(parseFrames(ch.readOutboundBytes()).map((f) => f.opcode)).to.deep.equal([9]);
    ch.advanceTime(1001);
    expect(ch.isActive).to.equal(false);
    expect(ch.closeReason).to.equal('heartbeat');
  });

  it('a peer that answers pings stays; with idleTimeout a silent one is closed with 1001', () => {
    const { ch } = serve({ heartbeat: { interval: 1000, missed: 1 } });
    ch.writeInbound(Buffer.from(request()));
    ch.readOutboundBytes();
    for (let i = 0; i < 5; i++) {
      ch.advanceTime(1001);
      for (const f of parseFrames(ch.readOutboundBytes())) {
        if (f.opcode === 9) ch.writeInbound(encodeFrame({ opcode: 10, payload: f.payload }));
      }
    }
    expect(ch.isActive).to.equal(true);
    const idle = serve({ idleTimeout: 500 });
    idle.ch.writeInbound(Buffer.from(request()));
    idle.ch.readOutboundBytes();
    idle.ch.advanceTime(501);
    expect(parseFrames(idle.ch.readOutboundBytes()).map((f) => f.payload.readUInt16BE(0))).to.deep.equal([1001]);
    expect(idle.ch.closeReason).to.equal('idle-timeout');
  });

  it('checks its options when the pipeline factory is built', () => {
    expect(() => websocket(() => {}, { nonsense: 1 } as WebSocketServerOptions)).to.throw(
      InvalidOptionError,
      /nonsense/,
    );
    expect(() => websocket(() => {}, { handshakeTimeout: -1 })).to.throw(InvalidOptionError, /handshakeTimeout/);
    expect(() => websocket(() => {}, { origin: 'x' as never })).to.throw(InvalidOptionError, /origin/);
    expect(() => websocket('nope' as never)).to.throw(TypeError);
  });
});

describe('permessage-deflate negotiation', () => {
  it('parses extension lists with parameters and quoted values, dropping malformed elements', () => {
    expect(
      parseExtensions('permessage-deflate; client_max_window_bits, x-foo; a="1 0"; b=2, bad@name, y'),
    ).to.deep.equal([
      {
        name: 'permessage-deflate',
        params: [['client_max_window_bits', undefined]],
      },
      { name: 'y', params: [] },
    ]);
    expect(parseExtensions('permessage-deflate; server_max_window_bits="10"')).to.deep.equal([
      { name: 'permessage-deflate', params: [['server_max_window_bits', '10']] },
    ]);
  });

  const cases: Array<[string, object, string, string | undefined]> = [
    [
      'the plain offer',
      {},
      'permessage-deflate',
      'permessage-deflate; server_no_context_takeover; client_no_context_takeover',
    ],
    [
      'context takeover allowed',
      { serverNoContextTakeover: false, clientNoContextTakeover: false },
      'permessage-deflate; client_max_window_bits',
      'permessage-deflate',
    ],
    [
      'a smaller client window we ask for',
      { serverNoContextTakeover: false, clientNoContextTakeover: false, clientMaxWindowBits: 10 },
      'permessage-deflate; client_max_window_bits',
      'permessage-deflate; client_max_window_bits=10',
    ],
    [
      'the client limits our window',
      { serverNoContextTakeover: false, clientNoContextTakeover: false },
      'permessage-deflate; server_max_window_bits=10',
      'permessage-deflate; server_max_window_bits=10',
    ],
    [
      'the client asks for no context takeover',
      { serverNoContextTakeover: false, clientNoContextTakeover: false },
      'permessage-deflate; server_no_context_takeover; client_no_context_takeover',
      'permessage-deflate; server_no_context_takeover; client_no_context_takeover',
    ],
    [
      'an 8-bit server window (zlib cannot) falls back to the next offer',
      {},
      'permessage-deflate; server_max_window_bits=8, permessage-deflate',
      'permessage-deflate; server_no_context_takeover; client_no_context_takeover',
    ],
    ['an unknown parameter is declined', {}, 'permessage-deflate; foo', undefined],
    [
      'a repeated parameter is declined',
      {},
      'permessage-deflate; server_no_context_takeover; server_no_context_takeover',
      undefined,
    ],
    ['a value where none belongs is declined', {}, 'permessage-deflate; client_no_context_takeover=1', undefined],
    ['a window of 16 is declined', {}, 'permessage-deflate; server_max_window_bits=16', undefined],
    ['a window with a leading zero is declined', {}, 'permessage-deflate; server_max_window_bits=09', undefined],
    ['another extension only', {}, 'x-webkit-deflate-frame', undefined],
  ];
  for (const [what, opts, offer, response] of cases) {
    it(`server: ${what}`, () => {
      expect(new DeflateConfig(opts).accept(offer)?.response).to.equal(response);
    });
  }

  it('client: offers, and accepts or refuses the response', () => {
    const c = new DeflateConfig({});
    expect(c.offer()).to.equal(
      'permessage-deflate; client_max_window_bits; client_no_context_takeover; server_no_context_takeover',
    );
    expect(
      typeof c.acceptResponse('permessage-deflate; server_no_context_takeover; client_no_context_takeover'),
    ).to.equal('object');
    expect(c.acceptResponse('permessage-deflate; client_max_window_bits')).to.be.a('string');
    expect(c.acceptResponse('permessage-deflate; foo')).to.be.a('string');
    expect(c.acceptResponse('x-other')).to.be.a('string');
  });
});

describe('WebSocketGroup', () => {
  function member(group: WebSocketGroup, options = {}) {
    const ws = new WebSocket(new WebSocketConfig(false, options));
    const ch = new EmbeddedChannel([new WebSocketHandler(ws)]);
    group.join(ws);
    return { ws, ch };
  }

  it('publishes one encoded frame to every member but the sender, and forgets members that close', () => {
    const g = new WebSocketGroup();
    const a = member(g);
    const b = member(g);
    const c = member(g);
    expect(g.size).to.equal(3);
    expect(g.publish('hello', false, a.ws)).to.deep.equal({ sent: 2, skipped: 0 });
    const fb = b.ch.readOutbound<Buffer>();
    const fc = c.ch.readOutbound<Buffer>();
    expect(a.ch.readOutbound()).to.equal(undefined);
    // The same bytes, not a copy per member.
    expect(fb).to.equal(fc);
    expect(parseFrames(fb as Buffer).map((f) => [f.opcode, f.payload.toString()])).to.deep.equal([[1, 'hello']]);
    c.ch.finish();
    expect(g.size).to.equal(2);
    expect(g.has(c.ws)).to.equal(false);
    expect(g.leave(b.ws)).to.equal(true);
    expect(g.publish(Buffer.from([1]))).to.deep.equal({ sent: 1, skipped: 0 });
  });

  it('a client-role member gets its own masked frame', () => {
    const g = new WebSocketGroup();
    const server = member(g);
    const clientWs = new WebSocket(new WebSocketConfig(true, {}));
    const client = new EmbeddedChannel([new WebSocketHandler(clientWs)]);
    g.join(clientWs);
    expect(g.publish('to all')).to.deep.equal({ sent: 2, skipped: 0 });
    expect(parseFrames(server.ch.readOutboundBytes()).map((f) => f.masked)).to.deep.equal([false]);
    expect(parseFrames(client.readOutboundBytes()).map((f) => [f.masked, f.payload.toString()])).to.deep.equal([
      [true, 'to all'],
    ]);
  });

  it('a member in several groups leaves each of them when it closes', () => {
    const g1 = new WebSocketGroup();
    const g2 = new WebSocketGroup();
    const m = member(g1);
    g2.join(m.ws);
    expect(g1.join(m.ws)).to.equal(false);
    m.ch.finish();
    expect([g1.size, g2.size]).to.deep.equal([0, 0]);
    expect(g1.join(m.ws)).to.equal(false);
  });

  it('a slow member meets its backpressure policy while the others get the message', () => {
    const g = new WebSocketGroup();
    const fast = member(g);
    const slowWs = new WebSocket(new WebSocketConfig(false, { backpressure: 'drop' }));
    const slow = new EmbeddedChannel([new WebSocketHandler(slowWs)], { highWaterMark: 10 });
    g.join(slowWs);
    // Unflushed bytes keep `slow` above its watermark (as a peer that does not read).
    slow.transportWrite(Buffer.alloc(20));
    expect(slow.isWritable).to.equal(false);
    expect(g.publish('news')).to.deep.equal({ sent: 1, skipped: 1 });
    expect(slowWs.droppedMessages).to.equal(1);
    expect(fast.ch.readOutbound()).to.not.equal(undefined);
  });
});
