import { useEffect, useState } from "react";
import { api } from "../api";
import { equityFromTrades } from "../backtest";
import { MultiEquityChart } from "../components/EquityChart";
import { Card, ErrorBox, Loading, Money } from "../components/ui";
import { formatStat, humanize } from "../format";
import type { Schema } from "../schema";

type Detail = Schema<"BacktestDetail">;

/** Statistics where a higher value is better (the best run is highlighted). */
const HIGHER_IS_BETTER = new Set([
  "total_return_pct",
  "cagr_pct",
  "sharpe",
  "sortino",
  "calmar",
  "max_drawdown_pct", // negative numbers: closer to 0 is higher
  "win_rate_pct",
  "profit_factor",
  "expectancy",
  "equity_final",
]);
const SKIP = new Set(["start", "end", "duration", "bars"]);

/** Indexes holding the highest numeric value; empty when all runs tie (nothing stands out). */
export function bestIndexes(values: unknown[]): Set<number> {
  const nums = values.map((v) =>
    v === null || v === undefined || v === "" ? NaN : typeof v === "number" ? v : Number(v),
  );
  const finite = nums.filter((n) => Number.isFinite(n));
  if (finite.length < 2) return new Set();
  const max = Math.max(...finite);
  if (finite.every((n) => n === max)) return new Set();
  return new Set(nums.flatMap((n, i) => (n === max ? [i] : [])));
}

export function BacktestCompare({ ids }: { ids: number[] }) {
  const [runs, setRuns] = useState<Detail[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const key = ids.join(",");
  useEffect(() => {
    let live = true;
    Promise.all(ids.map((id) => api.get<Detail>(`/api/backtests/${id}?points=500`)))
      .then((d) => live && setRuns(d))
      .catch((e: Error) => live && setError(e.message));
    return () => {
      live = false;
    };
    // `key` stands for `ids` (a new array on every render).
  }, [key]);

  const label = (r: Detail) => `#${r.summary.id} ${r.summary.strategy}`;
  const statKeys = runs
    ? [...new Set(runs.flatMap((r) => Object.keys(r.summary.stats)))].filter((k) => !SKIP.has(k))
    : [];

  return (
    <div className="page">
      <p>
        <a href="#/backtests">← Backtests</a>
      </p>
      <h1>Compare backtests {ids.map((i) => `#${i}`).join(", ")}</h1>
      <Loading when={!runs && !error} />
      <ErrorBox error={error} />
      {runs && (
        <>
          <Card title="Equity">
            <MultiEquityChart
              series={runs.map((r) => ({
                label: label(r),
                points:
                  r.equity.length > 1
                    ? r.equity
                    : equityFromTrades(r.summary.initial_cash, r.summary.start, r.trades),
              }))}
            />
          </Card>
          <Card title="Statistics" testId="compare-stats">
            <div className="table-wrap">
              <table className="compact kv">
                <thead>
                  <tr>
                    <th />
                    {runs.map((r) => (
                      <th key={r.summary.id} className="num">
                        <a href={`#/backtests/${r.summary.id}`}>{label(r)}</a>
                        <div className="muted small">
                          {r.summary.symbol} ·{" "}
                          {Object.entries(r.summary.params)
                            .map(([k, v]) => `${k}=${formatStat(v)}`)
                            .join(", ")}
                        </div>
                      </th>
                    ))}
                  </tr>
                </thead>
                <tbody>
                  <tr>
                    <th>Final equity</th>
                    {runs.map((r) => (
                      <td key={r.summary.id} className="num">
                        <Money value={r.summary.final_equity} />
                      </td>
                    ))}
                  </tr>
                  {statKeys.map((k) => {
                    const values = runs.map((r) => r.summary.stats[k]);
                    const best = HIGHER_IS_BETTER.has(k) ? bestIndexes(values) : new Set<number>();
                    return (
                      <tr key={k}>
                        <th>{humanize(k)}</th>
                        {values.map((v, i) => (
                          <td key={i} className={`num${best.has(i) ? " best" : ""}`}>
                            {formatStat(v)}
                          </td>
                        ))}
                      </tr>
                    );
                  })}
                </tbody>
              </table>
            </div>
          </Card>
        </>
      )}
    </div>
  );
}
