import { openAuthed } from "../api";
import { equityFromTrades } from "../backtest";
import { EquityChart, type EquityPoint } from "../components/EquityChart";
import {
  Card,
  ErrorBox,
  Loading,
  Money,
  moneyColumn,
  numberColumn,
  Table,
  timeColumn,
} from "../components/ui";
import { formatStat, humanize } from "../format";
import { useApi } from "../hooks";
import type { Schema } from "../schema";

type Detail = Schema<"BacktestDetail">;

export function BacktestDetail({ id }: { id: number }) {
  const d = useApi<Detail>(`/api/backtests/${id}`);
  const summary = d.data?.summary;
  const trades = d.data?.trades ?? [];
  const stats = summary?.stats ?? {};
  const equity: EquityPoint[] =
    d.data && d.data.equity.length > 1
      ? d.data.equity
      : equityFromTrades(summary?.initial_cash ?? "0", summary?.start, trades);
  const params = summary?.params ?? {};

  return (
    <div className="page">
      <p>
        <a href="#/backtests">← Backtests</a>
      </p>
      <h1>
        Backtest #{id}
        {summary ? ` — ${summary.strategy} on ${summary.symbol}` : ""}
      </h1>
      <Loading when={d.loading && !d.data} />
      <ErrorBox error={d.error} />
      {summary && (
        <>
          <div className="kpis" data-testid="backtest-kpis">
            <div>
              <span>Initial cash</span>
              <strong>
                <Money value={summary.initial_cash} />
              </strong>
            </div>
            <div>
              <span>Final equity</span>
              <strong>
                <Money value={summary.final_equity} />
              </strong>
            </div>
            <div>
              <span>Return</span>
              <strong>{formatStat(stats.total_return_pct)}%</strong>
            </div>
            <div>
              <span>Trades</span>
              <strong>{formatStat(stats.n_trades ?? trades.length)}</strong>
            </div>
          </div>
          <Card title="Equity">
            <EquityChart points={equity} />
          </Card>
          <div className="grid">
            <Card title="Statistics" testId="backtest-stats">
              <table className="compact kv">
                <tbody>
                  {Object.entries(stats).map(([k, v]) => (
                    <tr key={k}>
                      <th>{humanize(k)}</th>
                      <td className="num">{formatStat(v)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </Card>
            <Card title="Parameters">
              <table className="compact kv">
                <tbody>
                  {Object.entries(params).map(([k, v]) => (
                    <tr key={k}>
                      <th>{k}</th>
                      <td className="num">{formatStat(v)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
              {summary.has_report && (
                <p>
                  <button
                    type="button"
                    className="link"
                    onClick={() => void openAuthed(`/api/backtests/${id}/report`)}
                  >
                    Full HTML report
                  </button>
                </p>
              )}
            </Card>
          </div>
          <Card title={`Trades (${trades.length})`} testId="backtest-trades">
            <Table
              testId="trades-table"
              rows={trades}
              empty="No closed trades."
              columns={[
                {
                  key: "side",
                  label: "Side",
                  render: (t) => (String(t.qty).startsWith("-") ? "short" : "long"),
                },
                numberColumn("qty", "Qty"),
                timeColumn("entry_ts", "Entry"),
                moneyColumn("entry_price", "Entry price"),
                timeColumn("exit_ts", "Exit"),
                moneyColumn("exit_price", "Exit price"),
                moneyColumn("fees", "Fees"),
                moneyColumn("pnl", "PnL", true),
              ]}
            />
          </Card>
        </>
      )}
    </div>
  );
}
