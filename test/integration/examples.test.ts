/**
 * The examples as users run them, each in its own process: the echo server's framings and
 * liveness flags, and the chat server.
 */

import type { ChildProcess } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import type net from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { connect, destroyAll, ECHO_EXAMPLE, ended, readBytes, startListening, waitFor } from './helpers.js';

const CHAT_EXAMPLE = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'examples', 'chat-server.js');
const RESP_EXAMPLE = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'examples', 'resp-server.js');

/** A line-oriented test client. */
interface LineClient {
  readonly socket: net.Socket;
  readonly lines: string[];
  /** Answer `:ping` with `:pong`. */
  pong: boolean;
}

async function lineClient(port: number): Promise<LineClient> {
  const socket = await connect(port);
  const c: LineClient = { socket, lines: [], pong: false };
  let buf = '';
  socket.setEncoding('utf8');
  socket.on('data', (d: string) => {
    buf += d;
    for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      c.lines.push(line);
      if (line === ':ping' && c.pong) socket.write(':pong\n');
    }
  });
  socket.on('error', () => {});
  return c;
}

describe('examples', function () {
  this.timeout(30_000);
  let child: ChildProcess | undefined;
  let stderr: () => string = () => '';
  const sockets: net.Socket[] = [];

  async function run(script: string, args: string[]): Promise<number> {
    const started = await startListening([script, '--host', '127.0.0.1', '--port', '0', ...args]);
    child = started.child;
    stderr = started.stderr;
    return started.port;
  }

  afterEach(async () => {
    await destroyAll(sockets.splice(0));
    if (child !== undefined && child.exitCode === null && child.signalCode === null) {
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      await exited;
    }
    child = undefined;
  });

  describe('echo-server.js', () => {
    it('--framing line echoes lines with their delimiters', async () => {
      const port = await run(ECHO_EXAMPLE, ['--framing', 'line']);
      const s = await connect(port);
      sockets.push(s);
      const text = 'first\r\nsecond\nthird';
      const echoed = readBytes(s, 'first\r\nsecond\n'.length);
      s.write(text);
      expect((await echoed).toString()).to.equal('first\r\nsecond\n');
    });

    it('--framing json echoes values re-encoded, and goes on after an invalid line', async () => {
      const port = await run(ECHO_EXAMPLE, ['--framing', 'json']);
      const s = await connect(port);
      sockets.push(s);
      const expected = '{"uid":1,"text":"hi"}\n[1,2,3]\n';
      const echoed = readBytes(s, expected.length);
      s.write('{ "uid": 1, "text": "hi" }\n{not json}\n[1, 2, 3]\n');
      expect((await echoed).toString()).to.equal(expected);
    });

    it('--reader-idle 1 closes a silent connection after about a second, reason idle-timeout', async () => {
      const port = await run(ECHO_EXAMPLE, ['--reader-idle', '1', '--log-closes']);
      const t0 = Date.now();
      const s = await connect(port);
      sockets.push(s);
      await ended(s);
      expect(Date.now() - t0).to.be.within(900, 3000);
      await waitFor(() => /closed: idle-timeout/.test(stderr()), 'the close to be logged');
    });

    it('--keepalive-idle 30 arms the kernel keepalive timer on accepted sockets (ss -tno)', async function () {
      try {
        execFileSync('ss', ['-V'], { stdio: 'ignore' });
      } catch {
        this.skip(); // no iproute2; test/integration/liveness.test.ts reads the options back instead
      }
      const port = await run(ECHO_EXAMPLE, ['--keepalive-idle', '30']);
      const s = await connect(port);
      sockets.push(s);
      const local = (s.address() as net.AddressInfo).port;
      await waitFor(() => {
        const out = execFileSync('ss', ['-tno', 'state', 'established', `( sport = :${port} and dport = :${local} )`]);
        return /timer:\(keepalive,/.test(out.toString());
      }, 'the keepalive timer');
    });

    for (const balance of ['reuseport', 'shared']) {
      it(`--workers 2 --balance ${balance}: listening once every worker is ready; SIGTERM stops the tree`, async () => {
        const port = await run(ECHO_EXAMPLE, ['--workers', '2', '--balance', balance]);
        expect(stderr()).to.match(/2 workers ready/);
        const pids = (/pids (\d+), (\d+)/.exec(stderr()) ?? []).slice(1).map(Number);
        expect(pids).to.have.length(2);
        const s = await connect(port);
        sockets.push(s);
        const f = Buffer.from([0, 3, 0x61, 0x62, 0x63]);
        const echoed = readBytes(s, f.length);
        s.write(f);
        expect((await echoed).equals(f)).to.equal(true);
        const proc = child as ChildProcess;
        const exited = once(proc, 'exit');
        proc.kill('SIGTERM');
        const [code] = (await exited) as [number | null];
        expect(code).to.equal(0);
        for (const pid of pids) expect(() => process.kill(pid, 0), `worker ${pid} is gone`).to.throw();
      });
    }

    it('rejects a bad framing before listening', async () => {
      let failure: unknown;
      try {
        await run(ECHO_EXAMPLE, ['--framing', 'xml']);
      } catch (err) {
        failure = err;
      }
      expect(String(failure)).to.contain('--framing must be one of length, line, json, got "xml"');
    });
  });

  describe('the command line of every example', () => {
    const examples = [
      'echo-server.js',
      'chat-server.js',
      'plaintext-server.js',
      'http-echo-server.js',
      'resp-server.js',
      'offload-server.js',
    ].map((f) => join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'examples', f));
    /** Runs a script to its end (bounded), returning its exit status and output. */
    function runToEnd(script: string, args: string[]): { status: number | null; stdout: string; stderr: string } {
      try {
        const stdout = execFileSync(process.execPath, [script, ...args], {
          timeout: 15_000,
          stdio: ['ignore', 'pipe', 'pipe'],
        }).toString();
        return { status: 0, stdout, stderr: '' };
      } catch (err) {
        const e = err as { status: number | null; stdout: Buffer; stderr: Buffer };
        return { status: e.status, stdout: e.stdout.toString(), stderr: e.stderr.toString() };
      }
    }

    for (const script of examples) {
      const name = script.slice(script.lastIndexOf('/') + 1);
      it(`${name}: --help prints the usage and exits 0; an unknown option exits 2 with the usage, no stack trace`, () => {
        const help = runToEnd(script, ['--help']);
        expect(help.status).to.equal(0);
        expect(help.stdout).to.match(new RegExp(`^usage: node dist/examples/${name.replace('.', '\\.')}`));
        const bad = runToEnd(script, ['--no-such-option']);
        expect(bad.status).to.equal(2);
        expect(bad.stderr).to.contain("Unknown option '--no-such-option'");
        expect(bad.stderr).to.contain('usage:');
        expect(bad.stderr).not.to.match(/\n\s+at /);
      });
    }

    /** Asserts a usage error: exit 2, `first` as the first line, then the usage; no stack trace. */
    function usageError(r: { status: number | null; stdout: string; stderr: string }, first: string): void {
      expect(r.status, r.stderr).to.equal(2);
      expect(r.stdout, 'nothing on stdout (no "listening")').to.equal('');
      expect(r.stderr.split('\n')[0]).to.equal(first);
      expect(r.stderr).to.contain('usage:');
      expect(r.stderr).not.to.match(/\n\s+at /);
    }

    it('a port out of range exits 2 with one line naming the option, and the usage', () => {
      usageError(
        runToEnd(examples[2] as string, ['--port', '70000', '--workers', '0']),
        '--port must be an integer from 0 to 65535, got "70000"',
      );
    });

    // Issue 15 item 13: Number() made '' 0 (a random port, or no workers), '0x1F90' 8080, '1e3'
    // 1000; every example now takes decimal digits only.
    for (const script of examples) {
      const name = script.slice(script.lastIndexOf('/') + 1);
      it(`${name}: --port= / 0x1F90 / 1e3 and --workers= / 1.5 are usage errors (exit 2), not numbers`, () => {
        for (const [args, first] of [
          [['--port='], '--port must be an integer from 0 to 65535, got ""'],
          [['--port', '0x1F90'], '--port must be an integer from 0 to 65535, got "0x1F90"'],
          [['--port', '1e3'], '--port must be an integer from 0 to 65535, got "1e3"'],
          [['--workers=', '--port', '0'], '--workers must be an integer from 0 to 1024, got ""'],
          [['--workers', '1.5', '--port', '0'], '--workers must be an integer from 0 to 1024, got "1.5"'],
        ] as const) {
          usageError(runToEnd(script, [...args]), first);
        }
      });
    }

    it('echo-server.js: other numbers and choices are strict too (--port " 80", --balance, --keepalive-count)', () => {
      const echo = examples[0] as string;
      usageError(runToEnd(echo, ['--port', ' 80']), '--port must be an integer from 0 to 65535, got " 80"');
      usageError(runToEnd(echo, ['--port=-1']), '--port must be an integer from 0 to 65535, got "-1"');
      usageError(runToEnd(echo, ['--balance', 'random']), '--balance must be one of reuseport, shared, got "random"');
      usageError(
        runToEnd(echo, ['--keepalive-idle', '30', '--keepalive-count', '200']),
        '--keepalive-count must be an integer from 1 to 127, got "200"',
      );
    });

    // Issue 15 item 12: these printed "listening", then reset every connection with a stack trace.
    it('echo-server.js --reader-idle abc / 0 and chat-server.js --ping-interval 0 fail before listening', () => {
      usageError(
        runToEnd(examples[0] as string, ['--port', '0', '--reader-idle', 'abc']),
        '--reader-idle must be a number from 0.01 to 86400, got "abc"',
      );
      usageError(
        runToEnd(examples[0] as string, ['--port', '0', '--reader-idle', '0']),
        '--reader-idle must be a number from 0.01 to 86400, got "0"',
      );
      usageError(
        runToEnd(examples[1] as string, ['--port', '0', '--ping-interval', '0']),
        '--ping-interval must be a number from 0.01 to 86400, got "0"',
      );
    });

    it('offload-server.js: --threads, --max-queue and --max-in-flight are checked, no uncaught stack trace', () => {
      const offload = examples[5] as string;
      const base = ['--port', '0', '--workers', '0'];
      usageError(
        runToEnd(offload, [...base, '--threads', 'abc']),
        '--threads must be an integer from 1 to 1024, got "abc"',
      );
      usageError(
        runToEnd(offload, [...base, '--max-queue=-1']),
        '--max-queue must be an integer from 0 to 1000000, got "-1"',
      );
      usageError(
        runToEnd(offload, [...base, '--max-in-flight', '1.5']),
        '--max-in-flight must be an integer from 1 to 65536, got "1.5"',
      );
    });
  });

  describe('resp-server.js', () => {
    /** Writes `request` and waits for exactly `expected` (the bytes of the replies). */
    async function exchange(s: net.Socket, request: string, expected: string): Promise<void> {
      s.write(request);
      expect((await readBytes(s, Buffer.byteLength(expected))).toString('latin1')).to.equal(expected);
    }

    it('answers pipelined RESP commands and inline commands in order; a protocol error is answered, then close', async () => {
      const port = await run(RESP_EXAMPLE, []);
      const s = await connect(port);
      sockets.push(s);
      const cmd = (...args: string[]) =>
        `*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`;
      await exchange(
        s,
        cmd('PING') +
          cmd('SET', 'k', 'v\r\n1') +
          cmd('GET', 'k') +
          cmd('GET', 'nope') +
          cmd('INCR', 'n') +
          cmd('INCR', 'n'),
        '+PONG\r\n+OK\r\n$4\r\nv\r\n1\r\n$-1\r\n:1\r\n:2\r\n',
      );
      await exchange(s, 'EXISTS k n nope\r\nDEL k\nDBSIZE\r\n', ':2\r\n:1\r\n:1\r\n');
      await exchange(s, cmd('INCR', 'k2') + cmd('FLY'), ":1\r\n-ERR unknown command 'fly'\r\n");
      await exchange(s, cmd('GET'), "-ERR wrong number of arguments for 'get' command\r\n");
      let rest = '';
      s.on('data', (d: Buffer) => {
        rest += d.toString('latin1');
      });
      const closed = ended(s);
      s.write(':1x\r\n');
      await closed;
      expect(rest).to.match(/^-ERR Protocol error: malformed integer \(at byte \d+ of the stream\)\r\n$/);
      // Other clients are not affected.
      const t = await connect(port);
      sockets.push(t);
      await exchange(t, cmd('GET', 'n'), '$1\r\n2\r\n');
      await exchange(t, cmd('QUIT'), '+OK\r\n');
      await ended(t);
    });
  });

  describe('chat-server.js', () => {
    it('broadcasts lines to the others, renames, lists, and drops clients that miss pings', async () => {
      const port = await run(CHAT_EXAMPLE, ['--ping-interval', '0.3', '--missed', '1']);
      const alice = await lineClient(port);
      const bob = await lineClient(port);
      const mute = await lineClient(port);
      sockets.push(alice.socket, bob.socket, mute.socket);
      alice.pong = bob.pong = true;
      await waitFor(() => mute.lines.length >= 1, 'welcome');

      alice.socket.write('/nick alice\nhello everyone\n');
      await waitFor(() => bob.lines.includes('alice: hello everyone'), 'the broadcast');
      expect(mute.lines).to.include('alice: hello everyone');
      expect(alice.lines, 'the sender does not get its own line').not.to.include('alice: hello everyone');
      expect(
        bob.lines.some((l) => /^\* guest\d+ is now alice$/.test(l)),
        'the rename is announced',
      ).to.equal(true);

      // The mute client never answers: one ping, then it is dropped and the others are told.
      await ended(mute.socket);
      expect(mute.lines).to.include(':ping');
      await waitFor(() => bob.lines.some((l) => /left \(heartbeat\)$/.test(l)), 'the heartbeat announcement');

      // Those who answer stay, through several pings.
      await new Promise((r) => setTimeout(r, 1000));
      bob.socket.write('/who\n');
      await waitFor(() => bob.lines.some((l) => l.startsWith('* here:')), '/who');
      const who = bob.lines.find((l) => l.startsWith('* here:')) as string;
      expect(who).to.match(/alice/);
      expect(who.split(',')).to.have.length(2);
      expect(alice.lines.filter((l) => l === ':ping').length).to.be.at.least(2);
      expect(alice.socket.readableEnded).to.equal(false);
    });
  });
});
