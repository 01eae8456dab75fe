// Printing results: aligned tables for people, JSON for programs (`--json`: an array of
// plain objects, one line).

/** Columns padded to their widest cell; numbers align right. */
export function table(headers: readonly string[], rows: readonly (readonly (string | number | null)[])[]): string {
  const cells = rows.map((r) => r.map((c) => (c === null ? '' : String(c))));
  const widths = headers.map((h, i) => Math.max(h.length, ...cells.map((r) => r[i].length)));
  const line = (r: readonly string[], raw?: readonly (string | number | null)[]): string =>
    r.map((c, i) => (typeof raw?.[i] === 'number' ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join('  ').trimEnd();
  return [line(headers), ...cells.map((r, k) => line(r, rows[k]))].join('\n');
}

export function printJson(value: unknown): void {
  console.log(JSON.stringify(value));
}

/** One line of at most `max` characters, with newlines shown as ⏎. */
export function oneLine(text: string | null, max: number): string {
  if (text === null) return '';
  const flat = text.trim().replace(/\r?\n/g, '⏎ ').replace(/\s+/g, ' ');
  return flat.length <= max ? flat : `${flat.slice(0, Math.max(1, max - 1))}…`;
}

/** A whole number from an option, or a sentence naming the option. */
export function wholeNumber(name: string, value: string | undefined, fallback: number, min = 0): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) throw new Error(`--${name} must be a whole number${min > 0 ? ` of at least ${min}` : ''}, not '${value}'.`);
  return n;
}

/** The single positional argument a command needs, or a sentence with its usage. */
export function onePositional(positionals: readonly string[], what: string, usage: string): string {
  if (positionals.length === 0) throw new Error(`Give the ${what}: ${usage}`);
  if (positionals.length > 1) throw new Error(`Expected one ${what}, got ${positionals.length} (${positionals.join(' ')}): ${usage}`);
  return positionals[0];
}
