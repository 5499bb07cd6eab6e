/**
 * `websocketRoute`: the WebSocket handshake answered inside an `http()` handler, the connection
 * taken from HTTP (`res.takeConnection`), on an EmbeddedChannel built as users build it.
 */
import { Buffer } from 'node:buffer';
import { expect } from 'chai';
import { http } from '../../../src/codec/http1/http.js';
import { InvalidOptionError } from '../../../src/common/errors.js';
import { EmbeddedChannel } from '../../../src/pipeline/embedded.js';
import { DRAINING } from '../../../src/pipeline/events.js';
import { type WebSocketRouteOptions, websocketRoute } from '../../../src/websocket/route.js';
import type { WebSocket } from '../../../src/websocket/websocket.js';
import { closeOf, encodeFrame, parseFrames } from '../../ws-frames.js';

const KEY = 'dGhlIHNhbXBsZSBub25jZQ==';
const upgrade = (path = '/ws', extra = '') =>
  `GET ${path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${KEY}\r\nSec-WebSocket-Version: 13\r\n${extra}\r\n`;

function serve(options: WebSocketRouteOptions = {}) {
  const sockets: WebSocket[] = [];
  const route = websocketRoute((ws, req) => {
    sockets.push(ws);
    ws.data = req.queryString;
    ws.onMessage = (d, b) => {
      ws.send(d, b);
    };
  }, options);
  const ch = new EmbeddedChannel(
    http((req, res) => {
      if (req.path === '/ws') return route(req, res);
      res.end('plain http');
    }),
  );
  return { ch, sockets };
}

/** Splits what went out into the HTTP head and the bytes after it. */
function split(out: Buffer): { head: string; rest: Buffer } {
  const end = out.indexOf('\r\n\r\n');
  return { head: out.subarray(0, end).toString('latin1'), rest: out.subarray(end + 4) };
}

describe('websocketRoute (a WebSocket in an http() server)', () => {
  it('answers 101, takes the connection, and the frames after the request reach the WebSocket', () => {
    const { ch, sockets } = serve();
    ch.writeInbound(Buffer.concat([Buffer.from(upgrade('/ws?room=a')), encodeFrame({ opcode: 1, payload: 'early' })]));
    const { head, rest } = split(ch.readOutboundBytes());
    expect(head).to.match(/^HTTP\/1\.1 101 Switching Protocols\r\n/);
    expect(head).to.include('Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=');
    expect(head).to.match(/\r\nUpgrade: websocket/i);
    expect(sockets).to.have.length(1);
    expect(sockets[0]?.data).to.equal('room=a');
    expect(parseFrames(rest).map((f) => f.payload.toString())).to.deep.equal(['early']);
    expect(ch.pipeline.names()).to.deep.equal(['ws']);
    ch.writeInbound(encodeFrame({ opcode: 2, payload: Buffer.from([1, 2, 3]) }));
    expect(parseFrames(ch.readOutboundBytes()).map((f) => [f.opcode, f.payload.toString('hex')])).to.deep.equal([
      [2, '010203'],
    ]);
  });

  it('refuses a bad handshake as an HTTP response; a plain GET keeps the connection for HTTP', () => {
    const { ch, sockets } = serve();
    ch.writeInbound(Buffer.from('GET /ws HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n'));
    const out = ch.readOutboundBytes().toString('latin1');
    expect(out).to.match(/^HTTP\/1\.1 426 /);
    expect(out).to.match(/\r\nupgrade: websocket\r\n/i);
    expect(out).to.include('plain http');
    expect(ch.isActive).to.equal(true);
    expect(sockets).to.have.length(0);
    const bad = serve();
    bad.ch.writeInbound(
      Buffer.from(upgrade('/ws', '').replace('Sec-WebSocket-Version: 13', 'Sec-WebSocket-Version: 8')),
    );
    expect(bad.ch.readOutboundBytes().toString('latin1')).to.match(/^HTTP\/1\.1 426 [\s\S]*Sec-WebSocket-Version: 13/i);
  });

  it('the HTTP timeouts end with the switch; a server drain reaches the WebSocket as 1001', () => {
    const { ch } = serve();
    ch.writeInbound(Buffer.from(upgrade()));
    ch.readOutboundBytes();
    ch.advanceTime(120_000);
    expect(ch.isActive, 'no keep-alive or switched idle timeout').to.equal(true);
    ch.pipeline.fireUserEvent(DRAINING);
    expect(parseFrames(ch.readOutboundBytes()).map((f) => closeOf(f).code)).to.deep.equal([1001]);
  });

  it('checks its options now; handshake limits belong to the HTTP server', () => {
    expect(() => websocketRoute(() => {}, { handshakeTimeout: 5 } as WebSocketRouteOptions)).to.throw(
      InvalidOptionError,
      /handshakeTimeout/,
    );
    expect(() => websocketRoute(() => {}, { maxPayload: -1 })).to.throw(InvalidOptionError, /maxPayload/);
  });
});
