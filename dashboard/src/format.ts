// Display helpers. Money, prices and quantities arrive from the API as exact decimal strings;
// they are formatted by string manipulation only (never through a float), so what is shown is
// exactly what the server stored.
import type { Schema } from "./schema";

const DECIMAL_RE = /^([+-]?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/;

/** Split a decimal string into sign, integer digits and fraction digits; null if not numeric. */
export function parseDecimal(
  value: string,
): { negative: boolean; int: string; frac: string } | null {
  const m = DECIMAL_RE.exec(value.trim());
  if (!m || (m[2] === "" && (m[3] ?? "") === "")) return null;
  let int = m[2] || "0";
  let frac = m[3] ?? "";
  const exp = m[4] ? parseInt(m[4], 10) : 0;
  if (exp > 0) {
    frac = frac.padEnd(exp, "0");
    int = int + frac.slice(0, exp);
    frac = frac.slice(exp);
  } else if (exp < 0) {
    int = int.padStart(-exp + 1, "0");
    frac = int.slice(int.length + exp) + frac;
    int = int.slice(0, int.length + exp);
  }
  int = int.replace(/^0+(?=\d)/, "");
  const isZero = /^0*$/.test(int) && /^0*$/.test(frac);
  return { negative: m[1] === "-" && !isZero, int, frac };
}

function groupThousands(int: string): string {
  return int.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
}

/**
 * Format an exact decimal for display: thousands separators, trailing zeros trimmed down to
 * `minPlaces` fraction digits (padding with zeros up to it). Digits are never rounded away.
 * Non-numeric input is returned unchanged; null/undefined become an em dash.
 */
export function formatDecimal(value: string | number | null | undefined, minPlaces = 0): string {
  if (value === null || value === undefined || value === "") return "—";
  const text = typeof value === "number" ? numberToPlain(value) : value;
  const parts = parseDecimal(text);
  if (!parts) return text;
  let frac = parts.frac.replace(/0+$/, "");
  if (frac.length < minPlaces) frac = frac.padEnd(minPlaces, "0");
  const body = groupThousands(parts.int) + (frac ? "." + frac : "");
  return (parts.negative ? "-" : "") + body;
}

/** Money: at least two decimals, exact digits beyond that kept. */
export function formatMoney(value: string | number | null | undefined): string {
  return formatDecimal(value, 2);
}

function numberToPlain(n: number): string {
  // Exponent notation (1e-7) is parsed by `parseDecimal`; non-finite values pass through.
  return String(n);
}

/** -1, 0 or 1 for a decimal string (for colouring PnL). */
export function sign(value: string | number | null | undefined): -1 | 0 | 1 {
  if (value === null || value === undefined) return 0;
  const parts = parseDecimal(String(value));
  if (!parts) return 0;
  if (/^0*$/.test(parts.int) && /^0*$/.test(parts.frac)) return 0;
  return parts.negative ? -1 : 1;
}

/** ISO-8601 timestamp as "YYYY-MM-DD HH:MM:SS" UTC; other text unchanged. */
export function formatTs(value: string | null | undefined): string {
  if (!value) return "—";
  const d = new Date(value);
  if (Number.isNaN(d.getTime())) return value;
  return d
    .toISOString()
    .replace("T", " ")
    .replace(/\.\d+Z$/, "Z")
    .replace("Z", " UTC");
}

/**
 * `value` rounded half away from zero to `places` fraction digits, exactly (on the digits, not
 * through a float). Non-numeric input is returned unchanged.
 */
export function roundDecimal(value: string, places: number): string {
  const parts = parseDecimal(value);
  if (!parts) return value;
  const { negative, int, frac } = parts;
  if (frac.length <= places) return (negative ? "-" : "") + int + (frac ? "." + frac : "");
  const digits = (int + frac.slice(0, places)).split("").map(Number);
  if (Number(frac[places]) >= 5) {
    let i = digits.length - 1;
    while (i >= 0 && digits[i] === 9) digits[i--] = 0;
    if (i < 0) digits.unshift(1);
    else digits[i] += 1;
  }
  const text = digits.join("");
  const cut = text.length - places;
  const rounded = places > 0 ? `${text.slice(0, cut)}.${text.slice(cut)}` : text;
  const isZero = /^[0.]*$/.test(rounded);
  return (negative && !isZero ? "-" : "") + rounded;
}

/** Fraction digits worth showing of a ratio or statistic: 4, or 4 significant ones below 1
 * (0.00001234 keeps its digits), at most 10. */
function statPlaces(value: string): number {
  const parts = parseDecimal(value);
  if (!parts || !/^0*$/.test(parts.int)) return 4;
  const zeros = /^0*/.exec(parts.frac)![0].length;
  return Math.min(10, zeros + 4);
}

/** A ratio or statistic (an exact decimal string or a float) with sensible precision: the
 * 28-digit quotient of two Decimals is not shown in full. */
export function formatRatio(value: string | number): string {
  const text = typeof value === "number" ? numberToPlain(value) : value;
  if (!parseDecimal(text)) return text;
  return formatDecimal(roundDecimal(text, statPlaces(text)));
}

/** A percentage string (already in percent) to two decimals: "12.3456" -> "12.35%". */
export function formatPct(value: string | null | undefined): string {
  if (value === null || value === undefined || value === "") return "—";
  return `${formatDecimal(roundDecimal(value, 2), 2)}%`;
}

/** A statistics value of any JSON type, for a stats table. Numbers and decimal strings are
 * rounded as ratios (`formatRatio`). */
export function formatStat(value: unknown): string {
  if (value === null || value === undefined) return "—";
  if (typeof value === "number") {
    if (Number.isInteger(value)) return formatDecimal(String(value));
    return formatRatio(value);
  }
  if (typeof value === "boolean") return value ? "yes" : "no";
  if (typeof value === "string") {
    if (parseDecimal(value)) return formatRatio(value);
    if (/^\d{4}-\d{2}-\d{2}T/.test(value)) return formatTs(value);
    return value;
  }
  return JSON.stringify(value);
}

/** "sharpe_ratio" -> "Sharpe ratio". */
export function humanize(key: string): string {
  const s = key.replace(/[_-]+/g, " ").trim();
  return s.charAt(0).toUpperCase() + s.slice(1);
}

/** A metric's labels as `a=1, b=2` in name order ("" without labels). */
export function formatLabels(labels: Record<string, string>): string {
  return Object.keys(labels)
    .sort()
    .map((k) => `${k}=${labels[k]}`)
    .join(", ");
}

/** A risk limit for display: "no limit" when unset, a fraction as a percentage. */
export function formatLimit(value: string | number | null | undefined, fraction = false): string {
  if (value === null || value === undefined || value === "") return "no limit";
  if (!fraction) return formatDecimal(value);
  return `${formatStat(Number(value) * 100)}%`;
}

export type Role = "viewer" | "trader" | "admin";
const RANK: Record<Role, number> = { viewer: 0, trader: 1, admin: 2 };

/** True when `role` has at least the rights of `needed`. */
export function hasRole(role: string | null | undefined, needed: Role): boolean {
  if (!role || !(role in RANK)) return false;
  return RANK[role as Role] >= RANK[needed];
}

/** A strategy parameter's type, default and bounds, as /api/strategies describes it. */
export type ParamSpec = Schema<"ParamSpec">;

/**
 * Check one parameter value typed by the user against its declared bounds.
 * Returns the parsed value or an error message naming the parameter.
 */
export function validateParam(
  name: string,
  raw: string,
  spec: Partial<ParamSpec> | undefined,
): { value: unknown; error?: string } {
  const text = raw.trim();
  if (text === "") return { value: null, error: `${name}: a value is required` };
  const def = spec?.default;
  const kind = spec?.type;
  if (kind === "bool" || typeof def === "boolean") {
    if (text !== "true" && text !== "false")
      return { value: null, error: `${name}: must be true or false` };
    return { value: text === "true" };
  }
  const isNumeric =
    kind === "int" ||
    kind === "float" ||
    kind === "Decimal" ||
    (kind === undefined && (typeof def === "number" || spec?.low != null || spec?.high != null));
  if (!isNumeric) return { value: text };
  const n = Number(text);
  if (!Number.isFinite(n)) return { value: null, error: `${name}: must be a number` };
  const wantsInt =
    kind === "int" || (kind === undefined && typeof def === "number" && Number.isInteger(def));
  if (wantsInt && !Number.isInteger(n))
    return { value: null, error: `${name}: must be a whole number` };
  const low = spec?.low == null ? null : Number(spec.low);
  const high = spec?.high == null ? null : Number(spec.high);
  if (low !== null && n < low) return { value: null, error: `${name}: must be ≥ ${low}` };
  if (high !== null && n > high) return { value: null, error: `${name}: must be ≤ ${high}` };
  return { value: kind === "Decimal" ? text : n };
}

/** Points of an SVG polyline for a series scaled into a width x height box (optionally on a
 * shared `[min, max]` scale so several series can be overlaid). */
export function polylinePoints(
  values: number[],
  width: number,
  height: number,
  pad = 4,
  scale?: { min: number; max: number },
): string {
  if (values.length === 0) return "";
  const min = scale?.min ?? Math.min(...values);
  const max = scale?.max ?? Math.max(...values);
  const span = max - min || 1;
  const stepX = values.length > 1 ? (width - 2 * pad) / (values.length - 1) : 0;
  return values
    .map((v, i) => {
      const x = pad + i * stepX;
      const y = height - pad - ((v - min) / span) * (height - 2 * pad);
      return `${x.toFixed(1)},${y.toFixed(1)}`;
    })
    .join(" ");
}

/** Drawdown in percent below the running peak (0 at a new high, negative below it). */
export function drawdownPct(values: number[]): number[] {
  let peak = -Infinity;
  return values.map((v) => {
    peak = Math.max(peak, v);
    return peak > 0 ? (v / peak - 1) * 100 : 0;
  });
}
