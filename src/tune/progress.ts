// A progress line: rewritten in place on a terminal, one plain line per step otherwise
// (logs, CI). Shows done/total, the best so far when there is one, and an ETA.
export interface ProgressOptions {
  label: string;
  total: number;
  tty?: boolean;
  write?: (s: string) => void;
  now?: () => number;
  /** Plain mode: print every n-th step (and the last). */
  every?: number;
}

export class Progress {
  private done = 0;
  private readonly start: number;
  private readonly tty: boolean;
  private readonly write: (s: string) => void;
  private readonly now: () => number;
  constructor(private readonly o: ProgressOptions) {
    this.now = o.now ?? Date.now;
    this.start = this.now();
    this.tty = o.tty ?? !!process.stdout.isTTY;
    this.write = o.write ?? ((s) => process.stdout.write(s));
  }

  step(what: string, best?: string): void {
    this.done++;
    const line = this.line(what, best);
    if (this.tty) this.write(`\r\x1b[K${line}`);
    else if (this.done % (this.o.every ?? 1) === 0 || this.done === this.o.total) this.write(`${line}\n`);
  }

  line(what: string, best?: string): string {
    const el = (this.now() - this.start) / 1000;
    const eta = this.done ? (el * (this.o.total - this.done)) / this.done : 0;
    return `${this.o.label} [${this.done}/${this.o.total}] ${what}${best ? ` | best ${best}` : ""} | ${el.toFixed(0)}s, ETA ${eta.toFixed(0)}s`;
  }

  end(): void {
    if (this.tty) this.write("\n");
  }
}
