/**
 * epoll(7) backend, nested in Node's loop.
 *
 * The epoll fd is itself pollable: it is readable while any descriptor in its interest list is
 * ready. A libuv poll handle on it (koffi.node.poll) wakes us from libuv's poll phase; we then
 * drain with `epoll_wait(epfd, events, max, 0)` — never blocking, so timers, IPC and promise jobs
 * keep running around us and nothing spins when idle. Events are decoded straight from 32-bit
 * views of the events array at the arch's stride (3 words on x86-64, where the struct is packed;
 * 4 on arm64), which costs ~2 µs per 256 events; koffi's struct decoding costs ~100 µs.
 *
 * `event.data.u64` carries the fd in its low half and the owner's token in its high half.
 */
import {
  EBADF,
  EINTR,
  EPOLL_CLOEXEC,
  EPOLL_CTL_ADD,
  EPOLL_CTL_DEL,
  EPOLL_CTL_MOD,
  LAYOUT,
} from '../syscalls/constants.js';
import { close, epollCreate1, epollCtl, epollWait, type FdWatch, watchReadable } from '../syscalls/libc.js';
import { check } from '../syscalls/socket.js';
import type { Dispatch, Poller } from './poller.js';

export interface EpollPollerOptions {
  /** Events fetched per epoll_wait call. Default 1024. */
  readonly maxEvents?: number;
  /** epoll_wait calls per wake-up while they come back full, before yielding to libuv. Default 8. */
  readonly maxRounds?: number;
  /** Called with unexpected epoll_wait failures (never EINTR). */
  readonly onError?: (errno: number) => void;
}

export class EpollPoller implements Poller {
  readonly kind = 'epoll' as const;
  readonly needsRearm = false;
  private readonly epfd: number;
  private readonly words: Uint32Array;
  private readonly maxEvents: number;
  private readonly maxRounds: number;
  private readonly stride = LAYOUT.epollEventSize / 4;
  private readonly dataAt = LAYOUT.epollEventDataOffset / 4;
  private readonly onError: ((errno: number) => void) | undefined;
  private watch: FdWatch | undefined;
  private dispatch: Dispatch = () => {};
  private afterBatch: () => void = () => {};
  private closed = false;

  constructor(options: EpollPollerOptions = {}) {
    this.maxEvents = options.maxEvents ?? 1024;
    this.maxRounds = options.maxRounds ?? 8;
    this.onError = options.onError;
    this.words = new Uint32Array((this.maxEvents * LAYOUT.epollEventSize) / 4);
    this.epfd = check('epoll_create1', epollCreate1(EPOLL_CLOEXEC));
  }

  start(dispatch: Dispatch, afterBatch: () => void): void {
    this.dispatch = dispatch;
    this.afterBatch = afterBatch;
    this.watch = watchReadable(this.epfd, this.drain);
  }

  register(fd: number, token: number, interest: number): number {
    return epollCtl(this.epfd, EPOLL_CTL_ADD, fd, interest, fd, token);
  }

  modify(fd: number, token: number, interest: number): number {
    return epollCtl(this.epfd, EPOLL_CTL_MOD, fd, interest, fd, token);
  }

  deregister(fd: number, closing: boolean): number {
    if (closing) return 0;
    return epollCtl(this.epfd, EPOLL_CTL_DEL, fd, 0, 0, 0);
  }

  rearm(): void {}

  private readonly drain = (): void => {
    const words = this.words;
    const stride = this.stride;
    const dataAt = this.dataAt;
    const dispatch = this.dispatch;
    for (let round = 0; round < this.maxRounds && !this.closed; round++) {
      const n = epollWait(this.epfd, words, this.maxEvents, 0);
      if (n < 0) {
        if (n === -EINTR) continue;
        if (!(this.closed && n === -EBADF)) this.onError?.(-n);
        break;
      }
      for (let i = 0, at = 0; i < n; i++, at += stride) {
        dispatch(words[at + dataAt] as number, words[at + dataAt + 1] as number, words[at] as number);
      }
      // Fewer than asked means the ready list is empty now; a full batch means maybe not, but
      // after maxRounds we let libuv run timers and IPC — the epoll fd stays readable and libuv
      // calls us again in its next poll phase.
      if (n < this.maxEvents) break;
    }
    if (!this.closed) this.afterBatch();
  };

  close(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      this.watch?.close();
      this.watch = undefined;
      close(this.epfd);
    }
    return Promise.resolve();
  }
}
