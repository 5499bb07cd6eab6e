/**
 * epoll(7) backend, nested in Node's loop.
 *
 * The epoll fd is itself pollable: it is readable while any descriptor in its interest list is
 * ready. A libuv poll handle on it (watchReadable) wakes us from libuv's poll phase; we then
 * drain with `epoll_wait(epfd, events, max, 0)` — never blocking, so timers, IPC and promise jobs
 * keep running around us and nothing spins when idle.
 *
 * After a batch of two or more events we ask epoll again (up to `maxWaits` calls per wake-up).
 * Under load, new requests arrive while a batch is being answered, and a wake-up through libuv is
 * the dearer way to hear of them: libuv's epoll_pwait — two of them when it was about to sleep,
 * as Node's idle-time metrics make it try a zero timeout first — its loop phases and the callback
 * into JS. Measured with eventfds kept ready (benchmarks/micro/loop-costs.ts), a wake-up avoided
 * saves ~0.7-1.1 µs, while an epoll_wait(0) that finds nothing costs ~0.2-0.28 µs: asking again
 * pays when it finds events more than a fifth to a third of the time.
 * That depends on the batch just answered (plaintext HTTP, 2 workers under wrk -c 50, counted per
 * batch size): after a batch of one, 9-30% of the extra calls found events; after two or more,
 * 80-92%. A batch in which a handle used its share of the wake-up (yieldAfterBatch: a
 * connection's maxReadPerWakeup, the acceptor's cap) goes back to libuv too.
 *
 * Events are decoded straight from 32-bit views of the events array at the arch's stride (3 words
 * on x86-64, where the struct is packed; 4 on arm64), which costs ~2 µs per 256 events; koffi's
 * struct decoding costs ~100 µs.
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

/** Events in a batch from which we ask epoll again before going back to libuv (see above). */
const ASK_AGAIN_AFTER = 2;

export interface EpollPollerOptions {
  /** Events fetched per epoll_wait call. Default 1024. */
  readonly maxEvents?: number;
  /** epoll_wait calls per wake-up at most (asking again after batches of two or more). Default 8. */
  readonly maxWaits?: number;
  /** Called with unexpected epoll_wait failures (never EINTR). */
  readonly onError?: (errno: number) => void;
}

export class EpollPoller implements Poller {
  readonly kind = 'epoll' as const;
  readonly needsRearm = false;
  private readonly epfd: number;
  private readonly words: Uint32Array;
  private readonly maxEvents: number;
  private readonly maxWaits: number;
  private readonly stride = LAYOUT.epollEventSize / 4;
  private readonly dataAt = LAYOUT.epollEventDataOffset / 4;
  private readonly onError: ((errno: number) => void) | undefined;
  private watch: FdWatch | undefined;
  private dispatch: Dispatch = () => {};
  private afterBatch: (polls: number) => void = () => {};
  private closed = false;
  /** Set by yieldAfterBatch during a dispatch; cleared at each wake-up. */
  private yielding = false;

  constructor(options: EpollPollerOptions = {}) {
    this.maxEvents = options.maxEvents ?? 1024;
    this.maxWaits = options.maxWaits ?? 8;
    this.onError = options.onError;
    this.words = new Uint32Array((this.maxEvents * LAYOUT.epollEventSize) / 4);
    this.epfd = check('epoll_create1', epollCreate1(EPOLL_CLOEXEC));
  }

  start(dispatch: Dispatch, afterBatch: (polls: number) => void): void {
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

  yieldAfterBatch(): void {
    this.yielding = true;
  }

  private readonly drain = (): void => {
    const words = this.words;
    const stride = this.stride;
    const dataAt = this.dataAt;
    const dispatch = this.dispatch;
    let polls = 0;
    this.yielding = false;
    while (polls < this.maxWaits && !this.closed) {
      polls++;
      const n = epollWait(this.epfd, words, this.maxEvents, 0);
      if (n < 0) {
        if (n === -EINTR) continue;
        if (!(this.closed && n === -EBADF)) this.onError?.(-n);
        break;
      }
      for (let i = 0, at = 0; i < n; i++, at += stride) {
        dispatch(words[at + dataAt] as number, words[at + dataAt + 1] as number, words[at] as number);
      }
      // A batch of one (or none) that did not fill the array says we are keeping up: libuv wakes
      // us when more comes. After a larger or a full one, more has likely come while we answered
      // it (see the top of the file). After maxWaits calls — or when a handle used its share of
      // the wake-up (yieldAfterBatch) — libuv runs timers, IPC and promise jobs; if the epoll fd
      // is still readable it calls us again in its next poll phase.
      if ((n < ASK_AGAIN_AFTER && n < this.maxEvents) || this.yielding) break;
    }
    if (!this.closed) this.afterBatch(polls);
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
