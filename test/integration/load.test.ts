/**
 * multireactor-load end to end, as a user runs it (its own process): against the plaintext and
 * echo examples (JSON checked: answers, no errors, ordered percentiles, stopping on time), and
 * against servers that refuse, reset, never answer or answer 404 — each counted under its kind.
 */
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import net from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import type { LoadReport } from '../../src/index.js';
import { destroyAll, ECHO_EXAMPLE, type Exited, runToExit, startListening } from './helpers.js';

const here = dirname(fileURLToPath(import.meta.url));
const LOAD = join(here, '..', '..', 'src', 'bin', 'load.js');
const PLAINTEXT = join(here, '..', '..', 'examples', 'plaintext-server.js');

/** Runs multireactor-load with `args` until it exits. */
function load(args: readonly string[], children: ChildProcess[]): Promise<Exited> {
  return runToExit([LOAD, ...args], children);
}

function report(ran: Exited): LoadReport {
  expect(ran.stderr).to.not.match(/Error|Warning/);
  return JSON.parse(ran.stdout) as LoadReport;
}

function expectOrdered(r: LoadReport): void {
  const l = r.latency;
  expect(l.min).to.be.at.most(l.p50);
  expect(l.p50).to.be.at.most(l.p75);
  expect(l.p75).to.be.at.most(l.p90);
  expect(l.p90).to.be.at.most(l.p99);
  expect(l.p99).to.be.at.most(l.p999);
  expect(l.p999).to.be.at.most(l.max);
  expect(l.p50).to.be.greaterThan(0);
}

const NO_ERRORS = { refused: 0, reset: 0, timeout: 0, badStatus: 0, protocol: 0, tls: 0 };

describe('multireactor-load', function () {
  this.timeout(30_000);
  const children: ChildProcess[] = [];
  const servers: net.Server[] = [];
  const sockets = new Set<net.Socket>();

  afterEach(async () => {
    for (const c of children.splice(0)) {
      if (c.exitCode === null && c.signalCode === null) {
        const exited = once(c, 'exit');
        c.kill('SIGTERM');
        await exited;
      }
    }
    await destroyAll(sockets);
    sockets.clear();
    await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
  });

  async function netServer(onSocket: (s: net.Socket) => void): Promise<number> {
    const server = net.createServer((s) => {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => {});
      onSocket(s);
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    servers.push(server);
    return (server.address() as net.AddressInfo).port;
  }

  async function plaintext(): Promise<number> {
    const started = await startListening([PLAINTEXT, '--host', '127.0.0.1', '--port', '0', '--workers', '1']);
    children.push(started.child);
    return started.port;
  }

  it('loads the plaintext example: answers, no errors, ordered percentiles, stops on time', async () => {
    const port = await plaintext();
    for (const pipeline of ['1', '8']) {
      const ran = await load(
        ['--url', `http://127.0.0.1:${port}/plaintext`, '-c', '8', '-d', '1s', '--pipeline', pipeline, '--json'],
        children,
      );
      expect(ran.code, ran.stderr).to.equal(0);
      const r = report(ran);
      expect(r).to.include({ mode: 'http', connections: 8, pipeline: Number(pipeline), connects: 8 });
      expect(r.requests).to.be.greaterThan(100);
      expect(r.errors).to.deep.equal(NO_ERRORS);
      expect(r.seconds).to.be.within(1, 2.5); // a timer may fire late on a loaded machine
      expect(r.requestsPerSecond).to.be.closeTo(r.requests / r.seconds, 1);
      expect(r.bytesRead).to.be.greaterThan(r.requests * 100); // every answer is ~130 bytes
      expectOrdered(r);
      // The process ends right after the run: no connection or timer keeps it.
      expect(ran.ms).to.be.below(1000 + 7000);
    }
  });

  it('loads the echo example with --echo (2-byte length-field frames)', async () => {
    const started = await startListening([ECHO_EXAMPLE, '--host', '127.0.0.1', '--port', '0', '--framing', 'length']);
    children.push(started.child);
    const ran = await load(
      [
        '--echo',
        '--url',
        `tcp://127.0.0.1:${started.port}`,
        '-c',
        '4',
        '-d',
        '800ms',
        '--pipeline',
        '4',
        '--size',
        '100',
        '--json',
      ],
      children,
    );
    expect(ran.code, ran.stderr).to.equal(0);
    const r = report(ran);
    expect(r.mode).to.equal('echo');
    expect(r.requests).to.be.greaterThan(100);
    expect(r.errors).to.deep.equal(NO_ERRORS);
    expect(r.seconds).to.be.within(0.8, 2.3);
    expectOrdered(r);
  });

  it('prints a readable table without --json', async () => {
    const port = await plaintext();
    const ran = await load(['--url', `http://127.0.0.1:${port}/plaintext`, '-c', '2', '-d', '300ms'], children);
    expect(ran.code).to.equal(0);
    expect(ran.stdout).to.match(/^Running [\d.]+s test @ http:\/\/127\.0\.0\.1:\d+\/plaintext$/m);
    expect(ran.stdout).to.match(/Latency +p50 +p90 +p99 +max/);
    expect(ran.stdout).to.match(/Errors: refused 0, reset 0, timeout 0, bad status 0, protocol 0/);
    expect(ran.stdout).to.match(/^Requests\/sec: \d+\.\d\d$/m);
  });

  it('counts statuses outside 2xx/3xx as badStatus', async () => {
    const port = await plaintext();
    const r = report(
      await load(['--url', `http://127.0.0.1:${port}/missing`, '-c', '2', '-d', '300ms', '--json'], children),
    );
    expect(r.requests).to.be.greaterThan(0);
    expect(r.errors.badStatus).to.equal(r.requests);
  });

  it('counts refused connects, and exits 1 when nothing was answered', async () => {
    const port = await netServer(() => {});
    await new Promise((r) => (servers.pop() as net.Server).close(r));
    const ran = await load(['--url', `http://127.0.0.1:${port}/`, '-c', '2', '-d', '300ms', '--json'], children);
    expect(ran.code).to.equal(1);
    const r = report(ran);
    expect(r.requests).to.equal(0);
    expect(r.errors.refused).to.be.greaterThan(0);
    // Backing off: a few attempts per connection, not a spin.
    expect(r.errors.refused).to.be.below(100);
  });

  it('counts requests a server never answers as timeouts', async () => {
    const port = await netServer(() => {}); // accepts, reads, never answers
    const ran = await load(
      ['--url', `http://127.0.0.1:${port}/`, '-c', '2', '-d', '700ms', '--timeout', '150ms', '--json'],
      children,
    );
    const r = report(ran);
    expect(r.errors.timeout).to.be.greaterThan(0);
    expect(r.requests).to.equal(0);
  });

  it('counts requests lost to a reset as reset', async () => {
    const port = await netServer((s) => s.once('data', () => s.resetAndDestroy()));
    const r = report(await load(['--url', `http://127.0.0.1:${port}/`, '-c', '2', '-d', '300ms', '--json'], children));
    expect(r.errors.reset).to.be.greaterThan(0);
    expect(r.connects).to.be.greaterThan(2); // replaced after each reset
  });

  it('counts garbage answers as protocol errors', async () => {
    const port = await netServer((s) => s.once('data', () => s.write('SSH-2.0-OpenSSH\r\n\r\n')));
    const r = report(await load(['--url', `http://127.0.0.1:${port}/`, '-c', '1', '-d', '300ms', '--json'], children));
    expect(r.errors.protocol).to.be.greaterThan(0);
  });

  it('rejects bad arguments with exit code 2 and a message naming the option', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['-c', '1'], /url: is required/],
      [['--url', 'http://127.0.0.1:1/', '-c', '0'], /connections/],
      [['--url', 'http://127.0.0.1:1/', '-c', '20000'], /connections/],
      [['--url', 'http://127.0.0.1:1/', '-d', 'soon'], /duration/],
      [['--url', 'http://127.0.0.1:1/', '--pipeline', '0'], /pipeline/],
      [['--url', 'https://127.0.0.1:1/'], /https is not supported/],
      [['--url', 'not a url'], /url/],
      [['--url', 'http://127.0.0.1:1/', '--bogus'], /Unknown option/],
      [['--url', 'http://127.0.0.1:1/', '-H', 'no colon'], /header/],
      // Decimal digits only (issue 15 item 13): no empty value, hex, exponent or fraction.
      [['--url', 'http://127.0.0.1:1/', '--connections='], /connections: must be a whole number, got ""/],
      [['--url', 'http://127.0.0.1:1/', '-c', '0x10'], /connections: must be a whole number, got "0x10"/],
      [['--url', 'http://127.0.0.1:1/', '--size', '1e3', '--echo'], /size: must be a whole number, got "1e3"/],
      [['--url', 'http://127.0.0.1:1/', '--pipeline', '1.5'], /pipeline: must be a whole number, got "1.5"/],
      [['--url', 'http://127.0.0.1:1/', '-d', '1e3'], /duration/],
    ];
    for (const [args, message] of cases) {
      const ran = await load(args, children);
      expect(ran.code, args.join(' ')).to.equal(2);
      expect(ran.stderr, args.join(' ')).to.match(message);
      expect(ran.stderr).to.contain('usage: multireactor-load');
    }
  });
});
