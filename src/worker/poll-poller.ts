/**
 * poll(2) backend: the portable fallback.
 *
 * poll takes its whole descriptor set per call and cannot be changed while it waits, and a
 * blocking call on the main thread would freeze Node. So the wait runs on one of koffi's worker
 * threads (`poll.async`) with an eventfd in slot 0: when the interest set changes while a wait is
 * under way we write the eventfd, the wait returns, and the set is rebuilt before the next one.
 * The pollfd array belongs to that thread until the call returns; we never touch it meanwhile.
 *
 * Cost: one thread hop (~30 µs) per batch, plus O(n) to rebuild the array after a change. Fine
 * for a fallback; epoll is the default.
 *
 * Edge triggering is emulated: a direction reported once is disarmed until the owner calls
 * `rearm` after hitting EAGAIN. HANGUP/ERROR are reported once per arming, as with EPOLLET.
 */
import { Buffer } from 'node:buffer';
import { EAGAIN, EFD_CLOEXEC, EFD_NONBLOCK, EINTR, ENOENT, LAYOUT, POLLIN, POLLNVAL } from '../syscalls/constants.js';
import { close, eventfd, eventfdRead, eventfdWrite, pollAsync } from '../syscalls/libc.js';
import { check } from '../syscalls/socket.js';
import { type Dispatch, EDGE, ERROR, HANGUP, type Poller, READ_CLOSED, READABLE, WRITABLE } from './poller.js';

const DIRECTIONS = READABLE | WRITABLE | READ_CLOSED;
/** Pseudo-bit for "HANGUP/ERROR armed" in the edge emulation (outside every POLL* bit). */
const FAULTS = 1 << 20;

export interface PollPollerOptions {
  /** Called with unexpected poll failures (never EINTR). */
  readonly onError?: (errno: number) => void;
}

export class PollPoller implements Poller {
  readonly kind = 'poll' as const;
  readonly needsRearm = true;
  private readonly wakeFd: number;
  private readonly onError: ((errno: number) => void) | undefined;
  // Registered descriptors, indexed by fd. `armed` only matters for EDGE registrations.
  private readonly tokens: number[] = [];
  private readonly interests: number[] = [];
  private readonly armed: number[] = [];
  private readonly members = new Set<number>();
  // The array handed to the wait, and the token of each slot when it was built.
  private pollfds: Buffer = Buffer.alloc(0);
  private slotTokens = new Uint32Array(0);
  private slotCount = 0;
  private dirty = true;
  private waiting = false;
  private woken = false;
  private closed = false;
  private onClosed: (() => void) | undefined;
  private dispatch: Dispatch = () => {};
  private afterBatch: (polls: number) => void = () => {};

  constructor(options: PollPollerOptions = {}) {
    this.onError = options.onError;
    this.wakeFd = check('eventfd', eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  }

  start(dispatch: Dispatch, afterBatch: (polls: number) => void): void {
    this.dispatch = dispatch;
    this.afterBatch = afterBatch;
    this.wait();
  }

  register(fd: number, token: number, interest: number): number {
    this.tokens[fd] = token;
    this.interests[fd] = interest;
    this.armed[fd] = DIRECTIONS | FAULTS;
    this.members.add(fd);
    this.changed();
    return 0;
  }

  modify(fd: number, token: number, interest: number): number {
    if (!this.members.has(fd)) return -ENOENT; // as epoll_ctl(MOD) says
    this.tokens[fd] = token;
    this.interests[fd] = interest;
    this.changed();
    return 0;
  }

  deregister(fd: number): number {
    if (!this.members.delete(fd)) return -ENOENT;
    this.changed();
    return 0;
  }

  rearm(fd: number, token: number, direction: number): void {
    if (this.tokens[fd] !== token || !this.members.has(fd)) return;
    const before = this.armed[fd] as number;
    const after = before | direction | FAULTS;
    if (after !== before) {
      this.armed[fd] = after;
      this.changed();
    }
  }

  /** One poll(2) result per wake-up already: nothing to cut short. */
  yieldAfterBatch(): void {}

  private changed(): void {
    this.dirty = true;
    if (this.waiting && !this.woken) {
      this.woken = true;
      eventfdWrite(this.wakeFd, 1);
    }
  }

  private rebuild(): void {
    const need = (this.members.size + 1) * LAYOUT.pollfdSize;
    if (this.pollfds.length < need) {
      this.pollfds = Buffer.alloc(Math.max(need, this.pollfds.length * 2, 64 * LAYOUT.pollfdSize));
      this.slotTokens = new Uint32Array(this.pollfds.length / LAYOUT.pollfdSize);
    }
    const buf = this.pollfds;
    buf.writeInt32LE(this.wakeFd, 0);
    buf.writeInt16LE(POLLIN, 4);
    buf.writeInt16LE(0, 6);
    let slot = 1;
    for (const fd of this.members) {
      const interest = this.interests[fd] as number;
      let events = interest & DIRECTIONS;
      if ((interest & EDGE) !== 0) {
        const armed = this.armed[fd] as number;
        events &= armed;
        // Nothing armed and faults already reported: leave it out of this wait entirely.
        if (events === 0 && (armed & FAULTS) === 0) continue;
      }
      const at = slot * LAYOUT.pollfdSize;
      buf.writeInt32LE(fd, at);
      buf.writeInt16LE(events, at + 4);
      buf.writeInt16LE(0, at + 6);
      this.slotTokens[slot] = this.tokens[fd] as number;
      slot++;
    }
    this.slotCount = slot;
    this.dirty = false;
  }

  private wait(): void {
    if (this.closed) return;
    if (this.dirty) this.rebuild();
    this.waiting = true;
    pollAsync(this.pollfds, this.slotCount, -1, this.onResult);
  }

  private readonly onResult = (n: number): void => {
    this.waiting = false;
    if (this.closed) {
      this.finishClose();
      return;
    }
    try {
      if (n < 0 && n !== -EINTR) this.onError?.(-n);
      if (n > 0) this.deliver();
      this.afterBatch(1);
    } finally {
      this.wait();
    }
  };

  private deliver(): void {
    const buf = this.pollfds;
    if (buf.readInt16LE(6) !== 0) {
      // Drain the wake-up counter; EAGAIN means another read already did.
      const r = eventfdRead(this.wakeFd);
      if (r < 0 && r !== -EAGAIN) this.onError?.(-r);
      this.woken = false;
    }
    for (let slot = 1; slot < this.slotCount; slot++) {
      const at = slot * LAYOUT.pollfdSize;
      const revents = buf.readUInt16LE(at + 6);
      if (revents === 0) continue;
      const fd = buf.readInt32LE(at);
      const token = this.slotTokens[slot] as number;
      // POLLNVAL: closed behind our back inside this batch; the token check below drops it too.
      if ((revents & POLLNVAL) !== 0) continue;
      if (this.members.has(fd) && this.tokens[fd] === token && ((this.interests[fd] as number) & EDGE) !== 0) {
        // Edge emulation: what was reported stays quiet until the owner rearms it.
        const reported = (revents & DIRECTIONS) | ((revents & (HANGUP | ERROR)) !== 0 ? FAULTS : 0);
        this.armed[fd] = (this.armed[fd] as number) & ~reported;
        this.dirty = true;
      }
      this.dispatch(fd, token, revents);
    }
  }

  private finishClose(): void {
    close(this.wakeFd);
    const done = this.onClosed;
    this.onClosed = undefined;
    done?.();
  }

  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.closed = true;
    this.members.clear();
    if (!this.waiting) {
      this.finishClose();
      return Promise.resolve();
    }
    // The worker thread is blocked in poll on our eventfd: wake it, and close once it returned.
    return new Promise((resolve) => {
      this.onClosed = resolve;
      eventfdWrite(this.wakeFd, 1);
    });
  }
}
