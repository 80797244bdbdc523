import avro from 'avsc';
import { describe, expect, it } from 'vitest';
import { BatchEncoder } from './batch-encoder.js';

describe('BatchEncoder', () => {
  const type = avro.Type.forSchema({ type: 'record', name: 'R', fields: [{ name: 's', type: 'string' }] });
  it('encodes many values into views that decode back, growing as needed', () => {
    const enc = new BatchEncoder(16);
    const values = Array.from({ length: 500 }, (_, i) => ({ s: 'x'.repeat(i % 50) + String(i) }));
    const views = values.map((v) => enc.encode(type, v));
    views.forEach((b, i) => {
      expect(type.fromBuffer(b)).toEqual(values[i]);
    });
  });
  it('handles a value larger than twice the buffer', () => {
    const enc = new BatchEncoder(0);
    const big = { s: 'y'.repeat(100_000) };
    expect(type.fromBuffer(enc.encode(type, big))).toEqual(big);
  });
});
