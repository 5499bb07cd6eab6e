/**
 * A real browser: headless Chromium (Debian's `chromium`, driven by playwright-core over its
 * DevTools protocol — nothing downloaded) opens examples/ws-chat-server's page in two tabs; they
 * exchange messages through the WebSocket route; the server reloads (SIGUSR2: new worker, every
 * open WebSocket told 1001) and both pages reconnect by themselves and talk again. Skipped, saying
 * which Debian package to install, when /usr/bin/chromium is missing. The same over TLS: the page
 * served over https:// by `ws-chat-server --tls-cert --tls-key`, the chat over wss:// (certificates
 * made by `openssl`, test/tls-support.ts; skipped visibly without it).
 *
 * Also, without a browser: the example's route answers a plain GET with 426, and a `ws` client of
 * another room does not hear this one. And with a redis-server started here: two tabs on two
 * servers sharing that Redis (two machines behind a load balancer) chat through it.
 */
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { type BrowserContext, chromium, type Page } from 'playwright-core';
import WsClient from 'ws';
import { tlsCertificates, writePemFiles } from '../tls-support.js';
import { startListening, waitFor } from './helpers.js';
import { RedisServer, requireRedis, stopAll } from './redis-support.js';

const CHAT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'examples', 'ws-chat-server.js');
const CHROMIUM = '/usr/bin/chromium';
const FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

describe('examples/ws-chat-server', function () {
  this.timeout(60_000);
  let child: ChildProcess | undefined;
  /** More servers (the two-server case). */
  const others: ChildProcess[] = [];
  let context: BrowserContext | undefined;
  let profile: string | undefined;
  /** PEM files for the TLS case. */
  let pems: { dir: string; remove: () => void } | undefined;
  const clients: WsClient[] = [];

  afterEach(async () => {
    for (const c of clients.splice(0)) c.terminate();
    if (context !== undefined) await context.close().catch(() => {});
    context = undefined;
    if (profile !== undefined) rmSync(profile, { recursive: true, force: true });
    profile = undefined;
    for (const c of [child, ...others.splice(0)]) {
      if (c !== undefined && c.exitCode === null && c.signalCode === null) {
        const exited = once(c, 'exit');
        c.kill('SIGTERM');
        await exited;
      }
    }
    child = undefined;
    pems?.remove();
    pems = undefined;
    await stopAll();
  });

  async function start(args: readonly string[] = []): Promise<number> {
    const started = await startListening([CHAT, '--host', '127.0.0.1', '--port', '0', '--workers', '1', ...args]);
    child = started.child;
    return started.port;
  }

  function requireChromium(ctx: Mocha.Context): void {
    if (!existsSync(CHROMIUM)) {
      console.error('    (skipped: no /usr/bin/chromium — apt-get install -y chromium)');
      ctx.skip();
    }
  }

  async function say(page: Page, text: string): Promise<void> {
    await page.fill('#text', text);
    await page.press('#text', 'Enter');
  }

  async function hears(page: Page, line: string): Promise<void> {
    await page.waitForFunction(
      `[...document.querySelectorAll('#log li')].some((li) => li.textContent === ${JSON.stringify(line)})`,
      undefined,
      { timeout: 10_000 },
    );
  }

  it('answers a plain GET of /ws with 426, and keeps rooms apart', async () => {
    const port = await start();
    const r = await fetch(`http://127.0.0.1:${port}/ws`);
    expect(r.status).to.equal(426);
    expect(r.headers.get('upgrade')).to.equal('websocket');
    const open = async (room: string, name: string) => {
      const c = new WsClient(`ws://127.0.0.1:${port}/ws?room=${room}&name=${name}`);
      clients.push(c);
      const got: string[] = [];
      c.on('message', (d) => got.push(d.toString()));
      await once(c, 'open');
      return { c, got };
    };
    const a = await open('one', 'ann');
    const b = await open('one', 'ben');
    const other = await open('two', 'oz');
    a.c.send(JSON.stringify({ type: 'message', text: 'in room one' }));
    const line = JSON.stringify({ type: 'message', room: 'one', from: 'ann', text: 'in room one' });
    await waitFor(() => b.got.includes(line), 'the message in room one');
    expect(other.got.filter((m) => m.includes('in room one'))).to.deep.equal([]);
  });

  it('two browser tabs chat, the server reloads, both reconnect by themselves and chat again', async function () {
    requireChromium(this);
    const port = await start();
    profile = mkdtempSync(join(tmpdir(), 'mr-chromium-'));
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: FLAGS,
    });
    const tab = async (name: string): Promise<Page> => {
      const page = await (context as BrowserContext).newPage();
      await page.goto(`http://127.0.0.1:${port}/?room=browsers&name=${name}`);
      // Page code is given as text: this project compiles without the DOM's types.
      await page.waitForFunction("document.body.dataset.state === 'open'");
      return page;
    };
    const alice = await tab('alice');
    const bob = await tab('bob');

    await say(alice, 'hello bob');
    await hears(bob, 'alice: hello bob');
    await say(bob, 'hi alice');
    await hears(alice, 'bob: hi alice');

    // Reload: a new worker takes over; the old one tells its WebSockets 1001 and the pages reconnect.
    (child as ChildProcess).kill('SIGUSR2');
    const reconnected = (page: Page) =>
      page.waitForFunction("window.chatOpens >= 2 && document.body.dataset.state === 'open'", undefined, {
        timeout: 20_000,
      });
    await Promise.all([reconnected(alice), reconnected(bob)]);
    expect(await alice.textContent('#status')).to.match(/^connected as alice/);

    await say(alice, 'after the reload');
    await hears(bob, 'alice: after the reload');
    await say(bob, 'still here');
    await hears(alice, 'bob: still here');
  });
  it('over TLS: the page over https://, two tabs chat over wss://, reload, both reconnect and chat again', async function () {
    requireChromium(this);
    const certs = tlsCertificates(this);
    pems = writePemFiles({ 'server.pem': certs.server.cert, 'server.key': certs.server.key });
    const port = await start(['--tls-cert', join(pems.dir, 'server.pem'), '--tls-key', join(pems.dir, 'server.key')]);
    profile = mkdtempSync(join(tmpdir(), 'mr-chromium-'));
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: FLAGS,
      // The server's certificate chains to a root the test made a moment ago, which the browser's
      // trust store (NSS, in the profile) does not hold; importing it would need certutil
      // (libnss3-tools) and a profile set up for it. Accepting certificate errors in this one
      // throwaway context keeps the test to what it checks — TLS is still negotiated, the page is
      // a secure context, and its WebSocket must be wss: (the port speaks nothing but TLS).
      ignoreHTTPSErrors: true,
    });
    const sockets: string[] = [];
    const tab = async (name: string): Promise<Page> => {
      const page = await (context as BrowserContext).newPage();
      page.on('websocket', (ws) => sockets.push(ws.url()));
      await page.goto(`https://127.0.0.1:${port}/?room=secure&name=${name}`);
      await page.waitForFunction("document.body.dataset.state === 'open'");
      return page;
    };
    const alice = await tab('alice');
    const bob = await tab('bob');
    expect(await alice.evaluate('location.protocol + String(window.isSecureContext)')).to.equal('https:true');

    await say(alice, 'hello bob, privately');
    await hears(bob, 'alice: hello bob, privately');
    await say(bob, 'hi alice, over TLS');
    await hears(alice, 'bob: hi alice, over TLS');

    // Reload: the new worker reads the certificate files anew; both pages reconnect over wss:.
    (child as ChildProcess).kill('SIGUSR2');
    const reconnected = (page: Page) =>
      page.waitForFunction("window.chatOpens >= 2 && document.body.dataset.state === 'open'", undefined, {
        timeout: 20_000,
      });
    await Promise.all([reconnected(alice), reconnected(bob)]);

    await say(alice, 'after the reload');
    await hears(bob, 'alice: after the reload');
    await say(bob, 'still encrypted');
    await hears(alice, 'bob: still encrypted');
    expect(sockets.length).to.be.at.least(4);
    for (const url of sockets)
      expect(url).to.match(new RegExp(`^wss://127\\.0\\.0\\.1:${port}/ws\\?room=secure&name=`));
  });

  it('two tabs on two servers sharing a Redis chat through it', async function () {
    requireChromium(this);
    requireRedis(this);
    const redis = await RedisServer.start();
    const ports: number[] = [];
    for (let i = 0; i < 2; i++) {
      const started = await startListening([
        CHAT,
        '--host',
        '127.0.0.1',
        '--port',
        '0',
        '--workers',
        '2',
        '--redis',
        redis.url,
      ]);
      others.push(started.child);
      ports.push(started.port);
    }
    profile = mkdtempSync(join(tmpdir(), 'mr-chromium-'));
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: FLAGS,
    });
    const tab = async (port: number, name: string): Promise<Page> => {
      const page = await (context as BrowserContext).newPage();
      await page.goto(`http://127.0.0.1:${port}/?room=machines&name=${name}`);
      await page.waitForFunction("document.body.dataset.state === 'open'");
      return page;
    };
    const alice = await tab(ports[0] as number, 'alice');
    const bob = await tab(ports[1] as number, 'bob');
    // Both servers have subscribed the room with Redis (a worker does so when its first client joins).
    await waitFor(
      () => redis.cli('PUBSUB', 'NUMSUB', 'room:machines').trim().split('\n')[1] === '2',
      'both servers subscribed',
      10_000,
    );
    await say(alice, 'hello from server one');
    await hears(bob, 'alice: hello from server one');
    await say(bob, 'hi from server two');
    await hears(alice, 'bob: hi from server two');
  });
});
