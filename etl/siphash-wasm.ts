/**
 * SipHash-2-4-128 (the same function as `siphash128` in siphash.ts) in WebAssembly, whose 64-bit
 * integers the algorithm is made of: in JavaScript each 64-bit add, rotate and xor is several
 * 32-bit operations. The dedup step hashes every key of a partition; it copies a record block into
 * the module's memory once, then hashes each key of it in place.
 *
 * The module is built here from its instructions (no compiler or generated file in the
 * repository): an exported function `sip(start, end, out)` hashing memory `[start, end)` with the
 * key at bytes 0–15 and writing the hash at `out` as the four words siphash.ts gives (most
 * significant first), and `digest(start, end)`, the payload digest of the same block (MurmurHash3,
 * as `digest32` of payload-digest.ts, whose 32-bit steps cost fewer calls here than in JavaScript).
 * The memory is the module's own; hashed bytes must be followed by 8 readable bytes (the last
 * block is read as one 64-bit load, then masked).
 */
import { SIPHASH_KEY_BYTES } from './siphash.js';

// instructions (WebAssembly core specification, section 5.4)
const I32 = 0x7f;
const I64 = 0x7e;
const OP = {
  block: 0x02,
  loop: 0x03,
  end: 0x0b,
  br: 0x0c,
  brIf: 0x0d,
  get: 0x20,
  set: 0x21,
  i64Load: 0x29,
  i64Store: 0x37,
  i32Const: 0x41,
  i64Const: 0x42,
  i32Load: 0x28,
  i32GeU: 0x4f,
  i32Add: 0x6a,
  i32Sub: 0x6b,
  i32Mul: 0x6c,
  i32And: 0x71,
  i32Xor: 0x73,
  i32Shl: 0x74,
  i32ShrU: 0x76,
  i32Rotl: 0x77,
  i64Add: 0x7c,
  i64And: 0x83,
  i64Or: 0x84,
  i64Xor: 0x85,
  i64Shl: 0x86,
  i64Rotl: 0x89,
  i64Sub: 0x7d,
  i64ExtendI32U: 0xad,
} as const;

/** Unsigned LEB128. */
function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n !== 0) b |= 0x80;
    out.push(b);
  } while (n !== 0);
  return out;
}

/** Signed LEB128 of a 64-bit constant. */
function sleb64(v: bigint): number[] {
  const out: number[] = [];
  let n = BigInt.asIntN(64, v);
  for (;;) {
    const b = Number(n & 0x7fn);
    n >>= 7n;
    if ((n === 0n && (b & 0x40) === 0) || (n === -1n && (b & 0x40) !== 0)) {
      out.push(b);
      return out;
    }
    out.push(b | 0x80);
  }
}

// parameters and locals
const START = 0;
const END = 1;
const OUT = 2;
const V0 = 3;
const V1 = 4;
const V2 = 5;
const V3 = 6;
const M = 7;
const P = 8;
const LAST = 9;
const LEN = 10;

const get = (i: number) => [OP.get, i];
const set = (i: number) => [OP.set, i];
const i64 = (v: bigint) => [OP.i64Const, ...sleb64(v)];
const i32 = (v: number) => [OP.i32Const, ...sleb64(BigInt(v))];
/** A load or store at the address on the stack (alignment hint 1 byte: keys and payloads are unaligned). */
const mem = (op: number) => [op, 0, 0];

/** `a = rotl(a, r)`. */
const rotl = (a: number, r: number) => [...get(a), ...i64(BigInt(r)), OP.i64Rotl, ...set(a)];
/** `a += b`. */
const add = (a: number, b: number) => [...get(a), ...get(b), OP.i64Add, ...set(a)];
/** `a ^= b`. */
const xor = (a: number, b: number) => [...get(a), ...get(b), OP.i64Xor, ...set(a)];
/** `while (p < limit) { body; p += step; }` over i32 locals `p` and `limit` (unsigned). */
const whileBelow = (p: number, limit: number, step: number, body: number[]) => [
  OP.block,
  0x40,
  OP.loop,
  0x40,
  ...get(p),
  ...get(limit),
  OP.i32GeU,
  OP.brIf,
  1,
  ...body,
  ...get(p),
  ...i32(step),
  OP.i32Add,
  ...set(p),
  OP.br,
  0,
  OP.end,
  OP.end,
];

const ROUND = [
  ...add(V0, V1),
  ...rotl(V1, 13),
  ...xor(V1, V0),
  ...rotl(V0, 32),
  ...add(V2, V3),
  ...rotl(V3, 16),
  ...xor(V3, V2),
  ...add(V0, V3),
  ...rotl(V3, 21),
  ...xor(V3, V0),
  ...add(V2, V1),
  ...rotl(V1, 17),
  ...xor(V1, V2),
  ...rotl(V2, 32),
];
const rounds = (n: number) => Array.from({ length: n }, () => ROUND).flat();
/** v3 ^= m; rounds; v0 ^= m. */
const compress = [...xor(V3, M), ...rounds(2), ...xor(V0, M)];
/** The state's xor, rotated so that its high word is stored first, at `out + offset`. */
const emit = (offset: number) => [
  ...get(OUT),
  ...(offset === 0 ? [] : [...i32(offset), OP.i32Add]),
  ...get(V0),
  ...get(V1),
  OP.i64Xor,
  ...get(V2),
  OP.i64Xor,
  ...get(V3),
  OP.i64Xor,
  ...i64(32n),
  OP.i64Rotl,
  ...mem(OP.i64Store),
];
/** `v = k ^ c` for a key half at memory `at`. */
const init = (v: number, at: number, c: bigint) => [...i32(at), ...mem(OP.i64Load), ...i64(c), OP.i64Xor, ...set(v)];

const BODY = [
  ...init(V0, 0, 0x736f6d6570736575n),
  ...init(V1, 8, 0x646f72616e646f6dn ^ 0xeen),
  ...init(V2, 0, 0x6c7967656e657261n),
  ...init(V3, 8, 0x7465646279746573n),
  // len = end - start; last = start + (len & ~7); p = start
  ...get(END),
  ...get(START),
  OP.i32Sub,
  ...set(LEN),
  ...get(START),
  ...get(LEN),
  ...i32(-8),
  OP.i32And,
  OP.i32Add,
  ...set(LAST),
  ...get(START),
  ...set(P),
  // the whole 8-byte blocks
  ...whileBelow(P, LAST, 8, [...get(P), ...mem(OP.i64Load), ...set(M), ...compress]),
  // the last block: the remaining bytes (a load masked to them), the length's low byte on top
  ...get(P),
  ...mem(OP.i64Load),
  ...i64(1n),
  ...get(LEN),
  ...i32(7),
  OP.i32And,
  ...i32(8),
  OP.i32Mul,
  OP.i64ExtendI32U,
  OP.i64Shl,
  ...i64(1n),
  OP.i64Sub,
  OP.i64And,
  ...get(LEN),
  OP.i64ExtendI32U,
  ...i64(56n),
  OP.i64Shl,
  OP.i64Or,
  ...set(M),
  ...compress,
  // finalisation: two halves of four rounds each
  ...get(V2),
  ...i64(0xeen),
  OP.i64Xor,
  ...set(V2),
  ...rounds(4),
  ...emit(0),
  ...get(V1),
  ...i64(0xddn),
  OP.i64Xor,
  ...set(V1),
  ...rounds(4),
  ...emit(8),
  OP.end,
];

// the payload digest: parameters and locals (all i32)
const D_START = 0;
const D_END = 1;
const D_H = 2;
const D_P = 3;
const D_BODY = 4;

/** A 32-bit multiply by a constant given unsigned. */
const mulBy = (c: number) => [...i32(c | 0), OP.i32Mul];
/** MurmurHash3's mixing of the block on the stack, left on the stack. */
const mixK = [...mulBy(0xcc9e2d51), ...i32(15), OP.i32Rotl, ...mulBy(0x1b873593)];
/** `h ^= h >>> r`. */
const shiftXor = (r: number) => [...get(D_H), ...get(D_H), ...i32(r), OP.i32ShrU, OP.i32Xor, ...set(D_H)];

/**
 * MurmurHash3 x86_32 of memory `[start, end)` with seed 0x9747b28c (payload-digest.ts: the same
 * function), returned. Like `sip`, it reads up to 3 bytes past `end` (masked away).
 */
const DIGEST_BODY = [
  ...i32(0x9747b28c | 0),
  ...set(D_H),
  // body = start + (len & ~3)
  ...get(D_START),
  ...get(D_END),
  ...get(D_START),
  OP.i32Sub,
  ...i32(-4),
  OP.i32And,
  OP.i32Add,
  ...set(D_BODY),
  ...get(D_START),
  ...set(D_P),
  // h = rotl(h ^ mix(k), 13) * 5 + 0xe6546b64 for each 4-byte block k
  ...whileBelow(D_P, D_BODY, 4, [
    ...get(D_H),
    ...get(D_P),
    ...mem(OP.i32Load),
    ...mixK,
    OP.i32Xor,
    ...i32(13),
    OP.i32Rotl,
    ...i32(5),
    OP.i32Mul,
    ...i32(0xe6546b64 | 0),
    OP.i32Add,
    ...set(D_H),
  ]),
  // h ^= mix(k) ^ len, k the 0–3 bytes left as one load masked to them (none: k = 0, mix(0) = 0)
  ...get(D_H),
  ...get(D_P),
  ...mem(OP.i32Load),
  ...i32(1),
  ...get(D_END),
  ...get(D_P),
  OP.i32Sub,
  ...i32(3),
  OP.i32Shl,
  OP.i32Shl,
  ...i32(1),
  OP.i32Sub,
  OP.i32And,
  ...mixK,
  OP.i32Xor,
  ...get(D_END),
  ...get(D_START),
  OP.i32Sub,
  OP.i32Xor,
  ...set(D_H),
  ...shiftXor(16),
  ...get(D_H),
  ...mulBy(0x85ebca6b),
  ...set(D_H),
  ...shiftXor(13),
  ...get(D_H),
  ...mulBy(0xc2b2ae35),
  ...set(D_H),
  ...shiftXor(16),
  ...get(D_H),
  OP.end,
];

function section(id: number, content: number[]): number[] {
  return [id, ...uleb(content.length), ...content];
}

function moduleBytes(): Uint8Array {
  const name = [...Buffer.from('sip')];
  const digestName = [...Buffer.from('digest')];
  const memName = [...Buffer.from('memory')];
  const locals = [2, 5, I64, 3, I32]; // two runs: v0–v3 and m are i64; p, last and len i32
  const code = [...locals, ...BODY];
  const digestCode = [1, 3, I32, ...DIGEST_BODY]; // h, p and body
  return Uint8Array.from([
    0x00,
    0x61,
    0x73,
    0x6d,
    0x01,
    0x00,
    0x00,
    0x00,
    // types: (i32, i32, i32) -> () and (i32, i32) -> i32
    ...section(1, [2, 0x60, 3, I32, I32, I32, 0, 0x60, 2, I32, I32, 1, I32]),
    ...section(3, [2, 0, 1]), // function 0 (sip) has type 0, function 1 (digest) type 1
    ...section(5, [1, 0x00, 1]), // one memory, at least 1 page
    ...section(7, [
      3,
      name.length,
      ...name,
      0x00,
      0,
      digestName.length,
      ...digestName,
      0x00,
      1,
      memName.length,
      ...memName,
      0x02,
      0,
    ]),
    ...section(10, [2, ...uleb(code.length), ...code, ...uleb(digestCode.length), ...digestCode]),
  ]);
}

/**
 * The part of the WebAssembly JavaScript API used here: its types come with TypeScript's DOM
 * library, which this Node.js project does not load.
 */
interface WasmMemory {
  readonly buffer: ArrayBuffer;
  grow(pages: number): number;
}
interface WasmApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object) => { readonly exports: Record<string, unknown> };
}
const Wasm = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

let compiled: object | null = null;

const PAGE = 65536;
/** Where a copied block starts in the module's memory (the key is at 0). */
const BLOCK_AT = 64;

/** SipHash-2-4-128 of keys of one record block at a time, under one key. */
export class WasmSipHasher {
  private readonly memory: WasmMemory;
  private readonly sip: (start: number, end: number, out: number) => void;
  private readonly murmur: (start: number, end: number) => number;
  private words: Uint32Array;
  /** Where the hashes of the current block go (after the block and its 8 bytes of margin). */
  private outAt = 0;

  constructor(key: Uint8Array) {
    if (key.length !== SIPHASH_KEY_BYTES) throw new RangeError(`a SipHash key is ${SIPHASH_KEY_BYTES} bytes`);
    compiled ??= new Wasm.Module(moduleBytes());
    const instance = new Wasm.Instance(compiled);
    this.memory = instance.exports.memory as WasmMemory;
    this.sip = instance.exports.sip as (start: number, end: number, out: number) => void;
    this.murmur = instance.exports.digest as (start: number, end: number) => number;
    new Uint8Array(this.memory.buffer).set(key, 0);
    this.words = new Uint32Array(this.memory.buffer);
  }

  /** Copies `block` into the module, with room for `count` hashes; keys are then hashed by offset in it. */
  load(block: Uint8Array, count: number): void {
    this.outAt = (BLOCK_AT + block.length + 8 + 15) & ~15;
    const need = this.outAt + 16 * count;
    if (need > this.memory.buffer.byteLength) {
      this.memory.grow(Math.ceil((need - this.memory.buffer.byteLength) / PAGE));
      this.words = new Uint32Array(this.memory.buffer);
    }
    new Uint8Array(this.memory.buffer).set(block, BLOCK_AT);
  }

  /** Hashes bytes `[start, end)` of the loaded block as the `i`-th hash of the block. */
  hash(start: number, end: number, i: number): void {
    this.sip(BLOCK_AT + start, BLOCK_AT + end, this.outAt + 16 * i);
  }

  /** The payload digest (`digest32` of payload-digest.ts) of bytes `[start, end)` of the loaded block. */
  digest(start: number, end: number): number {
    return this.murmur(BLOCK_AT + start, BLOCK_AT + end) >>> 0;
  }

  /** Copies the first `count` hashes of the block into `out` from word `at` (four words each). */
  copyOut(count: number, out: Uint32Array, at: number): void {
    out.set(this.words.subarray(this.outAt >>> 2, (this.outAt >>> 2) + 4 * count), at);
  }
}
