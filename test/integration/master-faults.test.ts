/**
 * Master and workers under the faults an operator meets (issue 15, items 6–10), as real processes
 * with real signals and sockets: a second server on a port already in use, reloads requested
 * during a reload, slots in a crash loop, a master whose parent dies, and the restart of a killed
 * worker. Every process a test starts is known by pid and gone when the test ends.
 */
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { expect } from 'chai';
import { Server, type ServerHandle, SyscallError, silentLogger } from '../../src/index.js';
import { Cluster, FAULT_APP, whoServes } from './cluster-support.js';
import { echoPipeline, runToExit } from './helpers.js';

/** Starts the fault app as a master; `args` are its options. */
function startApp(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<Cluster> {
  return Cluster.start([], env, undefined, undefined, [FAULT_APP, ...args]);
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

  afterEach(async () => {
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
});
