/**
 * The epoll backend's wake-ups, on real eventfds in this process's own libuv loop: after a batch
 * of two or more events (or a full one) epoll is asked again in the same wake-up, after a batch of
 * one it is not, and a chain of batches that never runs dry still hands back to libuv after
 * `maxWaits` epoll_wait calls.
 */
import { expect } from 'chai';
import { EFD_CLOEXEC, EFD_NONBLOCK } from '../../../src/syscalls/constants.js';
import { close, eventfd, eventfdRead, eventfdWrite } from '../../../src/syscalls/libc.js';
import { EpollPoller } from '../../../src/worker/epoll-poller.js';
import { READABLE } from '../../../src/worker/poller.js';

describe('worker/epoll-poller: asking epoll again within a wake-up', function () {
  this.timeout(10_000);
  let poller: EpollPoller | undefined;
  const fds: number[] = [];

  function newEventfd(): number {
    const fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    expect(fd).to.be.greaterThan(0);
    fds.push(fd);
    return fd;
  }

  afterEach(async () => {
    await poller?.close();
    poller = undefined;
    for (const fd of fds.splice(0)) close(fd);
  });

  /**
   * `first` eventfds are ready at the start; answering them makes `b` ready (as answering requests
   * makes the next ones arrive). Returns the log of dispatches and wake-ups once `b` was answered.
   */
  async function relay(first: number, maxWaits: number): Promise<string[]> {
    const p = new EpollPoller({ maxWaits });
    poller = p;
    const starts = Array.from({ length: first }, () => newEventfd());
    const b = newEventfd();
    const log: string[] = [];
    let answered: () => void = () => {};
    const done = new Promise<void>((resolve) => {
      answered = resolve;
    });
    p.start(
      (fd) => {
        expect(eventfdRead(fd)).to.equal(8);
        if (fd === b) {
          log.push('b');
          answered();
          return;
        }
        log.push(`a${starts.indexOf(fd)}`);
        expect(eventfdWrite(b, 1)).to.equal(8);
      },
      (polls) => log.push(`wake-up, ${polls} polls`),
    );
    for (const [i, fd] of starts.entries()) expect(p.register(fd, i + 1, READABLE)).to.equal(0);
    expect(p.register(b, 100, READABLE)).to.equal(0);
    for (const fd of starts) expect(eventfdWrite(fd, 1)).to.equal(8);
    await done;
    // afterBatch runs at the end of the wake-up that answered b.
    await new Promise((resolve) => setImmediate(resolve));
    return log;
  }

  it('after a batch of two, asks again and answers what turned ready meanwhile in the same wake-up', async () => {
    // The second epoll_wait returns b alone: a batch of one, so no third call.
    expect(await relay(2, 8)).to.deep.equal(['a0', 'a1', 'b', 'wake-up, 2 polls']);
  });

  it('after a batch of one, leaves what turned ready meanwhile to the next wake-up from libuv', async () => {
    expect(await relay(1, 8)).to.deep.equal(['a0', 'wake-up, 1 polls', 'b', 'wake-up, 1 polls']);
  });

  it('with maxWaits 1, even after a batch of two', async () => {
    expect(await relay(2, 1)).to.deep.equal(['a0', 'a1', 'wake-up, 1 polls', 'b', 'wake-up, 1 polls']);
  });

  it('a handle that used its share of the wake-up (yieldAfterBatch) stops the asking, for that wake-up only', async () => {
    const p = new EpollPoller({ maxWaits: 8 });
    poller = p;
    const a = [newEventfd(), newEventfd()];
    const b = newEventfd();
    const log: string[] = [];
    let share = true;
    let answered: () => void = () => {};
    p.start(
      (fd) => {
        eventfdRead(fd);
        if (fd === b) {
          log.push('b');
          answered();
          return;
        }
        log.push(`a${a.indexOf(fd)}`);
        eventfdWrite(b, 1);
        if (share) p.yieldAfterBatch();
      },
      (polls) => log.push(`wake-up, ${polls} polls`),
    );
    for (const [i, fd] of [...a, b].entries()) p.register(fd, i + 1, READABLE);
    const round = async (): Promise<void> => {
      const done = new Promise<void>((resolve) => {
        answered = resolve;
      });
      for (const fd of a) eventfdWrite(fd, 1);
      await done;
      await new Promise((resolve) => setImmediate(resolve));
    };
    await round();
    // b, made ready during the batch that used its share, waits for the next wake-up.
    expect(log.splice(0)).to.deep.equal(['a0', 'a1', 'wake-up, 1 polls', 'b', 'wake-up, 1 polls']);
    share = false;
    await round();
    // The next batch of two asks again as usual.
    expect(log).to.deep.equal(['a0', 'a1', 'b', 'wake-up, 2 polls']);
  });

  it('with room for one event per call (maxEvents 1), a full batch asks again', async () => {
    const p = new EpollPoller({ maxEvents: 1, maxWaits: 8 });
    poller = p;
    const fds = [newEventfd(), newEventfd(), newEventfd()];
    const log: string[] = [];
    p.start(
      (fd) => {
        eventfdRead(fd);
        log.push(`fd${fds.indexOf(fd)}`);
      },
      (polls) => log.push(`wake-up, ${polls} polls`),
    );
    for (const [i, fd] of fds.entries()) p.register(fd, i + 1, READABLE);
    for (const fd of fds) eventfdWrite(fd, 1);
    await new Promise((resolve) => setTimeout(resolve, 50));
    // Three full batches of one, then an empty fourth call.
    expect(log.filter((l) => l.startsWith('fd')).sort()).to.deep.equal(['fd0', 'fd1', 'fd2']);
    expect(log.at(-1)).to.equal('wake-up, 4 polls');
    expect(log.filter((l) => l.startsWith('wake-up'))).to.have.length(1);
  });

  it('a chain of batches that never runs dry still yields to libuv after maxWaits calls', async () => {
    const p = new EpollPoller({ maxWaits: 3 });
    poller = p;
    // Two pairs: answering a0 and a1 makes b0 and b1 ready, and the other way round — every
    // epoll_wait returns a batch of two, forever.
    const a = [newEventfd(), newEventfd()];
    const b = [newEventfd(), newEventfd()];
    const log: string[] = [];
    let dispatched = 0;
    p.start(
      (fd) => {
        eventfdRead(fd);
        dispatched++;
        const i = a.indexOf(fd);
        eventfdWrite(i >= 0 ? (b[i] as number) : (a[b.indexOf(fd)] as number), 1);
      },
      (polls) => {
        log.push(`wake-up: ${polls} polls, ${dispatched} events`);
        dispatched = 0;
      },
    );
    for (const [i, fd] of [...a, ...b].entries()) p.register(fd, i + 1, READABLE);
    for (const fd of a) eventfdWrite(fd, 1);
    // Timers and immediates get their turn between wake-ups: the loop is not monopolised.
    for (let i = 0; i < 3; i++) {
      await new Promise((resolve) => setImmediate(resolve));
      log.push('immediate');
    }
    await p.close();
    const wakeups = log.filter((l) => l.startsWith('wake-up'));
    expect(wakeups.length).to.be.greaterThan(0);
    for (const w of wakeups) expect(w).to.equal('wake-up: 3 polls, 6 events');
    expect(log.filter((l) => l === 'immediate')).to.have.length(3);
    // Between two immediates at most one wake-up (libuv's poll phase runs once per iteration).
    expect(log.join('|')).not.to.match(/wake-up[^|]*\|wake-up/);
  });
});
