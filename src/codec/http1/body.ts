/**
 * Streamed request bodies (`streamBodies: true`): the decoder emits the request as soon as its
 * head is complete, then `HttpBodyChunk`s as the body arrives; the server stage feeds them to the
 * request's `HttpRequestBody`, which the handler reads as an async iterable of Buffers.
 *
 * Backpressure: chunks the handler has not read yet are held up to `highWaterMark` bytes; beyond
 * that the connection stops reading (a hold of the body's own, `channel.pauseReading`) until the
 * handler has read half of them — the peer's bytes wait in the kernel and TCP slows it down.
 */
import { Buffer } from 'node:buffer';
import { HttpHeaders } from './headers.js';

/** A piece of a streamed request body, from the decoder to the server stage. */
export class HttpBodyChunk {
  constructor(
    /** The bytes (a view of the read's copy: keep it as long as needed). */
    readonly data: Buffer,
    /** The body ends with this chunk. */
    readonly last: boolean,
    /** Trailer fields of a chunked body, with the last chunk. */
    readonly trailers: HttpHeaders,
  ) {}
}

/** The body of a request whose head came first (`req.bodyStream`): read it once, in order. */
export class HttpRequestBody implements AsyncIterable<Buffer> {
  private readonly chunks: Buffer[] = [];
  private held = 0;
  private paused = false;
  private done = false;
  private discarding = false;
  private failure: unknown;
  private waiter: { resolve: (r: IteratorResult<Buffer>) => void; reject: (e: unknown) => void } | undefined;
  private consumed = false;
  /** Body bytes received so far. */
  received = 0;
  /** Trailer fields of a chunked body, once it ended. */
  trailers: HttpHeaders = HttpHeaders.EMPTY;

  /** @internal */
  constructor(
    /** Pauses (true) or resumes (false) reading the connection. */
    private readonly pressure: (pause: boolean) => void,
    private readonly highWaterMark = 64 * 1024,
  ) {}

  /** What cut the body short (a protocol error, a timeout, the connection closing), if anything did. */
  get error(): unknown {
    return this.failure;
  }

  /** All of it has arrived (whether or not it was read). */
  get complete(): boolean {
    return this.done;
  }

  /** @internal A chunk from the connection. */
  push(data: Buffer): void {
    if (this.done) return;
    this.received += data.length;
    if (this.discarding || data.length === 0) return;
    const w = this.waiter;
    if (w !== undefined && this.chunks.length === 0) {
      this.waiter = undefined;
      w.resolve({ value: data, done: false });
      return;
    }
    this.chunks.push(data);
    this.held += data.length;
    if (!this.paused && this.held > this.highWaterMark) {
      this.paused = true;
      this.pressure(true);
    }
  }

  /** @internal The body ended (with the trailers of a chunked body). */
  end(trailers: HttpHeaders): void {
    if (this.done) return;
    this.done = true;
    this.trailers = trailers;
    this.release();
    const w = this.waiter;
    if (w !== undefined && this.chunks.length === 0) {
      this.waiter = undefined;
      w.resolve({ value: undefined, done: true });
    }
  }

  /** @internal The body cannot be completed: a protocol error, a timeout, the connection closed. */
  fail(error: unknown): void {
    if (this.done) return;
    this.done = true;
    this.failure = error;
    this.chunks.length = 0;
    this.held = 0;
    this.release();
    const w = this.waiter;
    if (w !== undefined) {
      this.waiter = undefined;
      w.reject(error);
    }
  }

  /**
   * @internal The response was sent before the handler read the body: what is held and what is
   * still to come is dropped (reading goes on, so the next request can be read).
   */
  discard(): void {
    this.discarding = true;
    this.chunks.length = 0;
    this.held = 0;
    this.release();
  }

  /** The next chunk, or done at the end; rejects with the error that cut the body short. */
  next(): Promise<IteratorResult<Buffer>> {
    if (this.waiter !== undefined) return Promise.reject(new Error('the request body has one reader at a time'));
    const data = this.chunks.shift();
    if (data !== undefined) {
      this.held -= data.length;
      if (this.paused && this.held <= this.highWaterMark >> 1) this.release();
      return Promise.resolve({ value: data, done: false });
    }
    if (this.failure !== undefined) return Promise.reject(this.failure);
    if (this.done) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject };
    });
  }

  [Symbol.asyncIterator](): AsyncIterator<Buffer> {
    if (this.consumed) throw new Error('the request body can be iterated once');
    this.consumed = true;
    return { next: () => this.next() };
  }

  /** The whole body in one Buffer (up to the decoder's `maxBodySize`). */
  async bytes(): Promise<Buffer> {
    const parts: Buffer[] = [];
    for await (const chunk of this) parts.push(chunk);
    return parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts);
  }

  /** The whole body as text. */
  async text(encoding: BufferEncoding = 'utf8'): Promise<string> {
    return (await this.bytes()).toString(encoding);
  }

  private release(): void {
    if (!this.paused) return;
    this.paused = false;
    this.pressure(false);
  }
}
