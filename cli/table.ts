/**
 * Aligned text tables. On a terminal a table fits its width: a long cell wraps within its column
 * over several lines (at spaces where it can). Elsewhere (a pipe, a file) every cell is printed
 * whole, so nothing is lost to a width no one sees.
 */

/** Spaces between two columns. */
const GAP = 2;
/** A column is never made narrower than this (or its widest cell, when narrower). */
const MIN_COLUMN = 6;

/** The columns of `out` when it is a terminal, else null (print whole cells). */
export function terminalWidth(out: NodeJS.WritableStream): number | null {
  const tty = out as Partial<NodeJS.WriteStream>;
  if (tty.isTTY !== true) return null;
  return typeof tty.columns === 'number' && tty.columns > 0 ? tty.columns : 80;
}

/** Terminal columns a text takes (one per code point). */
function textWidth(s: string): number {
  let n = 0;
  for (const _ of s) n++;
  return n;
}

/** The widest line of a cell. */
function cellWidth(s: string): number {
  return Math.max(0, ...s.split('\n').map(textWidth));
}

/**
 * Column widths that fit `width`: columns narrower than an even share keep their width, the others
 * share what is left evenly. When even the minimum widths do not fit, the minimums (lines will be
 * longer than the terminal, but every column stays readable).
 */
export function fitColumns(natural: readonly number[], width: number | null): number[] {
  if (width === null) return [...natural];
  const room = width - GAP * Math.max(0, natural.length - 1);
  if (natural.reduce((a, b) => a + b, 0) <= room) return [...natural];
  const widths = [...natural];
  let open = natural.map((_, i) => i);
  let left = room;
  // give every column that fits in its share its full width, until the rest must share
  for (;;) {
    const share = Math.floor(left / open.length);
    const fitting = open.filter((i) => (natural[i] as number) <= share);
    if (fitting.length === 0) {
      const extra = left - share * open.length;
      open.forEach((i, k) => {
        widths[i] = Math.max(Math.min(MIN_COLUMN, natural[i] as number), share + (k < extra ? 1 : 0));
      });
      return widths;
    }
    for (const i of fitting) left -= natural[i] as number;
    open = open.filter((i) => !fitting.includes(i));
    if (open.length === 0) return widths;
  }
}

/** A cell's lines at most `width` columns wide: broken at spaces, or inside a word longer than a line. */
export function wrapCell(text: string, width: number): string[] {
  const w = Math.max(1, width);
  const lines: string[] = [];
  for (const paragraph of text.split('\n')) {
    let line = '';
    for (const word of paragraph.split(' ')) {
      const candidate = line === '' ? word : `${line} ${word}`;
      if (textWidth(candidate) <= w) {
        line = candidate;
        continue;
      }
      if (line !== '') lines.push(line);
      let rest = [...word];
      while (rest.length > w) {
        lines.push(rest.slice(0, w).join(''));
        rest = rest.slice(w);
      }
      line = rest.join('');
    }
    lines.push(line);
  }
  return lines;
}

/**
 * The table: a header, a rule, then each row over as many lines as its tallest cell, and the row
 * count. `width`: the terminal's columns, or null for whole cells.
 */
export function renderTable(
  columns: readonly string[],
  rows: readonly (readonly string[])[],
  width: number | null,
): string {
  const natural = columns.map((c, i) => Math.max(cellWidth(c), ...rows.map((r) => cellWidth(r[i] ?? ''))));
  const widths = fitColumns(natural, width);
  const pad = (s: string, w: number): string => s + ' '.repeat(Math.max(0, w - textWidth(s)));
  const render = (cells: readonly string[]): string[] => {
    const wrapped = cells.map((c, i) => (width === null ? c.split('\n') : wrapCell(c, widths[i] as number)));
    const height = Math.max(1, ...wrapped.map((l) => l.length));
    return Array.from({ length: height }, (_, k) =>
      wrapped
        .map((l, i) => pad(l[k] ?? '', widths[i] as number))
        .join(' '.repeat(GAP))
        .trimEnd(),
    );
  };
  const lines = [
    ...render(columns),
    widths.map((w) => '─'.repeat(w)).join(' '.repeat(GAP)),
    ...rows.flatMap((r) => render(r)),
  ];
  return `${lines.join('\n')}\n(${rows.length} row${rows.length === 1 ? '' : 's'})\n`;
}
