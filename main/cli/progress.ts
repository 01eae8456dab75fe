// A one-line progress bar on stderr with the time left, estimated from the recent pace
// (the last 20 updates), redrawn in place on a terminal and printed sparingly otherwise.

export class ProgressBar {
  private readonly times: { t: number; done: number }[] = [];
  private lastPrint = 0;
  private readonly tty = process.stderr.isTTY === true;

  constructor(private readonly label: string, private readonly total: number) {}

  update(done: number, detail = ''): void {
    const now = performance.now();
    this.times.push({ t: now, done });
    if (this.times.length > 20) this.times.shift();
    const finished = done >= this.total;
    if (!finished && now - this.lastPrint < (this.tty ? 100 : 10_000)) return;
    this.lastPrint = now;
    const frac = Math.min(1, done / this.total);
    const width = 24, filled = Math.round(frac * width);
    const line = `${this.label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${this.total} ${formatEta(this.secondsLeft(done))}${detail ? `  ${detail}` : ''}`;
    if (this.tty) process.stderr.write(`\r\x1b[2K${line}${finished ? '\n' : ''}`);
    else process.stderr.write(`${line}\n`);
  }

  private secondsLeft(done: number): number | undefined {
    const first = this.times[0], last = this.times[this.times.length - 1];
    if (!first || last.done <= first.done) return undefined;
    const rate = (last.done - first.done) / ((last.t - first.t) / 1000);
    return (this.total - done) / rate;
  }
}

export function formatEta(s: number | undefined): string {
  if (s === undefined || !Number.isFinite(s)) return 'time left: estimating';
  if (s < 1) return 'done soon';
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = Math.round(s % 60);
  return `time left: ${h > 0 ? `${h}h ${m}m` : m > 0 ? `${m}m ${sec}s` : `${sec}s`}`;
}
