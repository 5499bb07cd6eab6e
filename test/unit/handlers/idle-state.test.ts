import { expect } from 'chai';
import { InvalidOptionError } from '../../../src/common/errors.js';
import { IdleStateEvent, IdleStateHandler } from '../../../src/handlers/idle-state.js';
import { EmbeddedChannel } from '../../../src/pipeline/embedded.js';
import { ChannelInboundHandler } from '../../../src/pipeline/handler.js';
import type { HandlerContext } from '../../../src/pipeline/pipeline.js';

/** Records user events with the fake time they arrived at. */
class EventLog extends ChannelInboundHandler {
  readonly events: Array<{ at: number; event: unknown }> = [];
  override onUserEvent(ctx: HandlerContext, event: unknown): void {
    this.events.push({ at: ctx.channel.timers.now(), event });
  }
}

function setup(options: ConstructorParameters<typeof IdleStateHandler>[0]) {
  const log = new EventLog();
  const ch = new EmbeddedChannel([new IdleStateHandler(options), log]);
  return { ch, log };
}

/** Advances the fake clock one millisecond at a time (timers fire exactly when due). */
function advance(ch: EmbeddedChannel, ms: number): void {
  for (let i = 0; i < ms; i++) ch.advanceTime(1);
}

describe('IdleStateHandler', () => {
  it('fires a first reader-idle event after readerIdle of silence, then subsequent ones every period', () => {
    const { ch, log } = setup({ readerIdle: 100 });
    advance(ch, 99);
    expect(log.events).to.deep.equal([]);
    advance(ch, 1);
    expect(log.events).to.deep.equal([{ at: 100, event: IdleStateEvent.FIRST_READER_IDLE }]);
    advance(ch, 100);
    advance(ch, 100);
    expect(log.events.map((e) => [e.at, e.event])).to.deep.equal([
      [100, IdleStateEvent.FIRST_READER_IDLE],
      [200, IdleStateEvent.READER_IDLE],
      [300, IdleStateEvent.READER_IDLE],
    ]);
  });

  it('a read postpones the event to readerIdle after the read, and the next event is "first" again', () => {
    const { ch, log } = setup({ readerIdle: 100 });
    advance(ch, 150); // first event at 100
    ch.writeInbound('ping'); // read at 150
    advance(ch, 99);
    expect(log.events).to.have.length(1);
    advance(ch, 1); // 250
    expect(log.events.map((e) => [e.at, e.event])).to.deep.equal([
      [100, IdleStateEvent.FIRST_READER_IDLE],
      [250, IdleStateEvent.FIRST_READER_IDLE],
    ]);
  });

  it('steady reads keep it quiet', () => {
    const { ch, log } = setup({ readerIdle: 50 });
    for (let t = 0; t < 20; t++) {
      advance(ch, 40);
      ch.writeInbound('x');
    }
    expect(log.events).to.deep.equal([]);
  });

  it('writer-idle counts writes, not reads', () => {
    const { ch, log } = setup({ writerIdle: 100 });
    advance(ch, 60);
    ch.writeInbound('read');
    advance(ch, 40);
    expect(log.events.map((e) => [e.at, e.event])).to.deep.equal([[100, IdleStateEvent.FIRST_WRITER_IDLE]]);
    ch.writeOutbound('w'); // write at 100
    advance(ch, 100);
    expect(log.events.map((e) => [e.at, e.event])).to.deep.equal([
      [100, IdleStateEvent.FIRST_WRITER_IDLE],
      [200, IdleStateEvent.FIRST_WRITER_IDLE],
    ]);
  });

  it('all-idle needs neither reads nor writes', () => {
    const { ch, log } = setup({ allIdle: 100 });
    advance(ch, 70);
    ch.writeInbound('r');
    advance(ch, 70);
    ch.writeOutbound('w');
    advance(ch, 99);
    expect(log.events).to.deep.equal([]);
    advance(ch, 1); // 240 = 140 + 100
    expect(log.events.map((e) => [e.at, e.event])).to.deep.equal([[240, IdleStateEvent.FIRST_ALL_IDLE]]);
  });

  it('runs the three kinds independently', () => {
    const { ch, log } = setup({ readerIdle: 30, writerIdle: 50, allIdle: 70 });
    advance(ch, 70);
    expect(log.events.map((e) => (e.event as IdleStateEvent).state)).to.deep.equal([
      'reader-idle',
      'writer-idle',
      'reader-idle',
      'all-idle',
    ]);
  });

  it('stops on close: no timer fires afterwards, the wheel is empty', () => {
    const { ch, log } = setup({ readerIdle: 10, writerIdle: 10, allIdle: 10 });
    expect(ch.timers.size).to.equal(3);
    ch.close();
    expect(ch.timers.size).to.equal(0);
    advance(ch, 100);
    expect(log.events).to.deep.equal([]);
  });

  it('stops when removed from the pipeline', () => {
    const handler = new IdleStateHandler({ readerIdle: 10 });
    const log = new EventLog();
    const ch = new EmbeddedChannel([handler, log]);
    ch.pipeline.remove(handler);
    expect(ch.timers.size).to.equal(0);
    advance(ch, 50);
    expect(log.events).to.deep.equal([]);
  });

  it('schedules nothing for kinds that are off', () => {
    const { ch } = setup({});
    expect(ch.timers.size).to.equal(0);
  });

  it('passes messages and events through unchanged', () => {
    const { ch } = setup({ readerIdle: 1000 });
    ch.writeInbound('a', 'b');
    expect([ch.readInbound(), ch.readInbound()]).to.deep.equal(['a', 'b']);
    ch.writeOutbound('out');
    expect(ch.readOutbound()).to.equal('out');
  });

  it('rejects negative or non-numeric periods', () => {
    for (const bad of [{ readerIdle: -1 }, { writerIdle: Number.NaN }, { allIdle: '5' as unknown as number }]) {
      expect(() => new IdleStateHandler(bad)).to.throw(InvalidOptionError);
    }
  });

  it('IdleStateEvent.of returns the shared constants', () => {
    expect(IdleStateEvent.of('reader-idle', true)).to.equal(IdleStateEvent.FIRST_READER_IDLE);
    expect(IdleStateEvent.of('writer-idle', false)).to.equal(IdleStateEvent.WRITER_IDLE);
    expect(IdleStateEvent.of('all-idle', true)).to.equal(IdleStateEvent.FIRST_ALL_IDLE);
  });

  describe('what a handler holds', () => {
    interface Held {
      cfg: unknown;
      wheelTick: number;
      writes: unknown;
      lastRead: number;
    }
    const held = (h: IdleStateHandler) => h as unknown as Held;

    it('handlers built from equal options share them; reader-idle alone makes no write tracking', () => {
      const a = new IdleStateHandler({ readerIdle: 100 });
      const b = new IdleStateHandler({ readerIdle: 100 });
      const c = new IdleStateHandler({ readerIdle: 200 });
      expect(held(a).cfg).to.equal(held(b).cfg);
      expect(held(c).cfg).to.not.equal(held(a).cfg);
      expect([a.readerIdle, a.writerIdle, a.allIdle, c.readerIdle]).to.deep.equal([100, 0, 0, 200]);
      const ch = new EmbeddedChannel([a]);
      expect(held(a).wheelTick, 'the handler is its own reader timer, armed').to.not.equal(-1);
      expect(held(a).writes).to.equal(undefined);
      expect(ch.timers.size).to.equal(1);
      ch.writeOutbound('x'); // writes are not stamped when nothing watches them
      expect(held(a).writes).to.equal(undefined);
      ch.close();
      expect(held(a).wheelTick, 'disarmed on close').to.equal(-1);
      expect(ch.timers.size).to.equal(0);
    });

    it('writer-idle or all-idle make the write tracking when enabled, and closing lets it go', () => {
      const h = new IdleStateHandler({ writerIdle: 100, allIdle: 50 });
      const ch = new EmbeddedChannel([h]);
      expect(held(h).writes).to.not.equal(undefined);
      expect(held(h).wheelTick, 'no reader timer').to.equal(-1);
      expect(ch.timers.size).to.equal(2);
      ch.close();
      expect(held(h).writes).to.equal(undefined);
      expect(ch.timers.size).to.equal(0);
    });

    it('times are kept as small integers, exact on a clock far past 2^31 ms (ms modulo 2^30)', () => {
      const start = 2 ** 40 + 12_345; // a clock reading no Smi holds
      const log = new EventLog();
      const h = new IdleStateHandler({ readerIdle: 100, allIdle: 300 });
      const ch = new EmbeddedChannel([h, log], { startTime: start });
      expect(Number.isInteger(held(h).lastRead) && held(h).lastRead < 2 ** 30).to.equal(true);
      advance(ch, 60);
      ch.writeInbound('x'); // read at +60
      advance(ch, 99);
      expect(log.events).to.deep.equal([]);
      advance(ch, 1); // +160 = 60 + 100
      expect(log.events.map((e) => [e.at - start, e.event])).to.deep.equal([[160, IdleStateEvent.FIRST_READER_IDLE]]);
      advance(ch, 200); // all-idle at 60 + 300
      expect(log.events.map((e) => [e.at - start, e.event])).to.deep.equal([
        [160, IdleStateEvent.FIRST_READER_IDLE],
        [260, IdleStateEvent.READER_IDLE],
        [360, IdleStateEvent.FIRST_ALL_IDLE],
        [360, IdleStateEvent.READER_IDLE],
      ]);
    });

    it('rejects a period past 2^30 - 1 ms', () => {
      expect(() => new IdleStateHandler({ readerIdle: 2 ** 30 })).to.throw(InvalidOptionError, /at most/);
      expect(new IdleStateHandler({ readerIdle: 2 ** 30 - 1 }).readerIdle).to.equal(2 ** 30 - 1);
    });
  });
});
