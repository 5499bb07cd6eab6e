/**
 * The client's URL and `tls` rules, without sockets: ws:// and wss:// (default ports 80 and 443,
 * the Host header), the TLS options a wss:// connection gets (ALPN http/1.1 unless given, a context
 * used as it is), and the mistakes refused before anything connects (`tls` with ws://, unknown TLS
 * keys, a server context). The real wss:// connections are in test/integration/wss.test.ts.
 */
import { expect } from 'chai';
import {
  connectWebSocket,
  InvalidOptionError,
  parseWebSocketUrl,
  runLoad,
  TlsContext,
  websocketClientPipeline,
  websocketClientTls,
} from '../../../src/index.js';

describe('WebSocket client: wss:// and the tls option', () => {
  it('parses ws:// and wss:// with their default ports, and the Host header as RFC 6455 §4.1 wants it', () => {
    expect(parseWebSocketUrl('ws://example.test/chat?x=1')).to.deep.equal({
      host: 'example.test',
      port: 80,
      path: '/chat?x=1',
      hostHeader: 'example.test',
      secure: false,
    });
    expect(parseWebSocketUrl('wss://example.test/')).to.deep.equal({
      host: 'example.test',
      port: 443,
      path: '/',
      hostHeader: 'example.test',
      secure: true,
    });
    // The default port is left out of Host, another one is kept.
    expect(parseWebSocketUrl('wss://example.test:443/a').hostHeader).to.equal('example.test');
    expect(parseWebSocketUrl('wss://example.test:8443/a')).to.include({ port: 8443, hostHeader: 'example.test:8443' });
    expect(parseWebSocketUrl('wss://[::1]:9443/')).to.include({ host: '::1', port: 9443, hostHeader: '[::1]:9443' });
    expect(parseWebSocketUrl('https://example.test/').secure).to.equal(true);
    expect(() => parseWebSocketUrl('wss://example.test/#frag')).to.throw(InvalidOptionError, /fragment/);
    expect(() => parseWebSocketUrl('ftp://example.test/')).to.throw(InvalidOptionError, /wss:\/\//);
  });

  it('gives wss:// ALPN http/1.1 unless the options name their own; ws:// gets no TLS', () => {
    expect(websocketClientTls('ws://127.0.0.1:1/', undefined)).to.equal(undefined);
    expect(websocketClientTls('wss://127.0.0.1:1/', undefined)).to.deep.equal({ alpn: ['http/1.1'] });
    expect(websocketClientTls('wss://127.0.0.1:1/', true)).to.deep.equal({ alpn: ['http/1.1'] });
    const ca = '-----BEGIN CERTIFICATE-----\n…';
    expect(websocketClientTls('wss://127.0.0.1:1/', { ca, servername: 'a.test' })).to.deep.equal({
      ca,
      servername: 'a.test',
      alpn: ['http/1.1'],
    });
    expect(websocketClientTls('wss://127.0.0.1:1/', { alpn: ['x-custom'] })).to.deep.equal({ alpn: ['x-custom'] });
    // The caller's object is not changed.
    const given = { rejectUnauthorized: false };
    websocketClientTls('wss://127.0.0.1:1/', given);
    expect(given).to.deep.equal({ rejectUnauthorized: false });
  });

  it('uses a client TlsContext as it is, and refuses a server one', () => {
    const ctx = TlsContext.client(true);
    try {
      expect(websocketClientTls('wss://127.0.0.1:1/', ctx)).to.equal(ctx);
    } finally {
      ctx.close();
    }
  });

  it('refuses tls with ws://, unknown TLS keys and bad values before connecting', async () => {
    const bad: Array<[string, Record<string, unknown>, RegExp]> = [
      ['ws://127.0.0.1:1/', { tls: true }, /option tls: is for wss:\/\//],
      ['ws://127.0.0.1:1/', { tls: {} }, /option tls: is for wss:\/\//],
      ['wss://127.0.0.1:1/', { tls: { verify: false } }, /tls\.verify/],
      ['wss://127.0.0.1:1/', { tls: { rejectUnauthorized: 'no' } }, /tls\.rejectUnauthorized/],
      ['wss://127.0.0.1:1/', { tls: 'yes' }, /tls/],
      ['wss://127.0.0.1:1/', { tsl: true }, /tsl/],
    ];
    for (const [url, options, why] of bad) {
      expect(() => websocketClientPipeline(url, options as never), `${url} ${JSON.stringify(options)}`).to.throw(
        InvalidOptionError,
        why,
      );
      const err = await connectWebSocket(url, options as never).catch((e: unknown) => e);
      expect(err, `${url} ${JSON.stringify(options)}`).to.be.instanceOf(InvalidOptionError);
      expect((err as Error).message).to.match(why);
    }
  });

  it('multireactor-load: tls only with wss://, checked before anything opens', async () => {
    const bad: Array<[Record<string, unknown>, RegExp]> = [
      [{ url: 'ws://127.0.0.1:1/', mode: 'ws', tls: true }, /option tls/],
      [{ url: 'http://127.0.0.1:1/', tls: true }, /option tls/],
      [{ url: 'wss://127.0.0.1:1/', mode: 'ws', tls: { ca: 'not a PEM' } }, /tls\.ca/],
      [{ url: 'wss://127.0.0.1:1/', mode: 'ws', tls: { bogus: 1 } }, /tls\.bogus/],
    ];
    for (const [options, why] of bad) {
      const err = await runLoad(options as never).catch((e: unknown) => e);
      expect(err, JSON.stringify(options)).to.be.instanceOf(InvalidOptionError);
      expect((err as Error).message).to.match(why);
    }
  });
});
