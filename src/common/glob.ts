/**
 * Glob patterns as Redis matches them for PSUBSCRIBE (and KEYS): `stringmatchlen` in Redis's
 * src/util.c, over the bytes of the channel name — so that a pattern reaches the same topics
 * whether a message is delivered in the publishing process, relayed by a master, or comes back
 * from Redis.
 *
 * | pattern | matches |
 * |---|---|
 * | `*` | any run of bytes, also none |
 * | `?` | exactly one byte (one byte of UTF-8, not one character) |
 * | `[abc]`, `[a-z]`, `[^a]` | one byte in the set, in the range (ends in either order), or not |
 * | `\x` | `x` itself (also `\*`, `\?`, `\[`); a `\` at the end matches `\` |
 * | anything else | itself |
 *
 * Redis's own quirks are kept: a class left open runs to the end of the pattern (`[ab` is `[ab]`);
 * a `]` right after `[` or `[^` closes the class, so `[]` matches nothing and `[^]` any byte;
 * `a-]` inside a class is a range ending at `]`; and the empty topic is matched by the empty
 * pattern only (not by `*`).
 *
 * Redis recurses at each `*` (bounded by a nesting limit since 7.0); a compiled pattern here is
 * matched with one backtracking point — the last `*` seen — which accepts exactly the same
 * strings (a later `*` can absorb whatever an earlier one would have taken) in O(pattern × text)
 * at worst, with no recursion.
 */
import { Buffer } from 'node:buffer';

const STAR = 0;
const ANY = 1;
const BYTE = 2;
const CLASS = 3;

/** One step of a compiled pattern. */
type Token =
  | { readonly kind: typeof STAR }
  | { readonly kind: typeof ANY }
  | { readonly kind: typeof BYTE; readonly byte: number }
  /** `set[b]` is 1 for each byte the class matches (negation applied). */
  | { readonly kind: typeof CLASS; readonly set: Uint8Array };

const BACKSLASH = 0x5c;
const CLOSE = 0x5d;
const CARET = 0x5e;
const DASH = 0x2d;

/** A pattern compiled once (a subscription keeps it), matched against many topics. */
export class GlobPattern {
  /** The pattern as given. */
  readonly source: string;
  private readonly tokens: readonly Token[];
  /** The pattern has no special byte: it matches its own bytes only. */
  private readonly literal: Uint8Array | undefined;

  constructor(pattern: string | Uint8Array) {
    const p = typeof pattern === 'string' ? Buffer.from(pattern) : pattern;
    this.source = typeof pattern === 'string' ? pattern : Buffer.from(pattern).toString();
    this.tokens = compile(p);
    this.literal = this.tokens.every((t) => t.kind === BYTE)
      ? Uint8Array.from(this.tokens, (t) => (t as { byte: number }).byte)
      : undefined;
  }

  /** Whether the pattern has a wildcard, a class or an escape (else it matches its own bytes only). */
  get isLiteral(): boolean {
    return this.literal !== undefined;
  }

  /** Whether `text` (a topic, as UTF-8 bytes or a string) matches. */
  matches(text: string | Uint8Array): boolean {
    const t = typeof text === 'string' ? toBytes(text) : text;
    const lit = this.literal;
    if (lit !== undefined) return Buffer.compare(lit, t) === 0;
    return matchTokens(this.tokens, t);
  }
}

/** One-off match (compiles `pattern`): prefer a kept `GlobPattern` for repeated use. */
export function globMatch(pattern: string | Uint8Array, text: string | Uint8Array): boolean {
  return new GlobPattern(pattern).matches(text);
}

/** A string's UTF-8 bytes; ASCII strings (topic names, mostly) through latin1, which is cheaper. */
function toBytes(s: string): Uint8Array {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: the range is every ASCII byte
  return /^[\x00-\x7f]*$/.test(s) ? Buffer.from(s, 'latin1') : Buffer.from(s, 'utf8');
}

function compile(p: Uint8Array): Token[] {
  const out: Token[] = [];
  const n = p.length;
  let i = 0;
  while (i < n) {
    const c = p[i] as number;
    if (c === 0x2a) {
      // Consecutive stars are one.
      if (out.at(-1)?.kind !== STAR) out.push({ kind: STAR });
      i++;
    } else if (c === 0x3f) {
      out.push({ kind: ANY });
      i++;
    } else if (c === 0x5b) {
      i++;
      const not = p[i] === CARET;
      if (not) i++;
      const set = new Uint8Array(256);
      for (;;) {
        if (i >= n) break; // left open: the class runs to the end of the pattern
        const d = p[i] as number;
        if (d === BACKSLASH && i + 1 < n) {
          set[p[i + 1] as number] = 1;
          i += 2;
        } else if (d === CLOSE) {
          i++;
          break;
        } else if (i + 2 < n && p[i + 1] === DASH) {
          let lo = d;
          let hi = p[i + 2] as number;
          if (lo > hi) [lo, hi] = [hi, lo];
          for (let b = lo; b <= hi; b++) set[b] = 1;
          i += 3;
        } else {
          set[d] = 1;
          i++;
        }
      }
      if (not) for (let b = 0; b < 256; b++) set[b] = set[b] === 1 ? 0 : 1;
      out.push({ kind: CLASS, set });
    } else if (c === BACKSLASH && i + 1 < n) {
      out.push({ kind: BYTE, byte: p[i + 1] as number });
      i += 2;
    } else {
      out.push({ kind: BYTE, byte: c });
      i++;
    }
  }
  return out;
}

function matchTokens(tokens: readonly Token[], t: Uint8Array): boolean {
  const nt = tokens.length;
  const n = t.length;
  // Redis compares nothing when the text is empty: only the empty pattern matches it (not `*`).
  if (n === 0) return nt === 0;
  let ti = 0; // token
  let si = 0; // text
  let starTi = -1; // the last star's token index
  let starSi = 0; // where the text stood when it was met (it has absorbed t[starSi-1…] so far)
  while (si < n) {
    const tok = tokens[ti];
    if (tok !== undefined) {
      if (tok.kind === STAR) {
        starTi = ti++;
        starSi = si;
        continue;
      }
      const b = t[si] as number;
      if (tok.kind === ANY || (tok.kind === BYTE && tok.byte === b) || (tok.kind === CLASS && tok.set[b] === 1)) {
        ti++;
        si++;
        continue;
      }
    }
    // Mismatch (or tokens exhausted with text left): let the last star take one more byte.
    if (starTi < 0) return false;
    ti = starTi + 1;
    si = ++starSi;
  }
  // Text consumed: what is left of the pattern must be stars only (at most one, after compile).
  while (ti < nt && (tokens[ti] as Token).kind === STAR) ti++;
  return ti === nt;
}
