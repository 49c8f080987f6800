/**
 * The terminal's size, for the live rows and the closing table.
 *
 * @module
 */

/** The terminal's size, or a usual one (`COLUMNS` or 80, by 24) where none can be read. */
export function terminalSize(): { columns: number; rows: number } {
  try {
    const { columns, rows } = Deno.consoleSize();
    if (columns > 0 && rows > 0) return { columns, rows };
  } catch {
    // No terminal on any standard stream: the fallback below.
  }
  return { columns: Number(Deno.env.get("COLUMNS")) || 80, rows: 24 };
}

/**
 * The width the closing table is printed in: the terminal's where standard
 * output is one, else `COLUMNS`, else 100 (a log file has no width, but a
 * reader's window does).
 */
export function tableColumns(): number {
  if (Deno.stdout.isTerminal()) return terminalSize().columns;
  return Number(Deno.env.get("COLUMNS")) || 100;
}
