import { Card } from "../components/ui";
import { useAppState } from "../context";

export function Help() {
  const { session } = useAppState();
  return (
    <div className="page help">
      <h1>Help</h1>
      <Card title="Roles">
        <p>
          You are signed in as <strong>{session.username}</strong> with the role{" "}
          <span className={`badge role-${session.role}`}>{session.role}</span>.
        </p>
        <ul>
          <li>
            <strong>viewer</strong> reads everything: prices, positions, orders, backtests,
            simulations, alerts and reports.
          </li>
          <li>
            <strong>trader</strong> also runs backtests and strategy comparisons, changes strategy
            parameters and rates simulation runs.
          </li>
          <li>
            <strong>admin</strong> also manages users and the kill switch.
          </li>
        </ul>
        <p className="muted">
          Controls you cannot use are not shown; the server checks every request regardless.
        </p>
      </Card>
      <Card title="Pages">
        <dl>
          <dt>Overview</dt>
          <dd>
            The profit header (equity = cash + positions at the last price; total, open and closed
            PnL in money and percent of the starting capital; win rate; deepest drawdown), balances
            and exposure per asset, profit per day, each strategy account, health, the status panel
            (is the scheduler alive, the state of each supervised component), the kill switch, the
            ledger&apos;s cash flow per mode, open positions and live prices (the dot next to your
            name is green while the live feed is connected).
          </dd>
          <dt>Markets</dt>
          <dd>
            Candles of the stored bars for a symbol and timeframe with their volume, the chosen
            strategy&apos;s indicator lines (from its active parameters) and its fills as buy and
            sell triangles; incoming ticks move the last candle. The regime detector&apos;s latest
            reading per symbol and its history, each with its plain-language commentary.
          </dd>
          <dt>Orders &amp; fills</dt>
          <dd>
            Orders (filter by status, mode, symbol), fills and realized PnL by day, strategy or
            symbol.
          </dd>
          <dt>Strategies</dt>
          <dd>
            Parameter bounds of each strategy and the active parameters per symbol with their change
            history. Values outside the bounds are refused with the parameter&apos;s name.
          </dd>
          <dt>Backtests</dt>
          <dd>
            Stored runs; open one for its statistics, equity and drawdown curves and trades. Tick
            two or more to compare them side by side. Traders run a backtest in the background (with
            progress and cancel) or compare strategies on the same market and get a recommendation.
          </dd>
          <dt>Simulations</dt>
          <dd>
            Paper-trading runs with their statistics and the orders each placed; traders rate them
            1–5 with a comment.
          </dd>
          <dt>Alerts &amp; actions</dt>
          <dd>
            Raised alerts (an alert that repeats is one row with how many times and when it was
            first and last seen), every decision the bot took, and scored news.
          </dd>
          <dt>Reports</dt>
          <dd>
            Periodic performance reports to view or download (as HTML or PDF, and which kind is
            listed first: your report preferences on the profile page).
          </dd>
          <dt>System</dt>
          <dd>
            Health checks, the scheduled jobs with their runs (admins pause, resume, run now or
            cancel a job), the risk limits orders are checked against, and the process metrics.
          </dd>
          <dt>Logs</dt>
          <dd>
            Admins read the end of each process&apos;s log file, filtered by level and text; it
            follows new lines while Follow is ticked.
          </dd>
          <dt>Admin</dt>
          <dd>The kill switch (with a reason), users and roles, and the running settings.</dd>
        </dl>
      </Card>
      <Card title="Numbers">
        <p>
          Money, prices and quantities are shown exactly as stored: digits are never rounded, only
          grouped by thousands and padded to two decimals. Statistics computed in floating point
          (ratios) are shown to four decimals (four significant digits below one), percentages to
          two.
        </p>
      </Card>
    </div>
  );
}
