// The profit summary of /api/portfolio (docs/api.md): amounts are exact decimal strings,
// percentages strings in percent (null where a base is zero).

export interface Profit {
  starting_capital: string;
  cash: string;
  position_value: string;
  equity: string;
  total_pnl: string;
  total_pnl_pct: string | null;
  closed_pnl: string;
  closed_pnl_pct: string | null;
  open_pnl: string;
  open_pnl_pct: string | null;
  fees: string;
  trades: number;
  wins: number;
  losses: number;
  win_rate_pct: string | null;
  max_drawdown: string;
  max_drawdown_pct: string | null;
}

export interface Account extends Profit {
  strategy: string;
  symbol: string;
  qty: string;
  avg_price: string;
  last_price: string | null;
}

export interface Asset {
  asset: string;
  qty: string;
  price: string | null;
  value: string;
  exposure_pct: string | null;
}

export interface DayProfit {
  day: string;
  realized_pnl: string;
  fees: string;
  net: string;
  trades: number;
  cumulative: string;
}

export interface Portfolio {
  mode: string;
  total: Profit;
  accounts: Account[];
  assets: Asset[];
  daily: DayProfit[];
}

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
