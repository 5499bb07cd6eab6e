/**
 * The fixed-memory latency histogram: exact below 256, under 0.8% relative error above, against
 * percentiles computed from the sorted samples.
 */
import { expect } from 'chai';
import { Histogram } from '../../../src/index.js';
import { prng } from '../../support.js';

/** The nearest-rank percentile of sorted values. */
function exact(sorted: readonly number[], p: number): number {
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[rank - 1] as number;
}

describe('Histogram', () => {
  it('is exact for small values', () => {
    const h = new Histogram();
    for (let v = 0; v < 200; v++) h.record(v);
    expect(h.count).to.equal(200);
    expect(h.min).to.equal(0);
    expect(h.max).to.equal(199);
    expect(h.percentile(50)).to.equal(99);
    expect(h.percentile(100)).to.equal(199);
    expect(h.mean).to.equal(99.5);
  });

  it('stays within 0.8% of the exact percentiles over many magnitudes (seeded samples)', () => {
    const seed = 12345;
    const rand = prng(seed);
    const h = new Histogram();
    const samples: number[] = [];
    for (let i = 0; i < 50_000; i++) {
      // Log-uniform from 1 µs to ~100 s.
      const v = Math.round(Math.exp(rand() * Math.log(1e8)));
      samples.push(v);
      h.record(v);
    }
    samples.sort((a, b) => a - b);
    for (const p of [1, 10, 50, 75, 90, 99, 99.9, 100]) {
      const want = exact(samples, p);
      const got = h.percentile(p);
      expect(got, `p${p} (seed ${seed})`).to.be.at.least(want);
      expect(got, `p${p} (seed ${seed})`).to.be.at.most(Math.max(want * 1.008, want + 1));
    }
    expect(h.min).to.equal(samples[0]);
    expect(h.max).to.equal(samples[samples.length - 1]);
  });

  it('percentiles are ordered, and clamped to the real min and max', () => {
    const h = new Histogram();
    h.record(1000);
    expect(h.percentile(50)).to.equal(1000); // not the bucket's upper bound
    h.record(5000);
    h.record(100_000);
    const ps = [50, 90, 99, 99.9].map((p) => h.percentile(p));
    for (let i = 1; i < ps.length; i++) expect(ps[i]).to.be.at.least(ps[i - 1] as number);
    expect(h.percentile(100)).to.equal(100_000);
  });

  it('takes the same memory whatever it records, and clamps absurd values', () => {
    const h = new Histogram();
    h.record(-5);
    h.record(Number.NaN);
    h.record(2 ** 50);
    expect(h.count).to.equal(3);
    expect(h.min).to.equal(0);
    expect(h.percentile(100)).to.equal(2 ** 50); // the exact max, tracked aside
    expect(Histogram.footprint).to.be.below(40 * 1024);
  });

  it('merges and resets', () => {
    const a = new Histogram();
    const b = new Histogram();
    for (let i = 1; i <= 100; i++) a.record(i);
    for (let i = 101; i <= 200; i++) b.record(i * 10);
    a.merge(b);
    expect(a.count).to.equal(200);
    expect(a.max).to.equal(2000);
    expect(a.percentile(50)).to.equal(100);
    a.reset();
    expect(a.count).to.equal(0);
    expect(a.percentile(99)).to.equal(0);
    expect(a.stdev).to.equal(0);
  });
});
