/**
 * The kernel gives up on a dead peer: TCP_USER_TIMEOUT and TCP keepalive end in ETIMEDOUT, which
 * the connection reports as close reason `timeout`. A dead peer is simulated for real: a child
 * process runs server and client inside a private network namespace and takes its loopback down
 * (netns/kernel-timeout.ts). Needs root and iproute2's `ip`; skipped, with the reason, without them.
 */

import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';

const script = join(dirname(fileURLToPath(import.meta.url)), 'netns', 'kernel-timeout.js');
let counter = 0;

async function runInNamespace(mode: string, waitMs: number): Promise<{ reason: string; afterMs: number }> {
  const ns = `mr-test-${process.pid}-${counter++}`;
  execFileSync('ip', ['netns', 'add', ns]);
  try {
    execFileSync('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    const child = spawn(
      'ip',
      ['netns', 'exec', ns, process.execPath, script, '--mode', mode, '--wait', String(waitMs)],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    const [code] = (await once(child, 'exit')) as [number | null];
    expect(code, out).to.equal(0);
    return JSON.parse(out) as { reason: string; afterMs: number };
  } finally {
    execFileSync('ip', ['netns', 'del', ns]);
  }
}

describe('the kernel gives up on a dead peer (network namespace)', function () {
  this.timeout(30_000);

  before(function () {
    try {
      const probe = `mr-probe-${process.pid}`;
      execFileSync('ip', ['netns', 'add', probe], { stdio: 'ignore' });
      execFileSync('ip', ['netns', 'del', probe], { stdio: 'ignore' });
    } catch {
      console.error('    (skipped: creating a network namespace needs root and iproute2)');
      this.skip();
    }
  });

  it('userTimeout: 1000 closes a connection whose data goes unacknowledged, reason timeout', async () => {
    const r = await runInNamespace('user-timeout', 10_000);
    expect(r.reason).to.equal('timeout');
    expect(r.afterMs).to.be.within(900, 5000);
  });

  it('keepAlive { idle: 1, interval: 1, count: 2 } closes a silent dead connection, reason timeout', async () => {
    const r = await runInNamespace('keepalive', 10_000);
    expect(r.reason).to.equal('timeout');
    expect(r.afterMs).to.be.within(2000, 8000);
  });

  it('without them the same dead connection stays open (the kernel would wait 2 h 11 min)', async () => {
    const r = await runInNamespace('none', 4000);
    expect(r.reason).to.equal('still-open');
  });
});
