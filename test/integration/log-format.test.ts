/**
 * The examples' `--log-format json` (examples/cli.ts): a real master of the plaintext example
 * logs JSON lines in pino's format (the worker bindings are checked in ops.test.ts); a bad value is a
 * usage error.
 */
import { spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { startListening, waitFor } from './helpers.js';

const here = dirname(fileURLToPath(import.meta.url));
const PLAINTEXT = join(here, '..', '..', 'examples', 'plaintext-server.js');

describe('examples: --log-format', function () {
  this.timeout(20_000);

  it("json: every line the server writes is a JSON object in pino's format", async () => {
    const started = await startListening([
      PLAINTEXT,
      '--host',
      '127.0.0.1',
      '--port',
      '0',
      '--workers',
      '2',
      '--log-format',
      'json',
    ]);
    const { child } = started;
    try {
      const lines = () =>
        started
          .stderr()
          .split('\n')
          .filter((l) => l !== '');
      await waitFor(() => lines().some((l) => /workers ready on/.test(l)), 'the ready line');
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      await exited;
      const parsed = lines().map((l) => JSON.parse(l) as Record<string, unknown>);
      const ready = parsed.find((l) => /workers ready on/.test(String(l.msg)));
      expect(ready).to.include({ level: 30, pid: child.pid });
      expect(ready?.hostname).to.be.a('string');
      expect(parsed.some((l) => l.msg === `master ${child.pid}: stopped, every worker reaped`)).to.equal(true);
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
  });

  it('a value other than text or json is a usage error', () => {
    const r = spawnSync(process.execPath, [PLAINTEXT, '--log-format', 'xml'], { encoding: 'utf8' });
    expect(r.status).to.equal(2);
    expect(r.stderr).to.match(/^--log-format must be one of text, json, got "xml"\n/);
    const help = spawnSync(process.execPath, [PLAINTEXT, '--help'], { encoding: 'utf8' });
    expect(help.stdout).to.contain('--log-format text|json');
  });
});
