/**
 * Interoperability with `ws` (what Node applications use), on real connections: `ws` as the client
 * of our server, and our client against a `ws` server — text, binary, fragmented messages, 16 MiB,
 * permessage-deflate on and off, close codes and reasons both ways.
 */
import { Buffer } from 'node:buffer';
import { once } from 'node:events';
import { expect } from 'chai';
import WsClient, { WebSocketServer } from 'ws';
import { connectWebSocket, type WebSocket, websocket } from '../../src/index.js';
import { Opened } from './helpers.js';

const MiB = 1024 * 1024;
const big = (n: number) => {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + (i >>> 8)) & 0xff;
  return b;
};

/** Messages a `ws` client receives, as [data, isBinary]. */
function collect(ws: WsClient): Array<[Buffer, boolean]> {
  const got: Array<[Buffer, boolean]> = [];
  ws.on('message', (d, isBinary) => got.push([Buffer.isBuffer(d) ? d : Buffer.concat(d as Buffer[]), isBinary]));
  return got;
}

async function until(cond: () => boolean, what: string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('WebSocket interop with ws', function () {
  this.timeout(60_000);
  const opened = new Opened();
  const wsClients: WsClient[] = [];
  const wsServers: WebSocketServer[] = [];
  const ours: WebSocket[] = [];

  afterEach(async () => {
    for (const c of wsClients.splice(0)) c.terminate();
    for (const w of ours.splice(0)) w.terminate();
    for (const s of wsServers.splice(0)) {
      for (const c of s.clients) c.terminate();
      await new Promise((r) => s.close(r));
    }
    await opened.teardown();
  });

  for (const deflate of [false, true]) {
    describe(`ws client → our server${deflate ? ' (permessage-deflate)' : ''}`, () => {
      let port = 0;
      const closes: Array<[number, string]> = [];

      beforeEach(async () => {
        closes.length = 0;
        const server = await opened.listen({
          host: '127.0.0.1',
          port: 0,
          pipeline: websocket(
            (ws) => {
              ws.onMessage = (data, isBinary) => {
                if (!isBinary && data.toString() === 'close me') ws.close(4001, 'as you wish');
                else ws.send(data, isBinary);
              };
              ws.onClose = (code, reason) => {
                closes.push([code, reason]);
              };
            },
            { perMessageDeflate: deflate },
          ),
        });
        port = server.address().port;
      });

      async function client(): Promise<WsClient> {
        const c = new WsClient(`ws://127.0.0.1:${port}/`, { perMessageDeflate: deflate, maxPayload: 32 * MiB });
        wsClients.push(c);
        await once(c, 'open');
        expect(c.extensions).to.equal(deflate ? 'permessage-deflate' : '');
        return c;
      }

      it('echoes text, binary, fragmented and 16 MiB messages', async () => {
        const c = await client();
        const got = collect(c);
        const sixteen = big(16 * MiB);
        c.send('héllo wörld');
        c.send(Buffer.from([0, 1, 2, 255]));
        c.send('frag', { fin: false });
        c.send('men', { fin: false });
        c.send('ted', { fin: true });
        c.send(sixteen);
        c.send(Buffer.from('x'.repeat(5000)), { binary: false });
        await until(() => got.length === 5, 'five echoes');
        expect(got[0]).to.deep.equal([Buffer.from('héllo wörld'), false]);
        expect(got[1]).to.deep.equal([Buffer.from([0, 1, 2, 255]), true]);
        expect(got[2]).to.deep.equal([Buffer.from('fragmented'), false]);
        expect(got[3]?.[1]).to.equal(true);
        expect(got[3]?.[0].equals(sixteen)).to.equal(true);
        expect(got[4]).to.deep.equal([Buffer.from('x'.repeat(5000)), false]);
      });

      it('close codes and reasons, both ways', async () => {
        const c1 = await client();
        c1.close(4000, 'client says bye');
        const [code1, reason1] = (await once(c1, 'close')) as [number, Buffer];
        expect([code1, reason1.toString()]).to.deep.equal([4000, '']);
        await until(() => closes.length === 1, 'the server’s onClose');
        expect(closes[0]).to.deep.equal([4000, 'client says bye']);
        const c2 = await client();
        c2.send('close me');
        const [code2, reason2] = (await once(c2, 'close')) as [number, Buffer];
        expect([code2, reason2.toString()]).to.deep.equal([4001, 'as you wish']);
        await until(() => closes.length === 2, 'the second onClose');
        expect(closes[1]).to.deep.equal([4001, 'as you wish']);
      });

      it('a ws ping gets our pong', async () => {
        const c = await client();
        c.ping('are you there');
        const [data] = (await once(c, 'pong')) as [Buffer];
        expect(data.toString()).to.equal('are you there');
      });
    });

    describe(`our client → ws server${deflate ? ' (permessage-deflate)' : ''}`, () => {
      let port = 0;
      let serverCloses: Array<[number, string]> = [];

      beforeEach(async () => {
        serverCloses = [];
        const s = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: deflate, maxPayload: 32 * MiB });
        wsServers.push(s);
        await once(s, 'listening');
        s.on('connection', (ws) => {
          ws.on('error', () => {});
          ws.on('message', (data, isBinary) => {
            if (!isBinary && data.toString() === 'close me') ws.close(4002, 'server done');
            else ws.send(data as Buffer, { binary: isBinary });
          });
          ws.on('close', (code, reason) => serverCloses.push([code, reason.toString()]));
        });
        port = (s.address() as { port: number }).port;
      });

      async function open(): Promise<{
        ws: WebSocket;
        got: Array<[Buffer, boolean]>;
        closes: Array<[number, string]>;
      }> {
        const ws = await connectWebSocket(`ws://127.0.0.1:${port}/path?q=1`, {
          perMessageDeflate: deflate,
          maxMessageSize: 32 * MiB,
          maxPayload: 32 * MiB,
        });
        ours.push(ws);
        expect(ws.extensions.startsWith('permessage-deflate')).to.equal(deflate);
        const got: Array<[Buffer, boolean]> = [];
        const closes: Array<[number, string]> = [];
        ws.onMessage = (d, b) => {
          got.push([Buffer.from(d), b]);
        };
        ws.onClose = (code, reason) => {
          closes.push([code, reason]);
        };
        return { ws, got, closes };
      }

      it('echoes text, binary and 16 MiB messages', async () => {
        const { ws, got } = await open();
        const sixteen = big(16 * MiB);
        ws.send('héllo wörld');
        ws.send(Buffer.from([0, 1, 2, 255]));
        ws.send(sixteen);
        ws.send(Buffer.from('y'.repeat(3000)), false);
        await until(() => got.length === 4, 'four echoes');
        expect(got[0]).to.deep.equal([Buffer.from('héllo wörld'), false]);
        expect(got[1]).to.deep.equal([Buffer.from([0, 1, 2, 255]), true]);
        expect(got[2]?.[0].equals(sixteen)).to.equal(true);
        expect(got[3]).to.deep.equal([Buffer.from('y'.repeat(3000)), false]);
      });

      it('receives fragmented messages from ws', async () => {
        const s = wsServers[0] as WebSocketServer;
        s.removeAllListeners('connection');
        s.on('connection', (c) => {
          c.send('one', { fin: false });
          c.send('two', { fin: false });
          c.send('three', { fin: true });
        });
        const { got } = await open();
        await until(() => got.length === 1, 'the message');
        expect(got[0]).to.deep.equal([Buffer.from('onetwothree'), false]);
      });

      it('close codes and reasons, both ways', async () => {
        const a = await open();
        a.ws.close(4003, 'client done');
        await until(() => a.closes.length === 1 && serverCloses.length === 1, 'both closes');
        expect(serverCloses[0]).to.deep.equal([4003, 'client done']);
        expect(a.closes[0]).to.deep.equal([4003, 'client done']);
        const b = await open();
        b.ws.send('close me');
        await until(() => b.closes.length === 1, 'the close');
        expect(b.closes[0]).to.deep.equal([4002, 'server done']);
      });
    });
  }

  it('our client refuses a server that answers something other than 101', async () => {
    const server = await opened.listen({
      host: '127.0.0.1',
      port: 0,
      pipeline: websocket(() => {}, { origin: () => false }),
    });
    let err: unknown;
    try {
      await connectWebSocket(`ws://127.0.0.1:${server.address().port}/`, { origin: 'https://x.example' });
    } catch (e) {
      err = e;
    }
    expect((err as { code?: string }).code).to.equal('ERR_WS_HANDSHAKE');
    expect((err as { statusCode?: number }).statusCode).to.equal(403);
  });
});
