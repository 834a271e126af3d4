// Helpers for backtest payloads, which may carry statistics flat or under `stats`.

export type Row = Record<string, unknown>;

/** `key` from the row itself, else from its `stats` map. */
export function stat(row: Row | undefined, key: string): unknown {
  if (!row) return undefined;
  if (key in row && row[key] !== undefined) return row[key];
  const stats = row.stats;
  if (stats && typeof stats === "object") return (stats as Row)[key];
  return undefined;
}

/** The first defined value among several possible keys. */
export function firstStat(row: Row | undefined, ...keys: string[]): unknown {
  for (const k of keys) {
    const v = stat(row, k);
    if (v !== undefined && v !== null) return v;
  }
  return undefined;
}

export interface Trade {
  qty: string;
  entry_ts: string;
  entry_price: string;
  exit_ts: string;
  exit_price: string;
  fees?: string;
  pnl: string;
}

/** Add two exact decimal strings (for a derived equity curve): scaled BigInt arithmetic. */
export function addDecimal(a: string, b: string): string {
  const scale = Math.max(fracLen(a), fracLen(b));
  const sum = toScaled(a, scale) + toScaled(b, scale);
  return fromScaled(sum, scale);
}

function fracLen(s: string): number {
  const i = s.indexOf(".");
  return i < 0 ? 0 : s.length - i - 1;
}

function toScaled(s: string, scale: number): bigint {
  const neg = s.trim().startsWith("-");
  const [int, frac = ""] = s.trim().replace(/^[+-]/, "").split(".");
  const v = BigInt((int || "0") + frac.padEnd(scale, "0"));
  return neg ? -v : v;
}

function fromScaled(v: bigint, scale: number): string {
  const neg = v < 0n;
  const digits = (neg ? -v : v).toString().padStart(scale + 1, "0");
  const int = digits.slice(0, digits.length - scale);
  const frac = scale ? "." + digits.slice(digits.length - scale) : "";
  return (neg ? "-" : "") + int + frac;
}

/** Equity after each closed trade, starting from the initial cash (used when the API sends
 * no bar-by-bar curve). */
export function equityFromTrades(
  initial: string,
  start: string | undefined,
  trades: Trade[],
): { ts: string; equity: string }[] {
  const out = [{ ts: start ?? trades[0]?.entry_ts ?? "", equity: initial }];
  let eq = initial;
  for (const t of trades) {
    eq = addDecimal(eq, String(t.pnl));
    out.push({ ts: t.exit_ts, equity: eq });
  }
  return out;
}
