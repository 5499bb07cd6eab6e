/**
 * The parent-death signal wrappers (prctl(2) PR_SET_PDEATHSIG / PR_GET_PDEATHSIG) on this process:
 * what is set reads back, 0 clears it, and a bad signal is EINVAL. The signal's delivery is
 * tested with real processes in test/integration/master-faults.test.ts.
 */
import { constants } from 'node:os';
import { expect } from 'chai';
import { getParentDeathSignal, setParentDeathSignal } from '../../../src/syscalls/libc.js';

describe('syscalls/libc: parent-death signal', () => {
  let before = 0;
  beforeEach(() => {
    before = getParentDeathSignal();
  });
  afterEach(() => {
    setParentDeathSignal(before);
  });

  it('reads back what was set, and 0 clears it', () => {
    expect(setParentDeathSignal(constants.signals.SIGPWR)).to.equal(0);
    expect(getParentDeathSignal()).to.equal(constants.signals.SIGPWR);
    expect(setParentDeathSignal(0)).to.equal(0);
    expect(getParentDeathSignal()).to.equal(0);
  });

  it('returns -EINVAL for a signal that does not exist, leaving the setting alone', () => {
    expect(setParentDeathSignal(constants.signals.SIGTERM)).to.equal(0);
    expect(setParentDeathSignal(1000)).to.equal(-constants.errno.EINVAL);
    expect(getParentDeathSignal()).to.equal(constants.signals.SIGTERM);
  });
});
