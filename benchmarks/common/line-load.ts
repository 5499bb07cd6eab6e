/**
 * A closed-loop load for the cluster app's line protocol: `connections` clients each send
 * `req N` and wait for `N <pid>` before sending the next. A connection whose answer says `bye`
 * (its worker is draining) is replaced by a new one, and so is one lost without a bye (counted). Everything that should never happen across
 * a reload is counted: connections that fail to open, resets, and requests left unanswered.
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

export function startLoad(port: number, connections: number, host = '127.0.0.1'): LoadHandle {
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
    let buf = '';
    const send = () => {
      requests++;
      inFlight++;
      waiting = true;
      s.write(`req ${++seq}\n`);
    };
    const settle = () => {
      if (waiting) {
        waiting = false;
        inFlight--;
        if (inFlight === 0) idle?.();
      }
    };
    s.setEncoding('utf8');
    s.on('connect', () => {
      connected = true;
      send();
    });
    s.on('data', (d: string) => {
      buf += d;
      for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        const [, pid, bye] = line.split(' ');
        answered++;
        const tick = Math.floor((performance.now() - t0) / 100);
        perTick[tick] = (perTick[tick] ?? 0) + 1;
        byPid.set(Number(pid), (byPid.get(Number(pid)) ?? 0) + 1);
        settle();
        if (bye === 'bye') {
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
    let ended = false;
    s.on('close', () => {
      open.delete(s);
      if (waiting) {
        unanswered++;
        failedNow();
        settle();
      }
      // Lost without a bye (its worker died): reconnect, as a real client would.
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
