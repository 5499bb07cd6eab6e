import { Buffer } from 'node:buffer';
import { inspect } from 'node:util';
import { expect } from 'chai';
import { bufferView, isOutboundView, outboundView } from '../../../src/common/buffer-view.js';

describe('bufferView', () => {
  const memory = Buffer.from('hello, world');
  const view = () => bufferView(memory.buffer, memory.byteOffset + 7, 5);

  it('is a Buffer to every check', () => {
    const v = view();
    expect(v).to.be.instanceOf(Buffer);
    expect(Buffer.isBuffer(v)).to.equal(true);
    expect(v.constructor).to.equal(Buffer);
    expect(inspect(v)).to.equal('<Buffer 77 6f 72 6c 64>');
    expect(v.toJSON()).to.deep.equal({ type: 'Buffer', data: [...Buffer.from('world')] });
  });

  it('shares the memory it views, without copying', () => {
    const v = view();
    expect(v.toString()).to.equal('world');
    expect(v.length).to.equal(5);
    expect(v.buffer).to.equal(memory.buffer);
    expect(v.byteOffset).to.equal(memory.byteOffset + 7);
    v[0] = 0x57;
    expect(memory.toString()).to.equal('hello, World');
    v[0] = 0x77;
  });

  it('has every Buffer method, and derived arrays are Buffers', () => {
    const v = view();
    expect(v.equals(Buffer.from('world'))).to.equal(true);
    expect(Buffer.compare(v, Buffer.from('world'))).to.equal(0);
    expect(v.readUInt16BE(0)).to.equal(0x776f);
    expect(v.subarray(1, 3).toString()).to.equal('or');
    expect(v.slice(1, 3)).to.be.instanceOf(Buffer);
    const mapped = v.map((b) => b - 0x20);
    expect(mapped).to.be.instanceOf(Buffer);
    expect(mapped.toString()).to.equal('WORLD');
    expect(Buffer.concat([v, Buffer.from('!')]).toString()).to.equal('world!');
  });
});

describe('outboundView', () => {
  const memory = Buffer.from('hello, world');

  it('is a Buffer to every check, on the memory it views', () => {
    const v = outboundView(memory.buffer, memory.byteOffset + 7, 5);
    expect(v).to.be.instanceOf(Buffer);
    expect(Buffer.isBuffer(v)).to.equal(true);
    expect(v.constructor).to.equal(Buffer);
    expect(inspect(v)).to.equal('<Buffer 77 6f 72 6c 64>');
    expect(v.buffer).to.equal(memory.buffer);
    expect(v.toString()).to.equal('world');
    expect(v.map((b) => b - 0x20).toString()).to.equal('WORLD');
  });

  it('is recognised as one; read views and other Buffers are not', () => {
    expect(isOutboundView(outboundView(memory.buffer, 0, 3))).to.equal(true);
    expect(isOutboundView(bufferView(memory.buffer, 0, 3))).to.equal(false);
    expect(isOutboundView(memory)).to.equal(false);
    expect(isOutboundView(memory.subarray(1))).to.equal(false);
    expect(isOutboundView(new Uint8Array(4))).to.equal(false);
    // What it derives is a plain Buffer again: only the one view is vouched for.
    expect(isOutboundView(outboundView(memory.buffer, 0, 5).subarray(1))).to.equal(false);
  });
});
