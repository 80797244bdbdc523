/**
 * DataViews for the hot loops that read 32-bit little-endian words of byte arrays (hashes,
 * comparisons): a `getInt32` costs about a third of putting four bytes together in JavaScript.
 */

let lastBytes: Uint8Array | null = null;
let lastView: DataView = new DataView(new ArrayBuffer(0));

/**
 * A DataView over exactly `bytes`: the one made last time when `bytes` is the same array (callers
 * read many values of one buffer in a row), else a new one.
 */
export function viewOf(bytes: Uint8Array): DataView {
  if (bytes !== lastBytes) {
    lastView = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    lastBytes = bytes;
  }
  return lastView;
}
