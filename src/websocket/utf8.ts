/**
 * Incremental UTF-8 validation (RFC 3629 §4, as RFC 6455 §8.1 requires for text messages and close
 * reasons): bytes are checked as they arrive, a message split anywhere — between frames, inside a
 * code point, byte by byte — validates exactly as it would whole, and an invalid byte is caught in
 * the chunk that brings it (Autobahn 6.4.x: fail fast, not at the end of the message).
 *
 * The state between chunks is one small integer (what the pending code point still needs).
 * Inside a chunk, the complete code points go to Node's native `isUtf8` (simdutf: SIMD, tens of
 * GB/s) and only the ≤ 3 bytes of a code point cut by the chunk's end, and the ≤ 3 that complete
 * one cut by the previous chunk, go through the byte-wise automaton below. Short chunks (a chat
 * message) use the automaton throughout, which starts with an ASCII run.
 */
import { isUtf8 } from 'node:buffer';

/** Every code point so far is complete (the only state a message may end in). */
export const UTF8_ACCEPT = 0;
/** An invalid sequence was seen. */
export const UTF8_REJECT = -1;

// Other states: what the pending code point needs next.
const NEED1 = 1; // one continuation byte 80..BF
const NEED2 = 2; // two
const NEED3 = 3; // three
const E0_2ND = 4; // after E0: A0..BF (no overlong 3-byte forms), then NEED1
const ED_2ND = 5; // after ED: 80..9F (no surrogates D800..DFFF), then NEED1
const F0_2ND = 6; // after F0: 90..BF (no overlong 4-byte forms), then NEED2
const F4_2ND = 7; // after F4: 80..8F (nothing above U+10FFFF), then NEED2

/** Below this chunk size the automaton alone is cheaper than a `subarray` and a native call. */
const NATIVE_MIN = 64;

/** Runs the automaton over `buf[i, end)` from `state`; returns the new state or UTF8_REJECT. */
function step(state: number, buf: Uint8Array, i: number, end: number): number {
  while (i < end) {
    const b = buf[i++] as number;
    switch (state) {
      case UTF8_ACCEPT:
        if (b < 0x80) {
          // The common case: a run of ASCII.
          while (i < end && (buf[i] as number) < 0x80) i++;
          continue;
        }
        if (b < 0xc2) return UTF8_REJECT; // continuation byte, or C0/C1 (overlong 2-byte)
        if (b < 0xe0) state = NEED1;
        else if (b === 0xe0) state = E0_2ND;
        else if (b === 0xed) state = ED_2ND;
        else if (b < 0xf0) state = NEED2;
        else if (b === 0xf0) state = F0_2ND;
        else if (b < 0xf4) state = NEED3;
        else if (b === 0xf4) state = F4_2ND;
        else return UTF8_REJECT; // F5..FF: never in UTF-8
        continue;
      case NEED1:
      case NEED2:
      case NEED3:
        if ((b & 0xc0) !== 0x80) return UTF8_REJECT;
        state--;
        continue;
      case E0_2ND:
        if (b < 0xa0 || b > 0xbf) return UTF8_REJECT;
        state = NEED1;
        continue;
      case ED_2ND:
        if (b < 0x80 || b > 0x9f) return UTF8_REJECT;
        state = NEED1;
        continue;
      case F0_2ND:
        if (b < 0x90 || b > 0xbf) return UTF8_REJECT;
        state = NEED2;
        continue;
      case F4_2ND:
        if (b < 0x80 || b > 0x8f) return UTF8_REJECT;
        state = NEED2;
        continue;
      default:
        return UTF8_REJECT;
    }
  }
  return state;
}

/**
 * Validates the next bytes of a text: `buf[start, end)` following `state` (UTF8_ACCEPT at the
 * start of a message). Returns the state to pass with the next bytes — UTF8_ACCEPT when they
 * end on a code point boundary — or UTF8_REJECT as soon as they cannot be UTF-8.
 */
export function validateUtf8(state: number, buf: Uint8Array, start: number, end: number): number {
  if (state < 0) return UTF8_REJECT;
  let i = start;
  // Complete the code point the previous chunk cut (at most 3 bytes).
  while (state !== UTF8_ACCEPT && i < end) {
    state = step(state, buf, i, i + 1);
    if (state < 0) return UTF8_REJECT;
    i++;
  }
  if (end - i < NATIVE_MIN) return step(state, buf, i, end);
  // Where the last code point starts: back over at most 3 continuation bytes.
  let lead = end - 1;
  while (lead > i && lead > end - 4 && ((buf[lead] as number) & 0xc0) === 0x80) lead--;
  const b = buf[lead] as number;
  const need = b < 0x80 ? 1 : b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : b >= 0xc0 ? 2 : 1;
  // Cut short: validate up to its lead natively, the lead and what follows with the automaton.
  const cut = end - lead < need ? lead : end;
  if (cut > i && !isUtf8(buf.subarray(i, cut))) return UTF8_REJECT;
  return step(UTF8_ACCEPT, buf, cut, end);
}

/** Whether `buf[start, end)` is valid UTF-8 on its own (a close reason). */
export function isValidUtf8(buf: Uint8Array, start = 0, end = buf.length): boolean {
  return validateUtf8(UTF8_ACCEPT, buf, start, end) === UTF8_ACCEPT;
}
