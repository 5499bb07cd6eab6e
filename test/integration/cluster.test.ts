/**
 * Master and workers as real processes, driven by real signals: sharing the port, reload under
 * load, a worker killed under load, a broken reload, graceful stop, a master killed with
 * SIGKILL, LISTEN_FDS inheritance and master upgrade. Every process a test starts is known by
 * pid and is gone when the test ends, also when it fails.
 */

import { once } from 'node:events';
import { rmSync, writeFileSync } from 'node:fs';
import type net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { HTTP, type LoadHandle, type LoadReport, startLoad } from '../../benchmarks/common/closed-loop.js';
import { close as sysClose } from '../../src/syscalls/libc.js';
import { localAddress, openListenSocket } from '../../src/syscalls/socket.js';
import { APP, alive, Cluster, HTTP_APP, type WorkerRow, whoServes } from './cluster-support.js';
import { connect, destroyAll, waitFor } from './helpers.js';

/** Sends SIGUSR2 `times` times, `gapMs` apart, each after the last reload is done; then stops the load. */
async function reloadUnderLoad(c: Cluster, load: LoadHandle, times: number, gapMs: number): Promise<LoadReport> {
  for (let i = 0; i < times; i++) {
    await new Promise((r) => setTimeout(r, gapMs));
    const reloadsBefore = (c.stderr().match(/reload done/g) ?? []).length;
    process.kill(c.pid, 'SIGUSR2');
    await waitFor(() => (c.stderr().match(/reload done/g) ?? []).length > reloadsBefore, 'the reload', 15_000);
    for (const w of await c.workers()) c.pids.add(w.pid);
  }
  await new Promise((r) => setTimeout(r, 1000));
  return load.stop();
}

/** No failed connect, no reset, every request answered, and a real load. */
function expectNothingLost(report: LoadReport): void {
  expect(report.connectFailures, 'failed connections').to.deep.equal({});
  expect(report.resets, 'resets').to.deep.equal({});
  expect(report.unanswered, 'unanswered requests').to.equal(0);
  expect(report.answered).to.equal(report.requests);
  expect(report.answered, 'the load ran').to.be.greaterThan(1000);
}

describe('master and workers (real processes, real signals)', function () {
  this.timeout(60_000);
  let cluster: Cluster | undefined;
  const extra: Cluster[] = [];

  afterEach(async () => {
    await cluster?.teardown();
    cluster = undefined;
    for (const c of extra.splice(0)) await c.teardown();
  });

  for (const balance of ['reuseport', 'shared'] as const) {
    it(`${balance}: every worker accepts some of many connections`, async () => {
      cluster = await Cluster.start(['--workers', '3', '--balance', balance]);
      const c = cluster;
      const pids = new Set(await c.readyPids());
      expect(pids.size).to.equal(3);
      // Many connections at once, each kept open while the others arrive.
      const sockets: net.Socket[] = [];
      const seen = new Map<number, number>();
      try {
        for (let round = 0; round < 6 && seen.size < 3; round++) {
          const batch = await Promise.all(Array.from({ length: 40 }, () => connect(c.port)));
          sockets.push(...batch);
          const answers = await Promise.all(
            batch.map(
              (s) =>
                new Promise<number>((resolve) => {
                  s.once('data', (d: Buffer) => resolve(Number(d.toString().trim())));
                  s.write('pid\n');
                }),
            ),
          );
          for (const pid of answers) seen.set(pid, (seen.get(pid) ?? 0) + 1);
        }
      } finally {
        await destroyAll(sockets);
      }
      expect([...seen.keys()].sort()).to.deep.equal([...pids].sort());
      const stats = await c.command<{
        balance: { minAccepted: number; maxAccepted: number };
        workers: unknown[];
        total: { accepted: number; requests: number };
      }>('stats');
      expect(stats.workers).to.have.length(3);
      expect(stats.balance.minAccepted).to.be.greaterThan(0);
      const asked = [...seen.values()].reduce((a, b) => a + b, 0);
      expect(stats.total.accepted, 'connections counted by the workers').to.equal(asked);
      expect(stats.total.requests, 'requests counted by the workers').to.equal(asked);
    });
  }

  it('reload under load: SIGUSR2 three times, nothing fails, every worker pid is new', async () => {
    cluster = await Cluster.start(['--workers', '2']);
    const c = cluster;
    const before = await c.readyPids();
    const report = await reloadUnderLoad(c, startLoad(c.port, 50), 3, 2500);
    const after = await c.readyPids();
    expectNothingLost(report);
    expect(after).to.have.length(2);
    for (const pid of after) expect(before, 'new pids').not.to.include(pid);
    // The old generations are gone.
    await waitFor(() => before.every((pid) => !alive(pid)), 'the old workers to exit');
  });

  it('HTTP reload under load: SIGUSR2 twice with 50 keep-alive connections, no request lost', async () => {
    // Idle keep-alive connections are not closed at once when their worker drains (drainGrace):
    // a request already sent on one would be lost, and under this load that is most of them.
    cluster = await Cluster.start(['--workers', '2'], process.env, undefined, undefined, [HTTP_APP, '--workers', '2']);
    const c = cluster;
    const before = await c.readyPids();
    const report = await reloadUnderLoad(c, startLoad(c.port, 50, { protocol: HTTP }), 2, 1500);
    expectNothingLost(report);
    const after = await c.readyPids();
    for (const pid of after) expect(before, 'new pids').not.to.include(pid);
    expect(
      [...report.byPid.keys()].some((pid) => after.includes(pid)),
      'the new workers served',
    ).to.equal(true);
  });

  it('kill -9 of a worker under load: replaced within a second, others keep serving, queued connections served', async () => {
    cluster = await Cluster.start(['--workers', '3']);
    const c = cluster;
    const rows = await c.workers();
    const victim = rows[0] as WorkerRow;
    const others = rows.slice(1).map((w) => w.pid);
    const load = startLoad(c.port, 30);
    await new Promise((r) => setTimeout(r, 1000));
    const atKill = load.snapshot();
    const t0 = Date.now();
    process.kill(victim.pid, 'SIGKILL');
    // Connections opened now may be queued on the dead slot's socket: they must be served.
    const queued = Promise.all(Array.from({ length: 30 }, () => whoServes(c.port)));
    let replacement: number | undefined;
    await waitFor(
      () => {
        void c.workers().then((ws) => {
          const w = ws.find((x) => x.slot === victim.slot && x.state === 'ready' && x.pid !== victim.pid);
          if (w !== undefined && replacement === undefined) replacement = w.pid;
        });
        return replacement !== undefined;
      },
      'a replacement worker',
      5000,
    );
    const replacedAfter = Date.now() - t0;
    const servedBy = await queued;
    await new Promise((r) => setTimeout(r, 500));
    const end = load.snapshot();
    await load.stop();
    expect(replacedAfter, 'ms until the replacement serves').to.be.lessThan(1000);
    expect(
      servedBy.every((pid) => pid > 0),
      'every queued connection was answered',
    ).to.equal(true);
    for (const pid of others) {
      expect(end.byPid.get(pid) ?? 0, `worker ${pid} kept serving`).to.be.greaterThan(atKill.byPid.get(pid) ?? 0);
    }
    expect(servedBy, 'connections queued on the dead slot were served by its replacement').to.include(replacement);
  });

  it('a reload whose new workers throw at start fails, and the old workers keep serving', async () => {
    const marker = join(tmpdir(), `mr-broken-${process.pid}-${Date.now()}`);
    cluster = await Cluster.start(['--workers', '2'], { ...process.env, FAIL_START_FILE: marker });
    const c = cluster;
    const before = (await c.readyPids()).sort();
    try {
      writeFileSync(marker, 'broken');
      const load = startLoad(c.port, 10);
      const result = await c.command<{ ok: boolean; error?: string }>('reload');
      const report = await load.stop();
      expect(result.ok).to.equal(false);
      expect(result.error).to.match(/before it was ready|not ready/);
      expect((await c.readyPids()).sort(), 'the same workers').to.deep.equal(before);
      expect(report.unanswered + Object.keys(report.resets).length).to.equal(0);
      expect(c.stderr()).to.match(/reload failed/);
    } finally {
      rmSync(marker, { force: true });
    }
    // Fixed deployment: the next reload goes through.
    const ok = await c.command<{ ok: boolean }>('reload');
    expect(ok.ok).to.equal(true);
  });

  it('graceful stop under load: in-flight requests are answered, the master exits 0, nothing is left', async () => {
    cluster = await Cluster.start(['--workers', '2', '--drain-timeout', '5000']);
    const c = cluster;
    await c.workers();
    const slow = await Promise.all(Array.from({ length: 6 }, () => connect(c.port)));
    const answers = slow.map(
      (s, i) =>
        new Promise<string>((resolve) => {
          let got = '';
          s.on('data', (d: Buffer) => {
            got += d.toString();
          });
          s.on('close', () => resolve(got.trim()));
          s.on('error', () => {});
          s.write(`slow 700 ${i}\n`);
        }),
    );
    await new Promise((r) => setTimeout(r, 100));
    const exited = once(c.child, 'exit');
    process.kill(c.pid, 'SIGTERM');
    const [code, signal] = (await exited) as [number | null, string | null];
    const got = await Promise.all(answers);
    expect({ code, signal }).to.deep.equal({ code: 0, signal: null });
    for (const [i, line] of got.entries()) expect(line).to.match(new RegExp(`^${i} \\d+ bye$`));
    for (const pid of c.pids) expect(alive(pid), `process ${pid}`).to.equal(false);
  });

  it('a master killed with SIGKILL leaves no orphans: its workers drain and exit', async () => {
    cluster = await Cluster.start(['--workers', '2', '--drain-timeout', '1000']);
    const c = cluster;
    const workers = await c.readyPids();
    const exited = once(c.child, 'exit');
    process.kill(c.pid, 'SIGKILL');
    await exited;
    await waitFor(() => workers.every((pid) => !alive(pid)), 'the workers to exit on their own', 5000);
  });

  it('LISTEN_FDS: a fresh master serves on a socket it inherits instead of binding', async () => {
    const fd = openListenSocket({ host: '127.0.0.1', port: 0, backlog: 64, reusePort: true });
    try {
      const port = localAddress(fd).port;
      // sd_listen_fds: LISTEN_PID must be the pid of the process that reads it; a shell sets it
      // and exec()s node, keeping its pid and the descriptor at 3.
      cluster = await Cluster.start([], { ...process.env, LISTEN_FDS: '1' }, [fd], '/bin/sh', [
        '-c',
        'LISTEN_PID=$$; export LISTEN_PID; exec "$0" "$@"',
        process.execPath,
        APP,
        '--workers',
        '2',
      ]);
      expect(cluster.port).to.equal(port);
      expect(cluster.stderr()).to.match(/inherited socket/);
      const pid = await whoServes(port);
      expect((await cluster.readyPids()).includes(pid)).to.equal(true);
    } finally {
      sysClose(fd);
    }
  });

  it('upgrade: a new master takes over the sockets under load without dropping anything', async () => {
    cluster = await Cluster.start(['--workers', '2']);
    const c = cluster;
    const oldWorkers = await c.readyPids();
    const load = startLoad(c.port, 20);
    await new Promise((r) => setTimeout(r, 500));
    const exited = once(c.child, 'exit');
    const newMaster = await c.command<number>('upgrade', 30_000);
    c.pids.add(newMaster);
    const [code] = (await exited) as [number | null];
    await new Promise((r) => setTimeout(r, 500));
    const report = await load.stop();
    expect(code, 'the old master exits 0').to.equal(0);
    expect(alive(newMaster), 'the new master serves').to.equal(true);
    expect(report.connectFailures).to.deep.equal({});
    expect(report.resets).to.deep.equal({});
    expect(report.unanswered).to.equal(0);
    const servedByNew = [...report.byPid.keys()].filter((pid) => !oldWorkers.includes(pid));
    expect(servedByNew.length, 'the new master’s workers answered').to.be.greaterThan(0);
    await waitFor(() => oldWorkers.every((pid) => !alive(pid)), 'the old workers to exit');
    // The new master is not our child: stop it by pid, gracefully, and wait for its tree.
    const pid = await whoServes(c.port);
    c.pids.add(pid);
    process.kill(newMaster, 'SIGTERM');
    await waitFor(() => !alive(newMaster) && !alive(pid), 'the new master and its workers to stop', 10_000);
  });
});
