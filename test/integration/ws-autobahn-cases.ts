/**
 * The Autobahn|Testsuite cases of sections 1–7, 10, 12 and 13, as our runner performs them
 * against an echo server. What each case sends and expects comes from the case descriptions in
 * /work/shared/vectors/autobahn/ (cases.json, utf8-sequences.json) and the parameter tables of the
 * upstream case families (crossbario/autobahn-testsuite, autobahntestsuite/case/); the code is
 * ours. A case sets its expectations — the event lists that count as OK or NON-STRICT, and how
 * the connection must close — performs its frames, and the runner judges as upstream's
 * `Case.onConnectionLost` does.
 */
import { Buffer } from 'node:buffer';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { FuzzClient, Received } from './ws-fuzz-client.js';

export const VECTORS = '/work/shared/vectors/autobahn';

export interface CloseExpectation {
  /** Our (the client's) close frame should go first. */
  readonly closedByMe: boolean;
  /** Acceptable close codes from the server (or none at all). */
  readonly codes: readonly number[];
  /** The closing handshake must complete (both close frames) rather than the TCP connection just dropping. */
  readonly requireClean: boolean;
  /** Closing from the wrong side fails the case (the server did not detect the problem at all). */
  readonly wrongEndpointIsFatal?: boolean;
}

export interface CaseRun {
  readonly c: FuzzClient;
  /** Behaviour name → the event list that earns it, in order of preference (OK first). */
  expected: Array<[string, Received[]]>;
  close: CloseExpectation;
  /** Upstream's `suppressClose`: do not close when the events match. */
  suppressClose: boolean;
  /** The case only informs (its outcome is undefined by the spec). */
  informational: boolean;
  /** A wrong close code fails the behaviour too (sections 7.1, 7.7, 7.9). */
  wrongCodeFails: boolean;
  /** For sections 12 and 13: the case's own verdict, set when it completes. */
  verdict?: string;
}

export interface CaseSpec {
  readonly id: string;
  /** `Sec-WebSocket-Extensions` to offer (sections 12 and 13). */
  readonly extensions?: string;
  run(r: CaseRun): void;
}

const OK = 'OK';
const NON_STRICT = 'NON-STRICT';
const NORMAL = 1000;
const PROTOCOL_ERROR = 1002;
const INVALID_PAYLOAD = 1007;

const msg = (payload: Buffer | string, binary = false): Received => [
  'message',
  typeof payload === 'string' ? Buffer.from(payload) : payload,
  binary,
];
const pong = (payload: Buffer | string = ''): Received => [
  'pong',
  typeof payload === 'string' ? Buffer.from(payload) : payload,
];

const cleanNormal: CloseExpectation = { closedByMe: true, codes: [NORMAL], requireClean: true };
const failedBy = (code: number): CloseExpectation => ({ closedByMe: false, codes: [code], requireClean: false });

function spec(id: string, run: (r: CaseRun) => void): CaseSpec {
  return { id, run };
}

/** An echo case: one frame, the echo, a clean close. */
function echo(id: string, opcode: number, payload: Buffer | string, chop?: number): CaseSpec {
  return spec(id, (r) => {
    r.expected = [[OK, [msg(payload, opcode === 2)]]];
    r.close = cleanNormal;
    r.c.sendFrame({ opcode, payload, ...(chop !== undefined ? { chop } : {}) });
    r.c.killAfter(10_000);
  });
}

/** A case where the server must fail the connection (1002) after echoing `before` messages. */
function protocolFailure(id: string, send: (c: FuzzClient) => void, echoed?: string): CaseSpec {
  return spec(id, (r) => {
    r.expected =
      echoed === undefined
        ? [[OK, []]]
        : [
            [OK, [msg(echoed)]],
            [NON_STRICT, []],
          ];
    r.close = failedBy(PROTOCOL_ERROR);
    send(r.c);
    r.c.killAfter(1000);
  });
}

function section1(): CaseSpec[] {
  const out: CaseSpec[] = [];
  const sizes = [0, 125, 126, 127, 128, 65535, 65536];
  sizes.forEach((n, i) => {
    out.push(echo(`1.1.${i + 1}`, 1, '*'.repeat(n)));
  });
  out.push(echo('1.1.8', 1, '*'.repeat(65536), 997));
  sizes.forEach((n, i) => {
    out.push(echo(`1.2.${i + 1}`, 2, Buffer.alloc(n, 0xfe)));
  });
  out.push(echo('1.2.8', 2, Buffer.alloc(65536, 0xfe), 997));
  return out;
}

function section2(): CaseSpec[] {
  const pingCase = (id: string, payload: Buffer | string, chop?: number) =>
    spec(id, (r) => {
      r.expected = [[OK, [pong(payload)]]];
      r.close = cleanNormal;
      r.c.sendFrame({ opcode: 9, payload, ...(chop !== undefined ? { chop } : {}) });
      r.c.closeAfter(chop === undefined ? 1000 : 2000);
    });
  const tenPings = (id: string, chop?: number) =>
    spec(id, (r) => {
      const pongs: Received[] = [];
      for (let i = 0; i < 10; i++) {
        pongs.push(pong(`payload-${i}`));
        r.c.sendFrame({ opcode: 9, payload: `payload-${i}`, ...(chop !== undefined ? { chop } : {}) });
      }
      r.expected = [[OK, pongs]];
      r.close = cleanNormal;
      r.c.closeAfter(3000);
    });
  return [
    pingCase('2.1', ''),
    pingCase('2.2', 'Hello, world!'),
    pingCase('2.3', Buffer.from([0x00, 0xff, 0xfe, 0xfd, 0xfc, 0xfb, 0x00, 0xff])),
    pingCase('2.4', Buffer.alloc(125, 0xfe)),
    protocolFailure('2.5', (c) => c.sendFrame({ opcode: 9, payload: Buffer.alloc(126, 0xfe) })),
    pingCase('2.6', Buffer.alloc(125, 0xfe), 1),
    spec('2.7', (r) => {
      r.expected = [[OK, []]];
      r.close = cleanNormal;
      r.c.sendFrame({ opcode: 10 });
      r.c.sendClose(NORMAL);
      r.c.closeAfter(1000);
    }),
    spec('2.8', (r) => {
      r.expected = [[OK, []]];
      r.close = cleanNormal;
      r.c.sendFrame({ opcode: 10, payload: 'unsolicited pong payload' });
      r.c.sendClose(NORMAL);
      r.c.closeAfter(1000);
    }),
    spec('2.9', (r) => {
      r.expected = [[OK, [pong('ping payload')]]];
      r.close = cleanNormal;
      r.c.sendFrame({ opcode: 10, payload: 'unsolicited pong payload' });
      r.c.sendFrame({ opcode: 9, payload: 'ping payload' });
      r.c.closeAfter(1000);
    }),
    tenPings('2.10'),
    tenPings('2.11', 1),
  ];
}

function section3(): CaseSpec[] {
  const hello = 'Hello, world!';
  const bin = Buffer.from([0x00, 0xff, 0xfe, 0xfd, 0xfc, 0xfb, 0x00, 0xff]);
  const then = (rsv: number, how: { chop?: number; sync?: boolean }) => (c: FuzzClient) => {
    c.sendFrame({ opcode: 1, payload: hello, ...how });
    c.sendFrame({ opcode: 1, payload: hello, rsv, ...how });
    c.sendFrame({ opcode: 9, ...how });
  };
  return [
    protocolFailure('3.1', (c) => c.sendFrame({ opcode: 1, payload: hello, rsv: 1 })),
    protocolFailure('3.2', then(2, {}), hello),
    protocolFailure('3.3', then(3, { sync: true }), hello),
    protocolFailure('3.4', then(4, { chop: 1 }), hello),
    protocolFailure('3.5', (c) => c.sendFrame({ opcode: 2, payload: bin, rsv: 5 })),
    protocolFailure('3.6', (c) => c.sendFrame({ opcode: 2, payload: hello, rsv: 6 })),
    protocolFailure('3.7', (c) => c.sendFrame({ opcode: 8, rsv: 7 })),
  ];
}

function section4(): CaseSpec[] {
  const hello = 'Hello, world!';
  const out: CaseSpec[] = [];
  for (const [sub, ops] of [
    [1, [3, 4, 5, 6, 7]],
    [2, [11, 12, 13, 14, 15]],
  ] as const) {
    ops.forEach((op, i) => {
      const id = `4.${sub}.${i + 1}`;
      if (i === 0) out.push(protocolFailure(id, (c) => c.sendFrame({ opcode: op })));
      else if (i === 1)
        out.push(protocolFailure(id, (c) => c.sendFrame({ opcode: op, payload: 'reserved opcode payload' })));
      else {
        const chop = i === 4 ? { chop: 1 } : {};
        out.push(
          protocolFailure(
            id,
            (c) => {
              c.sendFrame({ opcode: 1, payload: hello, ...chop });
              c.sendFrame({ opcode: op, ...(i === 2 ? {} : { payload: hello }), ...chop });
              c.sendFrame({ opcode: 9, ...chop });
            },
            hello,
          ),
        );
      }
    });
  }
  return out;
}

function section5(): CaseSpec[] {
  const f = (opcode: number, fin: boolean, payload: string, how: { chop?: number; sync?: boolean } = {}) => ({
    opcode,
    fin,
    payload,
    ...how,
  });
  const fragmentedEcho = (id: string, how: { chop?: number; sync?: boolean }, ping?: string) =>
    spec(id, (r) => {
      r.expected = [[OK, ping === undefined ? [msg('fragment1fragment2')] : [pong(ping), msg('fragment1fragment2')]]];
      r.close = cleanNormal;
      r.c.sendFrame(f(1, false, 'fragment1', how));
      if (ping !== undefined) r.c.sendFrame(f(9, true, ping, how));
      r.c.sendFrame(f(0, true, 'fragment2', how));
      r.c.closeAfter(1000);
    });
  const nothingToContinue = (id: string, fin: boolean, how: { chop?: number; sync?: boolean }) =>
    protocolFailure(id, (c) => {
      c.sendFrame(f(0, fin, 'non-continuation payload', how));
      c.sendFrame(f(1, true, 'Hello, world!', how));
    });
  const pingsInFragments = (id: string, sync: boolean) =>
    spec(id, (r) => {
      const frags = ['fragment1', 'fragment2', 'fragment3', 'fragment4', 'fragment5'];
      r.expected = [[OK, [pong('pongme 1!'), pong('pongme 2!'), msg(frags.join(''))]]];
      r.close = cleanNormal;
      const c = r.c;
      c.sendFrame(f(1, false, frags[0] as string, { sync }));
      c.sendFrame(f(0, false, frags[1] as string, { sync }));
      c.sendFrame(f(9, true, 'pongme 1!', { sync }));
      c.later(1000, () => {
        c.sendFrame(f(0, false, frags[2] as string, { sync }));
        c.sendFrame(f(0, false, frags[3] as string, { sync }));
        c.sendFrame(f(9, true, 'pongme 2!', { sync }));
        c.sendFrame(f(0, true, frags[4] as string, { sync }));
        c.closeAfter(1000);
      });
    });
  return [
    protocolFailure('5.1', (c) => {
      c.sendFrame(f(9, false, 'fragment1'));
      c.sendFrame(f(0, true, 'fragment2'));
    }),
    protocolFailure('5.2', (c) => {
      c.sendFrame(f(10, false, 'fragment1'));
      c.sendFrame(f(0, true, 'fragment2'));
    }),
    fragmentedEcho('5.3', {}),
    fragmentedEcho('5.4', { sync: true }),
    fragmentedEcho('5.5', { chop: 1 }),
    fragmentedEcho('5.6', {}, 'ping payload'),
    fragmentedEcho('5.7', { sync: true }, 'ping payload'),
    fragmentedEcho('5.8', { chop: 1 }, 'ping payload'),
    nothingToContinue('5.9', true, {}),
    nothingToContinue('5.10', true, { sync: true }),
    nothingToContinue('5.11', true, { chop: 1 }),
    nothingToContinue('5.12', false, {}),
    nothingToContinue('5.13', false, { sync: true }),
    nothingToContinue('5.14', false, { chop: 1 }),
    protocolFailure(
      '5.15',
      (c) => {
        c.sendFrame(f(1, false, 'fragment1'));
        c.sendFrame(f(0, true, 'fragment2'));
        c.sendFrame(f(0, false, 'fragment3'));
        c.sendFrame(f(1, true, 'fragment4'));
      },
      'fragment1fragment2',
    ),
    protocolFailure('5.16', (c) => {
      for (let i = 0; i < 2; i++) {
        c.sendFrame(f(0, false, 'fragment1'));
        c.sendFrame(f(1, false, 'fragment2'));
        c.sendFrame(f(0, true, 'fragment3'));
      }
    }),
    protocolFailure('5.17', (c) => {
      for (let i = 0; i < 2; i++) {
        c.sendFrame(f(0, true, 'fragment1'));
        c.sendFrame(f(1, false, 'fragment2'));
        c.sendFrame(f(0, true, 'fragment3'));
      }
    }),
    protocolFailure('5.18', (c) => {
      c.sendFrame(f(1, false, 'fragment1'));
      c.sendFrame(f(1, true, 'fragment2'));
    }),
    pingsInFragments('5.19', false),
    pingsInFragments('5.20', true),
  ];
}

const hex = (s: string) => Buffer.from(s, 'hex');

function section6(): CaseSpec[] {
  const out: CaseSpec[] = [];
  const textEcho = (id: string, payload: Buffer, send: (c: FuzzClient) => void) =>
    spec(id, (r) => {
      r.expected = [[OK, [msg(payload)]]];
      r.close = cleanNormal;
      send(r.c);
      r.c.closeAfter(1000);
    });
  const invalid = (id: string, send: (c: FuzzClient) => void) =>
    spec(id, (r) => {
      r.expected = [[OK, []]];
      r.close = { ...failedBy(INVALID_PAYLOAD), wrongEndpointIsFatal: true };
      send(r.c);
      r.c.killAfter(1000);
    });
  out.push(textEcho('6.1.1', Buffer.alloc(0), (c) => c.sendFrame({ opcode: 1, payload: '' })));
  out.push(
    textEcho('6.1.2', Buffer.alloc(0), (c) => {
      c.sendFrame({ opcode: 1, fin: false, payload: '' });
      c.sendFrame({ opcode: 0, fin: false, payload: '' });
      c.sendFrame({ opcode: 0, fin: true, payload: '' });
    }),
  );
  out.push(
    textEcho('6.1.3', Buffer.from('middle frame payload'), (c) => {
      c.sendFrame({ opcode: 1, fin: false, payload: '' });
      c.sendFrame({ opcode: 0, fin: false, payload: 'middle frame payload' });
      c.sendFrame({ opcode: 0, fin: true, payload: '' });
    }),
  );
  const hello = Buffer.from('Hello-µ@ßöäüàá-UTF-8!!');
  const kosme = hex('cebae1bdb9cf83cebcceb5');
  out.push(textEcho('6.2.1', hello, (c) => c.sendMessage(hello, false)));
  out.push(
    textEcho('6.2.2', hello, (c) => {
      const p1 = Buffer.from('Hello-µ@ßöä');
      c.sendFrame({ opcode: 1, fin: false, payload: p1 });
      c.sendFrame({ opcode: 0, fin: true, payload: hello.subarray(p1.length) });
    }),
  );
  out.push(textEcho('6.2.3', hello, (c) => c.sendMessage(hello, false, 1)));
  out.push(textEcho('6.2.4', kosme, (c) => c.sendMessage(kosme, false, 1)));
  const invalidPayload = Buffer.concat([kosme, hex('eda080'), hex('656469746564')]);
  out.push(invalid('6.3.1', (c) => c.sendMessage(invalidPayload, false)));
  out.push(invalid('6.3.2', (c) => c.sendMessage(invalidPayload, false, 1)));
  // 6.4.x: fail fast. PART2 makes the text invalid; the server must fail on it, not at the end.
  const p1 = kosme;
  const p2 = hex('f4908080');
  const p3 = hex('656469746564');
  const whole = Buffer.concat([p1, p2, p3]);
  const failFast = (id: string, parts: [Buffer, Buffer, Buffer], sameFrame: boolean) =>
    spec(id, (r) => {
      r.expected = [
        [OK, [['timeout', 'A']]],
        [
          NON_STRICT,
          [
            ['timeout', 'A'],
            ['timeout', 'B'],
          ],
        ],
      ];
      r.close = { ...failedBy(INVALID_PAYLOAD), wrongEndpointIsFatal: true };
      const c = r.c;
      let chunks: Buffer[];
      if (sameFrame) {
        // One frame whose payload arrives in three chops, a second apart.
        const frame = encodeMaskedFrame(1, true, whole);
        const h = frame.length - whole.length;
        const a = h + parts[0].length;
        const b = a + parts[1].length;
        chunks = [frame.subarray(0, a), frame.subarray(a, b), frame.subarray(b)];
      } else chunks = [];
      const send = (i: number) => {
        if (sameFrame) c.sendRaw(chunks[i] as Buffer);
        else c.sendFrame({ opcode: i === 0 ? 1 : 0, fin: i === 2, payload: parts[i] as Buffer });
      };
      send(0);
      c.later(1000, () => {
        if (!c.open) return;
        c.record(['timeout', 'A']);
        send(1);
        c.later(1000, () => {
          if (!c.open) return;
          c.record(['timeout', 'B']);
          send(2);
          c.killAfter(1000);
        });
      });
    });
  out.push(failFast('6.4.1', [p1, p2, p3], false));
  out.push(failFast('6.4.2', [whole.subarray(0, 12), whole.subarray(12, 13), whole.subarray(13)], false));
  out.push(failFast('6.4.3', [p1, p2, p3], true));
  out.push(failFast('6.4.4', [whole.subarray(0, 12), whole.subarray(12, 13), whole.subarray(13)], true));
  // 6.5 onwards: Markus Kuhn's UTF-8 decoder test sequences, one message each.
  const groups = JSON.parse(readFileSync(`${VECTORS}/utf8-sequences.json`, 'utf8')) as Array<{
    group: string;
    cases: Array<{ valid: boolean; hex: string }>;
  }>;
  groups.forEach((g, gi) => {
    g.cases.forEach((t, ti) => {
      const id = `6.${gi + 5}.${ti + 1}`;
      const payload = hex(t.hex);
      if (t.valid) out.push(textEcho(id, payload, (c) => c.sendMessage(payload, false)));
      else out.push(invalid(id, (c) => c.sendMessage(payload, false)));
    });
  });
  return out;
}

function section7(): CaseSpec[] {
  const out: CaseSpec[] = [];
  const closeCase = (id: string, expected: Received[], send: (c: FuzzClient) => void, informational = false) =>
    spec(id, (r) => {
      r.expected = informational
        ? [
            [OK, expected],
            [NON_STRICT, []],
          ]
        : [[OK, expected]];
      r.close = cleanNormal;
      r.suppressClose = id !== '7.1.1';
      r.wrongCodeFails = true;
      r.informational = informational;
      send(r.c);
      r.c.killAfter(1000);
    });
  out.push(closeCase('7.1.1', [msg('Hello World!')], (c) => c.sendFrame({ opcode: 1, payload: 'Hello World!' })));
  out.push(
    closeCase('7.1.2', [], (c) => {
      c.sendClose(NORMAL);
      c.sendFrame({ opcode: 8 });
    }),
  );
  out.push(
    closeCase('7.1.3', [], (c) => {
      c.sendClose(NORMAL);
      c.sendFrame({ opcode: 9 });
    }),
  );
  out.push(
    closeCase('7.1.4', [], (c) => {
      c.sendClose(NORMAL);
      c.sendFrame({ opcode: 1, payload: 'Hello World!' });
    }),
  );
  out.push(
    closeCase('7.1.5', [], (c) => {
      c.sendFrame({ opcode: 1, fin: false, payload: 'fragment1' });
      c.sendClose(NORMAL);
      c.sendFrame({ opcode: 0, fin: true, payload: 'fragment2' });
    }),
  );
  out.push(
    closeCase(
      '7.1.6',
      [msg('Hello World!')],
      (c) => {
        c.sendFrame({ opcode: 1, payload: 'BAsd7&jh23', length: 256 * 1024 });
        c.sendFrame({ opcode: 1, payload: 'Hello World!' });
        c.sendClose(NORMAL);
        c.sendFrame({ opcode: 9 });
      },
      true,
    ),
  );
  const rawClose = (id: string, codes: number[], clean: boolean, payload: Buffer) =>
    spec(id, (r) => {
      r.expected = [[OK, []]];
      r.close = { closedByMe: true, codes, requireClean: clean };
      r.suppressClose = true;
      r.c.closedByMe = true;
      r.c.closeSent = true;
      r.c.sendFrame({ opcode: 8, payload });
      r.c.killAfter(1000);
    });
  const code = (n: number, reason: Buffer | string = '') => {
    const r = typeof reason === 'string' ? Buffer.from(reason) : reason;
    const b = Buffer.alloc(2 + r.length);
    b.writeUInt16BE(n, 0);
    r.copy(b, 2);
    return b;
  };
  out.push(rawClose('7.3.1', [NORMAL], true, Buffer.alloc(0)));
  out.push(rawClose('7.3.2', [PROTOCOL_ERROR], false, Buffer.from('a')));
  out.push(rawClose('7.3.3', [NORMAL], true, code(NORMAL)));
  out.push(rawClose('7.3.4', [NORMAL], true, code(NORMAL, 'Hello World!')));
  out.push(rawClose('7.3.5', [NORMAL], true, code(NORMAL, '*'.repeat(123))));
  out.push(rawClose('7.3.6', [PROTOCOL_ERROR], false, code(NORMAL, '*'.repeat(124))));
  out.push(
    rawClose(
      '7.5.1',
      [PROTOCOL_ERROR, INVALID_PAYLOAD],
      false,
      code(NORMAL, hex('cebae1bdb9cf83cebcceb5eda080656469746564')),
    ),
  );
  [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999].forEach((n, i) => {
    const s = rawClose(`7.7.${i + 1}`, [NORMAL, n], true, code(n));
    out.push({
      id: s.id,
      run: (r) => {
        r.wrongCodeFails = true;
        s.run(r);
      },
    });
  });
  [0, 999, 1004, 1005, 1006, 1016, 1100, 2000, 2999].forEach((n, i) => {
    const s = rawClose(`7.9.${i + 1}`, [PROTOCOL_ERROR], false, code(n));
    out.push({
      id: s.id,
      run: (r) => {
        r.wrongCodeFails = true;
        s.run(r);
      },
    });
  });
  for (const [id, n] of [
    ['7.13.1', 5000],
    ['7.13.2', 65535],
  ] as const) {
    const s = rawClose(id, [NORMAL, n, PROTOCOL_ERROR], false, code(n));
    out.push({
      id: id,
      run: (r) => {
        r.informational = true;
        s.run(r);
      },
    });
  }
  return out;
}

function section10(): CaseSpec[] {
  return [
    spec('10.1.1', (r) => {
      const payload = '*'.repeat(65536);
      r.expected = [[OK, [msg(payload)]]];
      r.close = cleanNormal;
      r.c.sendMessage(payload, false, 1300);
      r.c.killAfter(10_000);
    }),
  ];
}

// ---- sections 12 and 13: permessage-deflate ----

/** [payload size, messages (upstream), seconds allowed (upstream), auto-fragment size]. */
const MSG_SIZES: ReadonlyArray<readonly [number, number, number, number]> = [
  [16, 1000, 60, 0],
  [64, 1000, 60, 0],
  [256, 1000, 120, 0],
  [1024, 1000, 240, 0],
  [4096, 1000, 480, 0],
  [8192, 1000, 480, 0],
  [16384, 1000, 480, 0],
  [32768, 1000, 480, 0],
  [65536, 1000, 480, 0],
  [131072, 1000, 480, 0],
  [8192, 1000, 480, 256],
  [16384, 1000, 480, 256],
  [32768, 1000, 480, 256],
  [65536, 1000, 480, 256],
  [131072, 1000, 480, 256],
  [131072, 1000, 480, 1024],
  [131072, 1000, 480, 4096],
  [131072, 1000, 480, 32768],
];

/**
 * Test data of the kinds upstream uses (its files are not copied here; these are generated,
 * deterministically): JSON text, a bitmap, prose (sent as binary, as upstream sends Faust), HTML,
 * and a PDF-like mix of compressible text and noise.
 */
const dataCache = new Map<string, { data: Buffer; binary: boolean }>();

export function testData(kind: 'json' | 'bitmap' | 'prose' | 'html' | 'pdf'): { data: Buffer; binary: boolean } {
  let made = dataCache.get(kind);
  if (made === undefined) {
    made = makeTestData(kind);
    dataCache.set(kind, made);
  }
  return made;
}

function makeTestData(kind: 'json' | 'bitmap' | 'prose' | 'html' | 'pdf'): { data: Buffer; binary: boolean } {
  let seed = { json: 1, bitmap: 2, prose: 3, html: 4, pdf: 5 }[kind];
  const rnd = () => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed / 0x7fffffff;
  };
  const words = [
    'der',
    'die',
    'und',
    'Faust',
    'Mephistopheles',
    'Gretchen',
    'Nacht',
    'über',
    'Geist',
    'Welt',
    'ich',
    'bin',
  ];
  const pick = <T>(a: readonly T[]) => a[Math.floor(rnd() * a.length)] as T;
  const size = 200_000;
  if (kind === 'bitmap') {
    const b = Buffer.alloc(size);
    for (let i = 0; i < size; i++) b[i] = Math.floor(128 + 100 * Math.sin(i / 512) * Math.cos((i % 512) / 40)) & 0xf0;
    return { data: b, binary: true };
  }
  if (kind === 'pdf') {
    const parts: Buffer[] = [];
    let n = 0;
    while (n < size) {
      const p =
        rnd() < 0.5
          ? Buffer.from(
              `${Math.floor(rnd() * 100)} 0 obj << /Type /Page /Length ${Math.floor(rnd() * 9999)} >> stream\n`,
            )
          : Buffer.from(Array.from({ length: 200 }, () => Math.floor(rnd() * 256)));
      parts.push(p);
      n += p.length;
    }
    return { data: Buffer.concat(parts).subarray(0, size), binary: true };
  }
  let s = '';
  while (Buffer.byteLength(s) < size) {
    if (kind === 'json') {
      s += `${JSON.stringify({ id: Math.floor(rnd() * 1e6), name: pick(words), tags: [pick(words), pick(words)], score: rnd(), note: 'µ@ßöäüàá' })},\n`;
    } else if (kind === 'html') {
      s += `<div class="${pick(words)}"><p>${pick(words)} ${pick(words)} <a href="/${pick(words)}">${pick(words)}</a></p></div>\n`;
    } else s += `${pick(words)} ${pick(words)} ${pick(words)}, ${pick(words)}.\n`;
  }
  // Cut on a character boundary: text messages are slices of it and must stay UTF-8.
  return { data: Buffer.from(s), binary: kind === 'prose' };
}

function deflateCase(
  id: string,
  extensions: string,
  kind: Parameters<typeof testData>[0],
  size: number,
  frag: number,
  count: number,
): CaseSpec {
  return {
    id,
    extensions,
    run: (r) => {
      const { data, binary } = testData(kind);
      const c = r.c;
      r.expected = [[OK, []]];
      r.close = cleanNormal;
      r.suppressClose = true;
      if (c.deflate === undefined) {
        r.verdict = 'UNIMPLEMENTED';
        c.sendClose(NORMAL);
        return;
      }
      // Text messages are slices of whole characters; binary ones any slice (as upstream's).
      const text = binary ? undefined : data.toString();
      let at = 0;
      let sent = 0;
      let expectedHash = '';
      const sendOne = () => {
        let m: Buffer;
        if (text === undefined) {
          m = Buffer.alloc(size);
          for (let i = 0; i < size; i++) m[i] = data[(at + i) % data.length] as number;
          at = (at + size) % data.length;
        } else {
          let s = '';
          while (s.length < size) {
            const take = Math.min(size - s.length, text.length - at);
            s += text.slice(at, at + take);
            at = (at + take) % text.length;
          }
          m = Buffer.from(s);
        }
        expectedHash = createHash('sha1').update(m).digest('hex');
        sent++;
        c.sendMessage(m, binary, frag);
      };
      c.onMessage = (got, isBinary) => {
        const ok = isBinary === binary && createHash('sha1').update(got).digest('hex') === expectedHash;
        if (!ok) {
          r.verdict = `FAILED: echo ${sent} differs`;
          c.sendClose(NORMAL);
        } else if (sent < count) sendOne();
        else {
          r.verdict = OK;
          c.sendClose(NORMAL);
        }
      };
      sendOne();
      c.later(120_000, () => {
        r.verdict ??= 'FAILED: did not finish in time';
        c.sendClose(NORMAL);
        c.killAfter(1000);
      });
    },
  };
}

/** The client offers of section 13 (upstream's DEFLATE_PARAMS), as extension strings. */
const SECTION13_OFFERS = [
  'permessage-deflate; client_no_context_takeover; client_max_window_bits',
  'permessage-deflate; client_no_context_takeover; client_max_window_bits; server_no_context_takeover',
  'permessage-deflate; client_no_context_takeover; client_max_window_bits; server_max_window_bits=9',
  'permessage-deflate; client_no_context_takeover; client_max_window_bits; server_max_window_bits=15',
  'permessage-deflate; client_no_context_takeover; client_max_window_bits; server_no_context_takeover; server_max_window_bits=9',
  'permessage-deflate; client_no_context_takeover; client_max_window_bits; server_no_context_takeover; server_max_window_bits=15',
  'permessage-deflate; client_no_context_takeover; client_max_window_bits; server_no_context_takeover; server_max_window_bits=9, permessage-deflate; client_no_context_takeover; client_max_window_bits; server_no_context_takeover, permessage-deflate; client_no_context_takeover; client_max_window_bits',
];

/** Sections 12 and 13; `count` messages per case (upstream sends 1,000). */
export function deflateCases(count: number): CaseSpec[] {
  const out: CaseSpec[] = [];
  const kinds = ['json', 'bitmap', 'prose', 'html', 'pdf'] as const;
  kinds.forEach((kind, j) => {
    MSG_SIZES.forEach(([size, , , frag], i) => {
      out.push(deflateCase(`12.${j + 1}.${i + 1}`, SECTION13_OFFERS[0] as string, kind, size, frag, count));
    });
  });
  SECTION13_OFFERS.forEach((offer, j) => {
    MSG_SIZES.forEach(([size, , , frag], i) => {
      out.push(deflateCase(`13.${j + 1}.${i + 1}`, offer, 'json', size, frag, count));
    });
  });
  return out;
}

/** Sections 1–7 and 10. */
export function plainCases(): CaseSpec[] {
  return [
    ...section1(),
    ...section2(),
    ...section3(),
    ...section4(),
    ...section5(),
    ...section6(),
    ...section7(),
    ...section10(),
  ];
}

/** A masked frame (for 6.4.3/6.4.4, whose payload is sent in three chops of one frame). */
function encodeMaskedFrame(opcode: number, fin: boolean, payload: Buffer): Buffer {
  const len = payload.length;
  const h = (len < 126 ? 2 : 4) + 4;
  const out = Buffer.alloc(h + len);
  out[0] = (fin ? 0x80 : 0) | opcode;
  let at = 2;
  if (len < 126) out[1] = 0x80 | len;
  else {
    out[1] = 0x80 | 126;
    out.writeUInt16BE(len, 2);
    at = 4;
  }
  const key = [0x37, 0xfa, 0x21, 0x3d];
  for (let i = 0; i < 4; i++) out[at + i] = key[i] as number;
  at += 4;
  for (let i = 0; i < len; i++) out[at + i] = (payload[i] as number) ^ (key[i & 3] as number);
  return out;
}
