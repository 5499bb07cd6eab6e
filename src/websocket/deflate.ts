/**
 * permessage-deflate (RFC 7692): negotiation, and compressing/inflating whole messages.
 *
 * Memory is the cost to watch. A deflate context with a 32 KiB window and zlib's default memLevel
 * holds ~256 KiB, an inflate context ~40 KiB (a 7 KiB state and the window), so a server keeping
 * both per connection pays ~300 KiB for each — 10,000 connections, 3 GB. Context takeover (each
 * message may refer to the previous ones: better ratios on small, similar messages) needs that
 * state kept between messages; without it a context is needed only while one message is being
 * processed, and since everything here is synchronous one context per worker serves every
 * connection. So:
 *
 * - `serverNoContextTakeover: true` (default): our messages are compressed by one deflate context
 *   shared by the worker's connections (uWebSockets' "shared compressor"), reset after each one.
 *   `false`: each connection that sends a compressed message gets its own context, kept until it
 *   closes (`serverMaxWindowBits` and `memLevel` size it).
 * - `clientNoContextTakeover: true` (default): the server asks the client not to keep context
 *   (clients must accept, §7.1.1.2) and inflates with one shared context. `false`: each connection
 *   that receives a compressed message gets its own inflate context (`clientMaxWindowBits` sizes
 *   its window when the client lets the server choose).
 *
 * Contexts are made on first use and freed when the connection closes (docs/websocket.md has the
 * measured costs). A message is inflated when it is complete, into at most `maxMessageSize` bytes
 * (checked every 64 KiB of output: an inflation bomb is refused with 1009 before it costs memory).
 */
import { Buffer } from 'node:buffer';
import { InvalidOptionError } from '../common/errors.js';
import { ENGINE_REUSE, ZlibEngine } from './zlib-engine.js';

/**
 * permessage-deflate (RFC 7692) parameters, for `perMessageDeflate`. The defaults keep no
 * compression context between messages on either side, so an idle connection holds no zlib
 * state (contexts are shared per worker); context takeover compresses chat-like traffic better
 * at up to ~250 KiB of zlib memory per connection (docs/websocket.md has the measurements).
 */
export interface PerMessageDeflateOptions {
  /** Compress with no context kept between messages (one shared context per worker). Default true. */
  readonly serverNoContextTakeover?: boolean;
  /** Ask the client to keep no context (inflate with one shared context). Default true. */
  readonly clientNoContextTakeover?: boolean;
  /** Our compression window, 9–15 (a client may ask for less). Default 15. */
  readonly serverMaxWindowBits?: number;
  /** The client's window we ask for when it lets us choose, 9–15. Default 15. */
  readonly clientMaxWindowBits?: number;
  /** Messages shorter than this many bytes are sent uncompressed. Default 1024. */
  readonly threshold?: number;
  /** zlib compression level, 0–9. Default 1 (fastest; small messages gain little from more). */
  readonly level?: number;
  /** zlib memLevel of our compressor, 1–9. Default 8. */
  readonly memLevel?: number;
}

/** The trailer RFC 7692 §7.2.1 strips from each compressed message (an empty stored block's end). */
const TRAILER = Buffer.from([0x00, 0x00, 0xff, 0xff]);

/** What one `websocket()` (or client) configuration allows, with its shared contexts. */
export class DeflateConfig {
  readonly serverNoContextTakeover: boolean;
  readonly clientNoContextTakeover: boolean;
  readonly serverMaxWindowBits: number;
  readonly clientMaxWindowBits: number;
  readonly threshold: number;
  readonly level: number;
  readonly memLevel: number;
  /** Shared compressors by window size, and the shared inflater (15 bits inflates any window). */
  private readonly sharedDeflate = new Map<number, ZlibEngine>();
  private sharedInflate: ZlibEngine | undefined;
  /** Negotiated parameter sets, by response string: connections with the same terms share one. */
  private readonly agreed = new Map<string, DeflateParams>();

  constructor(o: PerMessageDeflateOptions | true) {
    const opts: PerMessageDeflateOptions = o === true ? {} : o;
    if (opts === null || typeof opts !== 'object') {
      throw new InvalidOptionError('perMessageDeflate', 'must be a boolean or an object');
    }
    const known = [
      'serverNoContextTakeover',
      'clientNoContextTakeover',
      'serverMaxWindowBits',
      'clientMaxWindowBits',
      'threshold',
      'level',
      'memLevel',
    ];
    for (const k of Object.keys(opts)) {
      if (!known.includes(k)) throw new InvalidOptionError(`perMessageDeflate.${k}`, 'is not a known option');
    }
    this.serverNoContextTakeover = bool('serverNoContextTakeover', opts.serverNoContextTakeover, true);
    this.clientNoContextTakeover = bool('clientNoContextTakeover', opts.clientNoContextTakeover, true);
    this.serverMaxWindowBits = int('serverMaxWindowBits', opts.serverMaxWindowBits, 15, 9, 15);
    this.clientMaxWindowBits = int('clientMaxWindowBits', opts.clientMaxWindowBits, 15, 9, 15);
    this.threshold = int('threshold', opts.threshold, 1024, 0, Number.MAX_SAFE_INTEGER);
    this.level = int('level', opts.level, 1, 0, 9);
    this.memLevel = int('memLevel', opts.memLevel, 8, 1, 9);
  }

  /**
   * Server side: the first acceptable permessage-deflate offer in a `Sec-WebSocket-Extensions`
   * value, as the parameters to use and the response element — or undefined (no offer we accept:
   * the connection goes on uncompressed). Offers with unknown or malformed parameters are
   * declined (RFC 7692 §5.1).
   */
  accept(header: string): DeflateParams | undefined {
    for (const ext of parseExtensions(header)) {
      if (ext.name !== 'permessage-deflate') continue;
      const offer = readOffer(ext.params);
      if (offer === undefined) continue;
      // zlib cannot compress raw deflate with a 256-byte window (it uses 512): decline an offer
      // that requires it of us.
      if (offer.serverBits !== undefined && offer.serverBits < 9) continue;
      const serverNoCtx = offer.serverNoCtx || this.serverNoContextTakeover || !ENGINE_REUSE;
      const clientNoCtx = offer.clientNoCtx || this.clientNoContextTakeover || !ENGINE_REUSE;
      let response = 'permessage-deflate';
      if (serverNoCtx) response += '; server_no_context_takeover';
      if (clientNoCtx) response += '; client_no_context_takeover';
      let serverBits = this.serverMaxWindowBits;
      if (offer.serverBits !== undefined) {
        serverBits = Math.min(serverBits, offer.serverBits);
        response += `; server_max_window_bits=${serverBits}`;
      }
      // §7.1.2.2: only when the client offered it may the response limit the client's window.
      let clientBits = 15;
      if (offer.clientBits !== undefined) {
        clientBits = Math.min(this.clientMaxWindowBits, offer.clientBits === 0 ? 15 : offer.clientBits);
        if (clientBits < 15) response += `; client_max_window_bits=${clientBits}`;
      }
      return this.params(response, serverNoCtx, clientNoCtx, serverBits, clientBits, true);
    }
    return undefined;
  }

  /** Client side: our offer. */
  offer(): string {
    let offer = 'permessage-deflate; client_max_window_bits';
    if (this.clientNoContextTakeover) offer += '; client_no_context_takeover';
    if (this.serverNoContextTakeover) offer += '; server_no_context_takeover';
    return offer;
  }

  /**
   * Client side: the server's response (`Sec-WebSocket-Extensions` of the 101), or a string
   * saying why it cannot be accepted (the client then fails the connection, RFC 6455 §4.1).
   */
  acceptResponse(header: string): DeflateParams | string {
    const exts = parseExtensions(header);
    if (exts.length !== 1 || exts[0]?.name !== 'permessage-deflate') {
      return `unexpected extensions in the response: ${header}`;
    }
    const r = readOffer(exts[0].params);
    if (r === undefined) return `invalid permessage-deflate parameters: ${header}`;
    if (r.clientBits === 0) return 'client_max_window_bits without a value in the response';
    // We compress with the client window the server asked for: zlib cannot go below 9.
    if (r.clientBits !== undefined && r.clientBits < 9) return 'client_max_window_bits below 9 is not supported';
    const clientNoCtx = r.clientNoCtx || this.clientNoContextTakeover || !ENGINE_REUSE;
    if (!ENGINE_REUSE && !r.serverNoCtx) return 'context takeover is not supported on this Node.js';
    // Our own sending side is the "client" side of the parameters here.
    return this.params(
      header,
      r.serverNoCtx,
      clientNoCtx,
      r.serverBits ?? 15,
      Math.min(r.clientBits ?? 15, this.clientMaxWindowBits),
      false,
    );
  }

  /** A shared compressor for `windowBits` (reset after each message). */
  sharedDeflater(windowBits: number): ZlibEngine {
    let e = this.sharedDeflate.get(windowBits);
    if (e === undefined) {
      e = new ZlibEngine('deflate', { windowBits, level: this.level, memLevel: this.memLevel });
      this.sharedDeflate.set(windowBits, e);
    }
    return e;
  }

  /** The shared inflater (reset after each message). */
  sharedInflater(): ZlibEngine {
    this.sharedInflate ??= new ZlibEngine('inflate', { windowBits: 15 });
    return this.sharedInflate;
  }

  private params(
    response: string,
    serverNoCtx: boolean,
    clientNoCtx: boolean,
    serverBits: number,
    clientBits: number,
    isServer: boolean,
  ): DeflateParams {
    let p = this.agreed.get(response);
    if (p === undefined) {
      // "Send" is the side we compress for: the server's parameters on a server, the client's on a client.
      p = isServer
        ? new DeflateParams(this, response, serverNoCtx, serverBits, clientNoCtx, clientBits)
        : new DeflateParams(this, response, clientNoCtx, clientBits, serverNoCtx, serverBits);
      if (this.agreed.size < 64) this.agreed.set(response, p);
    }
    return p;
  }
}

/** Negotiated terms of one connection (shared by the connections that agreed the same). */
export class DeflateParams {
  constructor(
    readonly config: DeflateConfig,
    /** The extension element as the response carries it. */
    readonly response: string,
    /** Our compressor keeps no context between messages. */
    readonly sendNoContext: boolean,
    readonly sendWindowBits: number,
    /** The peer keeps no context: inflate each message from scratch. */
    readonly receiveNoContext: boolean,
    readonly receiveWindowBits: number,
  ) {}
}

/**
 * A connection's compression state: the negotiated terms and, with context takeover, its own
 * contexts (made on first use, freed by `close`).
 */
export class PerMessageDeflate {
  private deflater: ZlibEngine | undefined;
  private inflater: ZlibEngine | undefined;

  constructor(readonly params: DeflateParams) {}

  get threshold(): number {
    return this.params.config.threshold;
  }

  /** Whether this connection holds contexts of its own (for tests and accounting). */
  get ownsContexts(): boolean {
    return this.deflater?.open === true || this.inflater?.open === true;
  }

  /** Compresses one message; the result lacks the 4-byte trailer (§7.2.1). */
  compress(data: Uint8Array): Buffer {
    const p = this.params;
    let engine: ZlibEngine;
    if (p.sendNoContext) engine = p.config.sharedDeflater(p.sendWindowBits);
    else
      engine = this.deflater ??= new ZlibEngine('deflate', {
        windowBits: p.sendWindowBits,
        level: p.config.level,
        memLevel: p.config.memLevel,
      });
    let out: Buffer;
    try {
      out = engine.process(data, Number.MAX_SAFE_INTEGER);
    } finally {
      if (p.sendNoContext) engine.reset();
    }
    const n = out.length;
    if (n >= 4 && out[n - 4] === 0 && out[n - 3] === 0 && out[n - 2] === 0xff && out[n - 1] === 0xff) {
      return out.subarray(0, n - 4);
    }
    return out;
  }

  /**
   * Inflates one message (its frames' payloads, joined) into at most `limit` bytes; throws
   * `OutputTooLargeError` or `InvalidDeflateDataError`.
   */
  decompress(compressed: readonly Buffer[], limit: number): Buffer {
    const p = this.params;
    const input = Buffer.concat([...compressed, TRAILER]);
    if (p.receiveNoContext) {
      const engine = p.config.sharedInflater();
      try {
        return engine.process(input, limit);
      } finally {
        engine.reset();
      }
    }
    this.inflater ??= new ZlibEngine('inflate', { windowBits: Math.max(9, p.receiveWindowBits) });
    return this.inflater.process(input, limit);
  }

  /** Frees this connection's contexts (shared ones stay with their configuration). */
  close(): void {
    this.deflater?.close();
    this.inflater?.close();
    this.deflater = this.inflater = undefined;
  }
}

// ---- parsing (RFC 6455 §9.1, RFC 7692 §5) ----

export interface ExtensionOffer {
  readonly name: string;
  readonly params: ReadonlyArray<readonly [string, string | undefined]>;
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/**
 * Parses a `Sec-WebSocket-Extensions` value: `ext; p; p=v, ext2; p="quoted"`. Malformed elements
 * are dropped (an offer we cannot read is one we decline).
 */
export function parseExtensions(header: string): ExtensionOffer[] {
  const out: ExtensionOffer[] = [];
  let i = 0;
  const n = header.length;
  const skipWs = () => {
    while (i < n && (header[i] === ' ' || header[i] === '\t')) i++;
  };
  const token = (): string => {
    const from = i;
    while (i < n && !' \t,;="'.includes(header[i] as string)) i++;
    return header.slice(from, i);
  };
  while (i < n) {
    skipWs();
    const name = token().toLowerCase();
    const params: [string, string | undefined][] = [];
    let ok = TOKEN.test(name);
    skipWs();
    while (i < n && header[i] === ';') {
      i++;
      skipWs();
      const p = token().toLowerCase();
      if (!TOKEN.test(p)) ok = false;
      skipWs();
      let value: string | undefined;
      if (header[i] === '=') {
        i++;
        skipWs();
        if (header[i] === '"') {
          // quoted-string (§9.1 allows it for values; the unquoted value must still be a token)
          i++;
          let v = '';
          while (i < n && header[i] !== '"') {
            if (header[i] === '\\') i++;
            v += header[i] ?? '';
            i++;
          }
          if (header[i] !== '"') ok = false;
          i++;
          value = v;
        } else value = token();
        if (!TOKEN.test(value)) ok = false;
        skipWs();
      }
      params.push([p, value]);
    }
    if (i < n && header[i] !== ',') {
      ok = false;
      while (i < n && header[i] !== ',') i++;
    }
    i++; // the comma
    if (ok) out.push({ name, params });
  }
  return out;
}

interface Offer {
  serverNoCtx: boolean;
  clientNoCtx: boolean;
  /** undefined: absent. */
  serverBits: number | undefined;
  /** undefined: absent; 0: present without a value. */
  clientBits: number | undefined;
}

/** The permessage-deflate parameters of one element, or undefined when they are invalid. */
function readOffer(params: ReadonlyArray<readonly [string, string | undefined]>): Offer | undefined {
  const o: Offer = { serverNoCtx: false, clientNoCtx: false, serverBits: undefined, clientBits: undefined };
  const seen = new Set<string>();
  for (const [name, value] of params) {
    if (seen.has(name)) return undefined; // §7: a parameter may appear once
    seen.add(name);
    switch (name) {
      case 'server_no_context_takeover':
        if (value !== undefined) return undefined;
        o.serverNoCtx = true;
        break;
      case 'client_no_context_takeover':
        if (value !== undefined) return undefined;
        o.clientNoCtx = true;
        break;
      case 'server_max_window_bits': {
        const bits = windowBits(value);
        if (bits === undefined) return undefined;
        o.serverBits = bits;
        break;
      }
      case 'client_max_window_bits': {
        if (value === undefined) {
          o.clientBits = 0;
          break;
        }
        const bits = windowBits(value);
        if (bits === undefined) return undefined;
        o.clientBits = bits;
        break;
      }
      default:
        return undefined;
    }
  }
  return o;
}

/** `8`–`15` without leading zeros (§7.1.2.1), else undefined. */
function windowBits(value: string | undefined): number | undefined {
  if (value === undefined || !/^(8|9|1[0-5])$/.test(value)) return undefined;
  return Number(value);
}

function bool(name: string, v: unknown, dflt: boolean): boolean {
  if (v === undefined) return dflt;
  if (typeof v !== 'boolean')
    throw new InvalidOptionError(`perMessageDeflate.${name}`, `must be a boolean, got ${String(v)}`);
  return v;
}

function int(name: string, v: unknown, dflt: number, min: number, max: number): number {
  if (v === undefined) return dflt;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw new InvalidOptionError(
      `perMessageDeflate.${name}`,
      `must be an integer from ${min} to ${max}, got ${String(v)}`,
    );
  }
  return v;
}
