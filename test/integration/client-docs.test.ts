/**
 * The two examples of docs/client.md — a client and a pool talking to the JSON-lines echo
 * server — verbatim but for the import path and the port, against the echo example in its own
 * process, so that the page keeps compiling and doing what it says.
 */
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { expect } from 'chai';
import { standaloneLeases } from '../../src/client/loops.js';
import {
  Client,
  JsonLinesDecoder,
  JsonLinesEncoder,
  jsonIds,
  Pipeline,
  Pool,
  RequestResponseHandler,
} from '../../src/index.js';
import { ECHO_EXAMPLE, startListening, waitFor } from './helpers.js';

describe('docs/client.md examples', function () {
  this.timeout(20_000);
  let child: ChildProcess | undefined;
  let port = 0;

  beforeEach(async () => {
    const started = await startListening([ECHO_EXAMPLE, '--host', '127.0.0.1', '--port', '0', '--framing', 'json']);
    child = started.child;
    port = started.port;
  });

  afterEach(async () => {
    if (child !== undefined && child.exitCode === null && child.signalCode === null) {
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      await exited;
    }
    await waitFor(() => standaloneLeases() === 0, 'the standalone loop to be released');
  });

  it('a client talking to the JSON-lines echo server', async () => {
    const logged: unknown[][] = [];
    const console = { log: (...args: unknown[]) => logged.push(args) };

    const conn = await Client.connect({
      host: '127.0.0.1',
      port,
      connectTimeout: 2000,
      pipeline: () =>
        new Pipeline()
          .addLast('decoder', new JsonLinesDecoder())
          .addLast('encoder', new JsonLinesEncoder())
          // Each request gets a "uid" the server copies into its reply; replies may come in any order.
          .addLast('requests', new RequestResponseHandler({ ids: jsonIds('uid'), timeout: 1000 })),
    });

    const replies = await Promise.all([
      conn.request({ op: 'get', key: 'a' }), // → { op: 'get', key: 'a', uid: 1 }
      conn.request({ op: 'get', key: 'b' }), // → { op: 'get', key: 'b', uid: 2 }
    ]);
    console.log(replies, conn.requests?.stats); // { sent: 2, completed: 2, timedOut: 0, … }
    await conn.close(); // the process can exit now: nothing else holds the loop

    expect(logged[0]?.[0]).to.deep.equal([
      { op: 'get', key: 'a', uid: 1 },
      { op: 'get', key: 'b', uid: 2 },
    ]);
    expect(logged[0]?.[1]).to.include({ sent: 2, completed: 2, timedOut: 0 });
    expect(await conn.closed).to.equal('local');
  });

  it('the pool in use', async () => {
    const logged: unknown[][] = [];
    const console = { log: (...args: unknown[]) => logged.push(args) };

    const pool = new Pool({
      host: '127.0.0.1',
      port,
      pipeline: () => new Pipeline().addLast(new JsonLinesDecoder()).addLast(new JsonLinesEncoder()),
      maxConnections: 4, // opened on demand
      pipelining: 8, // requests in flight per connection before another one is used
      timeout: 1000, // per request, waiting for a connection included
      heartbeat: { interval: 5000, ping: () => ({ op: 'ping' }), isPong: (m) => (m as { op?: string }).op === 'ping' },
    });

    const results = await Promise.allSettled(Array.from({ length: 100 }, (_, i) => pool.request({ op: 'get', i })));
    console.log(pool.stats()); // { open: 4, connecting: 0, pending: 0, waiting: 0, connects: 4, … }
    await pool.close();

    expect(results.every((r) => r.status === 'fulfilled')).to.equal(true);
    results.forEach((r, i) => {
      expect((r as PromiseFulfilledResult<{ i: number }>).value.i).to.equal(i);
    });
    expect(logged[0]?.[0]).to.include({ open: 4, connecting: 0, pending: 0, waiting: 0, connects: 4 });
  });
});
