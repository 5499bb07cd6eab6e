import { expect } from 'chai';
import type { Channel } from '../../../src/pipeline/channel.js';
import { EmbeddedChannel } from '../../../src/pipeline/embedded.js';
import {
  ChannelDuplexHandler,
  type ChannelHandler,
  ChannelInboundHandler,
  ChannelOutboundHandler,
  type CloseReason,
  handlerMask,
  M_ALL_INBOUND,
  M_ALL_OUTBOUND,
  M_FLUSH,
  M_READ,
  M_USER_EVENT,
  M_WRITE,
} from '../../../src/pipeline/handler.js';
import { type HandlerContext, Pipeline } from '../../../src/pipeline/pipeline.js';

/** Records every event and operation as `${id}:${event}` and passes it on unchanged. */
class Rec extends ChannelDuplexHandler {
  constructor(
    readonly id: string,
    readonly log: string[],
  ) {
    super();
  }
  override onActive(ctx: HandlerContext): void {
    this.log.push(`${this.id}:active`);
    ctx.fireActive();
  }
  override onRead(ctx: HandlerContext, msg: unknown): void {
    this.log.push(`${this.id}:read`);
    ctx.fireRead(msg);
  }
  override onReadComplete(ctx: HandlerContext): void {
    this.log.push(`${this.id}:readComplete`);
    ctx.fireReadComplete();
  }
  override onInputShutdown(ctx: HandlerContext): void {
    this.log.push(`${this.id}:inputShutdown`);
    ctx.fireInputShutdown();
  }
  override onWritabilityChanged(ctx: HandlerContext, writable: boolean): void {
    this.log.push(`${this.id}:writability:${writable}`);
    ctx.fireWritabilityChanged(writable);
  }
  override onUserEvent(ctx: HandlerContext, event: unknown): void {
    this.log.push(`${this.id}:userEvent:${String(event)}`);
    ctx.fireUserEvent(event);
  }
  override onInactive(ctx: HandlerContext, reason: CloseReason): void {
    this.log.push(`${this.id}:inactive:${reason}`);
    ctx.fireInactive(reason);
  }
  override onError(ctx: HandlerContext, error: unknown): void {
    this.log.push(`${this.id}:error:${error instanceof Error ? error.message : String(error)}`);
    ctx.fireError(error);
  }
  override write(ctx: HandlerContext, msg: unknown): void {
    this.log.push(`${this.id}:write`);
    ctx.write(msg);
  }
  override flush(ctx: HandlerContext): void {
    this.log.push(`${this.id}:flush`);
    ctx.flush();
  }
  override close(ctx: HandlerContext, reason: CloseReason): void {
    this.log.push(`${this.id}:close:${reason}`);
    ctx.close(reason);
  }
  override shutdownOutput(ctx: HandlerContext): void {
    this.log.push(`${this.id}:shutdownOutput`);
    ctx.shutdownOutput();
  }
}

/** Records handlerAdded / handlerRemoved calls. */
class Life extends ChannelInboundHandler {
  added = 0;
  removed = 0;
  constructor(
    readonly id = 'life',
    readonly log: string[] = [],
  ) {
    super();
  }
  handlerAdded(_ctx: HandlerContext): void {
    this.added++;
    this.log.push(`${this.id}:added`);
  }
  handlerRemoved(_ctx: HandlerContext): void {
    this.removed++;
    this.log.push(`${this.id}:removed`);
  }
}

/** Keeps the messages it reads and does not pass them on. */
class Sink extends ChannelInboundHandler {
  readonly seen: unknown[] = [];
  override onRead(_ctx: HandlerContext, msg: unknown): void {
    this.seen.push(msg);
  }
}

/** Builds an embedded channel over a plain pipeline with named handlers. */
function named(entries: ReadonlyArray<readonly [string, ChannelHandler]>, options = {}): EmbeddedChannel {
  const p = new Pipeline();
  for (const [name, h] of entries) p.addLast(name, h);
  return new EmbeddedChannel(p, options);
}

function abc(log: string[]): EmbeddedChannel {
  return named([
    ['A', new Rec('A', log)],
    ['B', new Rec('B', log)],
    ['C', new Rec('C', log)],
  ]);
}

describe('Pipeline', () => {
  describe('event order', () => {
    it('fires onActive once per handler, in order, on construction', () => {
      const log: string[] = [];
      const ch = abc(log);
      expect(log).to.deep.equal(['A:active', 'B:active', 'C:active']);
      expect(ch.isActive).to.equal(true);
    });

    it('writeInbound visits A, B, C for onRead, then A, B, C for onReadComplete', () => {
      const log: string[] = [];
      const ch = abc(log);
      log.length = 0;
      ch.writeInbound('x');
      expect(log).to.deep.equal(['A:read', 'B:read', 'C:read', 'A:readComplete', 'B:readComplete', 'C:readComplete']);
    });

    it('fires one read per message and a single read-complete after all of them', () => {
      const log: string[] = [];
      const ch = abc(log);
      log.length = 0;
      ch.writeInbound('x', 'y');
      expect(log.filter((e) => e.startsWith('C:'))).to.deep.equal(['C:read', 'C:read', 'C:readComplete']);
    });

    it('channel.write and flush visit the outbound handlers C, B, A (tail to head)', () => {
      const log: string[] = [];
      const ch = abc(log);
      log.length = 0;
      ch.write('m');
      expect(log).to.deep.equal(['C:write', 'B:write', 'A:write']);
      log.length = 0;
      ch.flush();
      expect(log).to.deep.equal(['C:flush', 'B:flush', 'A:flush']);
      expect(ch.readOutbound()).to.equal('m');
    });

    it('ctx.write from B starts at A (the handler before B), not at the tail', () => {
      const log: string[] = [];
      const ch = abc(log);
      log.length = 0;
      const ctxB = ch.pipeline.context('B');
      expect(ctxB).to.not.equal(undefined);
      ctxB?.write('from-b');
      ctxB?.flush();
      expect(log).to.deep.equal(['A:write', 'A:flush']);
      expect(ch.readOutbound()).to.equal('from-b');
    });

    it('ctx.fireRead from B starts at C, not at the head', () => {
      const log: string[] = [];
      const ch = abc(log);
      log.length = 0;
      ch.pipeline.context('B')?.fireRead('z');
      expect(log).to.deep.equal(['C:read']);
      expect(ch.readInbound()).to.equal('z');
    });

    it('finish() closes with reason local, firing onInactive once, and a second close fires nothing', () => {
      const log: string[] = [];
      const ch = abc(log);
      log.length = 0;
      ch.finish();
      expect(log).to.deep.equal([
        'C:close:local',
        'B:close:local',
        'A:close:local',
        'A:inactive:local',
        'B:inactive:local',
        'C:inactive:local',
      ]);
      expect(ch.isActive).to.equal(false);
      expect(ch.closeReason).to.equal('local');
      log.length = 0;
      ch.close();
      ch.finish();
      expect(log.filter((e) => e.includes(':inactive'))).to.deep.equal([]);
    });

    it("close('idle-timeout') passes the reason to onInactive and channel.closeReason", () => {
      const log: string[] = [];
      const ch = abc(log);
      log.length = 0;
      ch.close('idle-timeout');
      expect(log.filter((e) => e.includes(':inactive'))).to.deep.equal([
        'A:inactive:idle-timeout',
        'B:inactive:idle-timeout',
        'C:inactive:idle-timeout',
      ]);
      expect(ch.closeReason).to.equal('idle-timeout');
      expect(ch.isActive).to.equal(false);
    });

    it('abort() closes without going through the outbound handlers', () => {
      const log: string[] = [];
      const ch = abc(log);
      log.length = 0;
      ch.abort();
      expect(log).to.deep.equal(['A:inactive:aborted', 'B:inactive:aborted', 'C:inactive:aborted']);
      expect(ch.closeReason).to.equal('aborted');
    });
  });

  describe('pass-through skipping and handlerMask', () => {
    class OnlyRead extends ChannelInboundHandler {
      readonly reads: unknown[] = [];
      override onRead(ctx: HandlerContext, msg: unknown): void {
        this.reads.push(msg);
        ctx.fireRead(msg);
      }
    }

    class OnlyWrite extends ChannelDuplexHandler {
      override write(ctx: HandlerContext, msg: unknown): void {
        ctx.write(msg);
      }
    }

    it('a class overriding only onRead has mask M_READ', () => {
      expect(handlerMask(new OnlyRead())).to.equal(M_READ);
    });

    it('a ChannelDuplexHandler subclass overriding only write has mask M_WRITE', () => {
      expect(handlerMask(new OnlyWrite())).to.equal(M_WRITE);
    });

    it('the base classes themselves implement nothing; a plain object implements what it has', () => {
      expect(handlerMask(new ChannelInboundHandler())).to.equal(0);
      expect(handlerMask(new ChannelOutboundHandler())).to.equal(0);
      expect(handlerMask(new ChannelDuplexHandler())).to.equal(0);
      expect(handlerMask({ onRead() {}, flush() {} })).to.equal(M_READ | M_FLUSH);
    });

    it('an instance with its own method property gets its own mask without changing its class mask', () => {
      const a = new OnlyRead();
      expect(handlerMask(a)).to.equal(M_READ); // caches the class mask
      const b = new OnlyRead();
      Object.defineProperty(b, 'onUserEvent', { value: () => {}, enumerable: true });
      expect(handlerMask(b)).to.equal(M_READ | M_USER_EVENT);
      expect(handlerMask(new OnlyRead())).to.equal(M_READ);
    });

    it('a handler overriding only onRead is skipped for onReadComplete; the next handler still gets it', () => {
      const log: string[] = [];
      const only = new OnlyRead();
      const ch = named([
        ['only', only],
        ['C', new Rec('C', log)],
      ]);
      // The pipeline decides from the mask computed when the handler was added: planting a spy
      // on the instance afterwards proves the pass-through onReadComplete is never called.
      let spied = 0;
      Object.defineProperty(only, 'onReadComplete', {
        value: (ctx: HandlerContext) => {
          spied++;
          ctx.fireReadComplete();
        },
      });
      expect(ch.pipeline.context('only')?.mask).to.equal(M_READ);
      log.length = 0;
      ch.writeInbound('x');
      expect(only.reads).to.deep.equal(['x']);
      expect(spied).to.equal(0);
      expect(log).to.deep.equal(['C:read', 'C:readComplete']);
    });

    it('an inbound-only handler is skipped by outbound operations', () => {
      const log: string[] = [];
      const ch = named([
        ['A', new Rec('A', log)],
        ['only', new OnlyRead()],
      ]);
      log.length = 0;
      ch.writeOutbound('o');
      expect(log).to.deep.equal(['A:write', 'A:flush']);
      expect(ch.readOutbound()).to.equal('o');
    });

    it('head and tail masks cover every outbound / inbound event', () => {
      expect(M_ALL_INBOUND & M_ALL_OUTBOUND).to.equal(0);
      expect(M_ALL_OUTBOUND & M_WRITE).to.equal(M_WRITE);
      expect(M_ALL_INBOUND & M_READ).to.equal(M_READ);
    });
  });

  describe('the ends', () => {
    it('messages reaching the tail end up in readInbound(), in order', () => {
      const ch = new EmbeddedChannel([new ChannelInboundHandler()]);
      const obj = { a: 1 };
      expect(ch.writeInbound('a', obj)).to.equal(true);
      expect(ch.readInbound()).to.equal('a');
      expect(ch.readInbound()).to.equal(obj);
      expect(ch.readInbound()).to.equal(undefined);
    });

    it('writeInbound returns false when a handler consumes everything', () => {
      const sink = new Sink();
      const ch = new EmbeddedChannel([sink]);
      expect(ch.writeInbound('a')).to.equal(false);
      expect(sink.seen).to.deep.equal(['a']);
      expect(ch.readInbound()).to.equal(undefined);
    });

    it('outbound messages reaching the head appear in readOutbound() only after flush', () => {
      const ch = new EmbeddedChannel([new ChannelDuplexHandler()]);
      const data = Buffer.from('hello');
      ch.write(data);
      expect(ch.readOutbound()).to.equal(undefined);
      expect(ch.pendingWriteBytes).to.equal(5);
      ch.flush();
      expect(ch.pendingWriteBytes).to.equal(0);
      expect(ch.readOutbound()).to.equal(data);
      expect(ch.readOutbound()).to.equal(undefined);
      expect(ch.bytesWritten).to.equal(5);
    });

    it('writeAndFlush writes and flushes in one call', () => {
      const ch = new EmbeddedChannel();
      ch.writeAndFlush('w');
      expect(ch.readOutbound()).to.equal('w');
    });
  });

  describe('adding and removing handlers at run time', () => {
    it('addFirst / addLast / addBefore / addAfter put handlers where asked', () => {
      const ch = new EmbeddedChannel();
      const p = ch.pipeline;
      p.addLast('b', new ChannelInboundHandler());
      p.addFirst('a', new ChannelInboundHandler());
      p.addLast('d', new ChannelInboundHandler());
      p.addBefore('d', 'c', new ChannelInboundHandler());
      p.addAfter('d', 'e', new ChannelInboundHandler());
      p.addAfter('a', 'a2', new ChannelInboundHandler());
      p.addBefore('a', 'a0', new ChannelInboundHandler());
      expect(p.names()).to.deep.equal(['a0', 'a', 'a2', 'b', 'c', 'd', 'e']);
    });

    it('handlers added at run time take part in events right away', () => {
      const log: string[] = [];
      const ch = new EmbeddedChannel();
      ch.pipeline.addLast('B', new Rec('B', log));
      ch.pipeline.addFirst('A', new Rec('A', log));
      ch.writeInbound('x');
      expect(log).to.deep.equal(['A:read', 'B:read', 'A:readComplete', 'B:readComplete']);
    });

    it('duplicate names throw, as do the reserved head and tail, and unknown base names', () => {
      const ch = new EmbeddedChannel();
      const p = ch.pipeline;
      p.addLast('x', new ChannelInboundHandler());
      expect(() => p.addLast('x', new ChannelInboundHandler())).to.throw(/duplicate handler name: x/);
      expect(() => p.addFirst('x', new ChannelInboundHandler())).to.throw(/duplicate/);
      expect(() => p.addBefore('x', 'x', new ChannelInboundHandler())).to.throw(/duplicate/);
      expect(() => p.addAfter('x', 'x', new ChannelInboundHandler())).to.throw(/duplicate/);
      expect(() => p.addLast('head', new ChannelInboundHandler())).to.throw(/duplicate/);
      expect(() => p.addLast('tail', new ChannelInboundHandler())).to.throw(/duplicate/);
      expect(() => p.addBefore('nope', 'y', new ChannelInboundHandler())).to.throw(/no handler named nope/);
      expect(() => p.addAfter('nope', 'y', new ChannelInboundHandler())).to.throw(/no handler named nope/);
      expect(p.names()).to.deep.equal(['x']);
    });

    it('generates unique names from the class name when none is given', () => {
      const ch = new EmbeddedChannel([new Sink(), new Sink()]);
      ch.pipeline.addFirst(new Life());
      const names = ch.pipeline.names();
      expect(names).to.have.length(3);
      expect(new Set(names).size).to.equal(3);
      expect(names[0]).to.match(/^Life#\d+$/);
      expect(names[1]).to.match(/^Sink#\d+$/);
      expect(names[2]).to.match(/^Sink#\d+$/);
      expect(ch.pipeline.get(names[1] as string)).to.be.instanceOf(Sink);
    });

    it('does not reuse a generated name that was taken explicitly', () => {
      const ch = new EmbeddedChannel();
      ch.pipeline.addLast('Sink#0', new ChannelInboundHandler());
      ch.pipeline.addLast(new Sink());
      const names = ch.pipeline.names();
      expect(names[0]).to.equal('Sink#0');
      expect(names[1]).to.match(/^Sink#\d+$/);
      expect(names[1]).to.not.equal('Sink#0');
    });

    it('handlerAdded runs once when a handler joins an attached pipeline', () => {
      const ch = new EmbeddedChannel();
      const life = new Life();
      ch.pipeline.addLast('life', life);
      expect(life.added).to.equal(1);
      expect(life.removed).to.equal(0);
    });

    it('remove(name) returns the handler, calls handlerRemoved once, and unlinks it', () => {
      const ch = new EmbeddedChannel();
      const life = new Life();
      ch.pipeline.addLast('a', new ChannelInboundHandler()).addLast('life', life).addLast('c', new Sink());
      expect(ch.pipeline.remove('life')).to.equal(life);
      expect(life.removed).to.equal(1);
      expect(ch.pipeline.names()).to.deep.equal(['a', 'c']);
      expect(ch.pipeline.get('life')).to.equal(undefined);
      expect(() => ch.pipeline.remove('life')).to.throw(/no such handler/);
      expect(() => ch.pipeline.remove(life)).to.throw(/no such handler/);
      expect(life.removed).to.equal(1);
    });

    it('remove works by handler instance and by context', () => {
      const ch = new EmbeddedChannel();
      const a = new Life('a');
      const b = new Life('b');
      ch.pipeline.addLast('a', a).addLast('b', b);
      expect(ch.pipeline.remove(a)).to.equal(a);
      const ctxB = ch.pipeline.context('b') as HandlerContext;
      expect(ch.pipeline.remove(ctxB)).to.equal(b);
      expect(ch.pipeline.names()).to.deep.equal([]);
      expect([a.removed, b.removed]).to.deep.equal([1, 1]);
      expect(() => ch.pipeline.remove(ctxB)).to.throw(/no such handler/);
    });

    it('the name of a removed handler can be used again', () => {
      const ch = new EmbeddedChannel();
      ch.pipeline.addLast('x', new ChannelInboundHandler());
      ch.pipeline.remove('x');
      ch.pipeline.addLast('x', new Sink());
      expect(ch.pipeline.get('x')).to.be.instanceOf(Sink);
    });

    it('replace calls handlerAdded of the new one, then handlerRemoved of the old, and keeps the position', () => {
      const log: string[] = [];
      const ch = new EmbeddedChannel();
      const old = new Life('old', log);
      const neu = new Life('new', log);
      ch.pipeline.addLast('a', new ChannelInboundHandler()).addLast('old', old).addLast('c', new Sink());
      log.length = 0;
      expect(ch.pipeline.replace('old', 'new', neu)).to.equal(old);
      expect(log).to.deep.equal(['new:added', 'old:removed']);
      expect(ch.pipeline.names()).to.deep.equal(['a', 'new', 'c']);
      expect(ch.pipeline.get('old')).to.equal(undefined);
      expect(ch.pipeline.get('new')).to.equal(neu);
    });

    it('replace may keep the same name, and rejects a name already in use', () => {
      const ch = new EmbeddedChannel();
      const first = new Sink();
      const second = new Sink();
      ch.pipeline.addLast('x', first).addLast('y', new ChannelInboundHandler());
      expect(() => ch.pipeline.replace('x', 'y', second)).to.throw(/duplicate/);
      expect(ch.pipeline.get('x')).to.equal(first);
      ch.pipeline.replace(first, 'x', second);
      expect(ch.pipeline.names()).to.deep.equal(['x', 'y']);
      ch.writeInbound('m');
      expect(second.seen).to.deep.equal(['m']);
      expect(first.seen).to.deep.equal([]);
    });

    it('a handler removing itself in onRead gets no further reads; its current read still reaches the next', () => {
      class Once extends ChannelInboundHandler {
        readonly seen: unknown[] = [];
        override onRead(ctx: HandlerContext, msg: unknown): void {
          this.seen.push(msg);
          ctx.pipeline.remove(this);
          ctx.fireRead(`${String(msg)}!`);
        }
      }
      const once = new Once();
      const sink = new Sink();
      const ch = named([
        ['once', once],
        ['sink', sink],
      ]);
      ch.writeInbound('1');
      expect(ch.pipeline.names()).to.deep.equal(['sink']);
      ch.writeInbound('2');
      expect(once.seen).to.deep.equal(['1']);
      expect(sink.seen).to.deep.equal(['1!', '2']);
    });

    it('get and context find handlers by name and by instance', () => {
      const a = new Sink();
      const ch = named([['a', a]]);
      const p = ch.pipeline;
      expect(p.get('a')).to.equal(a);
      expect(p.get('missing')).to.equal(undefined);
      const ctx = p.context('a');
      expect(ctx).to.not.equal(undefined);
      expect(ctx?.name).to.equal('a');
      expect(ctx?.handler).to.equal(a);
      expect(ctx?.pipeline).to.equal(p);
      expect(ctx?.channel).to.equal(ch);
      expect(p.context(a)).to.equal(ctx);
      expect(p.context(new Sink())).to.equal(undefined);
      expect(p.context('missing')).to.equal(undefined);
    });

    it('handlers added in initChannel get handlerAdded after attach, with ctx.channel usable, before onActive', () => {
      const log: string[] = [];
      let seenChannel: Channel | undefined;
      let initArg: Channel | undefined;
      class Probe extends ChannelInboundHandler {
        handlerAdded(ctx: HandlerContext): void {
          seenChannel = ctx.channel;
          log.push('added');
        }
        override onActive(ctx: HandlerContext): void {
          log.push('active');
          ctx.fireActive();
        }
      }
      class P extends Pipeline {
        override initChannel(channel: Channel): void {
          initArg = channel;
          log.push('init');
          this.addLast('probe', new Probe());
        }
      }
      const ch = new EmbeddedChannel(P);
      expect(log).to.deep.equal(['init', 'added', 'active']);
      expect(seenChannel).to.equal(ch);
      expect(initArg).to.equal(ch);
    });

    it('handlers added before attach but removed again never see handlerAdded/handlerRemoved', () => {
      const life = new Life();
      const p = new Pipeline();
      p.addLast('life', life);
      p.remove('life');
      new EmbeddedChannel(p);
      expect([life.added, life.removed]).to.deep.equal([0, 0]);
    });

    it('a pipeline cannot be attached twice, and is not usable before attach', () => {
      const p = new Pipeline();
      expect(() => p.channel).to.throw(/not attached/);
      new EmbeddedChannel(p);
      expect(() => new EmbeddedChannel(p)).to.throw(/already attached/);
    });
  });

  describe('errors', () => {
    class ThrowOnRead extends ChannelInboundHandler {
      constructor(readonly error: unknown) {
        super();
      }
      override onRead(): void {
        throw this.error;
      }
    }

    it('an error thrown in onRead reaches onError of the handlers after it, not before, then the tail', () => {
      const log: string[] = [];
      const boom = new Error('boom');
      const ch = named([
        ['before', new Rec('before', log)],
        ['thrower', new ThrowOnRead(boom)],
        ['after', new Rec('after', log)],
      ]);
      log.length = 0;
      ch.writeInbound('x');
      expect(log).to.include('after:error:boom');
      expect(log.filter((e) => e.startsWith('before:error'))).to.deep.equal([]);
      expect(log).to.not.include('after:read');
      expect(log).to.include('after:readComplete');
      expect(ch.errors).to.deep.equal([boom]);
      expect(ch.isActive).to.equal(true);
    });

    it('an error thrown where the chain ends (the transport reporting an unhandled error) leaves the pipeline once', () => {
      // Head and tail are one context and the handlers a ring through it: an error from the
      // tail's end must not go round again.
      const log: string[] = [];
      class Failing extends EmbeddedChannel {
        reports = 0;
        override unhandledError(): void {
          this.reports++;
          throw new Error('report failed');
        }
      }
      const ch = new Failing([new Rec('A', log)]);
      log.length = 0;
      expect(() => ch.pipeline.fireError(new Error('boom'))).to.throw('report failed');
      // Once for boom; once more for A, whose onError the failure left through (a handler whose
      // onError throws passes its own error on) — and then it is out, not round the ring again.
      expect(ch.reports).to.equal(2);
      expect(log).to.deep.equal(['A:error:boom']);
    });

    it('an error thrown at the head (the transport refusing a write) goes inbound from the first handler', () => {
      const log: string[] = [];
      class Refusing extends EmbeddedChannel {
        override transportWrite(): void {
          throw new Error('refused');
        }
      }
      const ch = new Refusing([new Rec('A', log), new Rec('B', log)]);
      log.length = 0;
      ch.pipeline.write('m');
      expect(log).to.deep.equal(['B:write', 'A:write', 'A:error:refused', 'B:error:refused']);
      expect((ch.errors[0] as Error).message).to.equal('refused');
    });

    it('checkException rethrows the errors that reached the tail, first first', () => {
      const first = new Error('first');
      const second = new Error('second');
      const ch = new EmbeddedChannel();
      ch.pipeline.fireError(first);
      ch.pipeline.fireError(second);
      expect(ch.errors).to.have.length(2);
      expect(() => ch.checkException()).to.throw(first);
      expect(() => ch.checkException()).to.throw(second);
      expect(() => ch.checkException()).to.not.throw();
    });

    it('a handler that consumes the error in onError stops it before the tail', () => {
      const caught: unknown[] = [];
      class Catcher extends ChannelInboundHandler {
        override onError(_ctx: HandlerContext, error: unknown): void {
          caught.push(error);
        }
      }
      const boom = new Error('boom');
      const ch = new EmbeddedChannel([new ThrowOnRead(boom), new Catcher()]);
      ch.writeInbound('x');
      expect(caught).to.deep.equal([boom]);
      expect(ch.errors).to.deep.equal([]);
    });

    it('a handler that throws inside onError passes its own error on', () => {
      const log: string[] = [];
      const first = new Error('first');
      const second = new Error('second');
      class BadCatcher extends ChannelInboundHandler {
        override onError(): void {
          throw second;
        }
      }
      const ch = named([
        ['thrower', new ThrowOnRead(first)],
        ['bad', new BadCatcher()],
        ['after', new Rec('after', log)],
      ]);
      log.length = 0;
      ch.writeInbound('x');
      expect(log.filter((e) => e.includes(':error:'))).to.deep.equal(['after:error:second']);
      expect(ch.errors).to.deep.equal([second]);
    });

    it('a throw in an outbound write reaches onError of the handlers after it (towards the tail)', () => {
      const log: string[] = [];
      const boom = new Error('write failed');
      class ThrowOnWrite extends ChannelOutboundHandler {
        override write(): void {
          throw boom;
        }
      }
      const ch = named([
        ['A', new Rec('A', log)],
        ['thrower', new ThrowOnWrite()],
        ['C', new Rec('C', log)],
      ]);
      log.length = 0;
      ch.write('m');
      expect(log).to.deep.equal(['C:write', 'C:error:write failed']);
      expect(ch.errors).to.deep.equal([boom]);
      ch.flush();
      expect(ch.readOutbound()).to.equal(undefined);
    });

    it('an error thrown in handlerAdded goes to the handlers after it', () => {
      const boom = new Error('added failed');
      class BadAdd extends ChannelInboundHandler {
        handlerAdded(): void {
          throw boom;
        }
      }
      const ch = new EmbeddedChannel();
      ch.pipeline.addLast('bad', new BadAdd());
      expect(ch.errors).to.deep.equal([boom]);
      expect(ch.pipeline.names()).to.deep.equal(['bad']);
    });
  });

  describe('writability', () => {
    it('fires onWritabilityChanged(false) past the high watermark and (true) after flush', () => {
      const log: string[] = [];
      const ch = new EmbeddedChannel([new Rec('A', log)], { highWaterMark: 10 });
      log.length = 0;
      ch.write(Buffer.alloc(10));
      expect(log.filter((e) => e.includes('writability'))).to.deep.equal([]);
      expect(ch.isWritable).to.equal(true);
      ch.write(Buffer.alloc(1));
      expect(log.filter((e) => e.includes('writability'))).to.deep.equal(['A:writability:false']);
      expect(ch.isWritable).to.equal(false);
      ch.write(Buffer.alloc(5));
      expect(log.filter((e) => e.includes('writability'))).to.have.length(1);
      ch.flush();
      expect(log.filter((e) => e.includes('writability'))).to.deep.equal(['A:writability:false', 'A:writability:true']);
      expect(ch.isWritable).to.equal(true);
      expect(ch.readOutboundBytes()).to.have.length(16);
    });

    it('writing 11 bytes at once without flush makes the channel unwritable', () => {
      const log: string[] = [];
      const ch = new EmbeddedChannel([new Rec('A', log)], { highWaterMark: 10 });
      ch.write(Buffer.alloc(11));
      expect(ch.isWritable).to.equal(false);
      ch.flush();
      expect(ch.isWritable).to.equal(true);
      expect(log.filter((e) => e.includes('writability'))).to.deep.equal(['A:writability:false', 'A:writability:true']);
    });

    it('a closed channel is not writable', () => {
      const ch = new EmbeddedChannel();
      ch.finish();
      expect(ch.isWritable).to.equal(false);
    });
  });

  describe('user events', () => {
    it('ctx.fireUserEvent reaches the next handler, not the one firing it', () => {
      const log: string[] = [];
      const ch = abc(log);
      log.length = 0;
      ch.pipeline.context('A')?.fireUserEvent('ping');
      expect(log).to.deep.equal(['B:userEvent:ping', 'C:userEvent:ping']);
    });

    it('the event object is passed as is', () => {
      const got: unknown[] = [];
      class Ev extends ChannelInboundHandler {
        override onUserEvent(_ctx: HandlerContext, event: unknown): void {
          got.push(event);
        }
      }
      const evt = { kind: 'idle' };
      const ch = new EmbeddedChannel([new Ev()]);
      ch.pipeline.fireUserEvent(evt);
      expect(got).to.have.length(1);
      expect(got[0]).to.equal(evt);
    });
  });

  describe('Pipeline subclass and factory', () => {
    class Upper extends ChannelInboundHandler {
      override onRead(ctx: HandlerContext, msg: unknown): void {
        ctx.fireRead(String(msg).toUpperCase());
      }
    }
    class P extends Pipeline {
      override initChannel(): void {
        this.addLast('x', new Upper());
      }
    }

    it('new EmbeddedChannel(P) builds the pipeline through initChannel', () => {
      const ch = new EmbeddedChannel(P);
      expect(ch.pipeline).to.be.instanceOf(P);
      expect(ch.pipeline.names()).to.deep.equal(['x']);
      ch.writeInbound('abc');
      expect(ch.readInbound()).to.equal('ABC');
    });

    it('a factory (ch) => new P() works too and receives the channel', () => {
      let arg: Channel | undefined;
      const ch = new EmbeddedChannel((c: Channel) => {
        arg = c;
        return new P();
      });
      expect(arg).to.equal(ch);
      expect(ch.pipeline.names()).to.deep.equal(['x']);
      ch.writeInbound('q');
      expect(ch.readInbound()).to.equal('Q');
    });

    it('a factory that does not return a Pipeline is rejected', () => {
      expect(() => new EmbeddedChannel((() => ({})) as unknown as () => Pipeline)).to.throw(TypeError);
    });

    it('a Pipeline instance may be passed directly', () => {
      const p = new P();
      const ch = new EmbeddedChannel(p);
      expect(ch.pipeline).to.equal(p);
      expect(p.channel).to.equal(ch);
      expect(p.names()).to.deep.equal(['x']);
    });
  });

  describe('half-close', () => {
    it('with allowHalfOpen, shutdownInput fires onInputShutdown and the channel stays active and writable', () => {
      const log: string[] = [];
      const ch = new EmbeddedChannel([new Rec('A', log)], { allowHalfOpen: true });
      log.length = 0;
      ch.shutdownInput();
      expect(log).to.deep.equal(['A:inputShutdown']);
      expect(ch.isActive).to.equal(true);
      expect(ch.isWritable).to.equal(true);
      expect(ch.isInputShutdown).to.equal(true);
      expect(ch.closeReason).to.equal(undefined);
      ch.writeAndFlush('still');
      expect(ch.readOutbound()).to.equal('still');
    });

    it('with allowHalfOpen, shutting down the output as well closes the channel', () => {
      const log: string[] = [];
      const ch = new EmbeddedChannel([new Rec('A', log)], { allowHalfOpen: true });
      ch.shutdownInput();
      log.length = 0;
      ch.shutdownOutput();
      expect(log).to.deep.equal(['A:shutdownOutput', 'A:inactive:local']);
      expect(ch.isOutputShutdown).to.equal(true);
      expect(ch.isActive).to.equal(false);
    });

    it("without allowHalfOpen, shutdownInput closes the channel with reason 'peer-closed'", () => {
      const log: string[] = [];
      const ch = new EmbeddedChannel([new Rec('A', log)]);
      log.length = 0;
      ch.shutdownInput();
      expect(log).to.deep.equal(['A:close:peer-closed', 'A:inactive:peer-closed']);
      expect(ch.isActive).to.equal(false);
      expect(ch.closeReason).to.equal('peer-closed');
    });
  });

  describe('timers', () => {
    it('a timer scheduled for 100 ms fires after advanceTime(100), not after 99', () => {
      const ch = new EmbeddedChannel();
      let fired = 0;
      const t = ch.timers.schedule(100, () => fired++);
      ch.advanceTime(99);
      expect(fired).to.equal(0);
      expect(t.pending).to.equal(true);
      ch.advanceTime(1);
      expect(fired).to.equal(1);
      expect(t.pending).to.equal(false);
      ch.advanceTime(1000);
      expect(fired).to.equal(1);
    });

    it('the fake clock starts at startTime and follows advanceTime', () => {
      const ch = new EmbeddedChannel([], { startTime: 5000 });
      expect(ch.timers.now()).to.equal(5000);
      ch.advanceTime(250);
      expect(ch.timers.now()).to.equal(5250);
    });

    it('closing the channel cancels its timers', () => {
      const ch = new EmbeddedChannel();
      let fired = 0;
      ch.timers.schedule(10, () => fired++);
      ch.finish();
      ch.advanceTime(100);
      expect(fired).to.equal(0);
    });
  });
});
