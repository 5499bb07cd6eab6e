import { expect } from 'chai';
import {
  DecoderError,
  errnoName,
  InvalidOptionError,
  ReactorError,
  SyscallError,
  TooLongFrameError,
  UnsupportedPlatformError,
} from '../../../src/common/errors.js';
import { EAGAIN, ECONNRESET } from '../../../src/syscalls/constants.js';
import { check } from '../../../src/syscalls/socket.js';

describe('errors: SyscallError', () => {
  it('is shaped like a Node system error', () => {
    const err = new SyscallError('read', 104);
    expect(err).to.be.instanceOf(SyscallError);
    expect(err).to.be.instanceOf(ReactorError);
    expect(err).to.be.instanceOf(Error);
    expect(err.code).to.equal('ECONNRESET');
    expect(err.errno).to.equal(104);
    expect(err.syscall).to.equal('read');
    expect(err.name).to.equal('SyscallError');
    expect(err.message).to.contain('read');
    expect(err.message).to.contain('ECONNRESET');
    expect(err.address).to.equal(undefined);
    expect(err.port).to.equal(undefined);
    expect(err.stack).to.be.a('string');
  });

  it('normalises a negative errno (a wrapper result passed as is) to the positive C value', () => {
    const err = new SyscallError('write', -ECONNRESET);
    expect(err.errno).to.equal(104);
    expect(err.code).to.equal('ECONNRESET');
    expect(err.message).to.contain('(-104)');
    expect(err.message).not.to.contain('--');
  });

  it('positive and negative errno build the same message', () => {
    expect(new SyscallError('recv', EAGAIN).message).to.equal(new SyscallError('recv', -EAGAIN).message);
  });

  it('names address and port in the message when given', () => {
    const err = new SyscallError('bind', 98, { address: '127.0.0.1', port: 8080 });
    expect(err.code).to.equal('EADDRINUSE');
    expect(err.address).to.equal('127.0.0.1');
    expect(err.port).to.equal(8080);
    expect(err.message).to.contain('127.0.0.1:8080');
  });

  it('names the address alone when no port is given', () => {
    const err = new SyscallError('connect', 111, { address: '::1' });
    expect(err.code).to.equal('ECONNREFUSED');
    expect(err.message).to.match(/ ::1$/);
    expect(err.port).to.equal(undefined);
  });

  it('an unknown errno still builds an error with a stable code', () => {
    const a = new SyscallError('ioctl', 999);
    const b = new SyscallError('ioctl', -999);
    expect(a.errno).to.equal(999);
    expect(a.code).to.equal('E999');
    expect(b.code).to.equal(a.code);
    expect(a.message).to.contain('E999');
  });
});

describe('errors: errnoName', () => {
  it('maps errno values to their symbolic names', () => {
    expect(errnoName(11)).to.equal('EAGAIN');
    expect(errnoName(104)).to.equal('ECONNRESET');
    expect(errnoName(9)).to.equal('EBADF');
    expect(errnoName(98)).to.equal('EADDRINUSE');
  });

  it('accepts the negative form returned by the wrappers', () => {
    expect(errnoName(-11)).to.equal('EAGAIN');
    expect(errnoName(-107)).to.equal('ENOTCONN');
  });

  it('gives a stable fallback for an errno Linux does not define', () => {
    expect(errnoName(999)).to.equal('E999');
    expect(errnoName(-999)).to.equal('E999');
    expect(errnoName(999)).to.equal(errnoName(999));
  });

  // Regression test (found while writing these tests).
  it('gives a fallback, not a libuv pseudo-error name, for errno 4095 / 3008', () => {
    expect(errnoName(4095)).to.equal('E4095');
    expect(errnoName(3008)).to.equal('E3008');
    expect(new SyscallError('read', 4095).code).to.equal('E4095');
  });
});

describe('errors: check()', () => {
  it('returns a success value unchanged', () => {
    expect(check('socket', 7)).to.equal(7);
    expect(check('bind', 0)).to.equal(0);
  });

  it('throws a SyscallError for -errno, with the address when given', () => {
    let caught: unknown;
    try {
      check('bind', -98, { address: '127.0.0.1', port: 1 });
    } catch (err) {
      caught = err;
    }
    expect(caught).to.be.instanceOf(SyscallError);
    const e = caught as SyscallError;
    expect(e.syscall).to.equal('bind');
    expect(e.errno).to.equal(98);
    expect(e.code).to.equal('EADDRINUSE');
    expect(e.message).to.contain('127.0.0.1:1');
  });
});

describe('errors: other classes', () => {
  it('TooLongFrameError carries length and maxLength and is a DecoderError', () => {
    const err = new TooLongFrameError(70000, 65536);
    expect(err).to.be.instanceOf(TooLongFrameError);
    expect(err).to.be.instanceOf(DecoderError);
    expect(err).to.be.instanceOf(ReactorError);
    expect(err).to.be.instanceOf(Error);
    expect(err.code).to.equal('ERR_TOO_LONG_FRAME');
    expect(err.name).to.equal('TooLongFrameError');
    expect(err.length).to.equal(70000);
    expect(err.maxLength).to.equal(65536);
    expect(err.message).to.contain('70000');
    expect(err.message).to.contain('65536');
  });

  it('TooLongFrameError names what was too long', () => {
    expect(new TooLongFrameError(10, 5, 'line').message).to.match(/^line length 10/);
  });

  it('DecoderError defaults its code and keeps a cause', () => {
    const cause = new Error('inner');
    const err = new DecoderError('bad', { cause });
    expect(err.code).to.equal('ERR_DECODER');
    expect(err.cause).to.equal(cause);
    expect(new DecoderError('bad', { code: 'ERR_X' }).code).to.equal('ERR_X');
  });

  it('InvalidOptionError names the option in its message', () => {
    const err = new InvalidOptionError('port', 'must be an integer');
    expect(err).to.be.instanceOf(ReactorError);
    expect(err.code).to.equal('ERR_INVALID_OPTION');
    expect(err.name).to.equal('InvalidOptionError');
    expect(err.message).to.equal('option port: must be an integer');
  });

  it('UnsupportedPlatformError has its stable code', () => {
    const err = new UnsupportedPlatformError('no');
    expect(err.code).to.equal('ERR_UNSUPPORTED_PLATFORM');
    expect(err).to.be.instanceOf(ReactorError);
  });
});
