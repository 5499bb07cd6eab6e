import { availableParallelism } from 'node:os';
import { expect } from 'chai';
import { InvalidOptionError } from '../../../src/common/errors.js';
import { takeListenFds } from '../../../src/master/listen-fds.js';
import { WORKER_ENV, workerSpecFromEnv } from '../../../src/master/protocol.js';
import { Pipeline } from '../../../src/pipeline/pipeline.js';
import { type ServerOptions, validateServerOptions } from '../../../src/server-options.js';
import { thrownBy } from '../../support.js';

describe('master: worker spec in the environment', () => {
  it('is absent in a process that is not a worker', () => {
    expect(workerSpecFromEnv({})).to.equal(undefined);
    expect(workerSpecFromEnv({ [WORKER_ENV]: '' })).to.equal(undefined);
  });

  it('round-trips what the master writes', () => {
    const spec = { slot: 2, generation: 5, fds: [4, 5], exclusive: true, masterPid: 42 };
    expect(workerSpecFromEnv({ [WORKER_ENV]: JSON.stringify(spec) })).to.deep.equal(spec);
  });

  it('rejects a malformed spec loudly instead of serving on a wrong descriptor', () => {
    expect(() => workerSpecFromEnv({ [WORKER_ENV]: '{"slot":"a","fds":[4]}' })).to.throw(/malformed/);
    expect(() => workerSpecFromEnv({ [WORKER_ENV]: '{"slot":0,"fds":[4.5]}' })).to.throw(/malformed/);
    expect(() => workerSpecFromEnv({ [WORKER_ENV]: 'not json' })).to.throw();
  });
});

describe('master: LISTEN_FDS (sd_listen_fds)', () => {
  it('takes nothing without the variables', () => {
    expect(takeListenFds({}, 123)).to.deep.equal([]);
  });

  it('ignores variables meant for another process, and clears them so children do not inherit them', () => {
    const env: NodeJS.ProcessEnv = { LISTEN_FDS: '2', LISTEN_PID: '999999', LISTEN_FDNAMES: 'a:b', OTHER: 'x' };
    expect(takeListenFds(env, 123)).to.deep.equal([]);
    expect(env).to.deep.equal({ OTHER: 'x' });
  });

  it('rejects a count that is not a positive integer', () => {
    expect(() => takeListenFds({ LISTEN_FDS: 'two', LISTEN_PID: '7' }, 7)).to.throw(/positive integer/);
    expect(() => takeListenFds({ LISTEN_FDS: '0', LISTEN_PID: '7' }, 7)).to.throw(/positive integer/);
  });

  it('refuses a descriptor that is not a listening socket', () => {
    // fd 0 (stdin) is never a listening socket in a test run.
    expect(() => takeListenFds({ LISTEN_FDS: '1', LISTEN_PID: '7' }, 7)).to.throw(/not a listening socket/);
  });
});

describe('master: cluster options', () => {
  const base: ServerOptions = { pipeline: Pipeline };

  it('defaults: one worker per CPU, reuseport, rolling reloads, 10 s start and drain', () => {
    const { cluster } = validateServerOptions(base);
    expect(cluster).to.deep.equal({
      workers: availableParallelism(),
      balance: 'reuseport',
      reloadStrategy: 'rolling',
      startTimeout: 10_000,
      restartDelay: 100,
      maxRestartDelay: 5000,
      maxCrashes: 5,
      crashWindow: 60_000,
      drainTimeout: 10_000,
      handleSignals: true,
      daemon: false,
      operations: { pidFile: undefined, control: undefined, admin: undefined, shutdownDelay: 0 },
    });
  });

  const bad: Array<[string, Partial<ServerOptions>]> = [
    ['workers', { workers: -1 }],
    ['workers', { workers: 2.5 }],
    ['balance', { balance: 'random' as 'shared' }],
    ['reloadStrategy', { reloadStrategy: 'sometimes' as 'all' }],
    ['startTimeout', { startTimeout: 0 }],
    ['maxRestartDelay', { restartDelay: 1000, maxRestartDelay: 10 }],
    ['maxCrashes', { maxCrashes: -1 }],
    ['drainTimeout', { drainTimeout: -5 }],
    ['handleSignals', { handleSignals: 'yes' as unknown as boolean }],
    ['daemon', { daemon: 1 as unknown as boolean }],
    ['reusePort', { reusePort: 'true' as unknown as boolean }],
  ];
  for (const [name, o] of bad) {
    it(`rejects ${JSON.stringify(o)} naming ${name}`, () => {
      const err = thrownBy(() => validateServerOptions({ ...base, ...o }));
      expect(err).to.be.instanceOf(InvalidOptionError);
      expect((err as Error).message).to.contain(`option ${name}:`);
    });
  }
});
