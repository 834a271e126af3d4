// Candles for the market chart: stored bars from /api/bars, extended live by price ticks.
// Prices stay exact strings; numbers are only used to compare and to draw.

export interface Candle {
  ts: string;
  open: string;
  high: string;
  low: string;
  close: string;
  volume?: string;
}

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

/** Geometry of each candle in a width x height box. */
export function candleShapes(
  candles: Candle[],
  width: number,
  height: number,
  pad = 4,
): CandleShape[] {
  if (candles.length === 0) return [];
  const lows = candles.map((c) => Number(c.low));
  const highs = candles.map((c) => Number(c.high));
  const min = Math.min(...lows);
  const max = Math.max(...highs);
  const span = max - min || 1;
  const y = (v: number) => height - pad - ((v - min) / span) * (height - 2 * pad);
  const slot = (width - 2 * pad) / candles.length;
  const body = Math.max(1, Math.min(slot * 0.7, MAX_BODY));
  return candles.map((c, i) => {
    const o = Number(c.open);
    const cl = Number(c.close);
    const top = y(Math.max(o, cl));
    const bottom = y(Math.min(o, cl));
    return {
      x: pad + i * slot + (slot - body) / 2,
      width: body,
      wickTop: y(Number(c.high)),
      wickBottom: y(Number(c.low)),
      bodyTop: top,
      bodyHeight: Math.max(1, bottom - top),
      up: cl >= o,
    };
  });
}
