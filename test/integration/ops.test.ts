/**
 * Operating a master (docs/operations.md), with real processes, signals and sockets: the
 * `multireactor` command line against a real master (status as a table and as JSON, reload under
 * HTTP load without a failed request, a reload that fails, stop), `/metrics` read by the real
 * Prometheus parser, `/healthz` and `/readyz` through a drain and through `shutdownDelay`, the pid
 * file, Unix socket listeners, and structured logs through pino.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, linkSync, lstatSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { HTTP, startLoad } from '../../benchmarks/common/closed-loop.js';
import { alive } from './cluster-support.js';
import { waitFor } from './helpers.js';
import {
  adminPort,
  cli,
  get,
  OpsProcess,
  parseExposition,
  prometheusParserMissing,
  sampleValue,
  status,
} from './ops-support.js';

describe('operations: the multireactor command line, metrics, health, pid file, Unix sockets, logs', function () {
  this.timeout(60_000);
  let dir: string;
  const started: OpsProcess[] = [];

  const start = async (args: readonly string[], env?: NodeJS.ProcessEnv): Promise<OpsProcess> => {
    const p = await OpsProcess.start(args, env);
    started.push(p);
    return p;
  };

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'mr-ops-'));
  });

  afterEach(async () => {
    for (const p of started.splice(0)) await p.teardown();
    rmSync(dir, { recursive: true, force: true });
  });

  it('status: one row per worker as a table, and as JSON with a workers array', async () => {
    const pidFile = join(dir, 'app.pid');
    const m = await start(['--workers', '2', '--pid-file', pidFile, '--admin-port', '0']);
    for (let i = 0; i < 6; i++) expect((await get({ port: m.port }, '/')).status).to.equal(200);

    const s = await status(['--pid-file', pidFile]);
    m.remember(s);
    expect(s.master.pid).to.equal(m.pid);
    expect(s.master.phase).to.equal('serving');
    expect(s.master.ready).to.equal(true);
    expect(s.master.address).to.equal(`127.0.0.1:${m.port}`);
    expect(s.master.control).to.equal(join(dir, 'app.ctl.sock'));
    expect(s.workers).to.have.length(2);
    expect(s.workers.map((w) => w.slot)).to.deep.equal([0, 1]);
    for (const w of s.workers) {
      expect(Object.keys(w).sort()).to.deep.equal(
        [
          'connections',
          'generation',
          'pid',
          'requests',
          'restarts',
          'rssBytes',
          'slot',
          'state',
          'uptimeSeconds',
        ].sort(),
      );
      expect(w.state).to.equal('serving');
      expect(w.generation).to.equal(1);
      expect(w.restarts).to.equal(0);
      expect(alive(w.pid)).to.equal(true);
      expect(w.rssBytes).to.be.greaterThan(10 * 1024 * 1024);
      expect(w.uptimeSeconds).to.be.at.least(0);
      expect(w.connections).to.equal(0);
    }
    expect(s.workers.reduce((n, w) => n + (w.requests ?? 0), 0)).to.equal(6);

    const table = await cli(['status', '--pid-file', pidFile]);
    expect(table.status).to.equal(0);
    const lines = table.stdout.split('\n');
    expect(lines[0]).to.match(new RegExp(`^master ${m.pid}  serving  ready  up `));
    const header = lines.findIndex((l) => l.startsWith('SLOT'));
    expect(lines[header]).to.match(/^SLOT\s+PID\s+GEN\s+STATE\s+UPTIME\s+CONNS\s+REQUESTS\s+RSS\s+RESTARTS$/);
    for (const w of s.workers) {
      const row = lines.find((l) => l.startsWith(`${w.slot} `));
      expect(row, `the row of slot ${w.slot}`).to.match(new RegExp(`^${w.slot}\\s+${w.pid}\\s+1\\s+serving\\s+`));
      expect(row).to.match(/MiB\s+0$/);
    }
    // The same through --control.
    const byControl = await status(['--control', join(dir, 'app.ctl.sock')]);
    expect(byControl.workers.map((w) => w.pid)).to.deep.equal(s.workers.map((w) => w.pid));
  });

  it('reload under HTTP load: no failed request, new pids, exit status 0; counters stay monotonic', async function () {
    const control = join(dir, 'ctl.sock');
    const m = await start(['--workers', '2', '--control', control, '--admin-port', '0']);
    const before = await status(['--control', control]);
    m.remember(before);
    const load = startLoad(m.port, 40, { protocol: HTTP });
    await new Promise((r) => setTimeout(r, 800));
    const r = await cli(['reload', '--control', control]);
    expect(r.status, r.stderr).to.equal(0);
    expect(r.stdout).to.match(/^reloaded in \d+ ms: slot 0: \d+ -> \d+, slot 1: \d+ -> \d+\n$/);
    await new Promise((r) => setTimeout(r, 800));
    const report = await load.stop();
    expect(report.connectFailures, 'failed connections').to.deep.equal({});
    expect(report.resets, 'resets').to.deep.equal({});
    expect(report.unanswered, 'unanswered requests').to.equal(0);
    expect(report.answered).to.equal(report.requests);
    expect(report.answered, 'the load ran').to.be.greaterThan(500);

    const after = await status(['--control', control]);
    m.remember(after);
    for (const w of after.workers) {
      expect(before.workers.map((b) => b.pid)).not.to.include(w.pid);
      expect(w.generation).to.equal(2);
    }
    expect(after.master.reloads).to.deep.equal({ ok: 1, failed: 0 });
    const missing = prometheusParserMissing();
    if (missing !== undefined) {
      console.log(`      (metrics part skipped: ${missing})`);
      return;
    }
    // Every request of the load is in the totals, though the workers that answered most are gone.
    const text = (await get({ port: adminPort(after) }, '/metrics')).body;
    const families = parseExposition(text);
    expect(sampleValue(families, 'multireactor_requests_total')).to.be.at.least(report.answered);
    expect(sampleValue(families, 'multireactor_http_responses_total', { code: '2xx' })).to.be.at.least(report.answered);
    expect(sampleValue(families, 'multireactor_reloads_total', { result: 'ok' })).to.equal(1);
    if (this.currentTest) this.currentTest.title += ` (${report.answered} requests)`;
  });

  it('reload that fails: exit status 1 with the reason, the old workers keep serving', async () => {
    const control = join(dir, 'ctl.sock');
    const failFile = join(dir, 'fail');
    const m = await start(['--workers', '2', '--control', control], { ...process.env, FAIL_START_FILE: failFile });
    const before = await status(['--control', control]);
    m.remember(before);
    writeFileSync(failFile, '');
    const r = await cli(['reload', '--control', control]);
    expect(r.status).to.equal(1);
    expect(r.stderr).to.match(
      /^multireactor: reload failed after \d+ ms: slot 0: worker \d+ \(slot 0\) exited with code 3 before it was ready; the workers before it keep serving\n$/,
    );
    const after = await status(['--control', control]);
    expect(after.workers.map((w) => w.pid)).to.deep.equal(before.workers.map((w) => w.pid));
    expect(after.master.reloads).to.deep.equal({ ok: 0, failed: 1 });
    expect((await get({ port: m.port }, '/')).status).to.equal(200);
  });

  it('stop --timeout: drains, the master exits 0, pid file and control socket removed', async () => {
    const pidFile = join(dir, 'app.pid');
    const m = await start(['--workers', '2', '--pid-file', pidFile]);
    const s = await status(['--pid-file', pidFile]);
    m.remember(s);
    expect(existsSync(pidFile)).to.equal(true);
    const r = await cli(['stop', '--pid-file', pidFile, '--timeout', '5']);
    expect(r.status, r.stderr).to.equal(0);
    expect(r.stdout).to.match(/^stopped in \d+ ms \(multireactor stop\)\n$/);
    expect(await m.exited).to.deep.equal({ code: 0, signal: null });
    for (const w of s.workers) expect(alive(w.pid), `worker ${w.pid}`).to.equal(false);
    expect(existsSync(pidFile), 'pid file').to.equal(false);
    expect(existsSync(join(dir, 'app.ctl.sock')), 'control socket').to.equal(false);
    expect(m.stderr()).to.match(/stop requested on the control socket \(drain 5000 ms\)/);
    // Nobody there any more: exit status 3, said plainly.
    const gone = await cli(['status', '--control', join(dir, 'app.ctl.sock')]);
    expect(gone.status).to.equal(3);
    expect(gone.stderr).to.match(/cannot reach the master at .*: no such socket/);
  });

  it('usage errors exit 2; a stale control socket exits 3', async () => {
    expect((await cli(['status'])).status).to.equal(2);
    expect((await cli(['frobnicate', '--control', '/x'])).status).to.equal(2);
    expect((await cli(['status', '--timeout', '3', '--control', '/x'])).status).to.equal(2);
    const help = await cli(['--help']);
    expect(help.status).to.equal(0);
    expect(help.stdout).to.match(/^usage: multireactor status\|reload\|stop\|metrics/);
    // A socket file nobody listens on (what a master killed with SIGKILL leaves): a hard link keeps
    // one after node's server, which removes its own path at close, has closed.
    const path = join(dir, 'live.sock');
    const copy = join(dir, 'stale.sock');
    const srv = net.createServer();
    await new Promise<void>((r) => srv.listen(path, r));
    linkSync(path, copy);
    await new Promise<void>((r) => srv.close(() => r()));
    const r = await cli(['status', '--control', copy]);
    expect(r.status).to.equal(3);
    expect(r.stderr).to.match(/nothing listens on it/);
  });

  it('/metrics parses with the Prometheus parser: per worker and summed, every family typed', async function () {
    const missing = prometheusParserMissing();
    if (missing !== undefined) {
      console.log(`      skipped: ${missing}`);
      this.skip();
    }
    const m = await start(['--workers', '2', '--admin-port', '0', '--control', join(dir, 'ctl.sock')]);
    const s = await status(['--control', join(dir, 'ctl.sock')]);
    m.remember(s);
    for (let i = 0; i < 20; i++) await get({ port: m.port }, '/');
    for (let i = 0; i < 3; i++) await get({ port: m.port }, '/missing');
    await get({ port: m.port }, '/slow?ms=120');
    const res = await get({ port: adminPort(s) }, '/metrics');
    expect(res.status).to.equal(200);
    expect(res.headers['content-type']).to.equal('text/plain; version=0.0.4; charset=utf-8');
    const families = parseExposition(res.body);
    const byName = new Map(families.map((f) => [f.name, f]));
    // prometheus_client names a counter family without its _total.
    const expected: Array<[string, string]> = [
      ['multireactor_ready', 'gauge'],
      ['multireactor_workers', 'gauge'],
      ['multireactor_reloads', 'counter'],
      ['multireactor_accepted_balance_ratio', 'gauge'],
      ['multireactor_worker_info', 'gauge'],
      ['multireactor_connections_open', 'gauge'],
      ['multireactor_connections_accepted', 'counter'],
      ['multireactor_connections_closed', 'counter'],
      ['multireactor_received_bytes', 'counter'],
      ['multireactor_sent_bytes', 'counter'],
      ['multireactor_requests', 'counter'],
      ['multireactor_http_responses', 'counter'],
      ['multireactor_http_request_duration_seconds', 'histogram'],
      ['multireactor_accept_pauses', 'counter'],
      ['multireactor_offload_tasks', 'counter'],
      ['multireactor_offload_queued_tasks', 'gauge'],
      ['multireactor_offload_running_tasks', 'gauge'],
      ['multireactor_restarts', 'counter'],
      ['multireactor_worker_connections_open', 'gauge'],
      ['multireactor_worker_connections_accepted', 'counter'],
      ['multireactor_worker_requests', 'counter'],
      ['multireactor_worker_http_request_duration_seconds', 'histogram'],
      ['multireactor_worker_resident_memory_bytes', 'gauge'],
      ['multireactor_worker_restarts', 'counter'],
      ['process_start_time_seconds', 'gauge'],
    ];
    for (const [name, type] of expected) {
      expect(byName.get(name)?.type, name).to.equal(type);
    }
    expect(sampleValue(families, 'multireactor_ready')).to.equal(1);
    expect(sampleValue(families, 'multireactor_workers', { state: 'serving' })).to.equal(2);
    expect(sampleValue(families, 'multireactor_requests_total')).to.equal(24);
    expect(sampleValue(families, 'multireactor_http_responses_total', { code: '2xx' })).to.equal(21);
    expect(sampleValue(families, 'multireactor_http_responses_total', { code: '4xx' })).to.equal(3);
    expect(sampleValue(families, 'multireactor_connections_accepted_total')).to.equal(24);
    // The sum is the sum of the workers', for every counter.
    for (const name of [
      'multireactor_requests_total',
      'multireactor_connections_accepted_total',
      'multireactor_received_bytes_total',
    ]) {
      const perWorker = [0, 1].map(
        (w) => sampleValue(families, name.replace('multireactor_', 'multireactor_worker_'), { worker: String(w) }) ?? 0,
      );
      expect(
        perWorker.reduce((a, b) => a + b, 0),
        name,
      ).to.equal(sampleValue(families, name));
    }
    // The histogram: cumulative buckets to +Inf, count = responses, the slow one past 100 ms.
    expect(sampleValue(families, 'multireactor_http_request_duration_seconds_count')).to.equal(24);
    expect(sampleValue(families, 'multireactor_http_request_duration_seconds_bucket', { le: '+Inf' })).to.equal(24);
    expect(sampleValue(families, 'multireactor_http_request_duration_seconds_bucket', { le: '0.05' })).to.equal(23);
    expect(sampleValue(families, 'multireactor_http_request_duration_seconds_sum')).to.be.greaterThan(0.1);
    for (const w of s.workers) {
      expect(
        sampleValue(families, 'multireactor_worker_info', {
          worker: String(w.slot),
          pid: String(w.pid),
          generation: '1',
          state: 'serving',
        }),
      ).to.equal(1);
    }
    // The same text through the command line.
    const viaCli = await cli(['metrics', '--control', join(dir, 'ctl.sock')]);
    expect(viaCli.status).to.equal(0);
    expect(parseExposition(viaCli.stdout).map((f) => f.name)).to.deep.equal(families.map((f) => f.name));
  });

  it('/readyz fails during a drain while /healthz answers; in-flight requests are answered', async () => {
    const control = join(dir, 'ctl.sock');
    const m = await start(['--workers', '2', '--admin-port', '0', '--control', control]);
    const s = await status(['--control', control]);
    m.remember(s);
    const admin = { port: adminPort(s) };
    const ready = await get(admin, '/readyz');
    expect(ready.status).to.equal(200);
    expect(ready.body).to.equal('ready: 2 workers serving\n');
    expect((await get(admin, '/healthz')).status).to.equal(200);
    expect((await get(admin, '/nope')).status).to.equal(404);
    // A request in flight keeps the drain going for 1.5 s.
    const slow = get({ port: m.port }, '/slow?ms=1500');
    await new Promise((r) => setTimeout(r, 200));
    const stop = cli(['stop', '--control', control, '--timeout', '10']);
    await waitFor(() => /stopping 2 workers/.test(m.stderr()), 'the drain to start');
    const during = await get(admin, '/readyz');
    expect(during.status).to.equal(503);
    expect(during.body).to.equal('not ready: stopping: draining the workers\n');
    expect((await get(admin, '/healthz')).status).to.equal(200);
    expect((await slow).status, 'the request in flight').to.equal(200);
    expect((await stop).status).to.equal(0);
    expect((await m.exited).code).to.equal(0);
  });

  it('shutdownDelay: on SIGTERM /readyz fails at once, new connections are still served, then the drain', async () => {
    const control = join(dir, 'ctl.sock');
    const m = await start(['--workers', '2', '--admin-port', '0', '--control', control, '--shutdown-delay', '1500']);
    const s = await status(['--control', control]);
    m.remember(s);
    const admin = { port: adminPort(s) };
    const t0 = Date.now();
    process.kill(m.pid, 'SIGTERM');
    await waitFor(() => /shutdownDelay/.test(m.stderr()), 'the delay to start');
    const during = await get(admin, '/readyz');
    expect(during.status).to.equal(503);
    expect(during.body).to.match(/^not ready: shutting down: serving out shutdownDelay/);
    // Endpoints have not dropped the pod yet: new connections keep coming, and are answered.
    for (let i = 0; i < 5; i++) {
      const r = await get({ port: m.port }, '/');
      expect(r.status).to.equal(200);
      expect(s.workers.map((w) => String(w.pid))).to.include(r.body);
      await new Promise((r) => setTimeout(r, 150));
    }
    expect((await get(admin, '/healthz')).status).to.equal(200);
    expect((await m.exited).code).to.equal(0);
    expect(Date.now() - t0).to.be.at.least(1500);
    for (const w of s.workers) expect(alive(w.pid)).to.equal(false);
  });

  it('pid file: written, refused while its master lives, removed at stop; a stale one is replaced', async () => {
    const pidFile = join(dir, 'app.pid');
    const m = await start(['--workers', '1', '--pid-file', pidFile]);
    m.remember(await status(['--pid-file', pidFile]));
    expect(readFileSync(pidFile, 'utf8')).to.equal(`${m.pid}\n`);
    // A second master on the same pid file: refused before it binds anything.
    const second = OpsProcess.start(['--workers', '1', '--pid-file', pidFile]);
    const err = await second.then(
      () => undefined,
      (e: Error) => e,
    );
    expect(err?.message).to.match(new RegExp(`pid file .*app\\.pid names process ${m.pid}, which is running`));
    expect(readFileSync(pidFile, 'utf8')).to.equal(`${m.pid}\n`);
    process.kill(m.pid, 'SIGTERM');
    expect((await m.exited).code).to.equal(0);
    expect(existsSync(pidFile)).to.equal(false);
    // A pid file left by a master killed with SIGKILL names a process that is gone.
    const dead = spawnSync(process.execPath, ['-e', 'process.exit(0)']).pid;
    writeFileSync(pidFile, `${dead}\n`);
    const third = await start(['--workers', '1', '--pid-file', pidFile]);
    third.remember(await status(['--pid-file', pidFile]));
    expect(third.stderr()).to.contain(`pid file ${pidFile}: replacing a stale one (process ${dead} is gone)`);
    expect(readFileSync(pidFile, 'utf8')).to.equal(`${third.pid}\n`);
  });

  for (const workers of ['0', '2']) {
    it(`Unix socket listener (workers: ${workers}): served, its mode set, removed at stop; a live one refused, a stale one replaced`, async () => {
      const path = join(dir, 'app.sock');
      const m = await start(['--workers', workers, '--path', path, '--socket-mode', '600']);
      const st = lstatSync(path);
      expect(st.isSocket()).to.equal(true);
      expect(st.mode & 0o777).to.equal(0o600);
      const pids = new Set<string>();
      for (let i = 0; i < 12; i++) {
        const r = await get({ socketPath: path }, '/');
        expect(r.status).to.equal(200);
        pids.add(r.body);
        m.pids.add(Number(r.body));
      }
      if (workers === '2') expect([...pids].every((p) => p !== String(m.pid))).to.equal(true);
      // Something already listens there: refused, and the file stays.
      const err = await OpsProcess.start(['--workers', workers, '--path', path]).then(
        () => undefined,
        (e: Error) => e,
      );
      expect(err?.message).to.match(/EADDRINUSE/);
      expect(lstatSync(path).ino).to.equal(st.ino);
      process.kill(m.pid, 'SIGTERM');
      await m.exited;
      await waitFor(() => !existsSync(path), 'the socket file to be removed');
      // A file left by a server killed with SIGKILL is stale: replaced, with a line in the log.
      const killed = await start(['--workers', workers, '--path', path]);
      const r = await get({ socketPath: path }, '/');
      killed.pids.add(Number(r.body));
      killed.child.kill('SIGKILL');
      await killed.exited;
      for (const pid of killed.pids) if (alive(pid)) process.kill(pid, 'SIGKILL');
      await waitFor(() => [...killed.pids].every((p) => !alive(p)), 'the killed server to be gone');
      expect(existsSync(path)).to.equal(true);
      const again = await start(['--workers', workers, '--path', path]);
      expect(again.stderr()).to.contain(`${path}: replaced a stale socket file`);
      expect((await get({ socketPath: path }, '/')).status).to.equal(200);
    });
  }

  it('pino: JSON lines with levels, the worker slot bound, an Error as err', async () => {
    const control = join(dir, 'ctl.sock');
    const m = await start(['--workers', '2', '--control', control, '--log', 'pino']);
    m.remember(await status(['--control', control]));
    expect((await get({ port: m.port }, '/throw')).status).to.equal(500);
    await waitFor(() => /thrown on purpose/.test(m.stderr()), 'the error line');
    const lines = m
      .stderr()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    const ready = lines.find((l) => /workers ready on/.test(String(l.msg)));
    expect(ready, 'the master says its workers are ready').to.include({ level: 30, pid: m.pid, app: 'ops-app' });
    const failed = lines.find((l) => /HTTP handler failed/.test(String(l.msg)));
    expect(failed, 'the handler error').to.not.equal(undefined);
    expect(failed?.level).to.equal(50);
    expect(failed?.worker).to.be.oneOf([0, 1]);
    expect(failed?.generation).to.equal(1);
    expect(failed?.err).to.include({ type: 'Error', message: 'thrown on purpose by /throw' });
    // Only JSON: every line of master and workers parsed above.
    const other = m
      .stderr()
      .split('\n')
      .filter((l) => l !== '' && !l.startsWith('{'));
    expect(other).to.deep.equal([]);
  });
});
