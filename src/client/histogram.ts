/**
 * A latency histogram in fixed memory, log-linear as HdrHistogram: values below 256 are counted
 * exactly, larger ones in 128 linear sub-buckets per power of two — a relative error under 0.8%
 * at any magnitude, with 4,352 counters (34 KiB) covering 0 to 2^40 (in µs: 12 days). Recording
 * is a few integer operations and one array increment: no sample is stored, so a run of a billion
 * requests costs the same memory as a run of ten.
 *
 * Percentiles report the highest value equivalent to the bucket the rank falls in (as HdrHistogram
 * does), clamped to the exact minimum and maximum, which are tracked separately with the sum and
 * sum of squares (for the mean and standard deviation).
 */

/** Values below 2^LINEAR_BITS are exact. */
const LINEAR_BITS = 8;
const LINEAR = 1 << LINEAR_BITS;
/** Sub-buckets per power of two above the linear range. */
const SUB = LINEAR >>> 1;
/** Largest power of two tracked: values at or above 2^MAX_BITS are clamped to the top bucket. */
const MAX_BITS = 40;
const SIZE = LINEAR + (MAX_BITS - LINEAR_BITS) * SUB;
const MAX_VALUE = 2 ** MAX_BITS - 1;

/** The bucket of a non-negative integer value. */
function indexOf(v: number): number {
  if (v < LINEAR) return v;
  if (v > MAX_VALUE) v = MAX_VALUE;
  // floor(log2(v)): clz32 for 32-bit values, Math.log2 beyond (exact for integers below 2^53).
  const e = v < 0x100000000 ? 31 - Math.clz32(v) : Math.floor(Math.log2(v));
  const shift = e - (LINEAR_BITS - 1); // v / 2^shift is in [SUB, 2 * SUB)
  return LINEAR + (e - LINEAR_BITS) * SUB + (Math.floor(v / 2 ** shift) - SUB);
}

/** The highest value that falls in bucket `i`. */
function highestIn(i: number): number {
  if (i < LINEAR) return i;
  const k = i - LINEAR;
  const e = LINEAR_BITS + Math.floor(k / SUB);
  const shift = e - (LINEAR_BITS - 1);
  const sub = SUB + (k % SUB);
  return (sub + 1) * 2 ** shift - 1;
}

/**
 * A latency histogram in fixed memory (34 KiB, whatever it records), log-linear as HdrHistogram:
 * values below 256 exact, larger ones within 0.8%, from 0 to 2^40. Recording is a few integer
 * operations — no sample is kept — so it can sit on a hot path and a billion-request run costs
 * what a ten-request one does. The unit is the caller's (the load generator records µs). Merge
 * per-connection histograms with `merge()`.
 *
 * @example
 * ```ts
 * import { Histogram } from 'multireactor';
 *
 * const h = new Histogram();
 * for (const us of [120, 95, 3000, 101]) h.record(us);
 * console.log(h.count, h.percentile(50), h.percentile(99), h.max); // 4 101 3000 3000
 * ```
 */
export class Histogram {
  private readonly counts = new Float64Array(SIZE);
  private n = 0;
  private sum = 0;
  private sumSquares = 0;
  private lo = Number.POSITIVE_INFINITY;
  private hi = 0;

  /** Records one value (negative values count as 0; fractions are rounded). */
  record(value: number): void {
    let v = Math.round(value);
    if (!(v > 0)) v = 0; // also NaN
    const i = indexOf(v);
    this.counts[i] = (this.counts[i] as number) + 1;
    this.n++;
    this.sum += v;
    this.sumSquares += v * v;
    if (v < this.lo) this.lo = v;
    if (v > this.hi) this.hi = v;
  }

  /** Adds every value of `other` (per-connection histograms merged into one, for instance). */
  merge(other: Histogram): void {
    for (let i = 0; i < SIZE; i++) this.counts[i] = (this.counts[i] as number) + (other.counts[i] as number);
    this.n += other.n;
    this.sum += other.sum;
    this.sumSquares += other.sumSquares;
    if (other.lo < this.lo) this.lo = other.lo;
    if (other.hi > this.hi) this.hi = other.hi;
  }

  reset(): void {
    this.counts.fill(0);
    this.n = this.sum = this.sumSquares = this.hi = 0;
    this.lo = Number.POSITIVE_INFINITY;
  }

  get count(): number {
    return this.n;
  }

  get min(): number {
    return this.n === 0 ? 0 : this.lo;
  }

  get max(): number {
    return this.hi;
  }

  get mean(): number {
    return this.n === 0 ? 0 : this.sum / this.n;
  }

  get stdev(): number {
    if (this.n === 0) return 0;
    const m = this.sum / this.n;
    return Math.sqrt(Math.max(0, this.sumSquares / this.n - m * m));
  }

  /** The value below or at which `p` percent of the recorded values fall (0 < p ≤ 100). */
  percentile(p: number): number {
    if (this.n === 0) return 0;
    if (!(p > 0)) return this.min;
    const rank = Math.max(1, Math.ceil((Math.min(p, 100) / 100) * this.n));
    if (rank >= this.n) return this.hi; // the largest value is known exactly
    let seen = 0;
    for (let i = 0; i < SIZE; i++) {
      seen += this.counts[i] as number;
      if (seen >= rank) return Math.min(this.hi, Math.max(this.lo, highestIn(i)));
    }
    return this.hi;
  }

  /** Bytes of counters this histogram holds, whatever it recorded. */
  static get footprint(): number {
    return SIZE * Float64Array.BYTES_PER_ELEMENT;
  }
}
