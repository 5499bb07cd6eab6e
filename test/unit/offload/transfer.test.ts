/**
 * Moving Buffers to threads: which views may be transferred, and the hazard that makes the check
 * necessary — transferring a view's ArrayBuffer empties every other view of it.
 */
import { expect } from 'chai';
import { transferableSymbol } from 'piscina';
import { move } from '../../../src/offload/task.js';
import { asBuffer, exclusive, ownsBuffer, type Prepared, prepare } from '../../../src/offload/transfer.js';
import { endLoan, lend } from '../../../src/pipeline/read-loan.js';

/** Two small Buffers from Node's allocation pool: they share one ArrayBuffer. */
function pooledPair(): [Buffer, Buffer] {
  const a = Buffer.from('abc');
  const b = Buffer.from('def');
  expect(a.buffer).to.equal(b.buffer, 'Node pools small Buffers');
  return [a, b];
}

/** What postMessage does with a transfer list, without a thread. */
function send(p: Prepared): unknown {
  return structuredClone(p.payload, p.transfer === undefined ? {} : { transfer: p.transfer });
}

function prepared(payload: unknown, mode: 'move' | 'copy' = 'move'): Prepared {
  const p: Prepared = { payload: undefined, transfer: undefined };
  prepare(p, payload, mode);
  return p;
}

describe('offload transfers', () => {
  it('the hazard is real: transferring one frame of a read empties the frames next to it', () => {
    const read = Buffer.allocUnsafeSlow(10);
    read.write('abcdefghij');
    const [f1, f2] = [read.subarray(0, 5), read.subarray(5)];
    structuredClone(f1, { transfer: [f1.buffer as ArrayBuffer] });
    expect(f2.length).to.equal(0);
  });

  it("Node's small-Buffer pool refuses transfer: cloned whole (Node 20) or DataCloneError (21+)", () => {
    const [a, b] = pooledPair();
    try {
      const clone = structuredClone(a, { transfer: [a.buffer as ArrayBuffer] }) as Uint8Array;
      expect(clone.buffer.byteLength).to.equal(a.buffer.byteLength);
    } catch (err) {
      expect((err as Error).name).to.equal('DataCloneError');
    }
    expect(b.toString()).to.equal('def');
    const moved = send(prepared(a)) as Uint8Array;
    expect(moved.buffer.byteLength).to.equal(3);
  });

  it('frames of one read are copied once, each into its own buffer: the neighbours stay', () => {
    const read = Buffer.allocUnsafeSlow(10);
    read.write('abcdefghij');
    const [f1, f2] = [read.subarray(0, 5), read.subarray(5)];
    const p = prepared(f1);
    expect(p.transfer?.[0]).not.to.equal(read.buffer);
    expect(Buffer.from(send(p) as Uint8Array).toString()).to.equal('abcde');
    expect(f1.toString()).to.equal('abcde');
    expect(f2.toString()).to.equal('fghij');
  });

  it('a pooled Buffer is copied once into its own buffer, which is transferred: the neighbours stay', () => {
    const [a, b] = pooledPair();
    expect(ownsBuffer(a)).to.equal(false);
    const p = prepared(a);
    expect(p.payload).not.to.equal(a);
    expect(p.transfer).to.have.length(1);
    expect(p.transfer?.[0]).not.to.equal(a.buffer);
    const arrived = send(p) as Uint8Array;
    expect(Buffer.from(arrived).toString()).to.equal('abc');
    expect(a.toString()).to.equal('abc');
    expect(b.toString()).to.equal('def');
    expect((p.payload as Buffer).length).to.equal(0, 'the copy was moved, not cloned');
  });

  it('only the view bytes travel: cloning a 3-byte view would send its whole 8 KiB slab', () => {
    const [a] = pooledPair();
    const cloned = structuredClone(a) as Uint8Array;
    expect(cloned.buffer.byteLength).to.be.greaterThan(1000);
    const moved = send(prepared(a)) as Uint8Array;
    expect(moved.buffer.byteLength).to.equal(3);
  });

  it('a Buffer that owns its ArrayBuffer is transferred as it is (detached here, no copy)', () => {
    const own = Buffer.allocUnsafeSlow(100).fill(7);
    expect(ownsBuffer(own)).to.equal(true);
    const p = prepared(own);
    expect(p.payload).to.equal(own);
    expect(p.transfer).to.deep.equal([own.buffer]);
    const arrived = send(p) as Uint8Array;
    expect(arrived.byteLength).to.equal(100);
    expect(arrived[99]).to.equal(7);
    expect(own.length).to.equal(0);
  });

  it("a view of the loop's lent read buffer is copied even when it covers the whole buffer", () => {
    const readBuffer = Buffer.allocUnsafeSlow(64).fill(1);
    lend(readBuffer.buffer, { release: () => false });
    try {
      expect(ownsBuffer(readBuffer)).to.equal(false);
      const p = prepared(readBuffer);
      send(p);
      expect(readBuffer.length).to.equal(64);
      expect(readBuffer[0]).to.equal(1);
    } finally {
      endLoan(readBuffer.buffer);
    }
  });

  it('a subarray of an exclusive buffer is copied: the rest of the buffer is not ours to give', () => {
    const whole = Buffer.allocUnsafeSlow(16).fill(9);
    const part = whole.subarray(4, 8);
    const p = prepared(part);
    send(p);
    expect(whole.length).to.equal(16);
    expect(part.length).to.equal(4);
  });

  it('views at the top level of an object or array are moved; the caller object is not changed', () => {
    const [a, b] = pooledPair();
    const own = Buffer.allocUnsafeSlow(8).fill(2);
    const task = { a, own, n: 1, nested: { deep: b } };
    const p = prepared(task);
    expect(p.payload).not.to.equal(task);
    expect(task.a).to.equal(a);
    expect(p.transfer).to.have.length(2);
    const arrived = send(p) as { a: Uint8Array; own: Uint8Array; n: number; nested: { deep: Uint8Array } };
    expect(Buffer.from(arrived.a).toString()).to.equal('abc');
    expect(arrived.own[0]).to.equal(2);
    expect(Buffer.from(arrived.nested.deep).toString()).to.equal('def');
    expect(b.toString()).to.equal('def');

    const list = [a, 5];
    const pl = prepared(list);
    expect(Array.isArray(pl.payload)).to.equal(true);
    expect(list[0]).to.equal(a);
    expect(Buffer.from((send(pl) as Uint8Array[])[0] as Uint8Array).toString()).to.equal('abc');
  });

  it('an object whose views own their buffers is sent as it is, and one buffer is listed once', () => {
    const own = Buffer.allocUnsafeSlow(8);
    const task = { x: own, y: own };
    const p = prepared(task);
    expect(p.payload).to.equal(task);
    expect(p.transfer).to.deep.equal([own.buffer]);
    expect(() => send(p)).not.to.throw();
  });

  it("'copy' transfers nothing; class instances, strings and empty views are left to structured cloning", () => {
    const [a] = pooledPair();
    expect(prepared(a, 'copy').transfer).to.equal(undefined);
    expect(prepared('text').transfer).to.equal(undefined);
    expect(prepared(new Map([[1, a]])).transfer).to.equal(undefined);
    expect(prepared(Buffer.alloc(0)).transfer).to.equal(undefined);
    expect(prepared({ e: Buffer.alloc(0) }).transfer).to.equal(undefined);
  });

  it('exclusive() keeps the kind of view: typed arrays, DataView, Buffer; a SharedArrayBuffer view is copied', () => {
    const f = new Float64Array([1.5, 2.5, 3.5, 4.5]).subarray(1, 3);
    const ef = exclusive(f);
    expect(ef).to.be.instanceOf(Float64Array);
    expect([...ef]).to.deep.equal([2.5, 3.5]);
    expect(ownsBuffer(ef)).to.equal(true);
    const dv = new DataView(new ArrayBuffer(8), 2, 4);
    expect(exclusive(dv)).to.be.instanceOf(DataView);
    expect(exclusive(dv).byteLength).to.equal(4);
    expect(Buffer.isBuffer(exclusive(Buffer.from('xy')))).to.equal(true);
    const shared = new Uint8Array(new SharedArrayBuffer(4));
    expect(ownsBuffer(shared)).to.equal(false);
    expect(exclusive(shared).buffer).to.be.instanceOf(ArrayBuffer);
  });

  it('move() (for task modules) never marks a shared buffer for transfer', () => {
    const [a, b] = pooledPair();
    const marked = move(a) as unknown as Record<symbol, ArrayBuffer>;
    expect(marked[transferableSymbol]).not.to.equal(a.buffer);
    structuredClone(undefined, { transfer: [marked[transferableSymbol] as ArrayBuffer] });
    expect(b.toString()).to.equal('def');
    const own = Buffer.allocUnsafeSlow(4);
    expect((move(own) as unknown as Record<symbol, ArrayBuffer>)[transferableSymbol]).to.equal(own.buffer);
  });

  it('asBuffer() turns a Uint8Array result into a Buffer over the same memory', () => {
    const u = new Uint8Array([104, 105]);
    const b = asBuffer(u) as Buffer;
    expect(Buffer.isBuffer(b)).to.equal(true);
    expect(b.buffer).to.equal(u.buffer);
    expect(b.toString()).to.equal('hi');
    expect(asBuffer('s')).to.equal('s');
  });
});
