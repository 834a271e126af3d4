// Helpers for backtest payloads: exact decimal sums for an equity curve derived from trades.
import type { Schema } from "./schema";

/** A closed round trip of a stored backtest. */
export type Trade = Schema<"TradeOut">;

/** Add two exact decimal strings (for a derived equity curve): scaled BigInt arithmetic. */
export function addDecimal(a: string, b: string): string {
  const scale = Math.max(fracLen(a), fracLen(b));
  const sum = toScaled(a, scale) + toScaled(b, scale);
  return fromScaled(sum, scale);
}

/** a − b, exactly. */
export function subDecimal(a: string, b: string): string {
  const nb = b.trim().startsWith("-") ? b.trim().slice(1) : "-" + b.trim().replace(/^\+/, "");
  return addDecimal(a, nb);
}

/** a × b, exactly (scaled BigInt product); trailing fraction zeros removed. */
export function mulDecimal(a: string, b: string): string {
  const fa = fracLen(a);
  const fb = fracLen(b);
  const product = fromScaled(toScaled(a, fa) * toScaled(b, fb), fa + fb);
  return product.includes(".") ? product.replace(/0+$/, "").replace(/\.$/, "") : product;
}

function fracLen(s: string): number {
  const t = s.trim();
  const i = t.indexOf(".");
  return i < 0 ? 0 : t.length - i - 1;
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
  trades: Pick<Trade, "entry_ts" | "exit_ts" | "pnl">[],
): { ts: string; equity: string }[] {
  const out = [{ ts: start ?? trades[0]?.entry_ts ?? "", equity: initial }];
  let eq = initial;
  for (const t of trades) {
    eq = addDecimal(eq, String(t.pnl));
    out.push({ ts: t.exit_ts, equity: eq });
  }
  return out;
}
