import { expect } from 'chai';
import {
  type Timeout,
  type TimerEntry,
  TimingWheel,
  type TimingWheelOptions,
} from '../../../src/common/timing-wheel.js';
import { prng } from '../../support.js';

const TICK = 10;
const SLOTS = 8;

/** A wheel on a hand-driven clock. */
function makeWheel(extra: Partial<TimingWheelOptions> = {}, start = 0) {
  const clock = { now: start };
  const wheel = new TimingWheel({ tickMs: TICK, slots: SLOTS, clock: () => clock.now, ...extra });
  const advanceTo = (t: number): number => {
    clock.now = t;
    return wheel.advance();
  };
  return { wheel, clock, advanceTo };
}

/** The time a timer with this deadline is observed due when the clock moves in small steps. */
function dueAt(deadline: number): number {
  return Math.ceil(deadline / TICK) * TICK;
}

describe('common/timing-wheel: construction', () => {
  for (const slots of [0, 3, 6, 12, 1.5, -4, Number.NaN]) {
    it(`rejects slots ${slots}`, () => {
      expect(() => new TimingWheel({ slots, clock: () => 0 })).to.throw(RangeError, /power of two/);
    });
  }

  for (const tickMs of [0, -1, -20, Number.NaN]) {
    it(`rejects tickMs ${tickMs}`, () => {
      expect(() => new TimingWheel({ tickMs, clock: () => 0 })).to.throw(RangeError, /tickMs/);
    });
  }

  it('accepts slots 1 and any power of two; defaults tickMs to 20', () => {
    for (const slots of [1, 2, 64, 512, 4096]) {
      expect(new TimingWheel({ slots, clock: () => 0 }).size).to.equal(0);
    }
    expect(new TimingWheel({ clock: () => 0 }).tickMs).to.equal(20);
    expect(new TimingWheel({ tickMs: 5, clock: () => 0 }).tickMs).to.equal(5);
  });

  it('now() reads the injected clock', () => {
    const { wheel, clock } = makeWheel({}, 1234.5);
    expect(wheel.now()).to.equal(1234.5);
    clock.now = 2000;
    expect(wheel.now()).to.equal(2000);
  });
});

describe('common/timing-wheel: firing', () => {
  it('never fires early, fires at the deadline, and only once', () => {
    const { wheel, advanceTo } = makeWheel();
    let calls = 0;
    const t = wheel.schedule(30, () => calls++);
    expect(t.pending).to.equal(true);
    expect(advanceTo(29)).to.equal(0);
    expect(calls).to.equal(0);
    expect(t.pending).to.equal(true);
    expect(advanceTo(30)).to.equal(1);
    expect(calls).to.equal(1);
    expect(t.pending).to.equal(false);
    for (const now of [31, 40, 100, 1000, 100_000]) advanceTo(now);
    expect(calls).to.equal(1);
  });

  it('a deadline between ticks fires at the next tick, never before the deadline', () => {
    const { wheel, advanceTo } = makeWheel({}, 3);
    let firedAt = -1;
    wheel.schedule(25, () => {
      firedAt = wheel.now();
    }); // deadline 28
    for (let now = 4; now <= 40 && firedAt < 0; now++) advanceTo(now);
    expect(firedAt).to.equal(30);
  });

  it('delay 0 (and negative delays) fire on the next tick, not synchronously', () => {
    const { wheel, advanceTo } = makeWheel();
    const fired: string[] = [];
    wheel.schedule(0, () => fired.push('zero'));
    wheel.schedule(-50, () => fired.push('negative'));
    expect(fired).to.deep.equal([]);
    expect(advanceTo(0)).to.equal(0);
    expect(advanceTo(9)).to.equal(0);
    expect(advanceTo(10)).to.equal(2);
    expect(fired.sort()).to.deep.equal(['negative', 'zero']);
  });

  it('advance(now) takes an explicit time, and ignores a time that does not move forward', () => {
    const { wheel } = makeWheel();
    let calls = 0;
    wheel.schedule(20, () => calls++);
    expect(wheel.advance(19)).to.equal(0);
    expect(wheel.advance(25)).to.equal(1);
    expect(wheel.advance(25)).to.equal(0);
    expect(wheel.advance(5)).to.equal(0); // the clock went backwards: nothing happens
    expect(calls).to.equal(1);
  });

  it('works with a clock that starts far from zero (performance.now style)', () => {
    const start = 987_654.321;
    const { wheel, advanceTo } = makeWheel({}, start);
    let firedAt = -1;
    wheel.schedule(100, () => {
      firedAt = wheel.now();
    });
    for (let now = start; now < start + 200 && firedAt < 0; now += 1) advanceTo(now);
    expect(firedAt).to.be.at.least(start + 100);
    expect(firedAt).to.be.lessThan(start + 100 + TICK + 1);
  });

  it('many timers over several wheel turns each fire exactly once, at their tick, never early', () => {
    const { wheel, clock, advanceTo } = makeWheel();
    interface Rec {
      deadline: number;
      fired: number[];
    }
    const recs: Rec[] = [];
    const add = (delay: number): void => {
      const rec: Rec = { deadline: clock.now + delay, fired: [] };
      recs.push(rec);
      wheel.schedule(delay, () => rec.fired.push(clock.now));
    };
    for (let d = 5; d <= 1000; d += 5) add(d);
    for (const d of [7, 13, 79, 80, 81, 159, 160, 161, 999]) add(d);
    const rnd = prng(42);
    for (let now = 1; now <= 1200; now++) {
      // Keep adding timers as time goes on, from non-tick-aligned moments too.
      if (now % 37 === 0) for (let k = 0; k < 3; k++) add(5 + Math.floor(rnd() * 996));
      advanceTo(now);
      for (const r of recs) {
        if (r.fired.length > 0) expect(r.fired[0], `deadline ${r.deadline}`).to.be.at.least(r.deadline);
        else expect(now, `deadline ${r.deadline} missed at ${now}`).to.be.lessThan(dueAt(r.deadline));
      }
    }
    // Run past every deadline.
    for (let now = 1201; now <= 2300; now++) advanceTo(now);
    expect(recs.length).to.be.greaterThan(200);
    for (const r of recs) {
      expect(r.fired, `deadline ${r.deadline}`).to.deep.equal([dueAt(r.deadline)]);
    }
    expect(wheel.size).to.equal(0);
  });

  it('a long stall fires everything due in one call and keeps the rest', () => {
    const { wheel, advanceTo } = makeWheel();
    const fired: number[] = [];
    const delays = [5, 10, 79, 80, 81, 500, 640, 9999, 10_000];
    for (const d of delays) wheel.schedule(d, () => fired.push(d));
    const late = wheel.schedule(10_001, () => fired.push(10_001));
    expect(advanceTo(10_000)).to.equal(delays.length);
    expect([...fired].sort((a, b) => a - b)).to.deep.equal(delays);
    expect(late.pending).to.equal(true);
    expect(wheel.size).to.equal(1);
    expect(advanceTo(10_009)).to.equal(0);
    expect(advanceTo(10_010)).to.equal(1);
    expect(fired).to.include(10_001);
  });

  it('a long stall with timers scattered over many turns fires each exactly once', () => {
    const { wheel, advanceTo } = makeWheel();
    const count = new Map<number, number>();
    for (let d = 1; d <= 5000; d += 3) wheel.schedule(d, () => count.set(d, (count.get(d) ?? 0) + 1));
    const expected = [...Array(Math.floor(4999 / 3) + 1).keys()].map((i) => 1 + 3 * i);
    expect(advanceTo(5000)).to.equal(expected.length);
    expect([...count.keys()].sort((a, b) => a - b)).to.deep.equal(expected);
    for (const n of count.values()) expect(n).to.equal(1);
    expect(wheel.size).to.equal(0);
  });

  it('a single-slot wheel still fires every timer at its own tick', () => {
    const clock = { now: 0 };
    const wheel = new TimingWheel({ tickMs: TICK, slots: 1, clock: () => clock.now });
    const fired: number[] = [];
    for (const d of [10, 20, 30]) wheel.schedule(d, () => fired.push(d));
    clock.now = 20;
    expect(wheel.advance()).to.equal(2);
    expect(fired.sort((a, b) => a - b)).to.deep.equal([10, 20]);
    clock.now = 30;
    expect(wheel.advance()).to.equal(1);
  });
});

describe('common/timing-wheel: cancel, reschedule, size, clear', () => {
  it('cancel before firing prevents it and pending turns false', () => {
    const { wheel, advanceTo } = makeWheel();
    let calls = 0;
    const t = wheel.schedule(20, () => calls++);
    expect(wheel.size).to.equal(1);
    t.cancel();
    expect(t.pending).to.equal(false);
    expect(wheel.size).to.equal(0);
    expect(advanceTo(1000)).to.equal(0);
    expect(calls).to.equal(0);
  });

  it('cancel is harmless twice and after firing', () => {
    const { wheel, advanceTo } = makeWheel();
    const a = wheel.schedule(10, () => {});
    const b = wheel.schedule(10, () => {});
    a.cancel();
    a.cancel();
    expect(wheel.size).to.equal(1);
    expect(advanceTo(10)).to.equal(1);
    b.cancel();
    expect(wheel.size).to.equal(0);
    expect(b.pending).to.equal(false);
  });

  it('cancelling one of several timers in a slot leaves the others', () => {
    const { wheel, advanceTo } = makeWheel();
    const fired: string[] = [];
    wheel.schedule(10, () => fired.push('a'));
    const b = wheel.schedule(10, () => fired.push('b'));
    wheel.schedule(10, () => fired.push('c'));
    wheel.schedule(10 + TICK * SLOTS, () => fired.push('next-turn')); // same slot, a turn later
    b.cancel();
    expect(advanceTo(10)).to.equal(2);
    expect(fired.sort()).to.deep.equal(['a', 'c']);
    expect(wheel.size).to.equal(1);
  });

  it('size counts pending timers', () => {
    const { wheel, advanceTo } = makeWheel();
    expect(wheel.size).to.equal(0);
    const a = wheel.schedule(10, () => {});
    wheel.schedule(20, () => {});
    wheel.schedule(500, () => {});
    expect(wheel.size).to.equal(3);
    a.cancel();
    expect(wheel.size).to.equal(2);
    advanceTo(20);
    expect(wheel.size).to.equal(1);
    advanceTo(500);
    expect(wheel.size).to.equal(0);
  });

  it('reschedule moves a pending timer without allocating a new one', () => {
    const { wheel, advanceTo } = makeWheel();
    let calls = 0;
    const t = wheel.schedule(50, () => calls++);
    advanceTo(30);
    const moved = wheel.reschedule(t, 50); // new deadline 80
    expect(moved).to.equal(t);
    expect(moved.pending).to.equal(true);
    expect(wheel.size).to.equal(1);
    expect(advanceTo(50)).to.equal(0);
    expect(advanceTo(79)).to.equal(0);
    expect(calls).to.equal(0);
    expect(advanceTo(80)).to.equal(1);
    expect(calls).to.equal(1);
  });

  it('reschedule can bring a deadline forward and replace the callback', () => {
    const { wheel, advanceTo } = makeWheel();
    const fired: string[] = [];
    const t = wheel.schedule(1000, () => fired.push('old'));
    wheel.reschedule(t, 10, () => fired.push('new'));
    expect(advanceTo(10)).to.equal(1);
    expect(fired).to.deep.equal(['new']);
    expect(advanceTo(2000)).to.equal(0);
  });

  it('reschedule with a callback revives a fired or cancelled timer (same object)', () => {
    const { wheel, advanceTo } = makeWheel();
    let calls = 0;
    const fn = () => calls++;
    const t = wheel.schedule(10, fn);
    advanceTo(10);
    expect(t.pending).to.equal(false);
    expect(wheel.reschedule(t, 10, fn)).to.equal(t);
    expect(t.pending).to.equal(true);
    advanceTo(20);
    expect(calls).to.equal(2);
    const c = wheel.schedule(10, fn);
    c.cancel();
    wheel.reschedule(c, 10, fn);
    expect(c.pending).to.equal(true);
    expect(wheel.size).to.equal(1);
    advanceTo(30);
    expect(calls).to.equal(3);
  });

  // Regression test (found while writing these tests).
  it('reschedule without a callback re-arms a fired timer with its original callback', () => {
    const { wheel, advanceTo } = makeWheel();
    let calls = 0;
    const t = wheel.schedule(10, () => calls++);
    advanceTo(10);
    expect(calls).to.equal(1);
    wheel.reschedule(t, 10);
    expect(t.pending).to.equal(true);
    advanceTo(20);
    expect(calls).to.equal(2);
  });

  it('reschedule rejects a timer of another wheel', () => {
    const a = makeWheel().wheel;
    const b = makeWheel().wheel;
    const t = a.schedule(10, () => {});
    expect(() => b.reschedule(t, 10)).to.throw(/another wheel/);
    expect(t.pending).to.equal(true);
    expect(a.size).to.equal(1);
    expect(b.size).to.equal(0);
  });

  it('clear() cancels every timer', () => {
    const { wheel, advanceTo } = makeWheel();
    let calls = 0;
    const timers: Timeout[] = [];
    for (const d of [0, 10, 15, 80, 90, 5000]) timers.push(wheel.schedule(d, () => calls++));
    wheel.clear();
    expect(wheel.size).to.equal(0);
    for (const t of timers) expect(t.pending).to.equal(false);
    expect(advanceTo(10_000)).to.equal(0);
    expect(calls).to.equal(0);
    // The wheel is usable afterwards.
    wheel.schedule(10, () => calls++);
    expect(advanceTo(10_010)).to.equal(1);
    expect(calls).to.equal(1);
  });
});

describe('common/timing-wheel: callbacks that touch the wheel', () => {
  it('a callback that reschedules itself with delay 0 fires once per advance', () => {
    const { wheel, advanceTo } = makeWheel();
    let calls = 0;
    const again = (): void => {
      calls++;
      wheel.schedule(0, again);
    };
    wheel.schedule(0, again);
    expect(advanceTo(10)).to.equal(1);
    expect(calls).to.equal(1);
    expect(advanceTo(10)).to.equal(0);
    expect(advanceTo(20)).to.equal(1);
    expect(calls).to.equal(2);
    // Even across a long stall it runs once, then waits for the next tick.
    expect(advanceTo(100_000)).to.equal(1);
    expect(calls).to.equal(3);
    expect(wheel.size).to.equal(1);
  });

  it('a callback that re-arms itself through reschedule(t, 0, fn) does not spin', () => {
    const { wheel, advanceTo } = makeWheel();
    let calls = 0;
    let t: Timeout | undefined;
    const again = (): void => {
      calls++;
      wheel.reschedule(t as Timeout, 0, again);
    };
    t = wheel.schedule(0, again);
    expect(advanceTo(50_000)).to.equal(1);
    expect(calls).to.equal(1);
    expect(t.pending).to.equal(true);
    expect(advanceTo(50_010)).to.equal(1);
    expect(calls).to.equal(2);
  });

  it('a self-rescheduling callback on a single-slot wheel does not spin either', () => {
    const clock = { now: 0 };
    const wheel = new TimingWheel({ tickMs: TICK, slots: 1, clock: () => clock.now });
    let calls = 0;
    const again = (): void => {
      calls++;
      wheel.schedule(0, again);
    };
    wheel.schedule(0, again);
    clock.now = 1000;
    expect(wheel.advance()).to.equal(1);
    expect(calls).to.equal(1);
  });

  it('a callback that cancels the other timers of its slot prevents them', () => {
    const { wheel, advanceTo } = makeWheel();
    const fired: number[] = [];
    const timers: Timeout[] = [];
    for (let i = 0; i < 5; i++) {
      timers.push(
        wheel.schedule(20, () => {
          fired.push(i);
          for (const other of timers) if (other !== timers[i]) other.cancel();
        }),
      );
    }
    expect(advanceTo(20)).to.equal(1);
    expect(fired).to.have.length(1);
    expect(wheel.size).to.equal(0);
    for (const t of timers) expect(t.pending).to.equal(false);
  });

  it('a callback that cancels a timer due later in the same advance prevents it', () => {
    const { wheel, advanceTo } = makeWheel();
    const fired: string[] = [];
    const victim = wheel.schedule(50, () => fired.push('victim'));
    wheel.schedule(10, () => {
      fired.push('killer');
      victim.cancel();
    });
    expect(advanceTo(60)).to.equal(1);
    expect(fired).to.deep.equal(['killer']);
  });

  it('a callback that postpones the other timers of its slot moves them to the new deadline', () => {
    const { wheel, advanceTo } = makeWheel();
    const fired: string[] = [];
    const timers: Timeout[] = [];
    let postponed = false;
    for (const name of ['a', 'b', 'c']) {
      timers.push(
        wheel.schedule(10, () => {
          fired.push(name);
          if (postponed) return;
          // Whoever fires first postpones the other two by 100 ms.
          postponed = true;
          for (const other of timers) if (other.pending) wheel.reschedule(other, 100);
        }),
      );
    }
    expect(advanceTo(10)).to.equal(1);
    expect(fired).to.have.length(1);
    expect(wheel.size).to.equal(2);
    expect(advanceTo(109)).to.equal(0);
    expect(advanceTo(110)).to.equal(2);
    expect(fired.sort()).to.deep.equal(['a', 'b', 'c']);
    expect(wheel.size).to.equal(0);
  });

  it('a callback that schedules a new timer in its own slot (a full turn later) does not fire it now', () => {
    const { wheel, advanceTo } = makeWheel();
    const fired: number[] = [];
    wheel.schedule(10, () => {
      fired.push(10);
      wheel.schedule(TICK * SLOTS, () => fired.push(90));
    });
    wheel.schedule(10, () => fired.push(10));
    expect(advanceTo(10)).to.equal(2);
    expect(fired).to.deep.equal([10, 10]);
    expect(advanceTo(89)).to.equal(0);
    expect(advanceTo(90)).to.equal(1);
  });

  it('a callback that calls clear() stops the rest of the advance', () => {
    const { wheel, advanceTo } = makeWheel();
    const fired: string[] = [];
    wheel.schedule(10, () => {
      fired.push('first');
      wheel.clear();
    });
    wheel.schedule(30, () => fired.push('second'));
    expect(advanceTo(40)).to.equal(1);
    expect(fired).to.deep.equal(['first']);
    expect(wheel.size).to.equal(0);
  });
});

describe('common/timing-wheel: onActive', () => {
  it('is called when the wheel goes from empty to non-empty', () => {
    let active = 0;
    const { wheel, advanceTo } = makeWheel({ onActive: () => active++ });
    expect(active).to.equal(0);
    const a = wheel.schedule(10, () => {});
    expect(active).to.equal(1);
    wheel.schedule(20, () => {});
    expect(active).to.equal(1);
    advanceTo(20);
    expect(wheel.size).to.equal(0);
    wheel.schedule(10, () => {});
    expect(active).to.equal(2);
    wheel.clear();
    wheel.schedule(10, () => {});
    expect(active).to.equal(3);
    expect(a.pending).to.equal(false);
  });

  it('sees the new timer already counted', () => {
    let sizeSeen = -1;
    const holder: { wheel?: TimingWheel } = {};
    const { wheel } = makeWheel({
      onActive: () => {
        sizeSeen = holder.wheel?.size ?? -2;
      },
    });
    holder.wheel = wheel;
    wheel.schedule(10, () => {});
    expect(sizeSeen).to.equal(1);
  });

  it('is called when a callback re-arms the last timer during advance', () => {
    let active = 0;
    const { wheel, advanceTo } = makeWheel({ onActive: () => active++ });
    wheel.schedule(10, () => wheel.schedule(10, () => {}));
    expect(active).to.equal(1);
    advanceTo(10);
    expect(active).to.equal(2);
    expect(wheel.size).to.equal(1);
  });

  // Regression test (found while writing these tests).
  it('is not called when the only pending timer is rescheduled', () => {
    let active = 0;
    const { wheel } = makeWheel({ onActive: () => active++ });
    const t = wheel.schedule(10, () => {});
    wheel.reschedule(t, 50);
    expect(active).to.equal(1);
  });
});

describe('common/timing-wheel: errors thrown by callbacks', () => {
  it('go to onError, and the other timers of the advance still fire', () => {
    const errors: unknown[] = [];
    const { wheel, advanceTo } = makeWheel({ onError: (e) => errors.push(e) });
    const fired: string[] = [];
    const boom = new Error('boom');
    wheel.schedule(10, () => fired.push('same-slot-1'));
    wheel.schedule(10, () => {
      throw boom;
    });
    wheel.schedule(10, () => fired.push('same-slot-2'));
    wheel.schedule(30, () => fired.push('later-slot'));
    expect(advanceTo(30)).to.equal(4);
    expect(errors).to.deep.equal([boom]);
    expect(fired.sort()).to.deep.equal(['later-slot', 'same-slot-1', 'same-slot-2']);
    expect(wheel.size).to.equal(0);
  });

  it('without onError, the first error is rethrown after the tick finished', () => {
    const { wheel, advanceTo } = makeWheel();
    const fired: string[] = [];
    const first = new Error('first');
    const second = new Error('second');
    wheel.schedule(10, () => {
      throw first;
    });
    wheel.schedule(10, () => fired.push('a'));
    wheel.schedule(20, () => {
      throw second;
    });
    wheel.schedule(30, () => fired.push('b'));
    wheel.schedule(100, () => fired.push('not yet'));
    let caught: unknown;
    try {
      advanceTo(30);
    } catch (err) {
      caught = err;
    }
    expect(caught).to.equal(first);
    expect(fired.sort()).to.deep.equal(['a', 'b']);
    // The wheel is consistent afterwards: nothing fires twice, the later timer still fires.
    expect(wheel.size).to.equal(1);
    expect(advanceTo(99)).to.equal(0);
    expect(advanceTo(100)).to.equal(1);
    expect(fired).to.include('not yet');
  });

  it('a non-Error throw value is passed through unchanged', () => {
    const errors: unknown[] = [];
    const { wheel, advanceTo } = makeWheel({ onError: (e) => errors.push(e) });
    wheel.schedule(10, () => {
      throw 'a string';
    });
    advanceTo(10);
    expect(errors).to.deep.equal(['a string']);
  });
});

describe('common/timing-wheel: coarseNow', () => {
  it('is the clock as last read: at construction, on schedule and reschedule, and on each advance', () => {
    let reads = 0;
    const clock = { now: 5 };
    const wheel = new TimingWheel({
      tickMs: TICK,
      slots: SLOTS,
      clock: () => {
        reads++;
        return clock.now;
      },
    });
    expect(wheel.coarseNow()).to.equal(5);
    clock.now = 12;
    const before = reads;
    expect(wheel.coarseNow()).to.equal(5, 'reading it does not read the clock');
    expect(reads).to.equal(before);
    const t = wheel.schedule(100, () => {});
    expect(wheel.coarseNow()).to.equal(12);
    clock.now = 31;
    wheel.advance();
    expect(wheel.coarseNow()).to.equal(31);
    clock.now = 40;
    t.reschedule(100);
    expect(wheel.coarseNow()).to.equal(40);
    wheel.advance(35); // a driver passing an older time never moves it back
    expect(wheel.coarseNow()).to.equal(40);
  });
});

describe('common/timing-wheel: targets instead of closures', () => {
  /** Counts its firings; the wheel calls `onTimeout` on it. */
  class Target {
    fired: number[] = [];
    constructor(readonly clock: { now: number }) {}
    onTimeout(): void {
      this.fired.push(this.clock.now);
    }
  }

  it('calls onTimeout() of the object it was given, at the deadline, once', () => {
    const { wheel, clock, advanceTo } = makeWheel();
    const target = new Target(clock);
    const t = wheel.schedule(25, target);
    expect(t.pending).to.equal(true);
    for (let now = 0; now <= 100; now += 5) advanceTo(now);
    expect(target.fired).to.deep.equal([30]);
    expect(t.pending).to.equal(false);
  });

  it('reschedule keeps the target; cancel stops it; a function may replace it and back', () => {
    const { wheel, clock, advanceTo } = makeWheel();
    const target = new Target(clock);
    const t = wheel.schedule(20, target);
    t.reschedule(50);
    advanceTo(40);
    expect(target.fired).to.deep.equal([]);
    advanceTo(50);
    expect(target.fired).to.deep.equal([50]);
    t.reschedule(10);
    t.cancel();
    advanceTo(100);
    expect(target.fired).to.deep.equal([50]);
    let calls = 0;
    wheel.reschedule(t, 10, () => calls++);
    advanceTo(110);
    expect(calls).to.equal(1);
    wheel.reschedule(t, 10, target);
    advanceTo(120);
    expect(target.fired).to.deep.equal([50, 120]);
  });

  it('an onTimeout that throws goes to onError like a callback', () => {
    const errors: unknown[] = [];
    const { wheel, advanceTo } = makeWheel({ onError: (e) => errors.push(e) });
    const boom = new Error('boom');
    wheel.schedule(10, {
      onTimeout() {
        throw boom;
      },
    });
    let after = 0;
    wheel.schedule(10, () => after++);
    advanceTo(10);
    expect(errors).to.deep.equal([boom]);
    expect(after).to.equal(1);
  });

  it('ticks count from the wheel: a clock far from zero (Date.now style) fires every timer at its tick', () => {
    const start = 1_765_000_000_000; // ms since 1970: ticks of it would not be small integers
    const { wheel, clock, advanceTo } = makeWheel({}, start);
    const target = new Target(clock);
    const timers = [wheel.schedule(5, target), wheel.schedule(95, target), wheel.schedule(1000, target)];
    for (let now = start; now <= start + 1100; now += 5) advanceTo(now);
    expect(target.fired.map((t) => t - start)).to.deep.equal([10, 100, 1000]);
    expect(timers.every((t) => !t.pending)).to.equal(true);
  });
});

describe('common/timing-wheel: objects that are their own timer (arm, disarm)', () => {
  /** A TimerEntry: the wheel's three fields and onTimeout. */
  class Entry implements TimerEntry {
    wheelTick = -1;
    wheelPrev: TimerEntry | null = null;
    wheelNext: TimerEntry | null = null;
    fired: number[] = [];
    constructor(readonly clock: { now: number }) {}
    onTimeout(): void {
      this.fired.push(this.clock.now);
    }
  }

  it('arm links it in: it fires once at its tick, and is unlinked (wheelTick -1) before its onTimeout runs', () => {
    const { wheel, clock, advanceTo } = makeWheel();
    const e = new Entry(clock);
    let armedInside: number | undefined;
    e.onTimeout = () => {
      armedInside = e.wheelTick;
      e.fired.push(clock.now);
    };
    wheel.arm(e, 25);
    expect(wheel.size).to.equal(1);
    expect(e.wheelTick).to.be.greaterThan(0);
    for (let now = 0; now <= 100; now += 5) advanceTo(now);
    expect(e.fired).to.deep.equal([30]);
    expect(armedInside).to.equal(-1);
    expect(e.wheelTick).to.equal(-1);
    expect(wheel.size).to.equal(0);
  });

  it('arm moves an armed entry, disarm removes it (twice is harmless), and entries share slots with Timeouts', () => {
    const { wheel, clock, advanceTo } = makeWheel();
    const a = new Entry(clock);
    const b = new Entry(clock);
    let timeouts = 0;
    wheel.arm(a, 20);
    wheel.arm(b, 20);
    wheel.schedule(20, () => timeouts++);
    wheel.arm(a, 60); // moved
    wheel.disarm(b);
    wheel.disarm(b);
    expect(wheel.size).to.equal(2);
    advanceTo(20);
    expect([a.fired, b.fired, timeouts]).to.deep.equal([[], [], 1]);
    advanceTo(60);
    expect(a.fired).to.deep.equal([60]);
    expect(b.fired).to.deep.equal([]);
  });

  it('an entry re-arming itself in onTimeout fires again a period later; clear() unlinks it', () => {
    const { wheel, clock, advanceTo } = makeWheel();
    const e = new Entry(clock);
    e.onTimeout = () => {
      e.fired.push(clock.now);
      wheel.arm(e, 30);
    };
    wheel.arm(e, 30);
    for (let now = 0; now <= 100; now += 10) advanceTo(now);
    expect(e.fired).to.deep.equal([30, 60, 90]);
    wheel.clear();
    expect(e.wheelTick).to.equal(-1);
    expect(wheel.size).to.equal(0);
    advanceTo(200);
    expect(e.fired).to.deep.equal([30, 60, 90]);
  });
});
