/**
 * The response side of HTTP/1.1: `HttpResponse`, and how it becomes bytes.
 *
 * A response is serialised into one Buffer when it ends (status line, headers, body), or into a
 * head and then chunks when the handler streams (`write()` before `end()`, with no
 * Content-Length: chunked transfer coding on HTTP/1.1, close-delimited on HTTP/1.0). What is
 * computed per response is only what differs: the status line comes pre-encoded, the `Date`
 * header from a cache refreshed once a second (RFC 9110 §6.6.1 asks for a second's precision;
 * formatting a date per response would cost more than the rest of the head), the fields a
 * handler sets are encoded at setHeader — once per distinct list of fields, which responses share
 * (see FieldList) — and the head is copied part by part into its place (ResponseStage).
 *
 * Responses leave strictly in request order (pipelining, RFC 9112 §9.3.2): a response that ends
 * before an earlier one waits in its owner (the server handler) until its turn.
 */
import { Buffer } from 'node:buffer';
import { STATUS_CODES } from 'node:http';
import { msOption } from '../../common/options.js';
import type { Channel } from '../../pipeline/channel.js';
import type { Pipeline } from '../../pipeline/pipeline.js';
import type { HttpRequest } from './request.js';

/** Where a response's bytes go (the server handler, which keeps responses in request order). */
export interface ResponseOwner {
  /** Where the responses are encoded (and a server stage stages them): the thread's unless given. */
  readonly stage?: ResponseStage;
  /** Output for `res`: queued until every earlier response is done. */
  output(res: HttpResponse, bytes: Buffer, last: boolean): void;
  /**
   * Optional: `res` was just encoded, `length` bytes to be copied with `writeEncoded` before this
   * call returns — the owner may put them in a batch with the other responses of the same read
   * instead of a Buffer of their own. Without it, the response allocates a Buffer and calls
   * `output`.
   */
  outputEncoded?(res: HttpResponse, length: number, last: boolean): void;
  /**
   * Optional: whether output of `res` goes out now rather than piling up in memory — it is the
   * oldest unfinished response and the connection is under its high watermark.
   */
  isWritable?(res: HttpResponse): boolean;
  /** Optional: resolves once `isWritable(res)`, or once the connection closed. */
  whenWritable?(res: HttpResponse): Promise<void>;
  /**
   * Optional: the handler called `res.takeConnection(install, { idleTimeout })`. Throws for a
   * second call, or one that comes too late (the response went out without it).
   */
  connectionTaken?(res: HttpResponse, install: ConnectionInstaller, idleTimeout: number): void;
}

/** What `res.takeConnection` runs once the connection is switched: adds the new protocol's stages. */
export type ConnectionInstaller = (pipeline: Pipeline, channel: Channel) => void;

/** Options of `res.takeConnection()` (docs/http.md, "Upgrade and CONNECT"). */
export interface TakeConnectionOptions {
  /**
   * Close the switched connection after this many ms without a read (reason `idle-timeout`).
   * 0: never — for protocols with a liveness check of their own (WebSocket ping/pong). Default
   * 60 000 (nginx's `proxy_read_timeout`, which a tunnel through nginx gets anyway).
   */
  readonly idleTimeout?: number;
}

/** The default `idleTimeout` of a switched connection. */
export const SWITCHED_IDLE_TIMEOUT = 60_000;

/** Names of headers a handler may not set with invalid characters (RFC 9110 §5.1 token). */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** CR, LF or NUL in a value would let a handler inject headers (response splitting). */
const BAD_VALUE = /[\r\n\0]/;

/** The `Date` header, refreshed once a second by a timer rather than formatted per response. */
export const HttpDate = {
  line: Buffer.from(`Date: ${new Date().toUTCString()}\r\n`, 'latin1'),
  /** `HTTP/1.1 200 OK` and the Date line, in one buffer: the most common start of a head, one copy. */
  status200: Buffer.from(`HTTP/1.1 200 OK\r\nDate: ${new Date().toUTCString()}\r\n`, 'latin1'),
  timer: undefined as NodeJS.Timeout | undefined,
  /** Starts the refresh timer (unref'd: it never keeps a process alive). */
  start(): void {
    if (this.timer !== undefined) return;
    const refresh = () => {
      const date = new Date().toUTCString();
      this.line = Buffer.from(`Date: ${date}\r\n`, 'latin1');
      this.status200 = Buffer.from(`HTTP/1.1 200 OK\r\nDate: ${date}\r\n`, 'latin1');
    };
    refresh();
    // Align to the next second so that the header changes when the wall clock does.
    const first = setTimeout(
      () => {
        refresh();
        this.timer = setInterval(refresh, 1000);
        this.timer.unref();
      },
      1000 - (Date.now() % 1000),
    );
    first.unref();
    this.timer = first;
  },
};

const statusLines = new Map<number, Buffer>();

/** `HTTP/1.1 <code> <reason>\r\n`, encoded once per code. */
export function statusLine(code: number, reason?: string): Buffer {
  if (reason !== undefined) return Buffer.from(`HTTP/1.1 ${code} ${reason}\r\n`, 'latin1');
  let line = statusLines.get(code);
  if (line === undefined) {
    line = Buffer.from(`HTTP/1.1 ${code} ${STATUS_CODES[code] ?? 'Unknown'}\r\n`, 'latin1');
    statusLines.set(code, line);
  }
  return line;
}

const JSON_CONTENT_TYPE = 'application/json; charset=utf-8';
const CRLF = Buffer.from('\r\n');
const LAST_CHUNK = Buffer.from('0\r\n\r\n');
const EMPTY = Buffer.alloc(0);
const CONNECTION_CLOSE = Buffer.from('Connection: close\r\n', 'latin1');
const CONNECTION_KEEP_ALIVE = Buffer.from('Connection: keep-alive\r\n', 'latin1');
const CHUNKED_END_OF_HEAD = Buffer.from('Transfer-Encoding: chunked\r\n\r\n', 'latin1');

// The header-line cache makes a response's head a few memcpys: `Name: value\r\n` is validated and
// encoded once per (name, value), at setHeader. Bounded: names and values beyond it are checked
// and encoded each time (correct, only slower), so an application with unbounded header values
// cannot make it grow without limit.
const MAX_CACHED_NAMES = 256;
const MAX_CACHED_VALUES_PER_NAME = 64;
const MAX_CACHED_VALUE_LENGTH = 128;

/** The cached lines of one header name (valid as a token). */
interface NameLines {
  /** The value seen last and its line: a handler sets the same headers on every response, and a string compare is cheaper than a Map lookup. */
  lastValue: string;
  lastLine: Buffer;
  readonly byValue: Map<string, Buffer>;
}
const lineCache = new Map<string, NameLines>();

function checkName(name: string): void {
  if (typeof name !== 'string' || !TOKEN.test(name)) throw new TypeError(`invalid header name ${JSON.stringify(name)}`);
}

function checkValue(name: string, value: string): void {
  if (BAD_VALUE.test(value)) throw new TypeError(`invalid character in the value of header ${name}`);
}

/** `name: value\r\n`, validated (TypeError for an invalid name or value) and encoded — from the cache when it is there. */
function headerLine(name: string, value: string): Buffer {
  let lines = recentLines(name);
  if (lines !== undefined) {
    if (lines.lastValue === value) return lines.lastLine;
    const cached = lines.byValue.get(value);
    if (cached !== undefined) {
      lines.lastValue = value;
      lines.lastLine = cached;
      return cached;
    }
  } else {
    checkName(name);
  }
  checkValue(name, value);
  const line = Buffer.from(`${name}: ${value}\r\n`, 'latin1');
  if (value.length <= MAX_CACHED_VALUE_LENGTH) {
    if (lines === undefined && lineCache.size < MAX_CACHED_NAMES) {
      lines = { lastValue: value, lastLine: line, byValue: new Map() };
      lineCache.set(name, lines);
    }
    if (lines !== undefined && lines.byValue.size < MAX_CACHED_VALUES_PER_NAME) {
      lines.byValue.set(value, line);
      lines.lastValue = value;
      lines.lastLine = line;
    }
  }
  return line;
}

/**
 * The names looked up last, in a small ring scanned with `===`: a handler's header names are
 * the same string constants on every response, and comparing those is a pointer compare, where
 * the Map lookup hashes (two per response with two headers: ~6% of a pipelined request's CPU).
 */
const RECENT = 8;
const recentNames: (string | undefined)[] = new Array(RECENT).fill(undefined);
const recentEntries: (NameLines | undefined)[] = new Array(RECENT).fill(undefined);
let recentNext = 0;

function recentLines(name: string): NameLines | undefined {
  for (let i = 0; i < RECENT; i++) if (recentNames[i] === name) return recentEntries[i];
  const lines = lineCache.get(name);
  if (lines !== undefined) {
    recentNames[recentNext] = name;
    recentEntries[recentNext] = lines;
    recentNext = (recentNext + 1) % RECENT;
  }
  return lines;
}

/** Whether two header names are the same, in any case (the exact match first: the common case). */
function sameName(a: string, b: string): boolean {
  return a === b || (a.length === b.length && a.toLowerCase() === b.toLowerCase());
}

// Shared field lists: a handler sets the same fields in the same order on every response (Server,
// Content-Type…). Each distinct list is built — validated, encoded, its lines joined, its framing
// facts read — once, and reached again from the empty list through cached transitions: a
// setHeader is then two pointer compares and the head's fields one copy, with no array per
// response (the array, setHeader and the per-field loop at encoding were ~50 ns of a ~115 ns
// plaintext response). Bounded like the line cache: past the bounds, or for what is rare
// (removals, arrays of values), a response edits a list of its own — correct, only slower.
const MAX_SHARED_LISTS = 1024;
/** Distinct (name, value) transitions out of one shared list. */
const MAX_TRANSITIONS = 64;
let sharedLists = 0;

/**
 * An ordered list of header fields — flat: name, value, encoded line, name, value, line … —
 * with what encoding needs to know about them. Shared (immutable, reached by transitions) or a
 * response's own (edited in place).
 */
class FieldList {
  /** A Content-Length field is present (the handler frames the body itself). */
  hasLength = false;
  /** A Transfer-Encoding field is present… */
  hasEncoding = false;
  /** … and its last coding is chunked. */
  chunked = false;
  /** The Connection fields' values joined, or undefined. */
  connection: string | undefined = undefined;
  /** A Connection field says `close`. */
  closes = false;
  /** Shared: every line but Connection's (written merged, at encoding), joined. */
  joined: Buffer = EMPTY;
  // Shared: the transition taken last (one compare for a handler that always sets the same
  // field), then all of them by name and value.
  private lastName: string | undefined = undefined;
  private lastValue: string | undefined = undefined;
  private lastNext: FieldList | undefined = undefined;
  private next: Map<string, Map<string, FieldList>> | undefined = undefined;
  private transitions = 0;

  constructor(
    readonly f: Array<string | Buffer>,
    readonly shared: boolean,
  ) {
    if (shared) {
      const lines: Buffer[] = [];
      this.scan(lines, 0);
      this.joined = Buffer.concat(lines);
    }
  }

  /**
   * Reads the framing facts off the fields, and puts the lines to write (all but Connection's)
   * into `into` from `at`; returns the index after them.
   */
  scan(into: Buffer[], at: number): number {
    const f = this.f;
    this.hasLength = false;
    this.hasEncoding = false;
    this.chunked = false;
    this.connection = undefined;
    this.closes = false;
    for (let i = 0; i < f.length; i += 3) {
      const name = f[i] as string;
      const n = name.length;
      if (n === 10 || n === 14 || n === 17) {
        const lower = name.toLowerCase();
        const value = f[i + 1] as string;
        if (lower === 'connection') {
          if (/\bclose\b/i.test(value)) this.closes = true;
          this.connection = this.connection === undefined ? value : `${this.connection}, ${value}`;
          continue;
        }
        if (lower === 'content-length') this.hasLength = true;
        else if (lower === 'transfer-encoding') {
          this.hasEncoding = true;
          this.chunked = /chunked\s*$/i.test(value);
        }
      }
      into[at++] = f[i + 2] as Buffer;
    }
    return at;
  }

  /** Index of the first field named `name` (any case), or -1. */
  indexOf(name: string): number {
    const f = this.f;
    for (let i = 0; i < f.length; i += 3) if (sameName(f[i] as string, name)) return i;
    return -1;
  }

  /** A copy the response may edit. */
  own(): FieldList {
    return new FieldList(this.f.slice(), false);
  }

  /** Own list: removes every field named `name`. */
  remove(name: string): void {
    const f = this.f;
    for (let i = f.length - 3; i >= 0; i -= 3) if (sameName(f[i] as string, name)) f.splice(i, 3);
  }

  /**
   * Shared list: the list with `name: value` set (fields of that name replaced), validated
   * (TypeError for an invalid name or value) — shared when the bounds allow, else an own one.
   */
  with(name: string, value: string): FieldList {
    let byValue = this.next?.get(name);
    let next = byValue?.get(value);
    if (next === undefined) {
      const line = headerLine(name, value);
      const own = this.own();
      own.remove(name);
      own.f.push(name, value, line);
      if (
        sharedLists >= MAX_SHARED_LISTS ||
        this.transitions >= MAX_TRANSITIONS ||
        value.length > MAX_CACHED_VALUE_LENGTH
      ) {
        return own;
      }
      next = new FieldList(own.f, true);
      sharedLists++;
      this.transitions++;
      this.next ??= new Map();
      if (byValue === undefined) {
        byValue = new Map();
        this.next.set(name, byValue);
      }
      byValue.set(value, next);
    }
    this.lastName = name;
    this.lastValue = value;
    this.lastNext = next;
    return next;
  }

  /** `with`, for the transition taken last: two compares. */
  set(name: string, value: string): FieldList {
    return this.lastName === name && this.lastValue === value ? (this.lastNext as FieldList) : this.with(name, value);
  }
}

/** No fields: where every response starts. */
const NO_FIELDS = new FieldList([], true);

/**
 * `Uint8Array.prototype.set`, called directly: `out.set(…)` on a fresh Buffer compiled to a
 * generic LoadIC for the method in every response (seen in the optimised code of encode).
 */
const copyBytes = Uint8Array.prototype.set;

const CONTENT_LENGTH = Buffer.from('Content-Length: ', 'latin1');
/** The number of decimal digits of `n` (a body length: a non-negative safe integer). */
function digits(n: number): number {
  let d = 1;
  while (n >= 10) {
    n = Math.floor(n / 10);
    d++;
  }
  return d;
}

/**
 * Where the thread's HTTP responses become bytes: the scratch of the response being encoded (its
 * head's parts, its Content-Length, the body that travels with the head) and the slab that the
 * answers of one read are staged in and written from (server.ts). Encoding is synchronous and
 * never nests, so one stage serves every connection of a thread; it is one explicit object,
 * passed to whoever writes into it — `http()` gives its server stages one, they give it to their
 * responses (`ResponseOwner.stage`) — rather than module variables shared by two files.
 *
 * The slab (64 KiB): the responses of one read are encoded back to back into it and written as
 * one view, so 16 pipelined answers cost one small view object and one write, not a Buffer each,
 * nor a copy. Bytes of the slab, once written, are never written again (the next batch starts after
 * them; a full slab is replaced, not reused), so a view stays valid for as long as the transport
 * needs it; the transport copies out what has to wait for a slow peer (connection.ts), so one slow
 * reader does not hold 64 KiB for a response of 100 bytes. Staged into by one server stage at a
 * time (`stager`); another one, in a nested read, uses Buffers of its own.
 */
export class ResponseStage {
  /** The stage of this thread for responses whose owner names none. */
  static readonly thread = new ResponseStage();

  // The response just encoded (encodeHead), until `write` copies it out: its head's parts,
  // `Content-Length: <length>` and the blank line when `length >= 0` (else the last part ends the
  // head), and the body that goes behind the head. Entries of `parts` past `count` are stale and
  // never read (no length reset per response).
  private readonly parts: Buffer[] = [];
  private count = 0;
  private length = -1;
  private body: string | Uint8Array | undefined = undefined;

  /** The slab and its memory (it starts at offset 0 of it): views are made on it directly (buffer-view.ts). */
  slab: Buffer | undefined = undefined;
  slabMemory: ArrayBufferLike | undefined = undefined;
  /** Where the batch being staged starts in the slab (everything before it was written). */
  stageFrom = 0;
  /** The server stage staging a batch into the slab now, if any. */
  stager: object | undefined = undefined;

  /** @internal Starts encoding a response. */
  begin(): void {
    this.count = 0;
    this.length = -1;
    this.body = undefined;
  }

  /** @internal Adds a part of the head. */
  part(b: Buffer): void {
    this.parts[this.count++] = b;
  }

  /** @internal Adds the lines of a response's own field list (and reads its framing facts). */
  fields(list: FieldList): void {
    this.count = list.scan(this.parts, this.count);
  }

  /**
   * @internal Ends the head with `Content-Length: n` and the blank line (`n >= 0`), or with the
   * parts as they are (-1); `body` goes behind it. Returns the encoded length (the body's included
   * when given: `bodyLength` bytes).
   */
  finish(n: number, body: string | Uint8Array | undefined, bodyLength: number): number {
    this.length = n;
    this.body = body;
    let total = n >= 0 ? CONTENT_LENGTH.length + digits(n) + 4 : 0;
    const parts = this.parts;
    for (let i = 0; i < this.count; i++) total += (parts[i] as Buffer).length;
    return body === undefined ? total : total + bodyLength;
  }

  /**
   * Copies the response just encoded into `target` at `at`, and returns the position after it.
   * Valid only until the next response is encoded: call it at once.
   */
  write(target: Buffer, at: number): number {
    const parts = this.parts;
    for (let i = 0; i < this.count; i++) {
      const p = parts[i] as Buffer;
      copyBytes.call(target, p, at);
      at += p.length;
    }
    let n = this.length;
    if (n >= 0) {
      copyBytes.call(target, CONTENT_LENGTH, at);
      at += CONTENT_LENGTH.length;
      const end = at + digits(n);
      for (let q = end - 1; q >= at; q--) {
        target[q] = 0x30 + (n % 10);
        n = Math.floor(n / 10);
      }
      target[end] = 0x0d;
      target[end + 1] = 0x0a;
      target[end + 2] = 0x0d;
      target[end + 3] = 0x0a;
      at = end + 4;
    }
    const body = this.body;
    if (body !== undefined) {
      this.body = undefined;
      if (typeof body === 'string') at += target.write(body, at, 'utf8');
      else {
        copyBytes.call(target, body, at);
        at += body.length;
      }
    }
    return at;
  }
}

/**
 * Copies the response just encoded on the thread's stage into `target` at `at` (see
 * `ResponseStage.write`), for owners that use the thread's stage.
 */
export function writeEncoded(target: Buffer, at: number): number {
  return ResponseStage.thread.write(target, at);
}

/**
 * Bodies up to this size are copied behind their head (one write, into the slab with the read's
 * other answers); larger ones go as they are, after their head, and the transport gathers the two
 * into one `writev`. Copying a 16 KiB body cost an allocation of its size and a memcpy per
 * response (the 16 KiB benchmark: ~1.2× the CPU per request of writing it as it is).
 */
const INLINE_BODY_LIMIT = 4 * 1024;
// What a response is and did, as bits of one field (HttpResponse.state): a response is made per
// request, and eight booleans were eight fields of its object (64 of its 152 bytes).
const HEADERS_SENT = 1;
const FINISHED = 2;
const CHUNKED = 4;
const CLOSE_AFTER = 8;
const DONE = 16;
const SUPERSEDED = 32;
/** The request was HEAD: headers as for GET, no body. */
const HEAD = 64;
/** The request spoke HTTP/1.0. */
const HTTP10 = 128;
/** The request after this one expects `100 Continue` (the owner's bookkeeping: see `continueAfter`). */
const CONTINUE_AFTER = 256;

/**
 * A response being built by a handler: `(req, res) => res.end('hello')`. Set the status and
 * headers (`status()`, `setHeader()`, `writeHead()`), then either `end(body)` — the length is
 * known, so `Content-Length` is set — or stream with `write()` (chunked, unless a
 * `Content-Length` was set) and finish with `end()`. `json(value)` does it all for JSON.
 *
 * Contract: responses leave in request order, whenever each handler finishes; headers are
 * validated when set (an invalid name or a CR/LF in a value throws there). A Buffer body passed
 * to `write()`, or over 4 KiB to `end()`, is written as it is, not copied: do not change it until
 * sent. `write()` returns `writable`: false means the output is piling up (a slow reader, or an
 * earlier pipelined response still being answered) — await `drained()` before writing more.
 * A handler that never answers gets 503 after `handlerTimeout`; one that throws, 500.
 */
export class HttpResponse {
  /** The status code; 200 unless set. */
  statusCode = 200;
  /** The reason phrase; the standard one for the code unless set. */
  statusMessage: string | undefined = undefined;
  /** HEADERS_SENT, FINISHED… (above). */
  private state: number;
  /**
   * The header fields: a shared list (see FieldList) until something needs the response's own.
   * Lines are encoded — and fields validated — at setHeader.
   */
  private fields: FieldList = NO_FIELDS;
  /**
   * @internal The owner's bookkeeping, kept here rather than in an object of its own per response:
   * output produced before this response's turn (responses leave in request order)…
   */
  queued: Buffer[] | undefined = undefined;
  /** @internal The response owed after this one on its connection (the owner's list, in request order). */
  nextOwed: HttpResponse | undefined = undefined;
  /** @internal When its request was whole, for the handler timeout: a stamp of its clocks (clocks.ts; -1: not yet, or not timed). */
  readyAt = -1;
  /** @internal When its request arrived, on the loop's coarse clock, for the latency metric (issue 21; -1: not stamped). */
  arrivedAt = -1;

  /** @internal */
  constructor(
    private readonly owner: ResponseOwner,
    /** The request answered; undefined for the answer to a request that could not be parsed. */
    readonly req: HttpRequest | undefined,
    /** The connection stays open after this response unless something decides otherwise. */
    keepAlive: boolean,
  ) {
    let state = keepAlive ? 0 : CLOSE_AFTER;
    if (req !== undefined) {
      if (req.method === 'HEAD') state |= HEAD;
      if (req.httpVersion === '1.0') state |= HTTP10;
    }
    this.state = state;
  }

  /** True once the status line and headers were produced. */
  get headersSent(): boolean {
    return (this.state & HEADERS_SENT) !== 0;
  }

  /** True once `end()` was called. */
  get finished(): boolean {
    return (this.state & FINISHED) !== 0;
  }

  /** Close the connection after this response (set by the owner or a `Connection: close` header). */
  get closeAfter(): boolean {
    return (this.state & CLOSE_AFTER) !== 0;
  }
  set closeAfter(close: boolean) {
    this.state = close ? this.state | CLOSE_AFTER : this.state & ~CLOSE_AFTER;
  }

  /** @internal All of its output has been produced (the owner's bookkeeping, with `queued`). */
  get done(): boolean {
    return (this.state & DONE) !== 0;
  }
  set done(done: boolean) {
    this.state = done ? this.state | DONE : this.state & ~DONE;
  }

  /**
   * @internal The head of the request after this one, expecting `100 Continue`, came while this
   * response was owed: the 100 goes out when this one is done — when that request is next in line
   * (the owner's bookkeeping, on the response that precedes it rather than in a field per connection).
   */
  get continueAfter(): boolean {
    return (this.state & CONTINUE_AFTER) !== 0;
  }
  set continueAfter(on: boolean) {
    this.state = on ? this.state | CONTINUE_AFTER : this.state & ~CONTINUE_AFTER;
  }

  /**
   * @internal The server answered in the handler's stead (its timeout, its body's error): what
   * the handler does with this response now is ignored rather than thrown at it.
   */
  get superseded(): boolean {
    return (this.state & SUPERSEDED) !== 0;
  }
  set superseded(superseded: boolean) {
    this.state = superseded ? this.state | SUPERSEDED : this.state & ~SUPERSEDED;
  }

  /** @internal This status switches the connection: 101 to an Upgrade, 2xx to a CONNECT. */
  switches(): boolean {
    const status = this.statusCode;
    return this.req?.method === 'CONNECT' ? status >= 200 && status < 300 : status === 101;
  }

  /** Sets a header, replacing one of the same name (any case). Arrays become repeated fields. */
  setHeader(name: string, value: string | number | readonly string[]): this {
    if (this.headersSent) {
      if (this.superseded) return this;
      throw new Error('cannot set headers after they are sent');
    }
    const list = this.fields;
    if (typeof value === 'string' || typeof value === 'number') {
      const v = typeof value === 'string' ? value : String(value);
      if (list.shared) {
        this.fields = list.set(name, v);
        return this;
      }
      // Validated before anything changes: an invalid header leaves the response as it was.
      const line = headerLine(name, v);
      list.remove(name);
      list.f.push(name, v, line);
      return this;
    }
    const values = Array.from(value, String);
    const lines = values.map((v) => headerLine(name, v));
    const own = list.shared ? list.own() : list;
    own.remove(name);
    for (let i = 0; i < values.length; i++) own.f.push(name, values[i] as string, lines[i] as Buffer);
    this.fields = own;
    return this;
  }

  /** The value of a header (repeated ones joined with ", "), or undefined. */
  getHeader(name: string): string | undefined {
    const f = this.fields.f;
    let found: string | undefined;
    for (let i = 0; i < f.length; i += 3) {
      if (sameName(f[i] as string, name)) found = found === undefined ? (f[i + 1] as string) : `${found}, ${f[i + 1]}`;
    }
    return found;
  }

  hasHeader(name: string): boolean {
    return this.fields.indexOf(name) >= 0;
  }

  removeHeader(name: string): this {
    const list = this.fields;
    if (list.indexOf(name) < 0) return this;
    const own = list.shared ? list.own() : list;
    own.remove(name);
    this.fields = own;
    return this;
  }

  /** Sets the status code (100–999); chainable: `res.status(201).json(user)`. */
  status(code: number): this {
    if (!Number.isInteger(code) || code < 100 || code > 999) throw new RangeError(`invalid status code ${code}`);
    if (this.superseded) return this;
    if (this.headersSent) throw new Error('cannot set the status after the headers are sent');
    this.statusCode = code;
    return this;
  }

  /**
   * Ends the response with `value` serialised as JSON (`JSON.stringify`), with
   * `Content-Type: application/json; charset=utf-8` unless a Content-Type was set.
   */
  json(value: unknown): void {
    const body = JSON.stringify(value);
    if (body === undefined)
      throw new TypeError('res.json: the value has no JSON form (undefined, a function, a symbol)');
    if (!this.headersSent && !this.hasHeader('content-type')) this.setHeader('Content-Type', JSON_CONTENT_TYPE);
    this.end(body);
  }

  /** Sets the status (and optional reason and headers). Chainable. */
  writeHead(
    statusCode: number,
    reasonOrHeaders?: string | Record<string, string | number | readonly string[]>,
    headers?: Record<string, string | number | readonly string[]>,
  ): this {
    if (!Number.isInteger(statusCode) || statusCode < 100 || statusCode > 999) {
      throw new RangeError(`invalid status code ${statusCode}`);
    }
    if (this.superseded) return this;
    this.statusCode = statusCode;
    let h = headers;
    if (typeof reasonOrHeaders === 'string') this.statusMessage = reasonOrHeaders;
    else h = reasonOrHeaders;
    if (h !== undefined) for (const [k, v] of Object.entries(h)) this.setHeader(k, v);
    return this;
  }

  /**
   * False while this response's output piles up in memory instead of leaving: the peer reads more
   * slowly than the handler writes (the connection is over its high watermark), or an earlier
   * response of the connection is still being answered (pipelining). A streaming handler then
   * waits for `drained()` before it writes more, as with node:http's `write()` and `'drain'`.
   */
  get writable(): boolean {
    return this.owner.isWritable?.(this) ?? true;
  }

  /** Resolves when `writable` is true again, or when the connection closed (later writes are dropped). */
  drained(): Promise<void> {
    if (this.writable) return Promise.resolve();
    return this.owner.whenWritable?.(this) ?? Promise.resolve();
  }

  /**
   * Takes the connection for another protocol: for a request with `req.upgrade` (an `Upgrade`
   * request or a `CONNECT`) answered `101` (Upgrade) or `2xx` (CONNECT). Call it before `end()`,
   * or after it in the same turn of the event loop. Once this response has been written, in its turn
   * among the connection's responses, the HTTP stages leave the pipeline, `install(pipeline,
   * channel)` adds the new protocol's stages (`pipeline.addLast('ws', …)`), and the bytes that
   * came after the request reach them as Buffers (`onRead`, then `onReadComplete`); until then the
   * HTTP stage holds them and reads nothing more. Without `takeConnection`, or with any other
   * status, the response is sent and the connection closed: nobody would read its bytes.
   * Throws for a request without `upgrade`, a second call, or a call after the response went out
   * without it.
   */
  takeConnection(install: ConnectionInstaller, options: TakeConnectionOptions = {}): this {
    if (this.req?.upgrade !== true) {
      throw new Error('takeConnection: only the answer to an Upgrade or CONNECT request (req.upgrade) can take it');
    }
    if (typeof install !== 'function') throw new TypeError('takeConnection(install): install must be a function');
    const idle = options.idleTimeout;
    const idleTimeout = idle === undefined ? SWITCHED_IDLE_TIMEOUT : msOption('idleTimeout', idle);
    const owner = this.owner;
    if (owner.connectionTaken === undefined)
      throw new Error('takeConnection: this response cannot hand its connection over');
    owner.connectionTaken(this, install, idleTimeout);
    return this;
  }

  /**
   * Streams a chunk of the body. The head goes out first: with `Transfer-Encoding: chunked`
   * unless a Content-Length was set (HTTP/1.0: no chunking; the connection closes after the body).
   * Returns `writable`: false asks the handler to wait for `drained()` before writing more.
   */
  write(chunk: string | Uint8Array): boolean {
    if (this.finished) {
      if (this.superseded) return false;
      throw new Error('write after end');
    }
    const data = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    if (!this.headersSent) this.emit(this.encodeHead(-1, undefined), false);
    if (data.byteLength === 0 || (this.state & HEAD) !== 0 || !this.hasBody()) return this.writable;
    if ((this.state & CHUNKED) !== 0) {
      this.owner.output(this, Buffer.from(`${data.byteLength.toString(16)}\r\n`, 'latin1'), false);
      this.owner.output(this, Buffer.from(data.buffer, data.byteOffset, data.byteLength), false);
      this.owner.output(this, CRLF, false);
    } else {
      this.owner.output(this, Buffer.from(data.buffer, data.byteOffset, data.byteLength), false);
    }
    return this.writable;
  }

  /** Finishes the response, with an optional last piece of body. */
  end(body?: string | Uint8Array): void {
    const state = this.state;
    if ((state & FINISHED) !== 0) return;
    if ((state & HEADERS_SENT) === 0) {
      this.state = state | FINISHED;
      const length = body === undefined ? 0 : typeof body === 'string' ? Buffer.byteLength(body) : body.length;
      const sendsBody = length > 0 && (state & HEAD) === 0 && this.hasBody();
      if (!sendsBody || length <= INLINE_BODY_LIMIT) {
        this.emit(this.encodeHead(length, sendsBody ? body : undefined), true);
        return;
      }
      // A large body is written as it is, after its head: no copy (Node's http does the same; the
      // caller must not change it until it is sent, as there).
      this.emit(this.encodeHead(length, undefined), false);
      const data = typeof body === 'string' ? Buffer.from(body) : (body as Uint8Array);
      this.owner.output(this, Buffer.from(data.buffer, data.byteOffset, data.length), true);
      return;
    }
    if (body !== undefined) this.write(body);
    this.state |= FINISHED;
    this.owner.output(this, (this.state & (CHUNKED | HEAD)) === CHUNKED ? LAST_CHUNK : EMPTY, true);
  }

  /**
   * @internal The server answers in the handler's stead (its error, a protocol error, a timeout):
   * `status` with a plain-text `body`; the handler's framing and content type go, its other
   * fields stay. Only before the head went out.
   */
  answerInstead(status: number, body: string): void {
    this.statusCode = status;
    this.statusMessage = undefined;
    for (const name of ['content-length', 'transfer-encoding', 'content-type']) this.removeHeader(name);
    this.setHeader('Content-Type', 'text/plain; charset=utf-8');
    this.end(body);
  }

  /** 1xx, 204 and 304 responses have no body (RFC 9110 §6.4.1). */
  private hasBody(): boolean {
    const s = this.statusCode;
    return !(s < 200 || s === 204 || s === 304);
  }

  /** Hands the response just encoded (`length` bytes) to the owner, in a batch or a Buffer of its own. */
  private emit(length: number, last: boolean): void {
    const owner = this.owner;
    if (owner.outputEncoded !== undefined) {
      owner.outputEncoded(this, length, last);
      return;
    }
    const out = Buffer.allocUnsafe(length);
    (owner.stage ?? ResponseStage.thread).write(out, 0);
    owner.output(this, out, last);
  }

  /**
   * Encodes the head — and `body`, when given, behind it — for `writeEncoded`; returns the length.
   * `bodyLength` -1: streamed, length unknown. Adds Content-Length (known length) or chooses
   * chunked coding (unknown, HTTP/1.1) or close-delimiting (unknown, HTTP/1.0), and the
   * Connection header the keep-alive decision needs.
   */
  private encodeHead(bodyLength: number, body: string | Uint8Array | undefined): number {
    // An Upgrade or CONNECT answered with a status that does not switch: the connection closes
    // after it (the decoder has stepped aside), and says so (RFC 9112 §9.6).
    if (this.req?.upgrade === true && !this.switches()) this.closeAfter = true;
    const stage = this.owner.stage ?? ResponseStage.thread;
    stage.begin();
    if (this.statusCode === 200 && this.statusMessage === undefined) stage.part(HttpDate.status200);
    else {
      stage.part(statusLine(this.statusCode, this.statusMessage));
      stage.part(HttpDate.line);
    }
    const list = this.fields;
    if (list.shared) {
      if (list.joined.length > 0) stage.part(list.joined);
    } else stage.fields(list);
    if (list.closes) this.state |= CLOSE_AFTER;
    if (list.hasEncoding && list.chunked) this.state |= CHUNKED;
    const hasLength = list.hasLength;
    const hasEncoding = list.hasEncoding;
    const connection = list.connection;
    // The framing goes last, with the blank line that ends the head.
    let length = -1;
    let framing: Buffer = CRLF;
    if (this.hasBody() && !hasLength && !hasEncoding) {
      if (bodyLength >= 0) length = bodyLength;
      else if ((this.state & HTTP10) !== 0)
        this.state |= CLOSE_AFTER; // the end of the body is the end of the connection
      else {
        this.state |= CHUNKED;
        framing = CHUNKED_END_OF_HEAD;
      }
    }
    if (connection !== undefined) {
      const addClose = this.closeAfter && !/\bclose\b/i.test(connection);
      stage.part(Buffer.from(`Connection: ${connection}${addClose ? ', close' : ''}\r\n`, 'latin1'));
    } else if ((this.state & CLOSE_AFTER) !== 0) stage.part(CONNECTION_CLOSE);
    else if ((this.state & HTTP10) !== 0) stage.part(CONNECTION_KEEP_ALIVE);
    if (length < 0) stage.part(framing);
    this.state |= HEADERS_SENT;
    return stage.finish(length, body, bodyLength);
  }
}
