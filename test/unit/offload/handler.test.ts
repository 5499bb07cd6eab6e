/**
 * OffloadHandler on an EmbeddedChannel with a real (small) piscina pool: threads are not the
 * kernel. Order, backpressure, overload, errors, close, drain, transfers, pool sharing.
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { OffloadAbortedError, OffloadOverloadedError, OffloadTaskError } from '../../../src/offload/errors.js';
import { OffloadHandler, type OffloadHandlerOptions } from '../../../src/offload/handler.js';
import { destroyOffloadPools, type OffloadPoolStats, offloadStats } from '../../../src/offload/pool.js';
import { EmbeddedChannel } from '../../../src/pipeline/embedded.js';
import { DRAINING } from '../../../src/pipeline/events.js';
import { ChannelInboundHandler } from '../../../src/pipeline/handler.js';
import type { HandlerContext } from '../../../src/pipeline/pipeline.js';
import { waitFor } from '../../integration/helpers.js';
import { prng } from '../../support.js';

const here = dirname(fileURLToPath(import.meta.url));
const TASKS = join(here, '..', '..', 'offload-tasks.js');
const BROKEN = join(here, '..', '..', 'offload-broken-tasks.js');

/** What reached the stage after the offload stage, in order. */
class Recorder extends ChannelInboundHandler {
  readonly events: string[] = [];
  readonly reads: unknown[] = [];
  readonly errors: unknown[] = [];
  override onRead(ctx: HandlerContext, msg: unknown): void {
    this.reads.push(msg);
    this.events.push(`read:${Buffer.isBuffer(msg) ? 'buffer' : String(msg)}`);
    ctx.write(`${String(msg)};`);
  }
  override onReadComplete(): void {
    this.events.push('complete');
  }
  override onError(_ctx: HandlerContext, error: unknown): void {
    this.errors.push(error);
    this.events.push(`error:${(error as { code?: string }).code ?? (error as Error).message}`);
  }
  override onUserEvent(ctx: HandlerContext, event: unknown): void {
    if (event === DRAINING) this.events.push('draining');
    else ctx.fireUserEvent(event);
  }
  override onInputShutdown(): void {
    this.events.push('input-shutdown');
  }
}

interface Sleep {
  ms: number;
  id: unknown;
  fail?: string;
}

function sleeper(
  ms: (id: number) => number,
  extra: Partial<OffloadHandlerOptions<number, unknown>> = {},
): OffloadHandlerOptions<number, unknown> {
  return { filename: TASKS, name: 'sleep', maxThreads: 2, toTask: (id): Sleep => ({ ms: ms(id), id }), ...extra };
}

function pool(): OffloadPoolStats {
  const [p] = offloadStats();
  if (p === undefined) throw new Error('no pool');
  return p;
}

describe('OffloadHandler (EmbeddedChannel, real threads)', function () {
  this.timeout(20_000);
  const channels: EmbeddedChannel[] = [];

  function channel(h: OffloadHandler<never, unknown>, rec: Recorder, options = {}): EmbeddedChannel {
    const ch = new EmbeddedChannel([h, rec], options);
    channels.push(ch);
    return ch;
  }

  afterEach(async () => {
    for (const ch of channels.splice(0)) ch.abort();
    await destroyOffloadPools();
  });

  it('passes results on in arrival order although the tasks finish out of order', async () => {
    const finished: number[] = [];
    // Message 0 takes long on one thread while the others finish on the second one.
    const h = new OffloadHandler(
      sleeper((id) => (id === 0 ? 200 : 0), {
        fromResult: (r) => {
          finished.push(r as number);
          return r;
        },
      }),
    );
    const rec = new Recorder();
    channel(h, rec).writeInbound(0, 1, 2, 3, 4, 5);
    await waitFor(() => rec.reads.length === 6, 'six results');
    expect(rec.reads).to.deep.equal([0, 1, 2, 3, 4, 5]);
    expect(finished.at(-1)).to.equal(0, 'the first task finished last');
  });

  it('keeps the order with random task durations', async () => {
    const rnd = prng(0x0ff1);
    const ids = Array.from({ length: 40 }, (_, i) => i);
    const h = new OffloadHandler(sleeper(() => Math.floor(rnd() * 12), { maxInFlight: 64 }));
    const rec = new Recorder();
    const ch = channel(h, rec);
    ch.writeInbound(...ids.slice(0, 20));
    ch.writeInbound(...ids.slice(20));
    await waitFor(() => rec.reads.length === 40, 'forty results');
    expect(rec.reads).to.deep.equal(ids);
  });

  it('fires read-complete after results and flushes what the next stage wrote', async () => {
    const h = new OffloadHandler(sleeper(() => 5));
    const rec = new Recorder();
    const ch = channel(h, rec);
    ch.writeInbound(1, 2);
    expect(rec.events).to.deep.equal(['complete'], 'the read itself completed with nothing to pass on');
    await waitFor(() => rec.reads.length === 2, 'two results');
    await waitFor(() => rec.events.at(-1) === 'complete', 'a read-complete after them');
    expect(ch.readOutboundBytes().toString()).to.equal('1;2;');
  });

  it('a filter keeps messages on the loop, still in their turn', async () => {
    const h = new OffloadHandler(sleeper(() => 30, { filter: (id) => id % 2 === 0 }));
    const rec = new Recorder();
    const ch = channel(h, rec);
    ch.writeInbound(0, 1, 2, 3);
    ch.writeInbound(5); // behind 3, which is still running: waits
    expect(rec.reads).to.deep.equal([]);
    await waitFor(() => rec.reads.length === 5, 'five messages');
    expect(rec.reads).to.deep.equal([0, 1, 2, 3, 5]);
    expect(h.stats.tasks).to.equal(2);
    const idle = new OffloadHandler(sleeper(() => 0, { filter: () => false }));
    const rec2 = new Recorder();
    channel(idle, rec2).writeInbound(7);
    expect(rec2.reads).to.deep.equal([7], 'nothing to wait behind: passed on at once');
  });

  it('stops reading at maxInFlight, submits at most that many, and reads again at half', async () => {
    const h = new OffloadHandler(sleeper(() => 20, { maxThreads: 1, maxInFlight: 4 }));
    const rec = new Recorder();
    const ch = channel(h, rec);
    ch.writeInbound(0, 1, 2, 3, 4, 5, 6, 7, 8, 9);
    expect(ch.isReadingPaused).to.equal(true);
    expect(pool()).to.include({ running: 1, queued: 3 });
    const seen: boolean[] = [];
    await waitFor(() => {
      seen.push(!ch.isReadingPaused);
      const p = pool();
      expect(p.running + p.queued).to.be.at.most(4);
      return rec.reads.length === 10;
    }, 'ten results');
    expect(rec.reads).to.deep.equal([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(ch.isReadingPaused).to.equal(false);
    expect(pool().peakQueued).to.equal(3);
  });

  it('a full pool queue is an OffloadOverloadedError for that message, in its turn; nothing else queues', async () => {
    const h = new OffloadHandler(sleeper(() => 40, { maxThreads: 1, maxQueue: 1 }));
    const rec = new Recorder();
    channel(h, rec).writeInbound(0, 1, 2, 3, 4);
    expect(pool()).to.include({ running: 1, queued: 1, overloaded: 3 });
    await waitFor(() => rec.events.filter((e) => e !== 'complete').length === 5, 'five outcomes');
    expect(rec.events.filter((e) => e !== 'complete')).to.deep.equal([
      'read:0',
      'read:1',
      'error:ERR_OFFLOAD_OVERLOADED',
      'error:ERR_OFFLOAD_OVERLOADED',
      'error:ERR_OFFLOAD_OVERLOADED',
    ]);
    expect(rec.errors.map((e) => (e as OffloadOverloadedError).input)).to.deep.equal([2, 3, 4]);
    expect(rec.errors[0]).to.be.instanceOf(OffloadOverloadedError);
  });

  it('a task that throws is an OffloadTaskError in its turn; the connection goes on', async () => {
    const h = new OffloadHandler<number, unknown>({
      filename: TASKS,
      name: 'sleep',
      maxThreads: 2,
      toTask: (id) => ({ ms: id === 1 ? 30 : 0, id, ...(id === 1 ? { fail: 'task 1 broke' } : {}) }),
    });
    const rec = new Recorder();
    const ch = channel(h, rec);
    ch.writeInbound(0, 1, 2);
    await waitFor(() => rec.events.filter((e) => e !== 'complete').length === 3, 'three outcomes');
    expect(rec.events.filter((e) => e !== 'complete')).to.deep.equal(['read:0', 'error:ERR_OFFLOAD_TASK', 'read:2']);
    const err = rec.errors[0] as OffloadTaskError;
    expect(err).to.be.instanceOf(OffloadTaskError);
    expect(err.input).to.equal(1);
    expect((err.cause as Error).message).to.equal('task 1 broke');
    expect(ch.isActive).to.equal(true);
    expect(pool().failed).to.equal(1);
  });

  it('unhandled, a task error reaches the tail (which closes a real connection)', async () => {
    const h = new OffloadHandler<number, unknown>({
      filename: TASKS,
      name: 'sleep',
      toTask: (id) => ({ ms: 0, id, fail: 'nobody handles this' }),
    });
    const ch = new EmbeddedChannel([h]);
    channels.push(ch);
    ch.writeInbound(1);
    await waitFor(() => ch.errors.length === 1, 'the error at the tail');
    expect(ch.errors[0]).to.be.instanceOf(OffloadTaskError);
  });

  it('a module that cannot load fails its tasks with OffloadTaskError, not the process', async () => {
    const h = new OffloadHandler({ filename: BROKEN, maxThreads: 1 });
    const rec = new Recorder();
    channel(h, rec).writeInbound('x');
    await waitFor(() => rec.errors.length === 1, 'the error');
    expect(rec.errors[0]).to.be.instanceOf(OffloadTaskError);
    expect(((rec.errors[0] as Error).cause as Error).message).to.contain('broken');
  });

  it('toTask or fromResult that throws is that message error, in its turn', async () => {
    const h = new OffloadHandler<number, unknown>({
      filename: TASKS,
      name: 'sleep',
      toTask: (id) => {
        if (id === 1) throw new Error('bad input 1');
        return { ms: 10, id };
      },
      fromResult: (r) => {
        if (r === 2) throw new Error('bad result 2');
        return r;
      },
    });
    const rec = new Recorder();
    channel(h, rec).writeInbound(0, 1, 2, 3);
    await waitFor(() => rec.events.filter((e) => e !== 'complete').length === 4, 'four outcomes');
    expect(rec.events.filter((e) => e !== 'complete')).to.deep.equal([
      'read:0',
      'error:bad input 1',
      'error:bad result 2',
      'read:3',
    ]);
  });

  it('closing aborts the queued tasks (counted), drops the running one quietly, passes nothing on', async () => {
    const h = new OffloadHandler(sleeper(() => 100, { maxThreads: 1, maxInFlight: 4 }));
    const rec = new Recorder();
    const ch = channel(h, rec);
    ch.writeInbound(0, 1, 2, 3, 4, 5); // 1 running, 3 queued in the pool, 2 waiting in the session
    ch.close();
    expect(h.stats).to.deep.equal({ tasks: 6, aborted: 5, dropped: 0 });
    expect(pool()).to.include({ aborted: 5, queued: 0, running: 1 });
    await waitFor(() => pool().dropped === 1, 'the running result dropped');
    expect(h.stats.dropped).to.equal(1);
    expect(rec.reads).to.deep.equal([]);
    expect(ch.errors).to.deep.equal([]);
    expect(pool()).to.include({ completed: 1, aborted: 5, running: 0 });
  });

  it('abortRunning also stops the running task (its thread is terminated)', async () => {
    const h = new OffloadHandler(sleeper(() => 15_000, { maxThreads: 1, abortRunning: true }));
    const rec = new Recorder();
    const ch = channel(h, rec);
    ch.writeInbound(0, 1);
    ch.close();
    expect(h.stats.aborted).to.equal(2);
    await waitFor(() => pool().running === 0, 'the running task stopped, long before it would end');
    expect(pool()).to.include({ aborted: 2, dropped: 0, completed: 0 });
    // The pool goes on with a new thread.
    const h2 = new OffloadHandler(sleeper(() => 0, { maxThreads: 1 }));
    const rec2 = new Recorder();
    channel(h2, rec2).writeInbound(9);
    await waitFor(() => rec2.reads.length === 1, 'a task on the new thread');
  });

  it("holds the server's DRAINING until what is owed has been passed on, not reading meanwhile", async () => {
    const h = new OffloadHandler(sleeper(() => 30));
    const rec = new Recorder();
    const ch = channel(h, rec);
    ch.writeInbound(1);
    ch.pipeline.fireUserEvent(DRAINING);
    expect(rec.events).not.to.include('draining');
    expect(ch.isReadingPaused).to.equal(true);
    await waitFor(() => rec.events.includes('draining'), 'DRAINING');
    expect(rec.events).to.deep.equal(['complete', 'read:1', 'complete', 'draining']);
    expect(ch.isReadingPaused).to.equal(false);
    const idle = new Recorder();
    const ch2 = channel(new OffloadHandler(sleeper(() => 0)), idle);
    ch2.pipeline.fireUserEvent(DRAINING);
    expect(idle.events).to.deep.equal(['draining'], 'nothing owed: at once');
  });

  it('errors from earlier stages and a half-close wait behind the results owed', async () => {
    const h = new OffloadHandler(sleeper(() => 30));
    const rec = new Recorder();
    const ch = channel(h, rec, { allowHalfOpen: true });
    ch.writeInbound(1);
    ch.pipeline.fireError(new Error('decoder says no'));
    ch.shutdownInput();
    expect(rec.events).to.deep.equal(['complete']);
    await waitFor(() => rec.events.includes('input-shutdown'), 'the half-close');
    expect(rec.events.filter((e) => e !== 'complete')).to.deep.equal([
      'read:1',
      'error:decoder says no',
      'input-shutdown',
    ]);
  });

  it('moves a frame to the thread without emptying its neighbours, and takes results back as Buffers', async () => {
    const read = Buffer.allocUnsafeSlow(10);
    read.write('abcdefghij');
    const [f1, f2] = [read.subarray(0, 5), read.subarray(5)];
    const rec = new Recorder();
    channel(new OffloadHandler({ filename: TASKS, name: 'describe' }), rec).writeInbound(f1);
    await waitFor(() => rec.reads.length === 1, 'the description');
    expect(rec.reads[0]).to.deep.equal({ kind: 'Uint8Array', text: 'abcde', bufferLength: 5 });
    expect(f1.toString()).to.equal('abcde');
    expect(f2.toString()).to.equal('fghij');

    const big = new Recorder();
    channel(
      new OffloadHandler({ filename: TASKS, name: 'bigBack', toTask: (n: number) => ({ size: n, fill: 7 }) }),
      big,
    ).writeInbound(100_000);
    await waitFor(() => big.reads.length === 1, 'the big result');
    const b = big.reads[0] as Buffer;
    expect(Buffer.isBuffer(b)).to.equal(true);
    expect(b.length).to.equal(100_000);
    expect(b[99_999]).to.equal(7);
  });

  it('a result moved from a pooled Buffer of the thread leaves the thread pool intact', async () => {
    const shared = { filename: TASKS, maxThreads: 1 };
    const back = new Recorder();
    channel(new OffloadHandler({ ...shared, name: 'pooledBack' }), back).writeInbound('hello');
    await waitFor(() => back.reads.length === 1, 'the result');
    expect((back.reads[0] as Buffer).toString()).to.equal('hello');
    const neighbour = new Recorder();
    channel(new OffloadHandler({ ...shared, name: 'readNeighbour' }), neighbour).writeInbound(0);
    await waitFor(() => neighbour.reads.length === 1, 'the neighbour');
    expect(neighbour.reads[0]).to.equal('neighbour of hello');
    expect(offloadStats()).to.have.length(1, 'same module and pool options: one pool');
  });

  it('one pool per module and pool options, shared by connections', () => {
    const a = { filename: TASKS, maxThreads: 1 };
    channel(new OffloadHandler(a), new Recorder()).writeInbound(1);
    channel(new OffloadHandler(a), new Recorder()).writeInbound(2);
    channel(new OffloadHandler({ ...a, maxInFlight: 2, name: 'describe' }), new Recorder()).writeInbound(3);
    expect(offloadStats()).to.have.length(1);
    channel(new OffloadHandler({ ...a, maxQueue: 5 }), new Recorder()).writeInbound(4);
    expect(offloadStats()).to.have.length(2);
  });

  it('a pool destroyed under open connections ends their tasks with OffloadAbortedError', async () => {
    const h = new OffloadHandler(sleeper(() => 15_000, { maxThreads: 1 }));
    const rec = new Recorder();
    channel(h, rec).writeInbound(0, 1);
    await destroyOffloadPools();
    await waitFor(() => rec.errors.length === 2, 'two errors');
    expect(rec.errors[0]).to.be.instanceOf(OffloadAbortedError);
    expect(rec.errors[1]).to.be.instanceOf(OffloadAbortedError);
    expect(offloadStats()).to.deep.equal([]);
  });

  it('rejects bad options at construction, naming them', () => {
    expect(() => new OffloadHandler({ filename: TASKS, maxInFlight: -1 })).to.throw(/option maxInFlight/);
    expect(() => new OffloadHandler({ filename: TASKS, toTask: 5 as never })).to.throw(/option toTask/);
  });
});
