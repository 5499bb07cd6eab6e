/**
 * The master's relay alone: messages per second from one worker to another through it, against
 * the same relay written on Node's IPC channel (what `fork` gives: JSON per `send`, once per
 * receiving worker), with no WebSocket in the way.
 *
 * - `--mode relay`: `Server.listen` with 2 workers and a PubSub in each (in-cluster mode); worker 0
 *   publishes `--messages` messages of `--size` bytes to a topic worker 1 listens to, keeping at
 *   most 1 MiB waiting for the master (`stats().queuedBytes`).
 * - `--mode ipc`: a master forks 2 processes; process 0 `process.send`s `{ t, topic, data }`, the
 *   master `send`s it on to process 1 — the relay as one would write it on the IPC channel.
 *
 * Prints one JSON line: the mode, messages received, seconds, messages per second.
 *
 *   node dist/benchmarks/pubsub/relay.js --mode relay --messages 200000
 */
import { fork } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { ChannelInboundHandler, Pipeline, PubSub, Server } from '../../src/index.js';
import { scriptCli } from '../common/cli.js';

const values = scriptCli(import.meta.url, {
  mode: { type: 'string', default: 'relay', choices: ['relay', 'ipc'] },
  messages: { type: 'string', default: '200000', integer: [1, 100_000_000] },
  size: { type: 'string', default: '64', integer: [1, 1 << 20] },
  role: { type: 'string' },
});

const N = values.messages;
const payload = 'x'.repeat(values.size);
const print = (received: number, seconds: number) =>
  process.stdout.write(
    `${JSON.stringify({ mode: values.mode, size: values.size, received, seconds, messagesPerSecond: received / seconds })}\n`,
  );

if (values.mode === 'relay') {
  const pubsub = new PubSub();
  const server = await Server.listen({
    host: '127.0.0.1',
    port: 0,
    workers: 2,
    pipeline: () => new Pipeline().addLast(new ChannelInboundHandler()),
  });
  if (server.role === 'master') {
    await server.stopped;
  } else if (server.role === 'worker' && server.slot === 1) {
    let received = 0;
    let started = 0;
    pubsub.subscribe('bench', () => {
      if (received++ === 0) started = performance.now();
      if (received === N) {
        print(received, (performance.now() - started) / 1000);
        process.kill(process.ppid, 'SIGTERM');
      }
    });
    // Tell worker 0 this one listens (until it starts).
    const hello = setInterval(() => pubsub.publish('ready', '1'), 20);
    pubsub.subscribe('started', () => clearInterval(hello));
  } else {
    let go = false;
    pubsub.subscribe('ready', () => {
      if (go) return;
      go = true;
      pubsub.publish('started', '1');
      let sent = 0;
      const burst = () => {
        // At most 1 MiB waiting for the master: a publisher that outruns it would only drop.
        while (sent < N && pubsub.stats().queuedBytes < 1 << 20) {
          for (let i = 0; i < 256 && sent < N; i++, sent++) pubsub.publish('bench', payload);
        }
        if (sent < N) setImmediate(burst);
      };
      burst();
    });
  }
} else if (values.role === undefined) {
  const script = fileURLToPath(import.meta.url);
  const args = ['--mode', 'ipc', '--messages', String(N), '--size', String(values.size)];
  const sub = fork(script, [...args, '--role', 'sub']);
  const pub = fork(script, [...args, '--role', 'pub']);
  // The relay: what arrives from the publisher goes on to the subscriber (one send per receiver).
  pub.on('message', (m) => sub.send(m as object));
  sub.on('message', () => pub.send('go'));
  sub.on('exit', () => {
    pub.kill();
    process.exit(0);
  });
} else if (values.role === 'sub') {
  let received = 0;
  let started = 0;
  process.on('message', () => {
    if (received++ === 0) started = performance.now();
    if (received === N) {
      print(received, (performance.now() - started) / 1000);
      process.exit(0);
    }
  });
  process.send?.('ready');
} else {
  process.once('message', () => {
    let sent = 0;
    const burst = () => {
      // The channel's own backlog: send's callback runs once the message is written.
      let writing = 0;
      for (let i = 0; i < 256 && sent < N; i++, sent++) {
        writing++;
        process.send?.({ t: 'pubsub', topic: 'bench', data: payload }, undefined, undefined, () => {
          if (--writing === 0 && sent < N) setImmediate(burst);
        });
      }
    };
    burst();
  });
}
