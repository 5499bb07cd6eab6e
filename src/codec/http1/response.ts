/**
 * The response side of HTTP/1.1: `HttpResponse`, and how it becomes bytes.
 *
 * A response is serialised into one Buffer when it ends (status line, headers, body), or into a
 * head and then chunks when the handler streams (`write()` before `end()`, with no
 * Content-Length: chunked transfer coding on HTTP/1.1, close-delimited on HTTP/1.0). What is
 * computed per response is only what differs: the status line comes pre-encoded, the `Date`
 * header from a cache refreshed once a second (RFC 9110 §6.6.1 asks for a second's precision;
 * formatting a date per response would cost more than the rest of the head), user headers are
 * joined into one string and written with one latin1 write.
 *
 * Responses leave strictly in request order (pipelining, RFC 9112 §9.3.2): a response that ends
 * before an earlier one waits in its owner (the server handler) until its turn.
 */
import { STATUS_CODES } from 'node:http';

/** Why the owner wants bytes written or a response finished. */
export interface ResponseOwner {
  /** Output for `res`: queued until every earlier response is done. */
  output(res: HttpResponse, bytes: Buffer, last: boolean): void;
}

/** Names of headers a handler may not set with invalid characters (RFC 9110 §5.1 token). */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** CR, LF or NUL in a value would let a handler inject headers (response splitting). */
const BAD_VALUE = /[\r\n\0]/;

/** The `Date` header, refreshed once a second by a timer rather than formatted per response. */
export const HttpDate = {
  line: Buffer.from(`Date: ${new Date().toUTCString()}\r\n`, 'latin1'),
  timer: undefined as NodeJS.Timeout | undefined,
  /** Starts the refresh timer (unref'd: it never keeps a process alive). */
  start(): void {
    if (this.timer !== undefined) return;
    const refresh = () => {
      this.line = Buffer.from(`Date: ${new Date().toUTCString()}\r\n`, 'latin1');
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

const CRLF = Buffer.from('\r\n');
const LAST_CHUNK = Buffer.from('0\r\n\r\n');
const EMPTY = Buffer.alloc(0);

/** A response being built by a handler: `(req, res) => res.end('hello')`. */
export class HttpResponse {
  /** The status code; 200 unless set. */
  statusCode = 200;
  /** The reason phrase; the standard one for the code unless set. */
  statusMessage: string | undefined;
  /** True once the status line and headers were produced. */
  headersSent = false;
  /** True once `end()` was called. */
  finished = false;
  private names: string[] = [];
  private values: string[] = [];
  private chunked = false;
  /** Close the connection after this response (set by the owner or a `Connection: close` header). */
  closeAfter: boolean;

  /** @internal */
  constructor(
    private readonly owner: ResponseOwner,
    /** The request was HEAD: headers as for GET, no body. */
    private readonly head: boolean,
    /** The request spoke HTTP/1.0. */
    private readonly http10: boolean,
    /** The connection stays open after this response unless something decides otherwise. */
    keepAlive: boolean,
  ) {
    this.closeAfter = !keepAlive;
  }

  /** Sets a header, replacing one of the same name (any case). Arrays become repeated fields. */
  setHeader(name: string, value: string | number | readonly string[]): this {
    if (this.headersSent) throw new Error('cannot set headers after they are sent');
    if (!TOKEN.test(name)) throw new TypeError(`invalid header name ${JSON.stringify(name)}`);
    this.removeHeader(name);
    if (Array.isArray(value)) for (const v of value) this.push(name, String(v));
    else this.push(name, String(value));
    return this;
  }

  private push(name: string, value: string): void {
    if (BAD_VALUE.test(value)) throw new TypeError(`invalid character in the value of header ${name}`);
    this.names.push(name);
    this.values.push(value);
  }

  /** The value of a header (repeated ones joined with ", "), or undefined. */
  getHeader(name: string): string | undefined {
    const lower = name.toLowerCase();
    const found: string[] = [];
    for (let i = 0; i < this.names.length; i++) {
      if ((this.names[i] as string).toLowerCase() === lower) found.push(this.values[i] as string);
    }
    return found.length === 0 ? undefined : found.join(', ');
  }

  hasHeader(name: string): boolean {
    return this.getHeader(name) !== undefined;
  }

  removeHeader(name: string): this {
    const lower = name.toLowerCase();
    for (let i = this.names.length - 1; i >= 0; i--) {
      if ((this.names[i] as string).toLowerCase() === lower) {
        this.names.splice(i, 1);
        this.values.splice(i, 1);
      }
    }
    return this;
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
    this.statusCode = statusCode;
    let h = headers;
    if (typeof reasonOrHeaders === 'string') this.statusMessage = reasonOrHeaders;
    else h = reasonOrHeaders;
    if (h !== undefined) for (const [k, v] of Object.entries(h)) this.setHeader(k, v);
    return this;
  }

  /**
   * Streams a chunk of the body. The head goes out first: with `Transfer-Encoding: chunked`
   * unless a Content-Length was set (HTTP/1.0: no chunking; the connection closes after the body).
   */
  write(chunk: string | Uint8Array): boolean {
    if (this.finished) throw new Error('write after end');
    const data = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    if (!this.headersSent) this.owner.output(this, this.encodeHead(-1), false);
    if (data.byteLength === 0 || this.head || !this.hasBody()) return true;
    if (this.chunked) {
      this.owner.output(this, Buffer.from(`${data.byteLength.toString(16)}\r\n`, 'latin1'), false);
      this.owner.output(this, Buffer.from(data.buffer, data.byteOffset, data.byteLength), false);
      this.owner.output(this, CRLF, false);
    } else {
      this.owner.output(this, Buffer.from(data.buffer, data.byteOffset, data.byteLength), false);
    }
    return true;
  }

  /** Finishes the response, with an optional last piece of body. */
  end(body?: string | Uint8Array): void {
    if (this.finished) return;
    if (!this.headersSent) {
      this.finished = true;
      this.owner.output(this, this.encodeWhole(body), true);
      return;
    }
    if (body !== undefined) this.write(body);
    this.finished = true;
    this.owner.output(this, this.chunked && !this.head ? LAST_CHUNK : EMPTY, true);
  }

  /** 1xx, 204 and 304 responses have no body (RFC 9110 §6.4.1). */
  private hasBody(): boolean {
    const s = this.statusCode;
    return !(s < 200 || s === 204 || s === 304);
  }

  /** Head and body in one Buffer (the common case: `end(body)` without `write`). */
  private encodeWhole(body: string | Uint8Array | undefined): Buffer {
    const bodyLength = body === undefined ? 0 : typeof body === 'string' ? Buffer.byteLength(body) : body.byteLength;
    const head = this.headString(bodyLength);
    const status = statusLine(this.statusCode, this.statusMessage);
    const date = HttpDate.line;
    const send = this.head || !this.hasBody() ? 0 : bodyLength;
    const headLength = Buffer.byteLength(head, 'latin1');
    const out = Buffer.allocUnsafe(status.length + date.length + headLength + send);
    let at = status.copy(out, 0);
    at += date.copy(out, at);
    at += out.write(head, at, 'latin1');
    if (send > 0) {
      if (typeof body === 'string') out.write(body, at, 'utf8');
      else out.set(body as Uint8Array, at);
    }
    this.headersSent = true;
    return out;
  }

  /** Just the head, for a streamed response (`bodyLength` -1: unknown). */
  private encodeHead(bodyLength: number): Buffer {
    const head = this.headString(bodyLength);
    const status = statusLine(this.statusCode, this.statusMessage);
    this.headersSent = true;
    return Buffer.concat([status, HttpDate.line, Buffer.from(head, 'latin1')]);
  }

  /**
   * The header lines after Date, ending with the empty line. Adds Content-Length (known length)
   * or chooses chunked coding (unknown length, HTTP/1.1) or close-delimiting (HTTP/1.0), and the
   * Connection header the keep-alive decision needs.
   */
  private headString(bodyLength: number): string {
    let s = '';
    let hasLength = false;
    let hasEncoding = false;
    let connection: string | undefined;
    for (let i = 0; i < this.names.length; i++) {
      const name = this.names[i] as string;
      const value = this.values[i] as string;
      const lower = name.length === 10 || name.length === 14 || name.length === 17 ? name.toLowerCase() : '';
      if (lower === 'connection') {
        // Written below, merged with what the keep-alive decision needs (e.g. `Upgrade` on a 101).
        if (/\bclose\b/i.test(value)) this.closeAfter = true;
        connection = connection === undefined ? value : `${connection}, ${value}`;
        continue;
      }
      if (lower === 'content-length') hasLength = true;
      else if (lower === 'transfer-encoding') hasEncoding = true;
      s += `${name}: ${value}\r\n`;
    }
    if (this.hasBody()) {
      if (!hasLength && !hasEncoding) {
        if (bodyLength >= 0) s += `Content-Length: ${bodyLength}\r\n`;
        else if (this.http10)
          this.closeAfter = true; // the end of the body is the end of the connection
        else {
          this.chunked = true;
          s += 'Transfer-Encoding: chunked\r\n';
        }
      } else if (hasEncoding) {
        this.chunked = /chunked\s*$/i.test(this.getHeader('transfer-encoding') ?? '');
      }
    }
    if (connection !== undefined) {
      const addClose = this.closeAfter && !/\bclose\b/i.test(connection);
      s += `Connection: ${connection}${addClose ? ', close' : ''}\r\n`;
    } else if (this.closeAfter) s += 'Connection: close\r\n';
    else if (this.http10) s += 'Connection: keep-alive\r\n';
    return `${s}\r\n`;
  }
}
