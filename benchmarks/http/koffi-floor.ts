/**
 * Measuring instrument: the floor of any koffi-based server on this machine. The same syscalls
 * multireactor makes — an epoll set nested in libuv (watchReadable), epoll_wait, read, send, all
 * through koffi — with the C reference server's reply logic (count request heads, answer each with
 * one pre-rendered response, one send per batch) and nothing else: no pipeline, no parser, no
 * per-connection state beyond a partial head. What multireactor spends above it is the framework;
 * what it spends below the C server is koffi and Node's loop.
 *
 *   node dist/benchmarks/http/koffi-floor.js --port 8085 --workers 2
 *
 * Not a server anyone should deploy: no error handling beyond closing, no limits.
 */
import { Buffer } from 'node:buffer';
import { fork } from 'node:child_process';
import {
  EAGAIN,
  EPOLL_CLOEXEC,
  EPOLL_CTL_ADD,
  EPOLLIN,
  EPOLLRDHUP,
  IPPROTO_TCP,
  LAYOUT,
  MSG_NOSIGNAL,
  SOCK_CLOEXEC,
  SOCK_NONBLOCK,
  TCP_NODELAY,
} from '../../src/syscalls/constants.js';
import {
  accept4,
  close,
  epollCreate1,
  epollCtl,
  epollWait,
  read,
  send,
  setsockoptInt,
  watchReadable,
} from '../../src/syscalls/libc.js';
import { openListenSocket } from '../../src/syscalls/socket.js';
import { scriptCli } from '../common/cli.js';
import { cannedReply, MAX_BATCH as MAX } from './baseline.js';

const values = scriptCli(import.meta.url, {
  port: { type: 'string', default: '8085', integer: [0, 65535] },
  workers: { type: 'string', default: '2', integer: [1, 1024] },
});

if (process.env.KOFFI_FLOOR_WORKER === undefined) {
  const workers = values.workers;
  const children = Array.from({ length: workers }, () =>
    fork(process.argv[1] as string, process.argv.slice(2), { env: { ...process.env, KOFFI_FLOOR_WORKER: '1' } }),
  );
  let ready = 0;
  for (const c of children) {
    c.on('message', () => {
      if (++ready === workers) console.log(`listening on 127.0.0.1:${values.port}`);
    });
  }
  process.on('SIGTERM', () => {
    for (const c of children) c.kill();
    process.exit(0);
  });
} else {
  const { one: RESP, batch: RESPN } = cannedReply('floor');
  const lfd = openListenSocket({ host: '127.0.0.1', port: values.port, backlog: 4096, reusePort: true });
  const ep = epollCreate1(EPOLL_CLOEXEC);
  epollCtl(ep, EPOLL_CTL_ADD, lfd, EPOLLIN, lfd, 0);
  const words = new Uint32Array((1024 * LAYOUT.epollEventSize) / 4);
  const stride = LAYOUT.epollEventSize / 4;
  const dataAt = LAYOUT.epollEventDataOffset / 4;
  const buf = Buffer.allocUnsafeSlow(65536);
  /** Bytes of an unfinished request head, per fd (copied, as the C server does). */
  const partial: (Buffer | undefined)[] = [];

  const onReadable = (fd: number): void => {
    for (;;) {
      const n = read(fd, buf, buf.length);
      if (n <= 0) {
        if (n === -EAGAIN) return;
        partial[fd] = undefined;
        close(fd);
        return;
      }
      const prev = partial[fd];
      const data = prev === undefined ? buf.subarray(0, n) : Buffer.concat([prev, buf.subarray(0, n)]);
      let count = 0;
      let start = 0;
      for (let i = 3; i < data.length; i++) {
        if (data[i] === 10 && data[i - 1] === 13 && data[i - 2] === 10 && data[i - 3] === 13 && i - 3 >= start) {
          count++;
          start = i + 1;
        }
      }
      partial[fd] = start < data.length ? Buffer.from(data.subarray(start)) : undefined;
      while (count > 0) {
        const k = count > MAX ? MAX : count;
        send(fd, RESPN, k * RESP.length, MSG_NOSIGNAL);
        count -= k;
      }
      if (n < buf.length) return;
    }
  };

  // As multireactor's EpollPoller does: after a batch of two or more events ask epoll again (up
  // to 8 calls), rather than going back to libuv for each batch.
  watchReadable(ep, () => {
    for (let polls = 0; polls < 8; polls++) {
      const n = epollWait(ep, words, 1024, 0);
      for (let i = 0, at = dataAt; i < n; i++, at += stride) {
        const fd = words[at] as number;
        if (fd !== lfd) {
          onReadable(fd);
          continue;
        }
        for (
          let c = accept4(lfd, SOCK_NONBLOCK | SOCK_CLOEXEC);
          c >= 0;
          c = accept4(lfd, SOCK_NONBLOCK | SOCK_CLOEXEC)
        ) {
          setsockoptInt(c, IPPROTO_TCP, TCP_NODELAY, 1);
          epollCtl(ep, EPOLL_CTL_ADD, c, EPOLLIN | EPOLLRDHUP, c, 0);
        }
      }
      if (n < 2) return;
    }
  });
  process.on('disconnect', () => process.exit(0));
  process.send?.('ready');
}
