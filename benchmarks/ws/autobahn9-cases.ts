/**
 * The cases of Autobahn|Testsuite's section 9 ("limits and performance"), as the benchmark
 * benchmarks/ws/autobahn9.ts performs them. The parameters — sizes, repeated payload patterns,
 * fragment sizes, TCP chop sizes, message counts and the per-case time limits — are those of the
 * upstream case files (crossbario/autobahn-testsuite, autobahntestsuite/case/case9_*.py, the
 * revision /work/shared/vectors/autobahn/ was taken from); the descriptions of 9.1–9.6 are in
 * /work/shared/vectors/autobahn/cases.json. The code is ours.
 *
 * Upstream runs 54 cases in section 9: 9.1–9.6 (one file each, 42 cases) and 9.7.1–9.7.6 /
 * 9.8.1–9.8.6, which one file (case9_7_X.py) generates from a table. 9.9.1 (an endless message
 * for 3 s) is in cases.json but commented out of upstream's case list and reports no time: it is
 * left out here too.
 */
import { Buffer } from 'node:buffer';

export interface Case9 {
  readonly id: string;
  /** `9.1` … `9.8`. */
  readonly family: string;
  /** A short description for the table: `text 64 KiB`, `binary 4 MiB in 64 B frames`. */
  readonly title: string;
  readonly binary: boolean;
  /** The message: `pattern` repeated to `length` bytes (payloadOf), sent `count` times, each after the previous echo. */
  readonly pattern: Buffer;
  readonly length: number;
  readonly count: number;
  /** Frames of at most this many payload bytes (9.3, 9.4); 0 = one frame. */
  readonly fragment: number;
  /** TCP writes of this many bytes, one event-loop turn apart (9.5, 9.6); 0 = one write. */
  readonly chop: number;
  /** Upstream's WAITSECS: the case fails when it has not finished by then. */
  readonly waitSecs: number;
}

const KiB = 1024;
const MiB = 1024 * KiB;

/** `pattern` repeated to `length` bytes (upstream's `payload_len`). */
export function repeated(pattern: Buffer | string, length: number): Buffer {
  const p = typeof pattern === 'string' ? Buffer.from(pattern, 'latin1') : pattern;
  const out = Buffer.allocUnsafe(length);
  if (length === 0) return out;
  p.copy(out, 0, 0, Math.min(p.length, length));
  // Doubling copies: log2(length) memcpy calls instead of length / pattern.length.
  for (let have = Math.min(p.length, length); have < length; have *= 2) out.copy(out, have, 0, have);
  return out;
}

const built = new Map<string, Buffer>();

/**
 * The case's message, built on first use and shared by the cases that send the same bytes (9.3 and
 * 9.4.2–9.4.9 all send 4 MiB of '*'): a run of a few cases does not build all 68 MiB.
 */
export function payloadOf(c: Case9): Buffer {
  const key = `${c.pattern.toString('hex')}:${c.length}`;
  let p = built.get(key);
  if (p === undefined) {
    p = repeated(c.pattern, c.length);
    built.set(key, p);
  }
  return p;
}

/** 64 KiB, 1 MiB, 512 B. */
export function size(n: number): string {
  if (n >= MiB && n % MiB === 0) return `${n / MiB} MiB`;
  if (n >= KiB && n % KiB === 0) return `${n / KiB} KiB`;
  return `${n} B`;
}

// The patterns upstream repeats: 9.1/9.5 text, 9.2/9.6 binary, 9.3 text '*', 9.4.1 binary 0xfe
// (9.4.2–9.4.9 repeat '*' as binary upstream: kept, it changes nothing for an echo), 9.7 '*', 9.8 0xfe.
const TEXT = Buffer.from('BAsd7&jh23');
const BINARY = Buffer.from([0x00, 0xfe, 0x23, 0xfa, 0xf0]);
const STAR = Buffer.from('*');
const FE = Buffer.from([0xfe]);

function build(): Case9[] {
  const cases: Case9[] = [];
  const one = (c: Omit<Case9, 'count' | 'fragment' | 'chop'> & Partial<Case9>) =>
    cases.push({ count: 1, fragment: 0, chop: 0, ...c });

  // 9.1 / 9.2: one message in one frame, 64 KiB … 16 MiB.
  const sizes = [64 * KiB, 256 * KiB, MiB, 4 * MiB, 8 * MiB, 16 * MiB];
  const wait91 = [10, 10, 100, 100, 100, 100];
  const wait92 = [10, 10, 10, 10, 100, 100];
  sizes.forEach((n, i) => {
    one({
      id: `9.1.${i + 1}`,
      family: '9.1',
      title: `text ${size(n)}`,
      binary: false,
      pattern: TEXT,
      length: n,
      waitSecs: wait91[i] as number,
    });
  });
  sizes.forEach((n, i) => {
    one({
      id: `9.2.${i + 1}`,
      family: '9.2',
      title: `binary ${size(n)}`,
      binary: true,
      pattern: BINARY,
      length: n,
      waitSecs: wait92[i] as number,
    });
  });

  // 9.3 / 9.4: a 4 MiB message in frames of 64 B … 4 MiB (the last, one frame).
  const fragments = [64, 256, KiB, 4 * KiB, 16 * KiB, 64 * KiB, 256 * KiB, MiB, 4 * MiB];
  fragments.forEach((f, i) => {
    one({
      id: `9.3.${i + 1}`,
      family: '9.3',
      title: `text 4 MiB in ${size(f)} frames`,
      binary: false,
      pattern: STAR,
      length: 4 * MiB,
      fragment: f,
      waitSecs: 100,
    });
  });
  fragments.forEach((f, i) => {
    one({
      id: `9.4.${i + 1}`,
      family: '9.4',
      title: `binary 4 MiB in ${size(f)} frames`,
      binary: true,
      pattern: i === 0 ? FE : STAR,
      length: 4 * MiB,
      fragment: f,
      waitSecs: 100,
    });
  });

  // 9.5 / 9.6: a 1 MiB message in one frame, written 64 … 2048 bytes at a time.
  const chops = [64, 128, 256, 512, 1024, 2048];
  chops.forEach((c, i) => {
    one({
      id: `9.5.${i + 1}`,
      family: '9.5',
      title: `text 1 MiB in ${c} B writes`,
      binary: false,
      pattern: TEXT,
      length: MiB,
      chop: c,
      waitSecs: 1000,
    });
  });
  chops.forEach((c, i) => {
    one({
      id: `9.6.${i + 1}`,
      family: '9.6',
      title: `binary 1 MiB in ${c} B writes`,
      binary: true,
      pattern: BINARY,
      length: MiB,
      chop: c,
      waitSecs: 1000,
    });
  });

  // 9.7 / 9.8: 1,000 round trips, each message sent once the previous echo arrived.
  const trips: Array<[number, number]> = [
    [0, 60],
    [16, 60],
    [64, 60],
    [256, 120],
    [KiB, 240],
    [4 * KiB, 480],
  ];
  for (const [family, binary] of [
    ['9.7', false],
    ['9.8', true],
  ] as const) {
    trips.forEach(([n, wait], i) => {
      one({
        id: `${family}.${i + 1}`,
        family,
        title: `1,000 × ${binary ? 'binary' : 'text'} ${size(n)}`,
        binary,
        pattern: binary ? FE : STAR,
        length: n,
        count: 1000,
        waitSecs: wait,
      });
    });
  }
  return cases;
}

/** Every case, in upstream's order. */
export const CASES9: readonly Case9[] = build();

/** The cases whose id is one of `filters` or starts with one of them followed by a dot (`9.7` → 9.7.1 … 9.7.6). */
export function selectCases(filters: readonly string[]): Case9[] {
  const wanted = filters.map((f) => f.trim()).filter((f) => f !== '');
  if (wanted.length === 0) return [...CASES9];
  for (const f of wanted) {
    if (!CASES9.some((c) => c.id === f || c.id.startsWith(`${f}.`))) {
      throw new Error(`--cases: no section-9 case matches ${JSON.stringify(f)} (9.1.1 … 9.8.6, or a prefix: 9.3)`);
    }
  }
  return CASES9.filter((c) => wanted.some((f) => c.id === f || c.id.startsWith(`${f}.`)));
}
