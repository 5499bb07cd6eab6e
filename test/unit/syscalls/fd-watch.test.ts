import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';

const CHILD = join(dirname(fileURLToPath(import.meta.url)), 'fd-watch-child.js');

interface Outcome {
  readonly exitedBy: 'itself' | 'us';
  readonly report: {
    kind: string;
    fired: boolean;
    order: string[];
    calls: number;
    callsAfterClose: number;
    churned: boolean;
    churnCalls: number;
    closing: number;
    released: boolean;
  };
}

/** Runs the child; if it has not exited `graceMs` after its report, kills it (by pid) and says so. */
function runChild(env: NodeJS.ProcessEnv, args: string[], graceMs: number): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CHILD, ...args], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    let killer: NodeJS.Timeout | undefined;
    let killed = false;
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('\n') && killer === undefined) {
        killer = setTimeout(() => {
          killed = true;
          child.kill('SIGKILL');
        }, graceMs);
      }
    });
    child.on('error', reject);
    child.on('exit', () => {
      clearTimeout(killer);
      try {
        resolve({ exitedBy: killed ? 'us' : 'itself', report: JSON.parse(out.trim()) });
      } catch (err) {
        reject(new Error(`child printed ${JSON.stringify(out)}: ${err}`));
      }
    });
  });
}

describe('syscalls/libc: watchReadable (the loop nested in libuv)', function () {
  this.timeout(20_000);

  for (const [label, env, kind] of [
    ['uv_poll driven through koffi (default)', {}, 'uv_poll'],
    ['koffi.node.poll (fallback)', { MULTIREACTOR_FD_WATCH: 'koffi' }, 'koffi.node.poll'],
  ] as const) {
    describe(label, () => {
      it('calls back when readable; promise jobs queued there run before the next check phase; close stops it; 200 watches open and close cleanly; an unref’d watch lets the process exit', async () => {
        const { exitedBy, report } = await runChild(env, [], 5000);
        expect(report.kind).to.equal(kind);
        expect(report.fired).to.equal(true);
        expect(report.order).to.deep.equal(['callback', 'promise job', 'immediate']);
        expect(report.calls).to.equal(1);
        expect(report.callsAfterClose).to.equal(1);
        expect(report.churned).to.equal(true);
        expect(report.churnCalls).to.equal(200);
        // uv_close is asynchronous: each handle's memory is released when libuv calls back.
        expect(report.closing).to.equal(kind === 'uv_poll' ? 200 : 0);
        expect(report.released).to.equal(true);
        expect(exitedBy).to.equal('itself');
      });

      it('a referenced watch keeps the process alive', async () => {
        const { exitedBy, report } = await runChild(env, ['keep-ref'], 500);
        expect(report.fired).to.equal(true);
        expect(exitedBy).to.equal('us');
      });
    });
  }
});
