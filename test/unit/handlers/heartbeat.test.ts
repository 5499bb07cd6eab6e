import { expect } from 'chai';
import { InvalidOptionError } from '../../../src/common/errors.js';
import { HeartbeatHandler, type HeartbeatOptions } from '../../../src/handlers/heartbeat.js';
import { EmbeddedChannel } from '../../../src/pipeline/embedded.js';
import { ChannelInboundHandler, type CloseReason } from '../../../src/pipeline/handler.js';
import type { HandlerContext } from '../../../src/pipeline/pipeline.js';

class Closes extends ChannelInboundHandler {
  reason: CloseReason | undefined;
  at = -1;
  override onInactive(ctx: HandlerContext, reason: CloseReason): void {
    this.reason = reason;
    this.at = ctx.channel.timers.now();
  }
}

function setup(options: HeartbeatOptions) {
  const watch = new Closes();
  const hb = new HeartbeatHandler(options);
  const ch = new EmbeddedChannel([hb, watch]);
  return { ch, hb, watch };
}

function advance(ch: EmbeddedChannel, ms: number): void {
  for (let i = 0; i < ms; i++) ch.advanceTime(1);
}

describe('HeartbeatHandler', () => {
  describe('ping mode', () => {
    const options = { interval: 100, missed: 2, ping: () => 'PING', isPong: (m: unknown) => m === 'PONG' };

    it('pings after each interval of silence and closes after `missed` unanswered pings', () => {
      const { ch, hb, watch } = setup(options);
      advance(ch, 100);
      expect(ch.readOutbound()).to.equal('PING');
      expect(hb.unansweredPings).to.equal(1);
      advance(ch, 100);
      expect(ch.readOutbound()).to.equal('PING');
      expect(ch.isActive).to.equal(true);
      advance(ch, 100); // a third silence with 2 pings unanswered: give up
      expect(ch.readOutbound()).to.equal(undefined);
      expect(ch.isActive).to.equal(false);
      expect(watch.reason).to.equal('heartbeat');
      expect(watch.at).to.equal(300);
    });

    it('a peer that answers stays, and its pongs are not passed on', () => {
      const { ch, hb } = setup(options);
      for (let round = 0; round < 10; round++) {
        advance(ch, 100);
        expect(ch.readOutbound()).to.equal('PING');
        ch.writeInbound('PONG');
        expect(hb.unansweredPings).to.equal(0);
      }
      expect(ch.isActive).to.equal(true);
      expect(ch.readInbound()).to.equal(undefined);
    });

    it('any message counts as an answer, and is passed on', () => {
      const { ch } = setup(options);
      for (let round = 0; round < 5; round++) {
        advance(ch, 100);
        ch.writeInbound(`data ${round}`);
      }
      expect(ch.isActive).to.equal(true);
      expect(ch.inbound).to.deep.equal(['data 0', 'data 1', 'data 2', 'data 3', 'data 4']);
    });

    it('a busy peer is never pinged', () => {
      const { ch } = setup(options);
      for (let i = 0; i < 50; i++) {
        advance(ch, 20);
        ch.writeInbound('x');
      }
      expect(ch.outbound).to.deep.equal([]);
    });

    it("answers the peer's pings when told how", () => {
      const { ch } = setup({ ...options, isPing: (m) => m === 'PING?', pong: () => 'PONG!' });
      ch.writeInbound('PING?');
      expect(ch.readOutbound()).to.equal('PONG!');
      expect(ch.readInbound()).to.equal(undefined);
    });
  });

  describe('timeout mode', () => {
    it('closes a connection that sends nothing for `timeout`, with reason idle-timeout', () => {
      const { ch, watch } = setup({ timeout: 1000 });
      advance(ch, 999);
      expect(ch.isActive).to.equal(true);
      advance(ch, 1);
      expect(ch.isActive).to.equal(false);
      expect(watch.reason).to.equal('idle-timeout');
      expect(ch.outbound).to.deep.equal([]);
    });

    it('each message restarts the timeout', () => {
      const { ch, watch } = setup({ timeout: 1000 });
      for (let i = 0; i < 5; i++) {
        advance(ch, 900);
        ch.writeInbound('alive');
      }
      expect(ch.isActive).to.equal(true);
      advance(ch, 1000);
      expect(watch.reason).to.equal('idle-timeout');
      expect(watch.at).to.equal(5500);
    });
  });

  describe('options', () => {
    const bad: Array<[string, HeartbeatOptions]> = [
      ['heartbeat', {}],
      ['heartbeat', { interval: 10, timeout: 10, ping: () => 1 }],
      ['interval', { interval: 0, ping: () => 1 }],
      ['timeout', { timeout: -5 }],
      ['ping', { interval: 10 }],
      ['missed', { interval: 10, ping: () => 1, missed: -1 }],
      ['missed', { interval: 10, ping: () => 1, missed: 2 ** 22 }],
      ['isPing', { timeout: 10, isPing: () => true }],
    ];
    for (const [name, o] of bad) {
      it(`rejects ${JSON.stringify(o)} naming ${name}`, () => {
        expect(() => new HeartbeatHandler(o))
          .to.throw(InvalidOptionError)
          .with.property('message')
          .that.contains(`option ${name}:`);
      });
    }
  });

  describe('what a handler holds', () => {
    const cfgOf = (h: HeartbeatHandler) => (h as unknown as { cfg: unknown }).cfg;

    it('handlers built from equal options (one object or literals) share the resolved options', () => {
      const ping = () => 'PING';
      const options = { interval: 100, ping };
      const a = new HeartbeatHandler(options);
      const b = new HeartbeatHandler(options);
      const c = new HeartbeatHandler({ interval: 100, ping });
      const d = new HeartbeatHandler({ interval: 100, ping: () => 'PING' });
      expect(cfgOf(a)).to.equal(cfgOf(b));
      expect(cfgOf(c)).to.equal(cfgOf(a));
      expect(cfgOf(d), 'another ping function').to.not.equal(cfgOf(a));
      expect([a.mode, a.missed, a.readerIdle, new HeartbeatHandler({ timeout: 5 }).mode]).to.deep.equal([
        'ping',
        3,
        100,
        'timeout',
      ]);
    });

    it('two handlers sharing options keep their own state', () => {
      const options = { interval: 100, missed: 1, ping: () => 'PING', isPong: (m: unknown) => m === 'PONG' };
      const one = setup(options);
      const two = setup(options);
      advance(one.ch, 100);
      expect(one.hb.unansweredPings).to.equal(1);
      expect(two.hb.unansweredPings).to.equal(0);
      two.ch.writeInbound('PONG');
      advance(two.ch, 100);
      expect(two.hb.unansweredPings).to.equal(1);
      advance(one.ch, 100);
      expect(one.watch.reason).to.equal('heartbeat');
      expect(two.ch.isActive).to.equal(true);
    });

    it('rejects an interval or timeout past 2^30 - 1 ms', () => {
      expect(() => new HeartbeatHandler({ timeout: 2 ** 30 })).to.throw(InvalidOptionError, /option timeout:.*at most/);
      expect(() => new HeartbeatHandler({ interval: 2 ** 31, ping: () => 1 })).to.throw(InvalidOptionError, /interval/);
    });
  });
});
