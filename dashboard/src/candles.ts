// Candles for the market chart: stored bars from /api/bars, extended live by price ticks.
// Prices stay exact strings; numbers are only used to compare and to draw.
import type { Schema } from "./schema";

/** A stored bar, or one built from live ticks (which carry no volume). */
export type Candle = Omit<Schema<"BarOut">, "volume"> & { volume?: string };

export const TIMEFRAMES: Record<string, number> = {
  "1m": 60,
  "5m": 300,
  "15m": 900,
  "1h": 3600,
  "4h": 14400,
  "1d": 86400,
};

/** Start of the `seconds`-long bucket holding `ts` (UTC, epoch-aligned). */
export function bucketStart(ts: string, seconds: number): number {
  const ms = new Date(ts).getTime();
  return Math.floor(ms / 1000 / seconds) * seconds * 1000;
}

/** `candles` with one tick applied: it updates the candle of its bucket or opens a new one.
 * Ticks older than the last candle's bucket are ignored (history is not rewritten). */
export function applyTick(
  candles: Candle[],
  tick: { price: string; ts: string },
  seconds: number,
): Candle[] {
  const bucket = bucketStart(tick.ts, seconds);
  if (!Number.isFinite(bucket)) return candles;
  const last = candles[candles.length - 1];
  const lastBucket = last ? bucketStart(last.ts, seconds) : -Infinity;
  if (bucket < lastBucket) return candles;
  const p = tick.price;
  if (last && bucket === lastBucket) {
    const next: Candle = {
      ...last,
      high: Number(p) > Number(last.high) ? p : last.high,
      low: Number(p) < Number(last.low) ? p : last.low,
      close: p,
    };
    return [...candles.slice(0, -1), next];
  }
  const ts = new Date(bucket).toISOString();
  return [...candles, { ts, open: p, high: p, low: p, close: p }];
}

/** Widest candle body in chart units, so a handful of bars does not turn into blocks. */
const MAX_BODY = 18;

export interface CandleShape {
  x: number;
  width: number;
  wickTop: number;
  wickBottom: number;
  bodyTop: number;
  bodyHeight: number;
  up: boolean;
}

/** The price range a chart spans: every candle's low and high and every value of the
 * overlaid lines (null or non-finite values skipped). */
export function priceRange(
  candles: Candle[],
  lines: (number | null)[][] = [],
): { min: number; max: number } {
  const values = [
    ...candles.map((c) => Number(c.low)),
    ...candles.map((c) => Number(c.high)),
    ...lines.flat().filter((v): v is number => v !== null && Number.isFinite(v)),
  ];
  return { min: Math.min(...values), max: Math.max(...values) };
}

/** The y of `price` in a box of `height` over `range`, `pad` from its edges. */
export function priceY(
  price: number,
  range: { min: number; max: number },
  height: number,
  pad = 4,
): number {
  const span = range.max - range.min || 1;
  return height - pad - ((price - range.min) / span) * (height - 2 * pad);
}

/** Horizontal slot of candle `i` of `n` across `width`: its left edge and width. */
export function slotOf(i: number, n: number, width: number, pad = 4): { x: number; slot: number } {
  const slot = (width - 2 * pad) / n;
  return { x: pad + i * slot, slot };
}

/** Geometry of each candle in a width x height box (on `range`, by default the candles'). */
export function candleShapes(
  candles: Candle[],
  width: number,
  height: number,
  pad = 4,
  range = priceRange(candles),
): CandleShape[] {
  if (candles.length === 0) return [];
  const y = (v: number) => priceY(v, range, height, pad);
  return candles.map((c, i) => {
    const { x, slot } = slotOf(i, candles.length, width, pad);
    const body = Math.max(1, Math.min(slot * 0.7, MAX_BODY));
    const o = Number(c.open);
    const cl = Number(c.close);
    const top = y(Math.max(o, cl));
    const bottom = y(Math.min(o, cl));
    return {
      x: x + (slot - body) / 2,
      width: body,
      wickTop: y(Number(c.high)),
      wickBottom: y(Number(c.low)),
      bodyTop: top,
      bodyHeight: Math.max(1, bottom - top),
      up: cl >= o,
    };
  });
}

/** An SVG path through a line's values at each candle's centre; a gap (null while an
 * indicator warms up) lifts the pen. */
export function linePath(
  values: (number | null)[],
  width: number,
  height: number,
  range: { min: number; max: number },
  pad = 4,
): string {
  let pen = "M";
  const parts: string[] = [];
  values.forEach((v, i) => {
    if (v === null || !Number.isFinite(v)) {
      pen = "M";
      return;
    }
    const { x, slot } = slotOf(i, values.length, width, pad);
    parts.push(`${pen}${(x + slot / 2).toFixed(1)},${priceY(v, range, height, pad).toFixed(1)}`);
    pen = "L";
  });
  return parts.join(" ");
}

/** The index of the candle whose `seconds`-long bucket holds `ts` (-1 when none does). */
export function candleAt(candles: Candle[], ts: string, seconds: number): number {
  const bucket = bucketStart(ts, seconds);
  let lo = 0;
  let hi = candles.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const at = bucketStart(candles[mid].ts, seconds);
    if (at === bucket) return mid;
    if (at < bucket) lo = mid + 1;
    else hi = mid - 1;
  }
  return -1;
}

/** Volume bars under the candles: each bar's height in a band of `height`. */
export function volumeHeights(candles: Candle[], height: number): number[] {
  const volumes = candles.map((c) => Number(c.volume ?? 0));
  const max = Math.max(0, ...volumes);
  return volumes.map((v) => (max > 0 ? (v / max) * height : 0));
}
