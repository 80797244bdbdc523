import { resolve } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { type EventType, loadEventTypes } from '../../core/event-types.js';
import { breakPayload, generatorFor, rng } from './generators.js';

let types: EventType[];
beforeAll(async () => {
  types = await loadEventTypes(resolve(import.meta.dirname, '../../schemas'));
});

describe('traffic generators', () => {
  it('generate payloads valid for the version they declare', () => {
    const r = rng(7);
    for (const t of types) {
      const gen = generatorFor(t);
      for (let i = 0; i < 500; i++) {
        const g = gen(r);
        const v = t.versions[g.version - 1];
        expect(v, `${t.name} v${g.version}`).toBeDefined();
        expect(v?.type.isValid(g.payload, { noUndeclaredFields: true })).toBe(true);
      }
    }
  });

  it('send a mix of EndSong v1 and v2', () => {
    const gen = generatorFor(types.find((t) => t.name === 'EndSong') as EventType);
    const r = rng(3);
    const versions = new Set(Array.from({ length: 200 }, () => gen(r).version));
    expect(versions).toEqual(new Set([1, 2]));
  });

  it('fall back to random valid payloads for types without a hand-written generator', () => {
    const pageView = types.find((t) => t.name === 'PageView') as EventType;
    const other = { ...pageView, name: 'SomethingElse' };
    const g = generatorFor(other)(rng(1));
    expect(pageView.versions[0]?.type.isValid(g.payload, { noUndeclaredFields: true })).toBe(true);
  });

  it('break payloads so that they are always invalid', () => {
    const r = rng(11);
    for (const t of types) {
      const gen = generatorFor(t);
      for (let i = 0; i < 300; i++) {
        const g = gen(r);
        const v = t.versions[g.version - 1];
        if (!v) throw new Error('no version');
        expect(v.type.isValid(breakPayload(r, g.payload, v.type), { noUndeclaredFields: true })).toBe(false);
      }
    }
  });
});
