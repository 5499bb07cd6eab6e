/**
 * The example as users run it: `node dist/examples/echo-server.js` in its own process, on every
 * poller and trigger, stopped by SIGTERM.
 */

import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { connect, destroyAll, frames, prng, readBytes, TRANSPORTS } from './helpers.js';

const example = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'examples', 'echo-server.js');

/** Starts the example and resolves with its port once it printed `listening on HOST:PORT`. */
export async function startExample(
  args: string[],
): Promise<{ child: ChildProcess; port: number; stderr: () => string }> {
  const child = spawn(process.execPath, [example, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr?.on('data', (d: Buffer) => {
    err += d.toString();
  });
  let out = '';
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /^listening on (.+):(\d+)$/m.exec(out);
      if (m) resolve(Number(m[2]));
    });
    child.once('exit', (code, signal) => reject(new Error(`example exited early (${code ?? signal}): ${err}`)));
  });
  return { child, port, stderr: () => err };
}

for (const { poller, trigger } of TRANSPORTS) {
  describe(`examples/echo-server.js --poller ${poller} --trigger ${trigger}`, function () {
    this.timeout(30_000);
    let child: ChildProcess | undefined;

    afterEach(async () => {
      if (child !== undefined && child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL');
        await once(child, 'exit');
      }
      child = undefined;
    });

    it('serves the echo protocol and stops cleanly on SIGTERM', async () => {
      const started = await startExample([
        '--host',
        '127.0.0.1',
        '--port',
        '0',
        '--workers',
        '0',
        '--poller',
        poller,
        '--trigger',
        trigger,
      ]);
      child = started.child;
      const s = await connect(started.port);
      const data = frames(prng(7), 200);
      const echoed = readBytes(s, data.length);
      s.write(data);
      expect((await echoed).equals(data)).to.equal(true);
      const exited = once(started.child, 'exit');
      started.child.kill('SIGTERM');
      const [code, signal] = (await exited) as [number | null, string | null];
      expect({ code, signal }, started.stderr()).to.deep.equal({ code: 0, signal: null });
      await destroyAll([s]);
    });
  });
}
