/**
 * benchmarks/ws/autobahn9.ts (Autobahn section 9 as a benchmark) in its own process against
 * examples/ws-echo-server, a few quick cases; SIGINT stopping it and its server; and its echo
 * check: the reader catches an echo that differs from what was sent, and a case against a real
 * server that corrupts, shortens or retypes its echo fails instead of reporting a time.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import net from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { CASES9, payloadOf, selectCases } from '../../benchmarks/ws/autobahn9-cases.js';
import { EchoReader, runCase9 } from '../../benchmarks/ws/autobahn9-client.js';

const BENCH = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'benchmarks', 'ws', 'autobahn9.js');

/** An unmasked (server) frame. */
function serverFrame(opcode: number, payload: Buffer, fin = true): Buffer {
  const len = payload.length;
  const h = len < 126 ? 2 : len < 65536 ? 4 : 10;
  const out = Buffer.alloc(h + len);
  out[0] = (fin ? 0x80 : 0) | opcode;
  if (len < 126) out[1] = len;
  else if (len < 65536) {
    out[1] = 126;
    out.writeUInt16BE(len, 2);
  } else {
    out[1] = 127;
    out.writeBigUInt64BE(BigInt(len), 2);
  }
  payload.copy(out, h);
  return out;
}

/** `bytes` fed to `reader` in pieces of `step` bytes. */
function feed(reader: EchoReader, bytes: Buffer, step: number): void {
  for (let at = 0; at < bytes.length; at += step) reader.push(bytes.subarray(at, at + step));
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('benchmarks/ws/autobahn9 (Autobahn section 9 as a benchmark)', function () {
  this.timeout(30_000);
  const children: ChildProcess[] = [];
  const servers: net.Server[] = [];

  afterEach(async () => {
    for (const child of children.splice(0)) {
      if (child.exitCode !== null || child.signalCode !== null) continue;
      // SIGINT: the benchmark stops the servers it started, then exits.
      const exited = once(child, 'exit');
      child.kill('SIGINT');
      const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(t);
    }
    for (const s of servers.splice(0)) {
      s.close();
      await once(s, 'close');
    }
  });

  function bench(args: string[]): { child: ChildProcess; out: () => string; err: () => string } {
    const child = spawn(process.execPath, [BENCH, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    let out = '';
    let err = '';
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
    });
    child.stderr?.on('data', (d: Buffer) => {
      err += d.toString();
    });
    return { child, out: () => out, err: () => err };
  }

  /** The pids the example's master logged ("[multireactor PID] … pids A, B"): the server tree. */
  function serverPids(stderr: string): number[] {
    const master = /master (\d+): \d+ workers ready/.exec(stderr);
    const workers = /pids ([\d, ]+)/.exec(stderr);
    return [Number(master?.[1]), ...(workers?.[1]?.split(',').map((p) => Number(p.trim())) ?? [])].filter((p) => p > 0);
  }

  it('runs 9.1.1, 9.3.1 and 9.7.1 against multireactor: a row with times for each, exit 0, its server stopped', async () => {
    const b = bench(['--servers', 'multireactor', '--port', '0', '--rounds', '1', '--cases', '9.1.1,9.3.1,9.7.1']);
    const [code] = (await once(b.child, 'exit')) as [number | null];
    expect(code, b.err()).to.equal(0);
    const out = b.out();
    for (const id of ['9.1.1', '9.3.1', '9.7.1']) {
      // | 9.1.1 | text 64 KiB | <ms> | <CPU ms> |
      const row = new RegExp(`^\\| ${id.replace(/\./g, '\\.')} \\| [^|]+ \\| ([\\d.]+) \\| ([\\d.]+) \\|$`, 'm').exec(
        out,
      );
      expect(row, `a row for ${id} in:\n${out}`).to.not.equal(null);
      expect(Number(row?.[1])).to.be.greaterThan(0);
      expect(Number(row?.[2])).to.be.at.least(0);
    }
    expect(out).to.match(/^\| 9\.7 \| 1: 1,000 text round trips/m);
    expect(out).to.not.match(/FAILED/);
    const pids = serverPids(b.err());
    expect(pids, b.err()).to.have.length(3);
    for (const pid of pids) expect(alive(pid), `server process ${pid}`).to.equal(false);
  });

  it('SIGINT stops the benchmark and the server it started', async () => {
    const b = bench(['--servers', 'multireactor', '--port', '0', '--rounds', '50', '--cases', '9.7.1']);
    await new Promise<void>((resolve, reject) => {
      b.child.stderr?.on('data', () => {
        if (/9\.7\.1 round 1 multireactor/.test(b.err())) resolve();
      });
      b.child.once('exit', () => reject(new Error(`exited early: ${b.err()}`)));
    });
    const pids = serverPids(b.err());
    expect(pids).to.have.length(3);
    b.child.kill('SIGINT');
    const [code] = (await once(b.child, 'exit')) as [number | null];
    expect(code).to.equal(130);
    for (const pid of pids) expect(alive(pid), `server process ${pid}`).to.equal(false);
  });

  it('the echo reader accepts the message sent, whole or fragmented, read in any pieces', () => {
    const sent = payloadOf(CASES9.find((c) => c.id === '9.1.1') as (typeof CASES9)[number]);
    let done = 0;
    const r = new EchoReader(sent, false, () => done++);
    feed(r, serverFrame(1, sent), 7);
    expect(r.error).to.equal(undefined);
    expect(done).to.equal(1);
    // The same in three frames with a ping between them, read 1,000 bytes at a time.
    const pings: Buffer[] = [];
    const r2 = new EchoReader(
      sent,
      false,
      () => done++,
      (op, p) => op === 9 && pings.push(p),
    );
    feed(
      r2,
      Buffer.concat([
        serverFrame(1, sent.subarray(0, 100), false),
        serverFrame(9, Buffer.from('hi')),
        serverFrame(0, sent.subarray(100, 40_000), false),
        serverFrame(0, sent.subarray(40_000), true),
      ]),
      1000,
    );
    expect(r2.error).to.equal(undefined);
    expect(done).to.equal(2);
    expect(pings.map(String)).to.deep.equal(['hi']);
  });

  it('the echo reader catches a changed byte, a short or long echo and the wrong type', () => {
    const sent = payloadOf(CASES9.find((c) => c.id === '9.2.1') as (typeof CASES9)[number]);
    const corrupted = Buffer.from(sent);
    corrupted[50_001] = (corrupted[50_001] as number) ^ 0x20;
    const cases: Array<[Buffer, RegExp]> = [
      [serverFrame(2, corrupted), /differs at byte 50001 of 65536/],
      [serverFrame(2, sent.subarray(0, sent.length - 1)), /has 65535 bytes, 65536 were sent/],
      [serverFrame(2, Buffer.concat([sent, Buffer.from([0])])), /longer than the 65536 bytes/],
      [serverFrame(1, sent), /expected a binary message, got opcode 1/],
    ];
    for (const [bytes, why] of cases) {
      let done = 0;
      const r = new EchoReader(sent, true, () => done++);
      feed(r, bytes, 4096);
      expect(r.error, String(why)).to.match(why);
      expect(done).to.equal(0);
    }
  });

  /**
   * A WebSocket server on node:net that answers the handshake and echoes each whole message after
   * `spoil` changed it (one frame per message, which is what the case sends).
   */
  async function spoilingServer(spoil: (op: number, p: Buffer) => [number, Buffer]): Promise<number> {
    const server = net.createServer((s) => {
      let buf = Buffer.alloc(0);
      let open = false;
      s.on('error', () => {});
      s.on('data', (d: Buffer) => {
        buf = Buffer.concat([buf, d]);
        if (!open) {
          const end = buf.indexOf('\r\n\r\n');
          if (end < 0) return;
          const key = /sec-websocket-key:\s*(\S+)/i.exec(buf.subarray(0, end).toString())?.[1];
          const accept = createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
          s.write(
            `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`,
          );
          open = true;
          buf = buf.subarray(end + 4);
        }
        for (;;) {
          if (buf.length < 2) return;
          const len7 = (buf[1] as number) & 0x7f;
          const at = 2 + (len7 === 126 ? 2 : len7 === 127 ? 8 : 0);
          if (buf.length < at + 4) return;
          const len = len7 === 126 ? buf.readUInt16BE(2) : len7 === 127 ? Number(buf.readBigUInt64BE(2)) : len7;
          if (buf.length < at + 4 + len) return;
          const mask = buf.subarray(at, at + 4);
          const p = Buffer.from(buf.subarray(at + 4, at + 4 + len));
          for (let i = 0; i < len; i++) p[i] = (p[i] as number) ^ (mask[i & 3] as number);
          const op = (buf[0] as number) & 0x0f;
          buf = buf.subarray(at + 4 + len);
          if (op === 8) {
            s.end(serverFrame(8, p));
            return;
          }
          const [rop, rp] = spoil(op, p);
          s.write(serverFrame(rop, rp));
        }
      });
    });
    servers.push(server);
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    return (server.address() as net.AddressInfo).port;
  }

  it('a case against a server whose echo is wrong fails, with what was wrong, and reports no time', async () => {
    const [c] = selectCases(['9.1.1']);
    const honest = await spoilingServer((op, p) => [op, p]);
    const ok = await runCase9(c as (typeof CASES9)[number], honest);
    expect(ok.ok, ok.detail).to.equal(true);
    expect(ok.echoMs).to.be.greaterThan(0);

    const spoilers: Array<[(op: number, p: Buffer) => [number, Buffer], RegExp]> = [
      [
        (op, p) => {
          p[1000] = (p[1000] as number) + 1;
          return [op, p];
        },
        /differs at byte 1000 of 65536/,
      ],
      [(op, p) => [op, p.subarray(0, p.length - 1)], /has 65535 bytes/],
      [(_op, p) => [2, p], /expected a text message, got opcode 2/],
    ];
    for (const [spoil, why] of spoilers) {
      const port = await spoilingServer(spoil);
      const got = await runCase9(c as (typeof CASES9)[number], port);
      expect(got.ok).to.equal(false);
      expect(got.detail).to.match(why);
      expect(Number.isNaN(got.echoMs)).to.equal(true);
    }
  });
});
