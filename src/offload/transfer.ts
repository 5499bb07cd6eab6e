/**
 * Moving bytes to and from pool threads without copying them — and without giving away bytes
 * that are not ours.
 *
 * `postMessage` can *transfer* an ArrayBuffer: the memory changes owner, and the sender's buffer
 * is detached (length 0). The trap: a Buffer is a view, and transferring it transfers its whole
 * ArrayBuffer. Frames decoded from one read are views of that read's copy; a view of the loop's
 * read buffer shares it with every connection; an application's arena shares one slab between
 * many Buffers. Transferring any of them silently empties the others. (Node's own small-Buffer
 * pool — `Buffer.from('abc')`, `Buffer.allocUnsafe(100)` — is marked untransferable: Node 20 then
 * clones the whole 8 KiB slab instead, Node 21 and later throw `DataCloneError`.)
 *
 * So a view is transferred only when it covers its ArrayBuffer exactly (`byteOffset === 0 &&
 * byteLength === buffer.byteLength`) and that buffer is not lent by the loop (read-loan.ts);
 * anything else is first copied, once, into an ArrayBuffer of its own, which is then transferred.
 * That copy is never worse than not transferring: structured cloning a view copies its *entire*
 * ArrayBuffer (an 8 KiB pool slab for a 3-byte Buffer, a whole read for one frame), where the copy
 * here takes only the view's bytes.
 */
import { Buffer } from 'node:buffer';
import { isLent } from '../pipeline/read-loan.js';

/** How arguments travel to the thread: `'move'` transfers Buffers (copying shared ones once), `'copy'` structured-clones everything. */
export type TransferMode = 'move' | 'copy';

type ViewConstructor = new (buffer: ArrayBuffer) => ArrayBufferView;

/** Whether transferring `view.buffer` gives away exactly the bytes of `view` and nothing else. */
export function ownsBuffer(view: ArrayBufferView): boolean {
  const ab = view.buffer;
  return (
    ab instanceof ArrayBuffer && // a SharedArrayBuffer is shared on purpose and cannot be transferred
    view.byteOffset === 0 &&
    view.byteLength === ab.byteLength &&
    view.byteLength > 0 && // empty, or already detached: nothing to move
    !isLent(view as Uint8Array)
  );
}

/**
 * `view` itself when it owns its ArrayBuffer (see `ownsBuffer`), else a copy of its bytes in a new
 * ArrayBuffer of their own, as the same kind of view (Buffer stays Buffer).
 */
export function exclusive<T extends ArrayBufferView>(view: T): T {
  if (ownsBuffer(view) || view.byteLength === 0) return view;
  const ab = new ArrayBuffer(view.byteLength);
  new Uint8Array(ab).set(new Uint8Array(view.buffer, view.byteOffset, view.byteLength));
  if (Buffer.isBuffer(view)) return Buffer.from(ab) as unknown as T;
  if (view instanceof DataView) return new DataView(ab) as unknown as T;
  const Ctor = view.constructor as ViewConstructor;
  return new Ctor(ab) as T;
}

/** A payload ready for `postMessage`: the value to send and what to transfer with it. */
export interface Prepared {
  payload: unknown;
  transfer: ArrayBuffer[] | undefined;
}

function isPlainContainer(v: unknown): v is Record<string, unknown> | unknown[] {
  if (v === null || typeof v !== 'object') return false;
  if (Array.isArray(v)) return true;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

/**
 * Fills `into` with `payload` prepared for `mode`. With `'move'`, the views found at the top level
 * — the payload itself, or the own values of a plain object or array — are made exclusive (copied
 * once when shared) and their ArrayBuffers listed for transfer; a container whose views had to be
 * copied is itself copied (shallowly), so the caller's object is never changed. Deeper values are
 * structured-cloned as usual.
 */
export function prepare(into: Prepared, payload: unknown, mode: TransferMode): void {
  into.payload = payload;
  into.transfer = undefined;
  if (mode === 'copy') return;
  if (ArrayBuffer.isView(payload)) {
    if (payload.byteLength === 0) return;
    const own = exclusive(payload);
    into.payload = own;
    into.transfer = [own.buffer as ArrayBuffer];
    return;
  }
  if (!isPlainContainer(payload)) return;
  let copy: Record<string, unknown> | unknown[] | undefined;
  let transfer: ArrayBuffer[] | undefined;
  for (const key of Object.keys(payload)) {
    const v = (payload as Record<string, unknown>)[key];
    if (!ArrayBuffer.isView(v) || v.byteLength === 0) continue;
    const own = exclusive(v);
    if (own !== v) {
      copy ??= Array.isArray(payload) ? [...payload] : { ...payload };
      (copy as Record<string, unknown>)[key] = own;
    }
    const ab = own.buffer as ArrayBuffer;
    // Two views of one buffer cannot both own it, so a buffer here is listed once; the check
    // guards against the same view appearing under two keys (a transfer list must not repeat).
    transfer ??= [];
    if (!transfer.includes(ab)) transfer.push(ab);
  }
  if (copy !== undefined) into.payload = copy;
  into.transfer = transfer;
}

/** A result that came back as a plain Uint8Array (threads send Buffers as such) as a Buffer view, no copy. */
export function asBuffer(result: unknown): unknown {
  if (result instanceof Uint8Array && !Buffer.isBuffer(result)) {
    return Buffer.from(result.buffer, result.byteOffset, result.byteLength);
  }
  return result;
}
