import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { formatRows } from './common.js';
import { fitColumns, terminalWidth, wrapCell } from './table.js';

const longError =
  'ledger_mismatch: 3 acknowledged events are missing from the bus (ingress-host-a: 1-3; ingress-host-b: 7-9)';
const rows = [
  { type: 'EndSong', hour: '2026-11-22T19', state: 'failed', error: longError },
  { type: 'PageView', hour: '2026-11-22T19', state: 'published', error: null },
];
const columns = ['type', 'hour', 'state', 'error'];

/** The lines of a table, without the row count. */
const tableLines = (text: string): string[] => text.trimEnd().split('\n').slice(0, -1);

describe('tables', () => {
  it('fit a terminal: long cells wrap within their column, rows are counted as rows', () => {
    const text = formatRows(columns, rows, 'table', 60);
    for (const line of text.split('\n')) expect([...line].length).toBeLessThanOrEqual(60);
    expect(text).toMatch(/\(2 rows\)\n$/);
    const lines = tableLines(text);
    expect(lines[0]).toMatch(/^type\s+hour\s+state\s+error$/);
    expect(lines[1]).toMatch(/^─+ {2}─+ {2}─+ {2}─+$/);
    // the error column starts where its header starts, on every line of the wrapped cell
    const at = (lines[0] as string).indexOf('error');
    const errorLines = lines.slice(2, -1);
    expect(errorLines.length).toBeGreaterThan(1);
    expect(errorLines[0]).toMatch(/^EndSong\s+2026-11-22T19\s+failed\s+ledger_mismatch:/);
    for (const l of errorLines.slice(1)) expect(l.slice(0, at).trim()).toBe('');
    // nothing lost: the wrapped pieces put together are the whole cell
    expect(errorLines.map((l) => l.slice(at).trim()).join(' ')).toBe(longError);
    expect(lines.at(-1)).toMatch(/^PageView\s+2026-11-22T19\s+published$/);
  });

  it('print whole cells, unwrapped and uncut, when not on a terminal', () => {
    const text = formatRows(columns, rows, 'table', null);
    const lines = tableLines(text);
    expect(lines).toHaveLength(4);
    expect(lines[2]).toMatch(
      new RegExp(`^EndSong\\s+2026-11-22T19\\s+failed\\s+${longError.replace(/[()]/g, '\\$&')}$`),
    );
    expect(text).toContain('(2 rows)');
  });

  it('leave a table that fits as it is, and keep short columns whole when others must wrap', () => {
    const wide = formatRows(columns, rows, 'table', 200);
    expect(wide).toBe(formatRows(columns, rows, 'table', null));
    expect(fitColumns([4, 13, 9, 100], 60)).toEqual([4, 13, 9, 28]);
    expect(fitColumns([50, 50], 42)).toEqual([20, 20]);
    // too narrow for anything: columns keep a readable minimum
    expect(fitColumns([30, 30, 30], 10)).toEqual([6, 6, 6]);
  });

  it('wrap at spaces, and inside words longer than a line', () => {
    expect(wrapCell('a quick brown fox', 7)).toEqual(['a quick', 'brown', 'fox']);
    expect(wrapCell('abcdefghij', 4)).toEqual(['abcd', 'efgh', 'ij']);
    expect(wrapCell('two\nlines', 10)).toEqual(['two', 'lines']);
    expect(wrapCell('', 5)).toEqual(['']);
  });

  it('count rows, not lines, and say "1 row"', () => {
    const text = formatRows(['v'], [{ v: 'x '.repeat(40) }], 'table', 20);
    expect(text.split('\n').length).toBeGreaterThan(5);
    expect(text).toMatch(/\(1 row\)\n$/);
    expect(formatRows(['v'], [], 'table', 20)).toBe('v\n─\n(0 rows)\n');
  });

  it('leave csv and json as they were', () => {
    expect(formatRows(columns, rows, 'csv', 20)).toBe(
      `type,hour,state,error\nEndSong,2026-11-22T19,failed,${longError.includes(',') ? `"${longError}"` : longError}\nPageView,2026-11-22T19,published,\n`,
    );
    expect(JSON.parse(formatRows(columns, rows, 'json', 20))).toEqual(rows);
  });

  it('take the width of a terminal, and none from a pipe', () => {
    const pipe = new PassThrough();
    expect(terminalWidth(pipe)).toBeNull();
    const tty = Object.assign(new PassThrough(), { isTTY: true, columns: 93 });
    expect(terminalWidth(tty)).toBe(93);
  });
});
