/**
 * Master and workers under the faults an operator meets (issue 15, items 6–10), as real processes
 * with real signals and sockets: a second server on a port already in use, reloads requested
 * during a reload, slots in a crash loop, a master whose parent dies, and the restart of a killed
 * worker. Every process a test starts is known by pid and gone when the test ends.
 */
import { type ChildProcess, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { expect } from 'chai';
import { Server, type ServerHandle, SyscallError, silentLogger } from '../../src/index.js';
import { alive, ask, Cluster, FAULT_APP, whoServes } from './cluster-support.js';
import { echoPipeline, runToExit, waitFor } from './helpers.js';

/** Starts the fault app as a master; `args` are its options. */
function startApp(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<Cluster> {
  return Cluster.start([], env, undefined, undefined, [FAULT_APP, ...args]);
}

/** A file name in the temporary directory, unique to this test run. */
function tempPath(name: string): string {
  return join(tmpdir(), `mr-faults-${process.pid}-${Date.now()}-${name}`);
}

/** The master's pid, from the line the fault app logs. */
function masterPid(c: Cluster): number {
  const m = /master-app: master (\d+)/.exec(c.stderr());
  if (m === null) throw new Error(`no master pid in: ${c.stderr()}`);
  return Number(m[1]);
}

/** How many times `pattern` occurs in what the master logged. */
function count(c: Cluster, pattern: RegExp): number {
  return (c.stderr().match(new RegExp(pattern.source, 'g')) ?? []).length;
}

/** A port nothing listens on now (the kernel's pick for port 0, released again). */
async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as { port: number };
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

/** Which worker pids answer `n` new connections. */
async function servers(port: number, n: number): Promise<Set<number>> {
  const pids = new Set<number>();
  for (let i = 0; i < n; i++) pids.add(await whoServes(port));
  return pids;
}

describe('master and workers under faults (real processes, real signals)', function () {
  this.timeout(60_000);
  const clusters: Cluster[] = [];
  const children: ChildProcess[] = [];
  const inProcess: ServerHandle[] = [];
  const files: string[] = [];

  afterEach(async () => {
    for (const f of files.splice(0)) rmSync(f, { force: true, recursive: true });
    for (const s of inProcess.splice(0)) await s.close({ timeout: 0 });
    for (const c of clusters.splice(0)) await c.teardown();
    for (const child of children.splice(0)) {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = once(child, 'exit');
        child.kill('SIGKILL');
        await exited;
      }
    }
  });

  describe('a port already in use (item 6)', () => {
    for (const balance of ['reuseport', 'shared'] as const) {
      it(`${balance}: a second master fails with EADDRINUSE naming the address; the first keeps every connection`, async () => {
        const first = await startApp(['--workers', '2', '--balance', balance]);
        clusters.push(first);
        const ours = await first.readyPids();
        const second = await runToExit(
          [FAULT_APP, '--workers', '2', '--balance', balance, '--port', String(first.port)],
          children,
          10_000,
        );
        expect(second.stdout, 'the second master must not start').not.to.match(/listening on/);
        expect(second.code).to.equal(1);
        expect(second.stderr).to.contain('EADDRINUSE');
        expect(second.stderr).to.contain(`127.0.0.1:${first.port}`);
        const answered = await servers(first.port, 40);
        for (const pid of answered) expect(ours, `connection served by ${pid}`).to.include(pid);
      });
    }

    it('every mode refuses a port another server listens on: in-process, node:net, master', async () => {
      // A master on the port of an in-process server, and of a node:net server.
      const single = await Server.listen({ workers: 0, host: '127.0.0.1', port: 0, pipeline: echoPipeline() });
      inProcess.push(single);
      const onSingle = await runToExit([FAULT_APP, '--port', String(single.address().port)], children, 10_000);
      expect(onSingle.code).to.equal(1);
      expect(onSingle.stderr).to.contain(`EADDRINUSE`);
      const plain = createServer();
      await new Promise<void>((resolve) => plain.listen(0, '127.0.0.1', resolve));
      try {
        const port = (plain.address() as { port: number }).port;
        const onNode = await runToExit([FAULT_APP, '--port', String(port)], children, 10_000);
        expect(onNode.code).to.equal(1);
        expect(onNode.stderr).to.contain(`127.0.0.1:${port}`);
      } finally {
        await new Promise((resolve) => plain.close(resolve));
      }
      // An in-process server on a master's port.
      const master = await startApp(['--workers', '2']);
      clusters.push(master);
      let failure: unknown;
      try {
        inProcess.push(
          await Server.listen({
            workers: 0,
            host: '127.0.0.1',
            port: master.port,
            pipeline: echoPipeline(),
            logger: silentLogger,
          }),
        );
      } catch (err) {
        failure = err;
      }
      expect(failure).to.be.instanceOf(SyscallError);
      expect((failure as SyscallError).code).to.equal('EADDRINUSE');
      expect((failure as SyscallError).message).to.contain(`127.0.0.1:${master.port}`);
    });

    it('reusePort: true joins a master on purpose: the kernel spreads connections across both', async () => {
      const first = await startApp(['--workers', '1']);
      clusters.push(first);
      const second = await startApp(['--workers', '1', '--reuse-port', '--port', String(first.port)]);
      clusters.push(second);
      expect(second.port).to.equal(first.port);
      const [a] = await first.readyPids();
      const [b] = await second.readyPids();
      const answered = await servers(first.port, 60);
      expect([...answered].sort()).to.deep.equal([a, b].sort());
    });
  });

  describe('reloads requested during a reload (item 7)', () => {
    it('SIGUSR2 during a rolling reload queues one more pass: every worker ends on the code of the last request', async () => {
      // The workers run a script that says which version it is; the test rewrites it.
      const script = tempPath('app.mjs');
      const slow = tempPath('slow');
      files.push(script, slow);
      const version = (v: string) =>
        writeFileSync(
          script,
          `globalThis.MASTER_APP_VERSION = '${v}';\nawait import(${JSON.stringify(pathToFileURL(FAULT_APP).href)});\n`,
        );
      version('v3');
      const c = await Cluster.start([], { ...process.env, SLOW_START_FILE: slow }, undefined, undefined, [
        script,
        '--workers',
        '3',
      ]);
      clusters.push(c);
      const v3 = await c.readyPids();
      // New workers take 400 ms more to load: the reload lasts long enough to be interrupted.
      writeFileSync(slow, '400');
      version('v4');
      process.kill(c.pid, 'SIGUSR2');
      await waitFor(() => v3.some((pid) => !alive(pid)), 'the first old worker to exit', 15_000);
      version('v5');
      process.kill(c.pid, 'SIGUSR2');
      await waitFor(() => count(c, /reload done/) >= 2, 'two reload passes', 30_000);
      expect(c.stderr()).to.match(/reload requested while a reload runs: one more pass queued/);
      const answers = new Set<string>();
      for (let i = 0; i < 60; i++) answers.add((await ask(c.port, 'version')).split(' ')[0] as string);
      expect([...answers]).to.deep.equal(['v5']);
      const ready = await c.readyPids();
      expect(ready).to.have.length(3);
      for (const pid of ready) expect(v3, 'every v3 worker replaced').not.to.include(pid);
    });

    it('reload() during a reload resolves with the pass that covers it; more requests join that pass', async () => {
      const slow = tempPath('slow');
      files.push(slow);
      const c = await startApp(['--workers', '2'], { ...process.env, SLOW_START_FILE: slow });
      clusters.push(c);
      writeFileSync(slow, '300');
      const first = c.command<{ ok: boolean; replaced: unknown[] }>('reload', 30_000);
      await waitFor(() => /reload: replacing/.test(c.stderr()), 'the first pass to start');
      // Three more requests while it runs: one queued pass, which the other two join. (Through
      // stdin, one reload() each: signals of one kind sent back to back may merge into one.)
      for (let i = 0; i < 3; i++) c.child.stdin?.write('reload\n');
      expect((await first).ok).to.equal(true);
      await waitFor(() => count(c, /reload done/) >= 2, 'the queued pass', 30_000);
      await new Promise((r) => setTimeout(r, 1500));
      expect(count(c, /reload done/), 'one queued pass for three requests').to.equal(2);
      expect(count(c, /one more pass queued/)).to.equal(1);
      expect(count(c, /joins the pass already queued/)).to.equal(2);
      // Each of the four reload() calls resolved, the last three with the queued pass's result.
      const results = c
        .stdout()
        .split('\n')
        .filter((l) => l.startsWith('reload '))
        .map((l) => JSON.parse(l.slice('reload '.length)) as { ok: boolean; durationMs: number });
      expect(results.map((r) => r.ok)).to.deep.equal([true, true, true, true]);
      expect(new Set(results.slice(1).map((r) => r.durationMs)).size, 'one pass for the last three').to.equal(1);
    });
  });

  describe('crash loops (item 8)', () => {
    it('every slot in a crash loop: the master exits 1 with an error line naming each slot and its last exit', async () => {
      const crash = tempPath('crash');
      files.push(crash);
      const c = await startApp(['--workers', '2', '--max-crashes', '2', '--restart-delay', '10'], {
        ...process.env,
        CRASH_FILE: crash,
      });
      clusters.push(c);
      const workers = await c.readyPids();
      const exited = once(c.child, 'exit');
      writeFileSync(crash, 'crash');
      for (const pid of workers) process.kill(pid, 'SIGKILL');
      const [code] = (await exited) as [number | null];
      expect(code).to.equal(1);
      expect(c.stderr()).to.match(
        /every worker slot is in a crash loop \(slot 0: exited with code 3( before it was ready)?; slot 1: exited with code 3( before it was ready)?\): stopping, exit status 1/,
      );
      await waitFor(() => [...c.pids].every((pid) => !alive(pid)), 'every process to be gone');
    });

    it('a slot abandoned in a crash loop is retried by a reload, on a new socket, and serves again', async () => {
      const crash = tempPath('crash');
      files.push(crash);
      const c = await startApp(['--workers', '2', '--max-crashes', '1', '--restart-delay', '10'], {
        ...process.env,
        CRASH_FILE: crash,
      });
      clusters.push(c);
      const rows = await c.workers();
      const slot0 = rows.find((w) => w.slot === 0)?.pid as number;
      const slot1 = rows.find((w) => w.slot === 1)?.pid as number;
      writeFileSync(`${crash}.0`, 'crash');
      files.push(`${crash}.0`);
      process.kill(slot0, 'SIGKILL');
      await waitFor(() => /slot 0: crash loop/.test(c.stderr()), 'slot 0 to be abandoned', 15_000);
      expect([...(await servers(c.port, 20))], 'slot 1 serves alone').to.deep.equal([slot1]);
      rmSync(`${crash}.0`);
      const result = await c.command<{ ok: boolean; replaced: Array<{ slot: number; newPid: number }> }>('reload');
      expect(result.ok).to.equal(true);
      const back = result.replaced.find((r) => r.slot === 0)?.newPid as number;
      expect(back, 'slot 0 replaced').to.be.a('number');
      c.pids.add(back);
      await new Promise((r) => setTimeout(r, 300));
      expect(alive(back), 'the new slot-0 worker keeps running').to.equal(true);
      const answered = await servers(c.port, 60);
      expect(answered.has(back), 'the kernel routes connections to the new socket').to.equal(true);
      expect(c.stderr()).to.match(/slot 0: serving again after its crash loop/);
    });
  });

  describe('a master whose parent dies (item 9)', () => {
    /** The fault app started the way `npm start` does: through `sh -c`, which stays its parent. */
    async function underShell(args: string[]): Promise<Cluster> {
      const line = `"${process.execPath}" "${FAULT_APP}" ${args.join(' ')}; echo "master exited $?" >&2`;
      const c = await Cluster.start([], process.env, undefined, '/bin/sh', ['-c', line]);
      clusters.push(c);
      c.pids.add(masterPid(c));
      return c;
    }

    it('killing the shell that npm start runs stops the master gracefully, workers and all', async () => {
      const c = await underShell(['--workers', '2']);
      const master = masterPid(c);
      const workers = await c.readyPids();
      const shell = once(c.child, 'exit');
      c.child.kill('SIGKILL');
      await shell;
      await waitFor(() => !alive(master) && workers.every((pid) => !alive(pid)), 'master and workers to stop', 15_000);
      expect(c.stderr()).to.match(/its parent process \d+ is gone: stopping gracefully/);
      expect(c.stderr()).to.match(/stopped, every worker reaped/);
    });

    it('SIGTERM to `npm start` stops the master and its workers (the sh -c between them dies without passing it on)', async function () {
      const npm = spawnSync('npm', ['--version'], { encoding: 'utf8' });
      if (npm.status !== 0) {
        console.log('      (skipped: npm is not on PATH; Debian package: npm)');
        this.skip();
      }
      const dir = tempPath('npm-app');
      mkdirSync(dir);
      files.push(dir);
      writeFileSync(
        join(dir, 'package.json'),
        JSON.stringify({
          name: 'mr-npm-start',
          version: '1.0.0',
          private: true,
          scripts: { start: `node ${JSON.stringify(FAULT_APP)} --workers 2` },
        }),
      );
      const c = await Cluster.start([], process.env, undefined, 'npm', ['start', '--prefix', dir]);
      clusters.push(c);
      const master = masterPid(c);
      c.pids.add(master);
      const workers = await c.readyPids();
      c.child.kill('SIGTERM');
      await waitFor(() => !alive(master) && workers.every((pid) => !alive(pid)), 'master and workers to stop', 20_000);
      expect(c.stderr()).to.match(/its parent process \d+ is gone: stopping gracefully/);
    });

    it('daemon: true keeps a master running without its parent, on purpose', async () => {
      const c = await underShell(['--workers', '1', '--daemon']);
      const master = masterPid(c);
      const shell = once(c.child, 'exit');
      c.child.kill('SIGKILL');
      await shell;
      await new Promise((r) => setTimeout(r, 2500));
      expect(alive(master)).to.equal(true);
      expect(await whoServes(c.port)).to.be.greaterThan(0);
    });

    it('the exit of the parent thread that spawned it is not the death of the parent', async () => {
      // PR_SET_PDEATHSIG fires when the *thread* that forked us exits: here a worker_thread of a
      // parent that lives on. The master must keep serving, then stop when the parent dies.
      const parent = tempPath('parent.mjs');
      files.push(parent);
      const port = await freePort();
      // The thread stays until the master serves (its death signal is armed by then), then ends.
      writeFileSync(
        parent,
        `import { Worker } from 'node:worker_threads';
const w = new Worker(\`
  const { spawn } = require('node:child_process');
  const net = require('node:net');
  const c = spawn(process.execPath, [${JSON.stringify(FAULT_APP)}, '--workers', '1', '--port', '${port}'], { stdio: 'inherit' });
  c.unref();
  const probe = () => {
    const s = net.connect(${port}, '127.0.0.1');
    s.on('connect', () => s.write('pid\\\\n'));
    s.on('data', () => { s.destroy(); setTimeout(() => {}, 500); });
    s.on('error', () => setTimeout(probe, 50));
  };
  probe();
\`, { eval: true });
w.on('exit', () => process.stderr.write('parent: the spawning thread exited\\n'));
setInterval(() => {}, 1000);
`,
      );
      const c = await Cluster.start([], { ...process.env, MULTIREACTOR_DEBUG: '1' }, undefined, process.execPath, [
        parent,
      ]);
      clusters.push(c);
      const master = masterPid(c);
      c.pids.add(master);
      await waitFor(() => /the spawning thread exited/.test(c.stderr()), 'the thread to exit');
      await new Promise((r) => setTimeout(r, 2500));
      expect(c.stderr(), 'the signal came').to.match(/SIGPWR: the thread that started this process exited/);
      expect(alive(master), 'the master serves on').to.equal(true);
      expect(await whoServes(c.port)).to.be.greaterThan(0);
      const workers = await c.readyPids();
      c.child.kill('SIGKILL');
      await waitFor(() => !alive(master) && workers.every((pid) => !alive(pid)), 'the master to stop', 15_000);
    });

    it('a worker still loading when its master is killed with SIGKILL goes too', async () => {
      const slow = tempPath('slow');
      files.push(slow);
      const c = await startApp(['--workers', '1'], { ...process.env, SLOW_START_FILE: slow });
      clusters.push(c);
      const [serving] = await c.readyPids();
      writeFileSync(slow, '20000');
      c.child.stdin?.write('reload\n');
      const loading = (await c.waitForWorker((w) => w.state === 'starting', 'a worker to be loading')).pid;
      const exited = once(c.child, 'exit');
      c.child.kill('SIGKILL');
      await exited;
      await waitFor(() => !alive(loading) && !alive(serving as number), 'both workers to exit', 5000);
    });

    it("a worker's own children, which inherit its environment, are not taken for workers", async () => {
      const c = await startApp(['--workers', '1']);
      clusters.push(c);
      const [child, worker] = (await ask(c.port, 'spawn')).split(' ').map(Number) as [number, number];
      c.pids.add(child);
      await new Promise((r) => setTimeout(r, 1500));
      expect(alive(child), 'it loaded the framework and lives on').to.equal(true);
      process.kill(worker, 'SIGKILL');
      await new Promise((r) => setTimeout(r, 1500));
      expect(alive(child), 'the death of the worker, its parent, does not end it').to.equal(true);
    });
  });

  describe('restarting a killed worker (item 10)', () => {
    it('the first crash of a slot restarts at once; the second waits restartDelay', async () => {
      const c = await startApp(['--workers', '2', '--restart-delay', '5000']);
      clusters.push(c);
      const known = new Set(await c.readyPids());
      /** Kills `victim`; resolves with its replacement's pid and the ms until it was ready. */
      const replace = async (victim: number): Promise<[number, number]> => {
        const t0 = Date.now();
        process.kill(victim, 'SIGKILL');
        const fresh = (
          await c.waitForWorker((w) => w.state === 'ready' && !known.has(w.pid), 'the replacement', 20_000)
        ).pid;
        known.add(fresh);
        return [fresh, Date.now() - t0];
      };
      const [fresh, ms] = await replace([...known][0] as number);
      expect(c.stderr()).to.match(/restarting now \(crash 1 in the window\)/);
      expect(ms, 'ms until the first replacement is ready').to.be.lessThan(5000);
      // The same slot again: its second crash within the window waits restartDelay.
      const [, ms2] = await replace(fresh);
      expect(ms2, 'ms until the second replacement is ready').to.be.at.least(5000);
      expect(c.stderr()).to.match(/restarting in 5000 ms \(crash 2 in the window\)/);
      expect(c.stderr()).to.match(/ready after a restart: \d+ ms after the crash, \d+ ms to start/);
    });
  });
});
