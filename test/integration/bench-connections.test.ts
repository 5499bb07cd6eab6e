/**
 * The connections benchmark (benchmarks/connections): its options are checked before anything
 * starts, a port another process answers on is refused, a small run measures real connections
 * held by real server and client processes, and every process it started is gone afterwards —
 * also after Ctrl-C.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { type RawOptions, resolveOptions, sourceAddresses } from '../../benchmarks/connections/options.js';

const here = dirname(fileURLToPath(import.meta.url));
const RUN = join(here, '..', '..', 'benchmarks', 'connections', 'run.js');

const DEFAULTS: RawOptions = {
  parts: 'memory,scale',
  servers: 'mr-http,mr-lf,node-http,uws-http,uws-ws',
  connections: '10000',
  'scale-connections': '100000',
  workers: '8',
  clients: '8',
  rate: '5000',
  ping: '30',
  'latency-samples': '500',
  rounds: '3',
  port: '18095',
};

function rejects(raw: Partial<RawOptions>, message: string | RegExp, limit = 20_000): void {
  let err: unknown;
  try {
    resolveOptions({ ...DEFAULTS, ...raw }, limit);
  } catch (e) {
    err = e;
  }
  expect(err, JSON.stringify(raw)).to.be.instanceOf(Error);
  if (typeof message === 'string') expect((err as Error).message).to.equal(message);
  else expect((err as Error).message).to.match(message);
}

/** A free port: bound once, then released. */
async function freePort(): Promise<number> {
  const s = net.createServer();
  s.listen(0, '127.0.0.1');
  await once(s, 'listening');
  const port = (s.address() as net.AddressInfo).port;
  s.close();
  await once(s, 'close');
  return port;
}

/** pids of the benchmark's server processes listening (or started to listen) on `port`. */
function serversOn(port: number): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const cmd = readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0');
      if (cmd.some((a) => a.endsWith('connections/server.js')) && cmd.includes(String(port))) out.push(Number(name));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}
function collect(child: ChildProcess): Promise<Exit> {
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => {
    stdout += d.toString();
  });
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal, stdout, stderr })));
}

describe('connections benchmark', function () {
  this.timeout(60_000);
  const children: ChildProcess[] = [];
  const dirs: string[] = [];
  afterEach(() => {
    for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });
  function run(args: string[]): { child: ChildProcess; done: Promise<Exit> } {
    const child = spawn(process.execPath, [RUN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    return { child, done: collect(child) };
  }

  describe('options', () => {
    it('resolve with defaults: two ping rounds and 5 s of hold, an idle timeout of three pings', () => {
      const o = resolveOptions(DEFAULTS, 20_000);
      expect(o.parts).to.deep.equal(['memory', 'scale']);
      expect(o.servers).to.deep.equal(['mr-http', 'mr-lf', 'node-http', 'uws-http', 'uws-ws']);
      expect([o.connections, o.scaleConnections, o.workers, o.clients, o.rate]).to.deep.equal([
        10_000, 100_000, 8, 8, 5000,
      ]);
      expect([o.ping, o.idleTimeout, o.hold, o.rounds, o.latencySamples]).to.deep.equal([30, 90, 65, 3, 500]);
      expect(o.uws).to.equal(undefined);
      const quick = resolveOptions({ ...DEFAULTS, ping: '2', hold: '7', 'idle-timeout': '5', uws: '/x' }, 20_000);
      expect([quick.ping, quick.hold, quick.idleTimeout, quick.uws]).to.deep.equal([2, 7, 5, '/x']);
    });

    it('reject unknown servers and parts, naming what is known', () => {
      rejects(
        { servers: 'mr-http,nginx' },
        '--servers: unknown "nginx" (known: mr-http, mr-lf, node-http, uws-http, uws-ws)',
      );
      rejects({ parts: 'speed' }, '--parts: unknown "speed" (known: memory, scale)');
      rejects({ servers: ' , ' }, /^--servers must name at least one of/);
    });

    it('reject numbers that are not integers in range', () => {
      rejects({ connections: '0' }, '--connections must be an integer ≥ 1, got "0"');
      rejects({ connections: '1e3x' }, '--connections must be an integer ≥ 1, got "1e3x"');
      rejects({ workers: '0' }, '--workers must be an integer 1–64, got "0"');
      rejects({ clients: '2.5' }, '--clients must be an integer 1–64, got "2.5"');
      rejects({ rate: '-1' }, '--rate must be an integer ≥ 0, got "-1"');
      rejects({ ping: '' }, '--ping must be an integer 1–3600, got ""');
      rejects({ port: '70000' }, '--port must be an integer 1–65535, got "70000"');
      rejects({ rounds: '0' }, '--rounds must be an integer 1–100, got "0"');
    });

    it('reject an idle timeout that the pings cannot keep open', () => {
      rejects(
        { ping: '30', 'idle-timeout': '30' },
        '--idle-timeout (30 s) must be longer than --ping (30 s): the pings keep connections alive',
      );
    });

    it('reject more connections than a process may hold, per server process and per client', () => {
      rejects(
        { parts: 'memory', connections: '19600' },
        '--connections 19600: one server process holds them all, and a process may open 20000 descriptors here (at most 19500 connections)',
      );
      rejects(
        { parts: 'scale', workers: '4' },
        '--scale-connections 100000 over --workers 4 is 25000 per worker; a process may open 20000 descriptors here: use more workers',
      );
      rejects(
        { parts: 'scale', clients: '4' },
        '--scale-connections 100000 over --clients 4 is 25000 per client process; a process may open 20000 descriptors here: use more clients',
      );
      // Only the half that runs is held to its limit.
      expect(resolveOptions({ ...DEFAULTS, parts: 'scale', connections: '19600' }, 20_000).connections).to.equal(
        19_600,
      );
    });

    it('give each client process loopback source addresses of its own, enough for its share', () => {
      const eight = sourceAddresses(100_000, 8, 25_000);
      expect(eight).to.deep.equal([1, 2, 3, 4, 5, 6, 7, 8].map((i) => [`127.0.0.${i + 1}`]));
      const two = sourceAddresses(100_000, 2, 25_000);
      expect(two).to.deep.equal([
        ['127.0.0.2', '127.0.0.3'],
        ['127.0.0.4', '127.0.0.5'],
      ]);
      // Past 127.0.0.254 the next ones skip the .255 and .0 host parts.
      const many = sourceAddresses(300 * 10, 300, 10).flat();
      expect(new Set(many).size).to.equal(300);
      expect(many.filter((a) => a.endsWith('.0') || a.endsWith('.255'))).to.deep.equal([]);
      expect(many).to.include('127.0.1.1');
    });

    it('exit 2 with the message on a bad command line, and print the usage on --help', async () => {
      const bad = await run(['--workers', '0']).done;
      expect(bad.code).to.equal(2);
      expect(bad.stderr.trim()).to.equal('--workers must be an integer 1–64, got "0"');
      const unknown = await run(['--frobnicate']).done;
      expect(unknown.code).to.equal(2);
      expect(unknown.stderr).to.match(/Unknown option '--frobnicate'/);
      const help = await run(['--help']).done;
      expect(help.code).to.equal(0);
      expect(help.stdout).to.match(/^Connections benchmark: what an idle connection costs/);
      for (const opt of ['--connections', '--scale-connections', '--workers', '--clients', '--rate', '--hold']) {
        expect(help.stdout).to.include(opt);
      }
    });
  });

  it('refuses a port where another process already answers, and starts nothing there', async () => {
    const blocker = net.createServer((s) => s.destroy());
    blocker.listen(0, '127.0.0.1');
    await once(blocker, 'listening');
    const port = (blocker.address() as net.AddressInfo).port;
    try {
      const r = await run([
        '--parts',
        'memory',
        '--servers',
        'mr-lf',
        '--connections',
        '10',
        '--rounds',
        '1',
        '--port',
        String(port),
      ]).done;
      expect(r.code).to.equal(1);
      expect(r.stdout).to.include(
        `memory · multireactor, length-field + heartbeat: failed — 127.0.0.1:${port} already answers: another process listens there (stop it, or choose --port)`,
      );
      expect(serversOn(port)).to.deep.equal([]);
    } finally {
      blocker.close();
    }
  });

  it('holds connections with heartbeats answered, measures them, and leaves no process behind', async function () {
    this.timeout(90_000);
    const port = await freePort();
    const dir = mkdtempSync(join(tmpdir(), 'mr-conns-'));
    dirs.push(dir);
    const json = join(dir, 'r.json');
    const r = await run([
      ...['--parts', 'memory,scale', '--servers', 'mr-lf', '--connections', '100', '--rounds', '1'],
      ...['--scale-connections', '200', '--workers', '1', '--clients', '1', '--rate', '0'],
      ...['--ping', '1', '--hold', '3', '--latency-samples', '10', '--port', String(port), '--json', json],
    ]).done;
    expect(r.code, r.stderr).to.equal(0);
    const result = JSON.parse(readFileSync(json, 'utf8')) as {
      memory: {
        held: number;
        before: { rss: number; heapUsed: number; gc: boolean };
        after: { rss: number; heapUsed: number };
      }[];
      scale: {
        opened: number;
        failed: number;
        heldAfter: number;
        closedByPeer: number;
        pingsPerConnection: number;
        workers: { held: number; cpuPercent: number }[];
        latencyTotal: number[];
        latencyFailed: number;
      }[];
      skipped: string[];
    };
    expect(result.skipped).to.deep.equal([]);
    const [mem] = result.memory;
    expect(mem?.held).to.equal(100);
    expect(mem?.before.gc).to.equal(true);
    // 100 connections hold at least their Connection, Pipeline and handlers.
    expect((mem?.after.heapUsed ?? 0) - (mem?.before.heapUsed ?? 0)).to.be.greaterThan(100 * 500);
    const [sc] = result.scale;
    expect([sc?.opened, sc?.failed, sc?.heldAfter, sc?.closedByPeer]).to.deep.equal([200, 0, 200, 0]);
    expect(sc?.workers.map((w) => w.held).reduce((a, b) => a + b, 0)).to.equal(200);
    // Pings after every second of silence, over a 3 s window: answered on every connection.
    expect(sc?.pingsPerConnection).to.be.at.least(1);
    expect(sc?.latencyTotal.length).to.equal(10);
    expect(sc?.latencyFailed).to.equal(0);
    expect(r.stdout).to.include('| multireactor, length-field + heartbeat | 100 |');
    expect(r.stdout).to.include('| multireactor, length-field + heartbeat | 200 |');
    expect(serversOn(port)).to.deep.equal([]);
  });

  it('stops every process it started on Ctrl-C', async function () {
    this.timeout(60_000);
    const port = await freePort();
    const { child, done } = run([
      ...['--parts', 'scale', '--servers', 'mr-lf', '--scale-connections', '100', '--workers', '2', '--clients', '2'],
      ...['--ping', '5', '--hold', '60', '--port', String(port)],
    ]);
    // Wait until the connections are held, then interrupt.
    await new Promise<void>((resolve) => {
      child.stderr?.on('data', (d: Buffer) => {
        if (d.toString().includes('mr-lf: 100 open in')) resolve();
      });
    });
    expect(serversOn(port).length).to.equal(3); // the master and two workers
    child.kill('SIGINT');
    const r = await done;
    expect(r.code).to.equal(130);
    expect(r.stderr).to.include('SIGINT: stopping every process this run started');
    expect(serversOn(port)).to.deep.equal([]);
  });
});
