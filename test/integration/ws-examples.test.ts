/**
 * examples/ws-echo-server.ts as users run it, in its own process: echoes under `ws`, with
 * workers and a SIGUSR2 reload (open WebSockets get a 1001 close and reconnect to the new
 * workers), the heartbeat closing a client that stops answering pings, and
 * `multireactor-load --ws` against it.
 */
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import WsClient from 'ws';
import { runLoad } from '../../src/index.js';
import { startListening, waitFor } from './helpers.js';
import { FuzzClient } from './ws-fuzz-client.js';

const WS_ECHO = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'examples', 'ws-echo-server.js');

describe('examples/ws-echo-server', function () {
  this.timeout(30_000);
  let child: ChildProcess | undefined;
  let stderr: () => string = () => '';
  const clients: WsClient[] = [];
  const fuzz: FuzzClient[] = [];

  afterEach(async () => {
    for (const c of clients.splice(0)) c.terminate();
    for (const f of fuzz.splice(0)) f.drop();
    if (child !== undefined && child.exitCode === null && child.signalCode === null) {
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      await exited;
    }
    child = undefined;
  });

  async function run(args: string[]): Promise<number> {
    const started = await startListening([WS_ECHO, '--host', '127.0.0.1', '--port', '0', ...args]);
    child = started.child;
    stderr = started.stderr;
    return started.port;
  }

  async function open(port: number, deflate = false): Promise<{ c: WsClient; got: string[] }> {
    const c = new WsClient(`ws://127.0.0.1:${port}/any/path`, { perMessageDeflate: deflate });
    clients.push(c);
    const got: string[] = [];
    c.on('message', (d) => got.push(d.toString()));
    c.on('error', () => {});
    await once(c, 'open');
    return { c, got };
  }

  it('--workers 2: echoes; a SIGUSR2 reload closes open WebSockets with 1001 and new ones reach the new workers', async () => {
    const port = await run(['--workers', '2', '--deflate']);
    const a = await open(port, true);
    expect(a.c.extensions).to.equal('permessage-deflate');
    a.c.send('before reload');
    await waitFor(() => a.got.length === 1, 'the echo');
    const closed = once(a.c, 'close');
    (child as ChildProcess).kill('SIGUSR2');
    const [code, reason] = (await closed) as [number, Buffer];
    expect([code, reason.toString()]).to.deep.equal([1001, 'server going away']);
    const b = await open(port);
    b.c.send('after reload');
    await waitFor(() => b.got.length === 1, 'the echo after the reload');
    expect(b.got).to.deep.equal(['after reload']);
  });

  it('--heartbeat: a client that stops answering pings is closed (1006 heartbeat); one that answers stays', async () => {
    const port = await run(['--heartbeat', '200', '--log-closes']);
    // ws answers pings by itself.
    const alive = await open(port);
    // The fuzzing client answers pings only while told to.
    const dead = await FuzzClient.connect({ port });
    fuzz.push(dead);
    // Its socket stops reading: pings go unanswered (and, paused, it would not notice the reset).
    dead.socket.pause();
    await waitFor(() => /closed: 1006 heartbeat/.test(stderr()), 'the heartbeat close in the log', 5000);
    expect(alive.c.readyState).to.equal(WsClient.OPEN);
    alive.c.send('still here');
    await waitFor(() => alive.got.length === 1, 'the echo');
  });

  it('multireactor-load --ws gets answers and no errors', async () => {
    const port = await run([]);
    const r = await runLoad({
      url: `ws://127.0.0.1:${port}/`,
      mode: 'ws',
      connections: 4,
      duration: 700,
      pipeline: 4,
      size: 32,
    });
    expect(r.requests).to.be.greaterThan(100);
    expect(r.errors).to.deep.equal({ refused: 0, reset: 0, timeout: 0, badStatus: 0, protocol: 0, tls: 0 });
    expect(r.connects).to.equal(4);
  });
});
