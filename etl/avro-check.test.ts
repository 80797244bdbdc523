import avro from 'avsc';
import { describe, expect, it } from 'vitest';
import { avroCheck } from './avro-check.js';

const type = avro.Type.forSchema({
  type: 'record',
  name: 'T',
  fields: [
    { name: 's', type: 'string' },
    { name: 'e', type: { type: 'enum', name: 'E', symbols: ['A', 'B'] } },
    { name: 'u', type: ['null', 'long', { type: 'array', items: 'double' }] },
    { name: 'm', type: { type: 'map', values: { type: 'fixed', name: 'F', size: 2 } } },
    { name: 'b', type: 'boolean' },
    { name: 'next', type: ['null', 'T'], default: null },
  ],
} as avro.Schema);

describe('avroCheck', () => {
  const check = avroCheck(type);

  it('accepts every value avsc encodes, including recursive ones', () => {
    for (let i = 0; i < 500; i++) expect(() => check(type.toBuffer(type.random()))).not.toThrow();
  });

  it('refuses truncated, trailing and out-of-range bytes, naming the problem', () => {
    const good = type.toBuffer({ s: 'x', e: 'B', u: null, m: {}, b: true, next: null });
    expect(() => check(good.subarray(0, good.length - 1))).toThrow(/truncated/);
    expect(() => check(Buffer.concat([good, Buffer.from([0])]))).toThrow(/trailing bytes/);
    const badEnum = Buffer.from(good);
    badEnum[2] = 4; // enum index 2
    expect(() => check(badEnum)).toThrow(/enum index 2 out of range/);
    const badBool = Buffer.from(good);
    badBool[good.length - 2] = 7;
    expect(() => check(badBool)).toThrow(/invalid boolean/);
    expect(() => check(Buffer.from([0xff, 0xff, 0xff]))).toThrow();
    expect(() => check(Buffer.from([0x7f, 0x61]))).toThrow(/truncated/);
  });
});
