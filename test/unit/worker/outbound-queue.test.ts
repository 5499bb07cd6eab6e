/**
 * OutboundQueue alone: order and offsets under partial sends, the gathered copy, writev's view of
 * it, merging adjacent views, compaction of a long-blocked queue, and what it keeps alive (sent
 * chunks released, large backing buffers not pinned by small waiting views). A random model check
 * drives it against a plain byte string with seeded partial sends.
 */
import { Buffer } from 'node:buffer';
import { expect } from 'chai';
import { OutboundQueue, sharesMemory } from '../../../src/worker/outbound-queue.js';
import { prng } from '../../support.js';

/** Every unsent byte, as the queue would send it (through gather). */
function unsent(q: OutboundQueue): string {
  const into = Buffer.alloc(q.bytes);
  expect(q.gather(into)).to.equal(q.bytes);
  return into.toString('latin1');
}

/** What writevBuffers would send: the chunks from headIndex, the first from firstOffset. */
function iovecBytes(q: OutboundQueue): string {
  const parts: string[] = [];
  for (let i = 0; i < q.count; i++) {
    const b = q.array[q.headIndex + i] as Uint8Array;
    parts.push(Buffer.from(b.subarray(i === 0 ? q.firstOffset : 0)).toString('latin1'));
  }
  return parts.join('');
}

describe('worker/outbound-queue', () => {
  it('keeps chunks in order and counts bytes', () => {
    const q = new OutboundQueue();
    expect(q.count).to.equal(0);
    expect(q.bytes).to.equal(0);
    q.push(Buffer.from('ab'));
    q.push(Buffer.from('cde'));
    expect(q.count).to.equal(2);
    expect(q.bytes).to.equal(5);
    expect(unsent(q)).to.equal('abcde');
    expect(iovecBytes(q)).to.equal('abcde');
  });

  it('a partial send moves the offset inside the first chunk; first() is its unsent part', () => {
    const q = new OutboundQueue();
    q.push(Buffer.from('hello'));
    q.push(Buffer.from('world'));
    q.consume(3);
    expect(q.bytes).to.equal(7);
    expect(q.count).to.equal(2);
    expect(q.firstOffset).to.equal(3);
    expect(Buffer.from(q.first()).toString()).to.equal('lo');
    expect(unsent(q)).to.equal('loworld');
    expect(iovecBytes(q)).to.equal('loworld');
    expect(q.bytesOfFirst(1)).to.equal(2);
    expect(q.bytesOfFirst(2)).to.equal(7);
  });

  it('a send that ends exactly on a chunk boundary drops that chunk and resets the offset', () => {
    const q = new OutboundQueue();
    q.push(Buffer.from('abc'));
    q.push(Buffer.from('def'));
    q.consume(3);
    expect(q.count).to.equal(1);
    expect(q.firstOffset).to.equal(0);
    expect(Buffer.from(q.first()).toString()).to.equal('def');
    q.consume(3);
    expect(q.count).to.equal(0);
    expect(q.bytes).to.equal(0);
    expect(q.headIndex).to.equal(0);
  });

  it('sent slots are cleared, so that the chunks sent can be collected', () => {
    const q = new OutboundQueue();
    const a = Buffer.from('aaaa');
    const b = Buffer.from('bbbb');
    q.push(a);
    q.push(b);
    q.consume(4);
    expect(q.array).to.not.include(a);
    expect(q.array).to.include(b);
    q.clear();
    expect(q.array).to.not.include(b);
    expect(q.bytes).to.equal(0);
    expect(q.count).to.equal(0);
  });

  it('merges adjacent views of one buffer into one chunk, without a copy', () => {
    const mem = Buffer.from('0123456789');
    const q = new OutboundQueue();
    q.push(mem.subarray(0, 3));
    q.push(mem.subarray(3, 7));
    q.push(mem.subarray(7, 10));
    q.mergeContiguous();
    expect(q.count).to.equal(1);
    const merged = q.first();
    expect(merged.buffer).to.equal(mem.buffer);
    expect(Buffer.from(merged).toString()).to.equal('0123456789');
  });

  it('does not merge views with a gap, or views of different buffers', () => {
    const mem = Buffer.from('0123456789');
    const q = new OutboundQueue();
    q.push(mem.subarray(0, 3));
    q.push(mem.subarray(4, 7));
    q.mergeContiguous();
    expect(q.count).to.equal(2);
    const r = new OutboundQueue();
    r.push(Buffer.from('abc'));
    r.push(Buffer.from('def'));
    r.mergeContiguous();
    expect(r.count).to.equal(2);
    expect(unsent(r)).to.equal('abcdef');
  });

  it('a long-blocked queue moves its live chunks to the front and clears the rest', () => {
    const q = new OutboundQueue();
    const chunks = Array.from({ length: 200 }, (_, i) => Buffer.from([i & 0xff]));
    for (const c of chunks) q.push(c);
    q.consume(150);
    // head (150) > 64 and head * 2 > tail (200): compacted.
    expect(q.headIndex).to.equal(0);
    expect(q.count).to.equal(50);
    expect(q.array[0]).to.equal(chunks[150]);
    for (let i = 50; i < 200; i++) expect((q.array[i] as Uint8Array).length).to.equal(0);
    expect(unsent(q)).to.equal(Buffer.from(chunks.slice(150).map((c) => c[0] as number)).toString('latin1'));
  });

  it('emptied after a burst of more than 1024 chunks, it gives the grown array back', () => {
    const q = new OutboundQueue();
    for (let i = 0; i < 2000; i++) q.push(Buffer.from('x'));
    q.consume(2000);
    expect(q.array.length).to.equal(0);
  });

  it('detachShared copies out a small waiting view of a large buffer, keeping its bytes and order', () => {
    const slab = Buffer.alloc(64 * 1024, 0x61);
    slab.write('tail', 100);
    const small = slab.subarray(96, 104);
    const own = Buffer.allocUnsafeSlow(3); // its own memory: not a slice of Node's 8 KiB pool
    own.write('own');
    const q = new OutboundQueue();
    q.push(small);
    q.push(own);
    q.consume(2); // the offset inside the shared chunk is folded into the copy
    expect(sharesMemory(small, 6)).to.equal(true);
    q.detachShared();
    expect(q.firstOffset).to.equal(0);
    expect(q.first().buffer).to.not.equal(slab.buffer);
    expect(q.first().buffer.byteLength).to.be.lessThan(slab.buffer.byteLength);
    expect(q.array[q.headIndex + 1]).to.equal(own); // a chunk that owns its bytes stays as it is
    expect(unsent(q)).to.equal(`aatailown`);
  });

  it('detachShared copies a partly sent large chunk out once, not again on every later block', () => {
    // The writer may reuse its buffer once the chunk waits: the first block copies the rest; that
    // copy is the queue's own, so later partial sends and blocks do not copy it again.
    const big = Buffer.allocUnsafeSlow(1 << 20).fill(0x62);
    const q = new OutboundQueue();
    q.push(big);
    q.consume(300 * 1024);
    q.detachShared();
    const copy = q.first();
    expect(copy.buffer).to.not.equal(big.buffer);
    expect(q.firstOffset).to.equal(0);
    q.consume(200 * 1024);
    q.detachShared();
    expect(q.array[q.headIndex]).to.equal(copy);
    expect(q.firstOffset).to.equal(200 * 1024);
    expect(q.bytes).to.equal((1 << 20) - 500 * 1024);
  });

  it('sharesMemory() is false only for the whole of a buffer', () => {
    const whole = Buffer.allocUnsafeSlow(10_000);
    expect(sharesMemory(whole, 10_000)).to.equal(false);
    // However little of the buffer a view leaves out, its writer may rewrite the rest of it.
    expect(sharesMemory(whole.subarray(0, 9_999), 9_999)).to.equal(true);
    expect(sharesMemory(whole.subarray(1), 9_999)).to.equal(true);
    expect(sharesMemory(whole.subarray(0, 100), 100)).to.equal(true);
    // The unsent rest of a whole buffer (its head sent) is part of it.
    expect(sharesMemory(whole, 9_000)).to.equal(true);
  });

  it('detachShared copies a view that covers all but a few bytes of a slab: its writer may rewrite the slab', () => {
    // The WebSocket encoder reuses its 64 KiB slab once a flush returns; a read burst's frames can
    // fill all of it but a few bytes, merged by the connection into one view. Left uncopied, the
    // next burst's frames (another connection's) would be sent in their place.
    const slab = Buffer.allocUnsafeSlow(64 * 1024).fill(0x61);
    const q = new OutboundQueue();
    q.push(slab.subarray(0, 64 * 1024 - 30));
    q.consume(100);
    q.detachShared();
    slab.fill(0x7a); // the writer's next burst
    expect(q.first().buffer).to.not.equal(slab.buffer);
    expect(q.bytes).to.equal(64 * 1024 - 130);
    expect(unsent(q)).to.equal('a'.repeat(64 * 1024 - 130));
  });

  it('model check: random pushes and partial sends against a plain string (seeded)', () => {
    const seed = 0x5eed;
    const rand = prng(seed);
    const mem = Buffer.alloc(4096);
    for (let i = 0; i < mem.length; i++) mem[i] = 0x20 + (i % 90);
    for (let round = 0; round < 200; round++) {
      const q = new OutboundQueue();
      let model = '';
      let memAt = 0;
      for (let step = 0; step < 60; step++) {
        const r = rand();
        if (r < 0.5) {
          // A push: sometimes the next adjacent view of `mem` (mergeable), sometimes a fresh buffer.
          const len = 1 + Math.floor(rand() * 40);
          let chunk: Buffer;
          if (rand() < 0.5 && memAt + len <= mem.length) {
            chunk = mem.subarray(memAt, memAt + len);
            memAt += len;
          } else {
            chunk = Buffer.from(Array.from({ length: len }, () => 0x41 + Math.floor(rand() * 26)));
          }
          q.push(chunk);
          model += chunk.toString('latin1');
        } else if (r < 0.6 && q.count > 1) {
          q.mergeContiguous();
        } else if (r < 0.65) {
          q.detachShared();
        } else if (q.bytes > 0) {
          const n = Math.floor(rand() * (q.bytes + 1));
          q.consume(n);
          model = model.slice(n);
        }
        expect(q.bytes, `seed ${seed} round ${round} step ${step}`).to.equal(model.length);
        expect(unsent(q), `seed ${seed} round ${round} step ${step}`).to.equal(model);
        expect(iovecBytes(q)).to.equal(model);
        if (q.count > 0) expect(q.bytesOfFirst(q.count)).to.equal(model.length);
      }
    }
  });
});
