/**
 * The benchmarks' port checks (benchmarks/common/measure.ts) on real sockets: a benchmark must not
 * start a server on a port where another process already answers — it would measure that process
 * instead — and waits until its own server answers.
 */
import { once } from 'node:events';
import net from 'node:net';
import { expect } from 'chai';
import { assertPortFree, waitForPort } from '../../benchmarks/common/measure.js';

/** A listener on an ephemeral 127.0.0.1 port. */
async function listen(): Promise<{ server: net.Server; port: number }> {
  const server = net.createServer((s) => s.destroy());
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, port: (server.address() as net.AddressInfo).port };
}

async function close(server: net.Server): Promise<void> {
  if (!server.listening) return;
  server.close();
  await once(server, 'close');
}

describe('benchmark port checks', () => {
  const servers: net.Server[] = [];
  afterEach(async () => {
    await Promise.all(servers.splice(0).map(close));
  });

  it('assertPortFree rejects a port that already answers, naming it, and passes once it is free', async () => {
    const { server, port } = await listen();
    servers.push(server);
    let err: unknown;
    try {
      await assertPortFree(port);
    } catch (e) {
      err = e;
    }
    expect(err).to.be.instanceOf(Error);
    expect((err as Error).message).to.equal(
      `127.0.0.1:${port} already answers: another process listens there (stop it, or choose --port)`,
    );
    await close(server);
    await assertPortFree(port);
  });

  it('waitForPort resolves once a listener appears and rejects when none does in time', async () => {
    // A port known to be free: bound once, then released.
    const probe = await listen();
    const port = probe.port;
    await close(probe.server);
    let resolved = false;
    const waiting = waitForPort(port, 5000).then(() => {
      resolved = true;
    });
    await new Promise((r) => setTimeout(r, 150));
    expect(resolved).to.equal(false);
    const server = net.createServer((s) => s.destroy());
    servers.push(server);
    server.listen(port, '127.0.0.1');
    await once(server, 'listening');
    await waiting;
    expect(resolved).to.equal(true);
    await close(server);
    let err: unknown;
    try {
      await waitForPort(port, 200);
    } catch (e) {
      err = e;
    }
    expect((err as Error).message).to.equal(`nothing listens on ${port}`);
  });
});
