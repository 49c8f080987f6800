/**
 * A small terminal screen for tests: replays what a program wrote to a
 * pseudo-terminal (the subset of VT100 that progress bars use) and keeps the
 * screen as it stood before every upward cursor move, the moment a redraw of
 * the live rows begins, so a test sees each frame the user saw.
 *
 * @module
 */

/** The screen's frames and its last state, as lines without trailing blanks. */
export interface Replay {
  /** The visible rows before each upward cursor move (a finished frame). */
  frames: string[][];
  /** Every row ever written, scrolled-off ones included, at the end. */
  final: string[];
}

/**
 * Replays `text` on a screen `columns` wide with autowrap as the program
 * sets it (`ESC[?7l` turns it off). Handles CR, LF, cursor up/down/column,
 * erase in line and below; other escape sequences (colours, cursor
 * visibility) are skipped.
 */
export function replay(text: string, columns: number): Replay {
  const rows: string[][] = [[]];
  let row = 0;
  let column = 0;
  let wrap = true;
  const frames: string[][] = [];
  const line = (index: number) => (rows[index] ??= []);
  const snapshot = () => rows.map((cells) => cells.join("").trimEnd());
  const chars = [...text];
  for (let i = 0; i < chars.length; i++) {
    const char = chars[i];
    if (char === "\r") column = 0;
    else if (char === "\n") {
      row += 1;
      line(row);
    } else if (char === "\x1b") {
      const rest = chars.slice(i + 1, i + 24).join("");
      const match = /^\[(\??)([\d;]*)([A-Za-z])/.exec(rest);
      if (!match) continue;
      i += match[0].length;
      const [, privateMode, args, command] = match;
      const n = Number(args.split(";")[0] || "0");
      if (privateMode) {
        if (args === "7") wrap = command === "h";
        continue;
      }
      if (command === "A") {
        frames.push(snapshot());
        row = Math.max(0, row - Math.max(1, n));
      } else if (command === "B") row += Math.max(1, n);
      else if (command === "G") column = Math.max(0, n - 1);
      else if (command === "K") {
        if (n === 2) line(row).length = 0;
        else line(row).length = Math.min(line(row).length, column);
      } else if (command === "J") {
        line(row).length = Math.min(line(row).length, column);
        rows.length = row + 1;
      }
    } else {
      if (column >= columns) {
        if (!wrap) continue;
        row += 1;
        column = 0;
      }
      const cells = line(row);
      while (cells.length < column) cells.push(" ");
      cells[column] = char;
      column += 1;
    }
  }
  return { frames, final: snapshot() };
}
