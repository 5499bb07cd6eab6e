/**
 * RequestResponseHandler on an EmbeddedChannel: matching by id (JSON objects and binary frames)
 * and in order, timeouts on the fake clock, late and unmatched replies, aborts, the pending
 * bound, closes and protocol errors.
 */
import { expect } from 'chai';
import {
  ChannelClosedError,
  ChannelOutboundHandler,
  DecoderError,
  EmbeddedChannel,
  frameIds,
  type HandlerContext,
  InvalidOptionError,
  jsonIds,
  ProtocolError,
  RequestResponseHandler,
  type RequestResponseOptions,
  RequestTimeoutError,
  TooManyPendingError,
} from '../../../src/index.js';

/** Lets queued microtasks (the batched flush, promise callbacks) run. */
const tick = () => new Promise<void>((r) => setImmediate(r));

/** The outcome of a promise, without awaiting it forever. */
function track<T>(p: Promise<T>): { value?: T; error?: unknown; settled: boolean } {
  const t: { value?: T; error?: unknown; settled: boolean } = { settled: false };
  p.then(
    (v) => {
      t.value = v;
      t.settled = true;
    },
    (e: unknown) => {
      t.error = e;
      t.settled = true;
    },
  );
  return t;
}

function setup(options: RequestResponseOptions = {}): { ch: EmbeddedChannel; rr: RequestResponseHandler } {
  const rr = new RequestResponseHandler(options);
  const ch = new EmbeddedChannel([rr]);
  return { ch, rr };
}

describe('RequestResponseHandler', () => {
  describe('by id (JSON objects)', () => {
    it('assigns uids, writes the requests in one flush, and matches replies in any order', async () => {
      const { ch, rr } = setup();
      const a = track(rr.request({ op: 'a' }));
      const b = track(rr.request({ op: 'b' }));
      const c = track(rr.request({ op: 'c' }));
      expect(ch.outbound).to.have.length(0); // flushed in a microtask, once
      await tick();
      expect(ch.outbound).to.deep.equal([
        { op: 'a', uid: 1 },
        { op: 'b', uid: 2 },
        { op: 'c', uid: 3 },
      ]);
      ch.writeInbound({ uid: 3, r: 'C' }, { uid: 1, r: 'A' });
      await tick();
      expect(c.value).to.deep.equal({ uid: 3, r: 'C' });
      expect(a.value).to.deep.equal({ uid: 1, r: 'A' });
      expect(b.settled).to.equal(false);
      expect(rr.pending).to.equal(1);
      ch.writeInbound({ uid: 2, r: 'B' });
      await tick();
      expect(b.value).to.deep.equal({ uid: 2, r: 'B' });
      expect(rr.stats).to.include({ sent: 3, completed: 3, unmatched: 0, late: 0 });
    });

    it('keeps an id the request already carries, and refuses a duplicate one', async () => {
      const { ch, rr } = setup({ ids: jsonIds('id') });
      const a = track(rr.request({ id: 'x-1' }));
      const dup = track(rr.request({ id: 'x-1' }));
      await tick();
      expect((dup.error as { code: string }).code).to.equal('ERR_DUPLICATE_REQUEST_ID');
      ch.writeInbound({ id: 'x-1', ok: true });
      await tick();
      expect(a.value).to.deep.equal({ id: 'x-1', ok: true });
    });

    it('passes messages that match no request to the next handler, counted', async () => {
      const { ch, rr } = setup();
      ch.writeInbound({ event: 'push' }, { uid: 99 });
      expect(ch.readInbound()).to.deep.equal({ event: 'push' });
      expect(ch.readInbound()).to.deep.equal({ uid: 99 });
      expect(rr.stats.unmatched).to.equal(2);
    });

    it('times out on the loop clock, then drops the late reply and counts it', async () => {
      const { ch, rr } = setup({ timeout: 100 });
      const a = track(rr.request({ q: 1 }));
      const b = track(rr.request({ q: 2 }, { timeout: 500 }));
      ch.advanceTime(99);
      await tick();
      expect(a.settled).to.equal(false);
      ch.advanceTime(1);
      await tick();
      expect(a.error).to.be.instanceOf(RequestTimeoutError);
      expect((a.error as RequestTimeoutError).timeout).to.equal(100);
      expect(rr.pending).to.equal(1);
      ch.writeInbound({ uid: 1, late: true });
      expect(ch.readInbound()).to.equal(undefined); // dropped, not passed on
      expect(rr.stats.late).to.equal(1);
      ch.writeInbound({ uid: 2 });
      await tick();
      expect(b.value).to.deep.equal({ uid: 2 });
      expect(rr.stats.timedOut).to.equal(1);
    });

    it('timeout 0 waits for ever', async () => {
      const { ch, rr } = setup({ timeout: 0 });
      const a = track(rr.request({}));
      ch.advanceTime(3_600_000);
      await tick();
      expect(a.settled).to.equal(false);
      ch.writeInbound({ uid: 1 });
      await tick();
      expect(a.settled).to.equal(true);
    });

    it('an aborted request rejects with the signal reason; its reply is dropped as late', async () => {
      const { ch, rr } = setup();
      const ac = new AbortController();
      const a = track(rr.request({}, { signal: ac.signal }));
      ac.abort(new Error('changed my mind'));
      await tick();
      expect((a.error as Error).message).to.equal('changed my mind');
      ch.writeInbound({ uid: 1 });
      expect(rr.stats).to.include({ aborted: 1, late: 1 });
      const pre = track(rr.request({}, { signal: AbortSignal.abort(new Error('already')) }));
      await tick();
      expect((pre.error as Error).message).to.equal('already');
    });

    it('refuses more than maxPending with TooManyPendingError', async () => {
      const { ch, rr } = setup({ maxPending: 2 });
      track(rr.request({}));
      track(rr.request({}));
      const third = track(rr.request({}));
      await tick();
      expect(third.error).to.be.instanceOf(TooManyPendingError);
      expect((third.error as TooManyPendingError).limit).to.equal(2);
      ch.writeInbound({ uid: 1 });
      const fourth = track(rr.request({}));
      await tick();
      expect(fourth.settled).to.equal(false);
    });

    it('a closing connection rejects every pending request with its reason, and later ones at once', async () => {
      const { ch, rr } = setup();
      const a = track(rr.request({}));
      const b = track(rr.request({}));
      ch.shutdownInput(); // the peer's FIN: closes as peer-closed
      await tick();
      for (const t of [a, b]) {
        expect(t.error).to.be.instanceOf(ChannelClosedError);
        expect((t.error as ChannelClosedError).reason).to.equal('peer-closed');
      }
      const later = track(rr.request({}));
      await tick();
      expect(later.error).to.be.instanceOf(ChannelClosedError);
    });

    it('a request the encoder cannot write rejects with the encoder error, the others go on', async () => {
      class PickyEncoder extends ChannelOutboundHandler {
        override write(ctx: HandlerContext, msg: unknown): void {
          if ((msg as { bad?: boolean }).bad) throw new TypeError('cannot encode');
          ctx.write(msg);
        }
      }
      const rr = new RequestResponseHandler();
      const ch = new EmbeddedChannel([new PickyEncoder(), rr]);
      const bad = track(rr.request({ bad: true }));
      const good = track(rr.request({ ok: 1 }));
      await tick();
      expect((bad.error as Error).message).to.equal('cannot encode');
      expect(rr.pending).to.equal(1);
      ch.writeInbound({ uid: 2 });
      await tick();
      expect(good.value).to.deep.equal({ uid: 2 });
      expect(ch.errors).to.have.length(0);
    });

    it('a ProtocolError from the decoder rejects the pending requests with it and closes', async () => {
      const { ch, rr } = setup();
      const a = track(rr.request({}));
      ch.pipeline.fireError(new ProtocolError('garbage reply'));
      await tick();
      expect((a.error as Error).message).to.equal('garbage reply');
      expect(ch.closeReason).to.equal('protocol-error');
    });

    it('a DecoderError (a skipped bad line) passes on when matching by id: the others still match', async () => {
      const { ch, rr } = setup();
      const a = track(rr.request({}));
      ch.pipeline.fireError(new DecoderError('bad line'));
      expect(ch.errors).to.have.length(1);
      expect(ch.isActive).to.equal(true);
      ch.writeInbound({ uid: 1 });
      await tick();
      expect(a.settled).to.equal(true);
    });
  });

  describe('by id (binary frames)', () => {
    it('prefixes a 4-byte id and matches replies by it', async () => {
      const { ch, rr } = setup({ ids: frameIds() });
      const a = track(rr.request(Buffer.from('one')));
      const b = track(rr.request('two'));
      await tick();
      const [fa, fb] = ch.outbound as Buffer[];
      expect(fa?.readUInt32BE(0)).to.equal(1);
      expect(fa?.subarray(4).toString()).to.equal('one');
      expect(fb?.readUInt32BE(0)).to.equal(2);
      ch.writeInbound(fb, fa);
      await tick();
      expect((a.value as Buffer).subarray(4).toString()).to.equal('one');
      expect((b.value as Buffer).subarray(4).toString()).to.equal('two');
      // A frame too short to carry an id is not a reply.
      ch.writeInbound(Buffer.from([1, 2]));
      expect(rr.stats.unmatched).to.equal(1);
    });

    it('reads ids up to 2^32 - 1 as unsigned', () => {
      const ids = frameIds();
      const f = ids.assign(Buffer.alloc(0), 0xfffffffe) as Buffer;
      expect(ids.idOf(f)).to.equal(0xfffffffe);
      expect(ids.idOf(new Uint8Array([0xff, 0xff, 0xff, 0xff]))).to.equal(0xffffffff);
    });
  });

  describe('in order', () => {
    it('matches replies to requests in order; a timed-out request keeps its place', async () => {
      const { ch, rr } = setup({ ids: 'in-order', timeout: 50 });
      const a = track(rr.request('GET a'));
      ch.advanceTime(50);
      const b = track(rr.request('GET b'));
      await tick();
      expect(a.error).to.be.instanceOf(RequestTimeoutError);
      expect(ch.outbound).to.deep.equal(['GET a', 'GET b']);
      ch.writeInbound('reply a'); // a's reply, late: dropped
      ch.writeInbound('reply b');
      await tick();
      expect(b.value).to.equal('reply b');
      expect(rr.stats).to.include({ late: 1, completed: 1, timedOut: 1 });
      ch.writeInbound('unsolicited');
      expect(ch.readInbound()).to.equal('unsolicited');
    });

    it('a DecoderError puts the stream out of step: pending requests reject and the connection closes', async () => {
      const { ch, rr } = setup({ ids: 'in-order' });
      const a = track(rr.request('x'));
      ch.pipeline.fireError(new DecoderError('skipped a reply'));
      await tick();
      expect((a.error as Error).message).to.equal('skipped a reply');
      expect(ch.isActive).to.equal(false);
    });

    it('holds thousands of requests and answers them in order', async () => {
      const { ch, rr } = setup({ ids: 'in-order', maxPending: 5000 });
      const all = Array.from({ length: 3000 }, (_, i) => rr.request<number>(i));
      await tick();
      for (let i = 0; i < 3000; i++) ch.writeInbound(i * 2);
      const replies = await Promise.all(all);
      expect(replies.every((r, i) => r === i * 2)).to.equal(true);
      expect(rr.pending).to.equal(0);
    });
  });

  describe('options', () => {
    it('are validated with InvalidOptionError naming the option', () => {
      expect(() => new RequestResponseHandler({ maxPending: 0 })).to.throw(InvalidOptionError, /maxPending/);
      expect(() => new RequestResponseHandler({ timeout: -1 })).to.throw(InvalidOptionError, /timeout/);
      expect(() => new RequestResponseHandler({ ids: 'fifo' as never })).to.throw(InvalidOptionError, /ids/);
      expect(() => jsonIds('')).to.throw(InvalidOptionError, /field/);
    });

    it('a request that cannot carry an id rejects', async () => {
      const { rr } = setup();
      const t = track(rr.request('not an object'));
      await tick();
      expect(t.error).to.be.instanceOf(TypeError);
      expect(rr.pending).to.equal(0);
    });
  });
});
