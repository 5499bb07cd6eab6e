/**
 * A closed-loop load for the reload benchmark and the cluster tests: `connections` clients each
 * send one request and wait for its answer before sending the next, over the line protocol of
 * line-app.ts (`req N` → `N <pid>`) or HTTP/1.1 keep-alive (`GET /req/N` → body `<pid>`).
 *
 * A connection whose answer announces the end (`… bye` on a line, `Connection: close` in HTTP:
 * its worker is draining) is replaced by a new one, and so is one lost without that (counted).
 * Everything that should never happen across a reload is counted: connections that fail to open,
 * resets, and requests left unanswered — a request on a connection that closed before its answer,
 * which a real HTTP client would have to retry.
 */
import net from 'node:net';

export interface LoadReport {
  readonly requests: number;
  readonly answered: number;
  /** A request sent on a connection that closed before answering it. */
  readonly unanswered: number;
  /** connect() failures by code (ECONNREFUSED …). */
  readonly connectFailures: Record<string, number>;
  /** Errors on established connections by code (ECONNRESET, EPIPE …). */
  readonly resets: Record<string, number>;
  /** Answers per worker pid. */
  readonly byPid: Map<number, number>;
  /** Answers per 100 ms bucket since the start. */
  readonly perTick: number[];
  /** When each failure (failed connect, reset, unanswered request) happened, in ms since the start. */
  readonly failureTimes: number[];
}

export interface LoadHandle {
  /** Stops sending, waits for the answers still due, closes every connection, and reports. */
  stop(): Promise<LoadReport>;
  /** What has been counted so far. */
  snapshot(): LoadReport;
}

/** One answer taken from the front of what a connection received. */
interface Answer {
  /** Bytes (characters, latin1) it took. */
  readonly length: number;
  readonly pid: number;
  /** The server closes the connection after it. */
  readonly last: boolean;
}

export interface Protocol {
  readonly request: (seq: number) => string;
  /** The first answer in `buf`, or undefined while it is incomplete. */
  readonly answer: (buf: string) => Answer | undefined;
}

/** line-app.ts: `req N` → `N <pid>`, `N <pid> bye` when the worker drains. */
export const LINE: Protocol = {
  request: (seq) => `req ${seq}\n`,
  answer(buf) {
    const i = buf.indexOf('\n');
    if (i < 0) return undefined;
    const [, pid, bye] = buf.slice(0, i).split(' ');
    return { length: i + 1, pid: Number(pid), last: bye === 'bye' };
  },
};

/** HTTP/1.1 keep-alive: `GET /req/N` → a body with the worker's pid, Content-Length framed. */
export const HTTP: Protocol = {
  request: (seq) => `GET /req/${seq} HTTP/1.1\r\nHost: bench\r\n\r\n`,
  answer(buf) {
    const end = buf.indexOf('\r\n\r\n');
    if (end < 0) return undefined;
    const head = buf.slice(0, end);
    const m = /\r\ncontent-length: *(\d+)/i.exec(head);
    if (m === null) throw new Error(`answer without Content-Length: ${JSON.stringify(head)}`);
    const length = end + 4 + Number(m[1]);
    if (buf.length < length) return undefined;
    const status = Number(head.slice(9, 12));
    if (status !== 200) throw new Error(`status ${status}: ${JSON.stringify(buf.slice(0, length))}`);
    return { length, pid: Number(buf.slice(end + 4, length)), last: /\r\nconnection: *close/i.test(head) };
  },
};

export interface LoadOptions {
  readonly host?: string;
  readonly protocol?: Protocol;
}

export function startLoad(port: number, connections: number, options: LoadOptions = {}): LoadHandle {
  const host = options.host ?? '127.0.0.1';
  const protocol = options.protocol ?? LINE;
  const t0 = performance.now();
  let requests = 0;
  let answered = 0;
  let unanswered = 0;
  const connectFailures: Record<string, number> = {};
  const resets: Record<string, number> = {};
  const byPid = new Map<number, number>();
  const perTick: number[] = [];
  const failureTimes: number[] = [];
  const failedNow = () => failureTimes.push(Math.round(performance.now() - t0));
  const open = new Set<net.Socket>();
  let running = true;
  let inFlight = 0;
  let idle: (() => void) | undefined;
  let seq = 0;

  const count = (into: Record<string, number>, code: string | undefined) => {
    const k = code ?? 'unknown';
    into[k] = (into[k] ?? 0) + 1;
  };

  function client(): void {
    if (!running) return;
    const s = net.connect({ port, host, noDelay: true });
    open.add(s);
    let connected = false;
    let waiting = false;
    let ended = false;
    let buf = '';
    const send = () => {
      requests++;
      inFlight++;
      waiting = true;
      s.write(protocol.request(++seq));
    };
    const settle = () => {
      if (waiting) {
        waiting = false;
        inFlight--;
        if (inFlight === 0) idle?.();
      }
    };
    s.setEncoding('latin1');
    s.on('connect', () => {
      connected = true;
      send();
    });
    s.on('data', (d: string) => {
      buf += d;
      for (let a = protocol.answer(buf); a !== undefined; a = protocol.answer(buf)) {
        buf = buf.slice(a.length);
        answered++;
        const tick = Math.floor((performance.now() - t0) / 100);
        perTick[tick] = (perTick[tick] ?? 0) + 1;
        byPid.set(a.pid, (byPid.get(a.pid) ?? 0) + 1);
        settle();
        if (a.last) {
          // The worker is draining: this connection ends here; carry on with a new one.
          ended = true;
          s.end();
          client();
        } else if (running) send();
        else {
          ended = true;
          s.end();
        }
      }
    });
    s.on('error', (err: NodeJS.ErrnoException) => {
      if (connected) count(resets, err.code);
      else count(connectFailures, err.code);
      failedNow();
    });
    s.on('close', () => {
      open.delete(s);
      if (waiting) {
        unanswered++;
        failedNow();
        settle();
      }
      // Closed without notice (an idle keep-alive connection closed, or its worker died):
      // reconnect, as a real client would.
      if (!ended && running) client();
    });
  }

  for (let i = 0; i < connections; i++) client();

  const snapshot = (): LoadReport => ({
    requests,
    answered,
    unanswered,
    connectFailures: { ...connectFailures },
    resets: { ...resets },
    byPid: new Map(byPid),
    perTick: Array.from(perTick, (n) => n ?? 0),
    failureTimes: [...failureTimes],
  });

  return {
    snapshot,
    async stop(): Promise<LoadReport> {
      running = false;
      if (inFlight > 0) {
        await new Promise<void>((resolve) => {
          idle = resolve;
          setTimeout(resolve, 5000);
        });
      }
      const closing = [...open].map((s) => new Promise<void>((r) => s.once('close', () => r())));
      for (const s of open) s.end();
      await Promise.race([Promise.all(closing), new Promise((r) => setTimeout(r, 2000))]);
      for (const s of open) s.destroy();
      return snapshot();
    },
  };
}
