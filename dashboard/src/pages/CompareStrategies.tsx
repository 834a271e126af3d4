import { useState, type FormEvent } from "react";
import { api } from "../api";
import { Card, ErrorBox, Money, Options, Table } from "../components/ui";
import { formatStat } from "../format";
import { FREQS, type BacktestDefaults } from "./Profile";
import type { StrategyInfo } from "./Strategies";
import type { Schema } from "../schema";

export type Comparison = Schema<"ComparisonOut">;

/** Run 2-8 strategies on the same synthetic market; the server ranks them and recommends one. */
export function CompareStrategiesForm({
  strategies,
  defaults,
  onDone,
}: {
  strategies: StrategyInfo[];
  defaults: BacktestDefaults;
  onDone: (c: Comparison) => void;
}) {
  const [picked, setPicked] = useState<string[]>(strategies.slice(0, 2).map((s) => s.name));
  const [symbol, setSymbol] = useState(defaults.symbol ?? "BTC");
  const [bars, setBars] = useState(String(defaults.bars ?? 500));
  const [seed, setSeed] = useState("42");
  const [freq, setFreq] = useState(defaults.freq ?? "1h");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const toggle = (name: string) =>
    setPicked((p) => (p.includes(name) ? p.filter((n) => n !== name) : [...p, name]));

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    if (picked.length < 2 || picked.length > 8) return setError("strategies: pick 2 to 8");
    const n = Number(bars);
    if (!Number.isInteger(n) || n < 50 || n > 200000)
      return setError("bars: a whole number from 50 to 200000");
    if (seed.trim() && !/^\d+$/.test(seed.trim())) return setError("seed: a whole number");
    setError(null);
    setBusy(true);
    try {
      const body: Record<string, unknown> = {
        strategies: picked,
        symbol: symbol.trim(),
        bars: n,
        freq,
      };
      if (seed.trim()) body.seed = Number(seed);
      if (defaults.cash) body.cash = defaults.cash;
      if (defaults.commission) body.commission = defaults.commission;
      onDone(await api.post<Comparison>("/api/backtests/compare", body));
    } catch (err) {
      setError((err as Error).message);
    } finally {
      setBusy(false);
    }
  };

  return (
    <form className="editor" onSubmit={submit} data-testid="compare-strategies" noValidate>
      <fieldset className="checks-row">
        <legend>Strategies</legend>
        {strategies.map((s) => (
          <label key={s.name} className="check">
            <input
              type="checkbox"
              checked={picked.includes(s.name)}
              onChange={() => toggle(s.name)}
            />
            {s.name}
          </label>
        ))}
      </fieldset>
      <div className="form-grid">
        <label>
          Symbol
          <input name="symbol" value={symbol} onChange={(e) => setSymbol(e.target.value)} />
        </label>
        <label>
          Bars (synthetic)
          <input name="bars" value={bars} onChange={(e) => setBars(e.target.value)} />
        </label>
        <label>
          Seed
          <input name="seed" value={seed} onChange={(e) => setSeed(e.target.value)} />
        </label>
        <label>
          Bar interval
          <select name="freq" value={freq} onChange={(e) => setFreq(e.target.value)}>
            <Options values={FREQS} />
          </select>
        </label>
      </div>
      <ErrorBox error={error} />
      <button type="submit" disabled={busy}>
        {busy ? "Running…" : "Compare strategies"}
      </button>
    </form>
  );
}

/** The server's ranking (best first) and recommendation. */
export function ComparisonResult({ result }: { result: Comparison }) {
  const byId = new Map(result.backtests.map((b) => [Number(b.id), b]));
  const ids = result.ranking.map((r) => r.backtest_id).join(",");
  return (
    <Card
      title="Strategy comparison"
      testId="comparison-result"
      actions={
        <a className="button small" href={`#/backtests/compare/${ids}`}>
          Side by side
        </a>
      }
    >
      <p className="notice" data-testid="recommendation">
        {result.recommendation}
      </p>
      <Table
        testId="ranking-table"
        rows={result.ranking}
        rowKey={(r) => r.backtest_id}
        columns={[
          { key: "rank", label: "Rank", render: (r) => String(result.ranking.indexOf(r) + 1) },
          {
            key: "strategy",
            label: "Strategy",
            render: (r) => <a href={`#/backtests/${r.backtest_id}`}>{r.strategy}</a>,
          },
          {
            key: "score",
            label: "Score (Sharpe)",
            numeric: true,
            render: (r) => (r.score === null ? "too few trades" : formatStat(r.score)),
          },
          {
            key: "final",
            label: "Final equity",
            numeric: true,
            render: (r) => <Money value={byId.get(r.backtest_id)?.final_equity} />,
          },
          {
            key: "ret",
            label: "Return",
            numeric: true,
            render: (r) => {
              const v = byId.get(r.backtest_id)?.stats.total_return_pct;
              return v == null ? "—" : `${formatStat(v)}%`;
            },
          },
          {
            key: "n",
            label: "Trades",
            numeric: true,
            render: (r) => formatStat(byId.get(r.backtest_id)?.stats.n_trades),
          },
        ]}
      />
    </Card>
  );
}
