/**
 * A real browser: headless Chromium (Debian's `chromium`, driven by playwright-core over its
 * DevTools protocol — nothing downloaded) opens examples/ws-chat-server's page in two tabs; they
 * exchange messages through the WebSocket route; the server reloads (SIGUSR2: new worker, every
 * open WebSocket told 1001) and both pages reconnect by themselves and talk again. Skipped, saying
 * which Debian package to install, when /usr/bin/chromium is missing.
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
    await stopAll();
  });

  async function start(): Promise<number> {
    const started = await startListening([CHAT, '--host', '127.0.0.1', '--port', '0', '--workers', '1']);
    child = started.child;
    return started.port;
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
    if (!existsSync(CHROMIUM)) {
      console.error('    (skipped: no /usr/bin/chromium — apt-get install -y chromium)');
      this.skip();
    }
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
    const say = async (page: Page, text: string) => {
      await page.fill('#text', text);
      await page.press('#text', 'Enter');
    };
    const hears = (page: Page, line: string) =>
      page.waitForFunction(
        `[...document.querySelectorAll('#log li')].some((li) => li.textContent === ${JSON.stringify(line)})`,
        undefined,
        { timeout: 10_000 },
      );

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
  it('two tabs on two servers sharing a Redis chat through it', async function () {
    if (!existsSync(CHROMIUM)) {
      console.error('    (skipped: no /usr/bin/chromium — apt-get install -y chromium)');
      this.skip();
    }
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
    const say = async (page: Page, text: string) => {
      await page.fill('#text', text);
      await page.press('#text', 'Enter');
    };
    const hears = (page: Page, line: string) =>
      page.waitForFunction(
        `[...document.querySelectorAll('#log li')].some((li) => li.textContent === ${JSON.stringify(line)})`,
        undefined,
        { timeout: 10_000 },
      );
    await say(alice, 'hello from server one');
    await hears(bob, 'alice: hello from server one');
    await say(bob, 'hi from server two');
    await hears(alice, 'bob: hi from server two');
  });
});
