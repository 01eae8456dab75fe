// CSV export (RFC 4180): the results tables as a file a spreadsheet opens.

export type Cell = string | number | boolean | null | undefined;

/** One field: quoted when it holds a comma, quote, or line break; quotes doubled. A
 *  leading =, +, - or @ of text is prefixed with ' so spreadsheets do not run it as a
 *  formula; numbers are written as they are. */
export function csvField(value: Cell): string {
  if (value === null || value === undefined) return '';
  if (typeof value === 'number') return Number.isFinite(value) ? String(value) : '';
  let s = String(value);
  if (typeof value === 'string' && /^[=+\-@]/.test(s)) s = `'${s}`;
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** A header line and one line per row, CRLF-separated as the RFC says. */
export function toCsv(columns: readonly string[], rows: readonly (readonly Cell[])[]): string {
  return [columns, ...rows].map((r) => r.map(csvField).join(',')).join('\r\n') + '\r\n';
}
