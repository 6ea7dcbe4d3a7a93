/**
 * Progress of long work on stderr, for any command: `put`, purges run at exit, and whatever
 * `fsck`, `gc` or a migration wants to show. Shown only when stderr is a terminal — pipes, files
 * and scripts get nothing — and only once the work has taken `delayMs` (a quick command stays
 * quiet). One line, redrawn at most `intervalMs` apart:
 *
 *   smhfs: put photos/holiday.mp4: 512 MiB of 2.0 GiB (25%), 180 MiB/s, 9 s left
 *
 * and, when it ends after having been shown, a last line that stays: `…: 2.0 GiB, done in 11 s`.
 *
 * Usage: `const p = startProgress('put photos/x', { total: size, unit: 'bytes' }); p.update(n);
 * …; p.done()` (or `p.fail()` to clear the line before an error is printed).
 */
import { humanBytes } from './sizes.js';

export interface ProgressOptions {
  /** The amount of work when known (bytes or items); percent and time left are shown then. */
  total?: number | undefined;
  /** What is counted (default bytes). */
  unit?: 'bytes' | 'items';
  /** Name of the items (`entries`, `blobs`) for unit 'items'. */
  noun?: string;
  /** Where to draw (default process.stderr; tests pass a fake terminal). */
  stream?: { isTTY?: boolean; columns?: number; write(s: string): unknown };
  /** Quiet for this long (default 300 ms). */
  delayMs?: number;
  /** Redraw at most this often (default 100 ms). */
  intervalMs?: number;
  /** Clock (tests). */
  now?: () => number;
}

export interface Progress {
  /** How much is done now (absolute); `total` may be corrected as it becomes known. */
  update(done: number, total?: number): void;
  /** Add to what is done. */
  add(n: number): void;
  /** Finish: a last line when anything was shown. */
  done(summary?: string): void;
  /** Finish quietly: the line is cleared (an error message follows). */
  fail(): void;
  /** Whether anything was drawn. */
  readonly shown: boolean;
}

function seconds(s: number): string {
  if (!Number.isFinite(s)) return '?';
  if (s < 90) return `${Math.max(1, Math.round(s))} s`;
  if (s < 5400) return `${Math.round(s / 60)} min`;
  return `${(s / 3600).toFixed(1)} h`;
}

export function startProgress(label: string, opts: ProgressOptions = {}): Progress {
  const stream = opts.stream ?? process.stderr;
  const tty = stream.isTTY === true;
  const now = opts.now ?? (() => performance.now());
  const delay = opts.delayMs ?? 300;
  const interval = opts.intervalMs ?? 100;
  const unit = opts.unit ?? 'bytes';
  const started = now();
  let total = opts.total;
  let doneCount = 0;
  let lastDraw = -Infinity;
  let shown = false;
  let finished = false;

  const amount = (n: number): string => (unit === 'bytes' ? humanBytes(n) : `${n}${opts.noun ? ` ${opts.noun}` : ''}`);
  const text = (final: boolean, summary?: string): string => {
    const elapsed = (now() - started) / 1000;
    const rate = elapsed > 0 ? doneCount / elapsed : 0;
    const rateText = unit === 'bytes' ? `${humanBytes(Math.round(rate))}/s` : `${Math.round(rate)}/s`;
    if (final) return `smhfs: ${label}: ${summary ?? `${amount(doneCount)}, done in ${seconds(elapsed)}`}`;
    if (total !== undefined && total > 0) {
      const pct = Math.min(100, Math.floor((doneCount / total) * 100));
      const left = rate > 0 ? seconds((total - doneCount) / rate) : '?';
      return `smhfs: ${label}: ${amount(doneCount)} of ${amount(total)} (${pct}%), ${rateText}, ${left} left`;
    }
    return `smhfs: ${label}: ${amount(doneCount)}, ${rateText}`;
  };
  const fit = (line: string): string => {
    const cols = stream.columns ?? 0;
    return cols > 10 && line.length >= cols ? `${line.slice(0, cols - 2)}…` : line;
  };
  const draw = (): void => {
    if (!tty || finished) return;
    const t = now();
    if (t - started < delay || t - lastDraw < interval) return;
    lastDraw = t;
    shown = true;
    stream.write(`\r\x1b[K${fit(text(false))}`);
  };

  return {
    update(done: number, newTotal?: number): void {
      doneCount = done;
      if (newTotal !== undefined) total = newTotal;
      draw();
    },
    add(n: number): void {
      doneCount += n;
      draw();
    },
    done(summary?: string): void {
      if (finished) return;
      finished = true;
      if (shown) stream.write(`\r\x1b[K${fit(text(true, summary))}\n`);
    },
    fail(): void {
      if (finished) return;
      finished = true;
      if (shown) stream.write('\r\x1b[K');
    },
    get shown() {
      return shown;
    },
  };
}
