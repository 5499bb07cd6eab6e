/**
 * Offload options: defaults, and a clear InvalidOptionError naming each bad one.
 */
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { expect } from 'chai';
import { InvalidOptionError } from '../../../src/common/errors.js';
import { type OffloadOptions, resolveOffloadOptions } from '../../../src/offload/options.js';
import { thrownBy } from '../../support.js';

const TASKS = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'offload-tasks.js');

function rejects(options: Record<string, unknown>, option: string, detail?: RegExp): void {
  const err = thrownBy(() => resolveOffloadOptions({ filename: TASKS, ...options } as unknown as OffloadOptions));
  expect(err).to.be.instanceOf(InvalidOptionError);
  expect((err as InvalidOptionError).code).to.equal('ERR_INVALID_OPTION');
  expect((err as Error).message).to.contain(`option ${option}:`);
  if (detail !== undefined) expect((err as Error).message).to.match(detail);
}

describe('offload options', () => {
  it('defaults: 1 warm thread, half the cores at most, 32 queued per thread, 16 in flight per connection', () => {
    const r = resolveOffloadOptions({ filename: TASKS });
    const threads = Math.max(1, availableParallelism() >> 1);
    expect(r.pool).to.include({
      filename: TASKS,
      minThreads: 1,
      maxThreads: threads,
      idleTimeout: 30_000,
      maxQueue: 32 * threads,
    });
    expect(r).to.include({ maxInFlight: 16, transfer: 'move', abortRunning: false, name: undefined });
  });

  it('filename: an absolute path, a file: URL or its string; the file must exist and be JavaScript', () => {
    expect(resolveOffloadOptions({ filename: pathToFileURL(TASKS) }).pool.filename).to.equal(TASKS);
    expect(resolveOffloadOptions({ filename: pathToFileURL(TASKS).href }).pool.filename).to.equal(TASKS);
    rejects({ filename: undefined }, 'filename', /required/);
    rejects({ filename: 'offload-tasks.js' }, 'filename', /absolute/);
    rejects({ filename: new URL('https://example.com/tasks.js') }, 'filename', /file: URL/);
    rejects({ filename: TASKS.replace(/\.js$/, '.ts') }, 'filename', /JavaScript/);
    rejects({ filename: `${TASKS}.missing.js` }, 'filename', /no such file/);
    rejects({ filename: dirname(TASKS) }, 'filename', /no such file/);
  });

  it('every number is checked, and named', () => {
    rejects({ maxThreads: 0 }, 'maxThreads');
    rejects({ maxThreads: 1.5 }, 'maxThreads');
    rejects({ minThreads: -1 }, 'minThreads');
    rejects({ minThreads: 3, maxThreads: 2 }, 'minThreads', /maxThreads/);
    rejects({ idleTimeout: -1 }, 'idleTimeout');
    rejects({ maxQueue: '8' }, 'maxQueue');
    rejects({ maxInFlight: 0 }, 'maxInFlight');
    rejects({ transfer: 'share' }, 'transfer');
    rejects({ abortRunning: 'yes' }, 'abortRunning');
    rejects({ name: '' }, 'name');
    rejects({ resourceLimits: { maxOldGenerationSizeMb: -1 } }, 'resourceLimits.maxOldGenerationSizeMb');
    const err = thrownBy(() =>
      resolveOffloadOptions({ filename: TASKS, resourceLimits: { heap: 1 } } as unknown as OffloadOptions),
    );
    expect(err).to.be.instanceOf(InvalidOptionError);
    expect((err as Error).message).to.match(/^offload: unknown option 'resourceLimits.heap' \(offload takes /);
  });

  it('an unknown key is rejected with the nearest known one', () => {
    const err = thrownBy(() => resolveOffloadOptions({ filename: TASKS, maxTreads: 2 } as unknown as OffloadOptions));
    expect(err).to.be.instanceOf(InvalidOptionError);
    expect((err as Error).message).to.equal("offload: unknown option 'maxTreads' (did you mean 'maxThreads'?)");
  });

  it('maxQueue 0 (no waiting at all) and minThreads 0 are allowed', () => {
    const r = resolveOffloadOptions({ filename: TASKS, maxQueue: 0, minThreads: 0, maxThreads: 1 });
    expect(r.pool).to.include({ maxQueue: 0, minThreads: 0, maxThreads: 1 });
  });

  it('one options object is resolved once; equal pool options give equal keys', () => {
    const o: OffloadOptions = { filename: TASKS, maxThreads: 1 };
    expect(resolveOffloadOptions(o)).to.equal(resolveOffloadOptions(o));
    const same = resolveOffloadOptions({ filename: pathToFileURL(TASKS), maxThreads: 1, maxInFlight: 3 });
    expect(same.pool.key).to.equal(resolveOffloadOptions(o).pool.key);
    expect(resolveOffloadOptions({ filename: TASKS, maxThreads: 2 }).pool.key).not.to.equal(same.pool.key);
  });
});
