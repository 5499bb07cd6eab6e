/** How `multireactor status` prints a master's answer (src/bin/format.ts). */
import { expect } from 'chai';
import { formatBytes, formatStatus, formatUptime } from '../../../src/bin/format.js';
import type { StatusResult } from '../../../src/ops/protocol.js';

describe('multireactor status output', () => {
  it('uptimes and sizes', () => {
    expect(formatUptime(0)).to.equal('0s');
    expect(formatUptime(59.9)).to.equal('59s');
    expect(formatUptime(184)).to.equal('3m 4s');
    expect(formatUptime(7380)).to.equal('2h 3m');
    expect(formatUptime(360_000)).to.equal('4d 4h');
    expect(formatBytes(512 * 1024)).to.equal('512 KiB');
    expect(formatBytes(64_180_000)).to.equal('61.2 MiB');
    expect(formatBytes(1.5 * 1024 ** 3)).to.equal('1.50 GiB');
  });

  it('a table with one row per worker, columns aligned, - for a worker that did not answer', () => {
    const s: StatusResult = {
      master: {
        pid: 4242,
        phase: 'serving',
        ready: false,
        readyReason: 'not every worker is ready: slot 1 restarting',
        address: '0.0.0.0:8080',
        uptimeSeconds: 11_520,
        slots: 2,
        reloads: { ok: 2, failed: 1 },
        admin: '127.0.0.1:9100',
        control: '/run/app/app.ctl.sock',
      },
      workers: [
        {
          slot: 0,
          pid: 51877,
          generation: 3,
          state: 'serving',
          uptimeSeconds: 2462,
          connections: 212,
          requests: 8813441,
          rssBytes: 74_868_326,
          restarts: 0,
        },
        {
          slot: 1,
          pid: 52204,
          generation: 4,
          state: 'starting',
          uptimeSeconds: 0.2,
          connections: null,
          requests: null,
          rssBytes: null,
          restarts: 1,
        },
      ],
    };
    expect(formatStatus(s)).to.equal(
      [
        'master 4242  serving  not ready (not every worker is ready: slot 1 restarting)  up 3h 12m',
        '  serving 0.0.0.0:8080 with 2 worker slots; reloads: 2 ok, 1 failed',
        '  admin 127.0.0.1:9100',
        '  control /run/app/app.ctl.sock',
        '',
        'SLOT  PID    GEN  STATE     UPTIME  CONNS  REQUESTS  RSS       RESTARTS',
        '0     51877  3    serving   41m 2s  212    8813441   71.4 MiB  0',
        '1     52204  4    starting  0s      -      -         -         1',
        '',
      ].join('\n'),
    );
  });
});
