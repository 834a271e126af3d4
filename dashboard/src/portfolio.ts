// The profit summary of /api/portfolio (docs/api.md): amounts are exact decimal strings,
// percentages strings in percent (null where a base is zero).

import type { Schema } from "./schema";

export type Profit = Schema<"ProfitOut">;

export type Account = Schema<"AccountOut">;

export type Asset = Schema<"AssetOut">;

export type DayProfit = Schema<"DayOut">;

export type Portfolio = Schema<"PortfolioOut">;

export interface Bar {
  x: number;
  y: number;
  width: number;
  height: number;
  up: boolean;
}

/** Bars of `values` around a zero line in a width x height box (gains up, losses down). */
export function barShapes(values: number[], width: number, height: number, pad = 4): Bar[] {
  if (values.length === 0) return [];
  const top = Math.max(0, ...values);
  const bottom = Math.min(0, ...values);
  const span = top - bottom || 1;
  const y = (v: number) => pad + ((top - v) / span) * (height - 2 * pad);
  const slot = (width - 2 * pad) / values.length;
  const body = Math.max(1, Math.min(slot * 0.7, 40));
  return values.map((v, i) => {
    const a = y(Math.max(v, 0));
    const b = y(Math.min(v, 0));
    return {
      x: pad + i * slot + (slot - body) / 2,
      y: a,
      width: body,
      height: Math.max(1, b - a),
      up: v >= 0,
    };
  });
}
