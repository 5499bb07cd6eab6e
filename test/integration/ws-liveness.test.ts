/**
 * A dead WebSocket client is found by whichever detector fires first — WebSocket ping timeout,
 * TCP keepalive or TCP_USER_TIMEOUT — and `onClose` says which: 1006 with `heartbeat` for the
 * pings, `timeout` when the kernel gave up (ETIMEDOUT). The dead peer is real: server and client
 * run in a private network namespace whose loopback is taken down (netns/ws-liveness.ts). Needs
 * root and iproute2's `ip`; skipped, with the reason, without them.
 */
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';

const script = join(dirname(fileURLToPath(import.meta.url)), 'netns', 'ws-liveness.js');
let counter = 0;

async function runInNamespace(args: string[]): Promise<{ code: number; reason: string; afterMs: number }> {
  const ns = `mr-ws-${process.pid}-${counter++}`;
  execFileSync('ip', ['netns', 'add', ns]);
  try {
    execFileSync('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    const child = spawn('ip', ['netns', 'exec', ns, process.execPath, script, ...args], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    const [code] = (await once(child, 'exit')) as [number | null];
    expect(code, out).to.equal(0);
    return JSON.parse(out) as { code: number; reason: string; afterMs: number };
  } finally {
    execFileSync('ip', ['netns', 'del', ns]);
  }
}

describe('WebSocket liveness: a dead client is found (network namespace)', function () {
  this.timeout(30_000);

  before(function () {
    try {
      const probe = `mr-wsprobe-${process.pid}`;
      execFileSync('ip', ['netns', 'add', probe], { stdio: 'ignore' });
      execFileSync('ip', ['netns', 'del', probe], { stdio: 'ignore' });
    } catch {
      console.error('    (skipped: creating a network namespace needs root and iproute2)');
      this.skip();
    }
  });

  it('by the ping timeout first (heartbeat 300 ms, 1 missed; keepalive after 3 s): 1006 heartbeat', async () => {
    const r = await runInNamespace(['--heartbeat', '300', '--missed', '1', '--keepalive']);
    expect([r.code, r.reason]).to.deep.equal([1006, 'heartbeat']);
    expect(r.afterMs).to.be.within(300, 2500);
  });

  it('by TCP keepalive first (keepalive 1+1×2 s; pings every 10 s): 1006 timeout', async () => {
    const r = await runInNamespace(['--heartbeat', '10000', '--keepalive']);
    expect([r.code, r.reason]).to.deep.equal([1006, 'timeout']);
    expect(r.afterMs).to.be.within(1500, 8000);
  });

  it('by TCP_USER_TIMEOUT when pings go unacknowledged (ping every 500 ms, 10 missed; user timeout 1 s): 1006 timeout', async () => {
    const r = await runInNamespace(['--heartbeat', '500', '--missed', '10', '--user-timeout', '1000']);
    expect([r.code, r.reason]).to.deep.equal([1006, 'timeout']);
    expect(r.afterMs).to.be.within(900, 6000);
  });
});
