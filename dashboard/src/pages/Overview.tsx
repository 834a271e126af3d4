import { items } from "../api";
import { mulDecimal, subDecimal } from "../backtest";
import { Balances } from "../components/Balances";
import { DailyProfitChart } from "../components/DailyProfitChart";
import { ProfitHeader } from "../components/ProfitHeader";
import { StatusPanel } from "../components/StatusPanel";
import {
  Badge,
  Card,
  ErrorBox,
  Money,
  moneyColumn,
  Num,
  numberColumn,
  Percent,
  Table,
} from "../components/ui";
import { useAppState } from "../context";
import { usePrices } from "../prices";
import { useEffect } from "react";
import { formatDecimal, formatPct, formatTs, humanize, polylinePoints, sign } from "../format";
import { type Loaded, useApi, useEvery } from "../hooks";
import type { Account, Portfolio } from "../portfolio";
import type { Schema } from "../schema";

type Health = Schema<"Health">;
export type KillSwitch = Schema<"KillSwitchOut">;
type Position = Schema<"PositionOut">;
type LedgerSummary = Schema<"LedgerSummary">;

/** (last − average price) × signed quantity, exactly. */
function unrealized(p: Position, last: string): string {
  return mulDecimal(subDecimal(last, p.avg_price), p.qty);
}

function checkText(v: unknown): string {
  if (v === true) return "ok";
  if (v === false) return "down";
  if (v && typeof v === "object" && "status" in v) return String((v as { status: unknown }).status);
  return String(v);
}

/** `/api/ledger/summary` as rows per mode (accepts a map or a list). */
function ledgerRows(data: unknown): (LedgerSummary & { mode: string })[] {
  if (Array.isArray(data)) return data as (LedgerSummary & { mode: string })[];
  if (data && typeof data === "object")
    return Object.entries(data as Record<string, LedgerSummary>).map(([mode, v]) => ({
      mode,
      ...v,
    }));
  return [];
}

export function KillSwitchBanner({ ks }: { ks: KillSwitch | undefined }) {
  if (!ks) return null;
  return ks.enabled ? (
    <div className="banner danger" data-testid="kill-switch-state" data-enabled="true">
      <strong>Kill switch ON</strong> — trading halted
      {ks.reason ? `: ${ks.reason}` : ""}
      {ks.changed_by ? ` (by ${ks.changed_by}, ${formatTs(ks.updated_at)})` : ""}
    </div>
  ) : (
    <div className="banner ok" data-testid="kill-switch-state" data-enabled="false">
      Kill switch off — trading allowed
    </div>
  );
}

function Sparkline({ values }: { values: number[] }) {
  if (values.length < 2) return <svg className="spark" aria-hidden="true" />;
  const up = values[values.length - 1] >= values[0];
  return (
    <svg className="spark" viewBox="0 0 120 28" preserveAspectRatio="none" aria-hidden="true">
      <polyline points={polylinePoints(values, 120, 28, 2)} className={up ? "up" : "down"} />
    </svg>
  );
}

export function Overview() {
  const { events } = useAppState();
  const health = useApi<Health>("/api/health");
  const ks = useApi<KillSwitch>("/api/risk/kill-switch");
  const ledger = useApi<unknown>("/api/ledger/summary");
  const positions = useApi<unknown>("/api/positions");
  const portfolio = useApi<Portfolio>("/api/portfolio");
  // Health, the kill switch and the profit (marked at moving prices) are re-read regularly; a
  // kill-switch flip (an alert) or a fill elsewhere shows up at once.
  useEvery(() => {
    health.reload();
    ks.reload();
    portfolio.reload();
  }, 15_000);
  const latest = events[0];
  const { reload: reloadKs } = ks;
  const { reload: reloadPositions } = positions;
  const { reload: reloadLedger } = ledger;
  const { reload: reloadPortfolio } = portfolio;
  useEffect(() => {
    if (!latest) return;
    if (latest.channel === "alerts") reloadKs();
    if (latest.channel === "fills" || latest.channel === "order_status") {
      reloadPositions();
      reloadLedger();
      reloadPortfolio();
    }
  }, [latest, reloadKs, reloadPositions, reloadLedger, reloadPortfolio]);
  const book = portfolio.data;

  return (
    <div className="page">
      <h1>Overview</h1>
      <KillSwitchBanner ks={ks.data} />
      <ErrorBox error={ks.error} />
      <ErrorBox error={portfolio.error} />
      {book && <ProfitHeader profit={book.total} mode={book.mode} />}
      <div className="grid">
        <Card title="Balances & exposure" testId="balances">
          <Balances assets={book?.assets ?? []} />
        </Card>
        <Card title="Daily profit" testId="daily-profit">
          <DailyProfitChart days={book?.daily ?? []} />
        </Card>
      </div>
      <Card title="Strategy accounts" testId="accounts">
        <Table
          testId="accounts-table"
          rows={book?.accounts ?? []}
          rowKey={(a) => `${a.strategy}/${a.symbol}`}
          empty="No strategy accounts."
          columns={[
            { key: "strategy", label: "Strategy" },
            { key: "symbol", label: "Symbol" },
            moneyColumn("equity", "Equity"),
            moneyColumn("total_pnl", "Total PnL", true),
            {
              key: "total_pnl_pct",
              label: "%",
              numeric: true,
              render: (a: Account) => <Percent value={a.total_pnl_pct} />,
            },
            moneyColumn("open_pnl", "Open", true),
            moneyColumn("closed_pnl", "Closed", true),
            {
              key: "trades",
              label: "Trades",
              numeric: true,
              render: (a) => (a.trades ? `${a.trades} (${formatPct(a.win_rate_pct)} won)` : "0"),
            },
            moneyColumn("max_drawdown", "Max drawdown"),
          ]}
        />
      </Card>
      <div className="grid">
        <Card title="Health" testId="health">
          <ErrorBox error={health.error} />
          {health.data && (
            <>
              <p>
                <Badge kind={health.data.status === "ok" ? "good" : "warn"}>
                  {health.data.status}
                </Badge>
                {health.data.version && <span className="muted"> v{health.data.version}</span>}
              </p>
              <ul className="checks">
                {Object.entries(health.data.checks ?? {}).map(([k, v]) => (
                  <li key={k}>
                    <span>{humanize(k)}</span>
                    <Badge kind={checkText(v) === "ok" ? "good" : "warn"}>{checkText(v)}</Badge>
                  </li>
                ))}
              </ul>
            </>
          )}
        </Card>
        <LivePrices />
        <StatusPanel />
      </div>
      <Card title="Ledger" testId="ledger">
        <ErrorBox error={ledger.error} />
        <Table
          testId="ledger-table"
          rows={ledgerRows(ledger.data)}
          empty="No ledger entries."
          columns={[
            { key: "mode", label: "Mode" },
            moneyColumn("cash", "Cash flow", true),
            moneyColumn("fees", "Fees"),
            moneyColumn("realized_pnl", "Realized PnL", true),
            numberColumn("entries", "Entries"),
          ]}
        />
      </Card>
      <PositionsCard positions={positions} />
    </div>
  );
}

/** Every symbol's live price with its sparkline (re-rendered on each tick, alone). */
function LivePrices() {
  const prices = usePrices();
  const priceRows = Object.values(prices).sort((a, b) => a.symbol.localeCompare(b.symbol));
  return (
    <Card title="Live prices" testId="live-prices">
      {priceRows.length === 0 ? (
        <p className="muted">Waiting for price updates…</p>
      ) : (
        <ul className="prices">
          {priceRows.map((p) => {
            const dir =
              p.previous === undefined ? 0 : sign(String(Number(p.price) - Number(p.previous)));
            return (
              <li key={p.symbol} data-testid={`price-${p.symbol}`}>
                <span className="sym">{p.symbol}</span>
                <Sparkline values={p.history} />
                <span className={`px ${dir > 0 ? "pos" : dir < 0 ? "neg" : ""}`}>
                  {formatDecimal(p.price)}
                </span>
                <span className="muted small">{p.ts ? formatTs(p.ts) : ""}</span>
              </li>
            );
          })}
        </ul>
      )}
    </Card>
  );
}

/** The open positions marked at the live prices (re-rendered on each tick, alone). */
function PositionsCard({ positions }: { positions: Loaded<unknown> }) {
  const prices = usePrices();
  return (
    <Card title="Positions" testId="positions">
      <ErrorBox error={positions.error} />
      <Table
        testId="positions-table"
        rows={items<Position>(positions.data)}
        empty="No open positions."
        columns={[
          { key: "symbol", label: "Symbol" },
          { key: "strategy", label: "Strategy" },
          { key: "mode", label: "Mode" },
          numberColumn("qty", "Qty"),
          moneyColumn("avg_price", "Avg price"),
          moneyColumn("realized_pnl", "Realized PnL", true),
          {
            key: "last",
            label: "Last",
            numeric: true,
            render: (r) => (prices[r.symbol] ? <Num value={prices[r.symbol].price} /> : "—"),
          },
          {
            key: "unrealized",
            label: "Unrealized PnL",
            numeric: true,
            render: (r) => {
              const last = prices[r.symbol]?.price;
              return last ? <Money value={unrealized(r, last)} signed /> : "—";
            },
          },
        ]}
      />
    </Card>
  );
}
