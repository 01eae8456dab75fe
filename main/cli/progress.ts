// The progress a long command shows: one status line, redrawn in place on a terminal
// (every 100 ms at most) and printed as a line of its own every few seconds otherwise,
// with log lines written above it. Every command that follows work in the foreground
// draws through StatusLine; ProgressBar adds a time-left estimate for work in this process.

const TTY_INTERVAL_MS = 100;

export class StatusLine {
  readonly tty: boolean;
  private lastDraw = -Infinity;
  private drawn = false;
  private last: string | null = null;

  /** `plainIntervalMs`: how often a status is printed when the stream is not a terminal. */
  constructor(private readonly out: NodeJS.WriteStream = process.stderr, private readonly plainIntervalMs = 5000) {
    this.tty = out.isTTY === true;
  }

  /** Shows `line` as the status, unless one was shown less than the interval ago (`force` shows it anyway). */
  show(line: string, force = false): void {
    this.last = line;
    const now = performance.now();
    if (!force && now - this.lastDraw < (this.tty ? TTY_INTERVAL_MS : this.plainIntervalMs)) return;
    this.lastDraw = now;
    if (!this.tty) {
      this.out.write(`${line}\n`);
      return;
    }
    this.out.write(`\r\x1b[2K${line.slice(0, Math.max(20, (this.out.columns ?? 100) - 1))}`);
    this.drawn = true;
  }

  /** Writes a line of text above the status (which disappears until it is shown or redrawn). */
  print(text: string): void {
    this.clear();
    this.out.write(`${text}\n`);
  }

  /** Shows the last status again, on a terminal (after `print`). */
  redraw(): void {
    if (this.tty && this.last !== null) this.show(this.last, true);
  }

  /** Takes the status off a terminal's screen. */
  clear(): void {
    if (this.tty && this.drawn) this.out.write('\r\x1b[2K');
    this.drawn = false;
  }

  /** Leaves the status on the screen as a finished line and starts a new one. */
  end(): void {
    if (this.tty && this.drawn) this.out.write('\n');
    this.drawn = false;
    this.last = null;
  }
}

/** A bar with the time left, estimated from the recent pace (the last 20 updates), for work this process does itself. */
export class ProgressBar {
  private readonly times: { t: number; done: number }[] = [];
  private readonly status = new StatusLine(process.stderr, 10_000);

  constructor(private readonly label: string, private readonly total: number) {}

  update(done: number, detail = ''): void {
    this.times.push({ t: performance.now(), done });
    if (this.times.length > 20) this.times.shift();
    const finished = done >= this.total;
    const frac = Math.min(1, done / this.total);
    const width = 24, filled = Math.round(frac * width);
    this.status.show(`${this.label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${this.total} ${formatEta(this.secondsLeft(done))}${detail ? `  ${detail}` : ''}`, finished);
    if (finished) this.status.end();
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
