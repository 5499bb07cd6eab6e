/**
 * The example as users run it: `node dist/examples/echo-server.js` in its own process, on every
 * poller and trigger, stopped by SIGTERM.
 */

import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { expect } from 'chai';
import { connect, destroyAll, ECHO_EXAMPLE, frames, prng, readBytes, startListening, TRANSPORTS } from './helpers.js';

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
      const started = await startListening([
        ECHO_EXAMPLE,
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
