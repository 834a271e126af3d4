import { useEffect, useMemo, useState } from "react";
import { items, qs } from "../api";
import { applyTick, TIMEFRAMES, type Candle } from "../candles";
import { CandleChart } from "../components/CandleChart";
import { Badge, Card, type Column, ErrorBox, Options, Table, timeColumn } from "../components/ui";
import { formatStat } from "../format";
import { useApi } from "../hooks";
import { usePrice, usePricedSymbols } from "../prices";
import type { Schema } from "../schema";

type Trend = Schema<"TrendOut">;

/** /api/chart: stored bars, the strategy's lines over them and its fills. */
type Chart = Schema<"ChartOut">;

/** The CommentaryModule's note stored with a reading. */
const COMMENTARY: Column<Trend> = {
  key: "commentary",
  label: "Commentary",
  wrap: true,
  render: (r) => <span className="small">{r.commentary ?? "—"}</span>,
};

function trendKind(trend: string): string {
  if (/up|bull/i.test(trend)) return "good";
  if (/down|bear/i.test(trend)) return "error";
  return "warn";
}

export function Markets() {
  const priced = usePricedSymbols();
  const latest = useApi<unknown>("/api/trends/latest");
  const latestRows = items<Trend>(latest.data);
  const known = useMemo(
    () => [...new Set([...priced, ...latestRows.map((t) => t.symbol)])].sort(),
    [priced, latestRows],
  );
  const [symbol, setSymbol] = useState("");
  const [timeframe, setTimeframe] = useState("1m");
  const chosen = symbol || known[0] || "BTC";
  const strategies = useApi<unknown>("/api/strategies");
  const names = items<{ name: string }>(strategies.data).map((s) => s.name);
  // The strategy whose indicators and fills are drawn ("-": none); the first one by default.
  const [picked, setPicked] = useState<string | null>(null);
  const strategy = picked ?? names[0] ?? "-";
  const chart = useApi<Chart>(
    strategies.data === undefined && !strategies.error
      ? null
      : `/api/chart${qs({
          symbol: chosen,
          timeframe,
          limit: 200,
          strategy: strategy === "-" ? undefined : strategy,
        })}`,
  );
  const history = useApi<unknown>(`/api/trends${qs({ symbol: chosen, limit: 20 })}`);
  const [candles, setCandles] = useState<Candle[]>([]);

  useEffect(() => {
    setCandles(chart.data?.bars ?? []);
  }, [chart.data]);
  // Each tick of the chosen symbol moves the last candle (or opens the next one).
  const tick = usePrice(chosen);
  useEffect(() => {
    if (tick?.ts)
      setCandles((c) => applyTick(c, { price: tick.price, ts: tick.ts! }, TIMEFRAMES[timeframe]));
  }, [tick, timeframe]);

  return (
    <div className="page">
      <h1>Markets</h1>
      <div className="filters">
        <label>
          Symbol
          <input
            name="symbol"
            list="known-symbols"
            value={symbol}
            placeholder={chosen}
            onChange={(e) => setSymbol(e.target.value.trim())}
          />
          <datalist id="known-symbols">
            {known.map((s) => (
              <option key={s} value={s} />
            ))}
          </datalist>
        </label>
        <label>
          Timeframe
          <select name="timeframe" value={timeframe} onChange={(e) => setTimeframe(e.target.value)}>
            <Options values={Object.keys(TIMEFRAMES)} />
          </select>
        </label>
        <label>
          Strategy
          <select name="strategy" value={strategy} onChange={(e) => setPicked(e.target.value)}>
            <Options values={["-", ...names]} label={(v) => (v === "-" ? "none" : v)} />
          </select>
        </label>
      </div>
      <Card title={`${chosen} · ${timeframe}`} testId="market-chart">
        <ErrorBox error={chart.error} />
        <CandleChart
          candles={candles}
          lines={chart.data?.lines ?? []}
          markers={chart.data?.markers ?? []}
          seconds={TIMEFRAMES[timeframe]}
        />
        {chart.data?.strategy && (
          <p className="muted small" data-testid="chart-params">
            {chart.data.strategy}{" "}
            {Object.entries(chart.data.params)
              .map(([k, v]) => `${k}=${formatStat(v)}`)
              .join(", ")}
            {" · "}
            {chart.data.markers.length} fills marked
          </p>
        )}
      </Card>
      <div className="grid">
        <Card title="Regime by symbol" testId="regimes">
          <ErrorBox error={latest.error} />
          <Table
            testId="regimes-table"
            rows={latestRows}
            empty="No regime readings yet."
            rowKey={(r) => `${r.symbol}/${r.timeframe}`}
            columns={[
              {
                key: "symbol",
                label: "Symbol",
                render: (r) => (
                  <button type="button" className="link" onClick={() => setSymbol(r.symbol)}>
                    {r.symbol}
                  </button>
                ),
              },
              { key: "timeframe", label: "TF" },
              {
                key: "trend",
                label: "Regime",
                render: (r) => <Badge kind={trendKind(r.trend)}>{r.trend}</Badge>,
              },
              {
                key: "strength",
                label: "Strength",
                numeric: true,
                render: (r) => formatStat(r.strength),
              },
              timeColumn("ts", "At"),
              COMMENTARY,
            ]}
          />
        </Card>
        <Card title={`${chosen} regime history`} testId="regime-history">
          <ErrorBox error={history.error} />
          <Table
            rows={items<Trend>(history.data)}
            empty="No readings for this symbol."
            columns={[
              timeColumn("ts", "At"),
              { key: "timeframe", label: "TF" },
              {
                key: "trend",
                label: "Regime",
                render: (r) => <Badge kind={trendKind(r.trend)}>{r.trend}</Badge>,
              },
              {
                key: "strength",
                label: "Strength",
                numeric: true,
                render: (r) => formatStat(r.strength),
              },
              COMMENTARY,
            ]}
          />
        </Card>
      </div>
    </div>
  );
}
