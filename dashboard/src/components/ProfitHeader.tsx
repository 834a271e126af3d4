import type { Profit } from "../portfolio";
import { formatDecimal, formatPct, sign } from "../format";
import { Money, Percent } from "./ui";

function Pct({ value }: { value: string | null }) {
  return (
    <small>
      <Percent value={value} />
    </small>
  );
}

/** The account's standing at a glance (FreqUI's profit header): equity, total/open/closed PnL
 * in money and percent of the starting capital, win rate and the deepest drawdown. */
export function ProfitHeader({ profit, mode }: { profit: Profit; mode: string }) {
  return (
    <div className="kpis profit" data-testid="profit-header">
      <div data-testid="kpi-equity">
        <span>Equity ({mode})</span>
        <strong>
          <Money value={profit.equity} />
        </strong>
        <small className="muted">
          cash <Money value={profit.cash} /> + positions <Money value={profit.position_value} />
        </small>
      </div>
      <div data-testid="kpi-total">
        <span>Total PnL</span>
        <strong>
          <Money value={profit.total_pnl} signed />
        </strong>
        <Pct value={profit.total_pnl_pct} />
      </div>
      <div data-testid="kpi-open">
        <span>Open PnL</span>
        <strong>
          <Money value={profit.open_pnl} signed />
        </strong>
        <Pct value={profit.open_pnl_pct} />
      </div>
      <div data-testid="kpi-closed">
        <span>Closed PnL</span>
        <strong>
          <Money value={profit.closed_pnl} signed />
        </strong>
        <Pct value={profit.closed_pnl_pct} />
      </div>
      <div data-testid="kpi-winrate">
        <span>Win rate</span>
        <strong>{formatPct(profit.win_rate_pct)}</strong>
        <small className="muted">
          {profit.wins} won · {profit.losses} lost · {formatDecimal(String(profit.trades))} trades
        </small>
      </div>
      <div data-testid="kpi-drawdown">
        <span>Max drawdown</span>
        <strong className={sign(profit.max_drawdown) > 0 ? "neg" : undefined}>
          <Money value={profit.max_drawdown} />
        </strong>
        <small className="muted">{formatPct(profit.max_drawdown_pct)} from peak</small>
      </div>
    </div>
  );
}
