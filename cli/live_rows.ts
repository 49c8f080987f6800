/**
 * Live rows at the bottom of a terminal: lines logged scroll above them, and
 * the rows are redrawn in place, one per key, a few times a second. Each
 * redraw moves up over exactly the rows it drew last and clears below, so a
 * row that leaves is gone from the screen and no key is ever drawn twice.
 *
 * @module
 */

/** How often the rows are redrawn when something changed, in milliseconds. */
const redrawMs = 100;

/** Where the rows are drawn and how wide and tall that terminal is. */
export interface LiveOutput {
  /** Writes raw text (escape sequences included) to the terminal. */
  write(text: string): void;
  /** The terminal's size now (read at every redraw, so a resize is followed). */
  size(): { columns: number; rows: number };
}

/** `text` cut to `width` characters, with an ellipsis where it was cut. */
export function fit(text: string, width: number): string {
  const chars = [...text];
  if (chars.length <= width) return text;
  return width <= 1 ? chars.slice(0, width).join("") : chars.slice(0, width - 1).join("") + "…";
}

/** Rows keyed by name, drawn in the order they were first set, under a scrolling log. */
export class LiveRows {
  #output: LiveOutput;
  #rows = new Map<string, (columns: number) => string>();
  #logged: string[] = [];
  #drawn = 0;
  #dirty = false;
  #timer: ReturnType<typeof setInterval>;

  /** Starts redrawing to `output`; `stop()` ends it. */
  constructor(output: LiveOutput) {
    this.#output = output;
    // The cursor would flicker over the rows while they are redrawn.
    output.write("\x1b[?25l");
    this.#timer = setInterval(() => this.#dirty && this.draw(), redrawMs);
    // The display never keeps the program alive (Deno's timers are numbers).
    Deno.unrefTimer(Number(this.#timer));
  }

  /** Sets (or adds) the row `key`; `render` gets the columns available and returns its text. */
  set(key: string, render: (columns: number) => string): void {
    this.#rows.set(key, render);
    this.#dirty = true;
  }

  /** Removes the row `key` from the screen. */
  delete(key: string): void {
    if (this.#rows.delete(key)) this.#dirty = true;
  }

  /** A line that scrolls above the rows and stays. */
  log(line: string): void {
    this.#logged.push(line);
    this.#dirty = true;
  }

  /** Redraws now: the logged lines, then the rows, each cut to the terminal's width. */
  draw(): void {
    const { columns, rows } = this.#output.size();
    // A row as wide as the terminal would wrap (or scroll on the last line),
    // and the redraw would then move up too few lines; one column is kept free.
    const width = Math.max(1, columns - 1);
    // Rows beyond the screen's height cannot be moved back over: they are
    // summed up in one line instead.
    const room = Math.max(1, rows - 2);
    const renders = [...this.#rows.values()];
    const shown = renders.length > room ? renders.slice(0, room - 1) : renders;
    const lines = shown.map((render) => fit(render(width), width));
    if (shown.length < renders.length) lines.push(`… and ${renders.length - shown.length} more`);
    let text = this.#drawn > 0 ? `\x1b[${this.#drawn}A` : "";
    text += "\r\x1b[J";
    for (const line of this.#logged) text += line + "\n";
    for (const line of lines) text += line + "\n";
    this.#output.write(text);
    this.#logged = [];
    this.#drawn = lines.length;
    this.#dirty = false;
  }

  /** Draws the last state, removes the rows and gives the cursor back. */
  stop(): void {
    clearInterval(this.#timer);
    this.#rows.clear();
    this.draw();
    this.#output.write("\x1b[?25h");
  }
}
