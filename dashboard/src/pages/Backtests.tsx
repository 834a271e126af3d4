import { useState, type FormEvent } from "react";
import { api, items } from "../api";
import { firstStat, type Row } from "../backtest";
import { collectParams, initialValues, ParamFields } from "../components/ParamFields";
import { Card, ErrorBox, Money, Table, Ts } from "../components/ui";
import { useAppState } from "../context";
import { formatStat, hasRole } from "../format";
import { useApi } from "../hooks";
import type { StrategyInfo } from "./Strategies";

const pct = (v: unknown) => (v === undefined || v === null ? "—" : `${formatStat(v)}%`);

function RunForm({
  strategies,
  onDone,
}: {
  strategies: StrategyInfo[];
  onDone: (id: unknown) => void;
}) {
  const [strategy, setStrategy] = useState(strategies[0]?.name ?? "");
  const specs = strategies.find((s) => s.name === strategy)?.params ?? {};
  const [values, setValues] = useState(() => initialValues(specs));
  const [symbol, setSymbol] = useState("BTC");
  const [bars, setBars] = useState("500");
  const [seed, setSeed] = useState("42");
  const [cash, setCash] = useState("10000");
  const [commission, setCommission] = useState("0.001");
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [serverError, setServerError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const pick = (name: string) => {
    setStrategy(name);
    setValues(initialValues(strategies.find((s) => s.name === name)?.params ?? {}));
    setErrors({});
  };

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    const { params, errors: errs } = collectParams(specs, values);
    if (!symbol.trim()) errs.__symbol = "symbol: required";
    if (!/^\d+$/.test(bars.trim()) || Number(bars) < 50 || Number(bars) > 200000)
      errs.__bars = "bars: a whole number from 50 to 200000";
    if (seed.trim() && !/^\d+$/.test(seed.trim())) errs.__seed = "seed: a whole number";
    if (!/^\d+(\.\d+)?$/.test(cash.trim()) || Number(cash) <= 0)
      errs.__cash = "cash: a positive amount";
    if (!/^\d+(\.\d+)?$/.test(commission.trim()) || Number(commission) >= 0.1)
      errs.__commission = "commission: a fraction from 0 to below 0.1, e.g. 0.001";
    setErrors(errs);
    setServerError(null);
    if (Object.keys(errs).length > 0) return;
    setBusy(true);
    try {
      const body: Record<string, unknown> = {
        strategy,
        symbol: symbol.trim(),
        params,
        bars: Number(bars),
        cash: cash.trim(),
        commission: commission.trim(),
      };
      if (seed.trim()) body.seed = Number(seed);
      const res = await api.post<Row>("/api/backtests", body);
      onDone(firstStat(res, "id"));
    } catch (err) {
      setServerError((err as Error).message);
    } finally {
      setBusy(false);
    }
  };

  const field = (label: string, key: string, value: string, set: (v: string) => void) => (
    <label className={errors[key] ? "invalid" : undefined}>
      {label}
      <input name={key.replace("__", "")} value={value} onChange={(e) => set(e.target.value)} />
      {errors[key] && <small className="field-error">{errors[key]}</small>}
    </label>
  );

  return (
    <form className="editor" onSubmit={submit} data-testid="run-backtest" noValidate>
      <div className="form-grid">
        <label>
          Strategy
          <select name="strategy" value={strategy} onChange={(e) => pick(e.target.value)}>
            {strategies.map((s) => (
              <option key={s.name} value={s.name}>
                {s.name}
              </option>
            ))}
          </select>
        </label>
        {field("Symbol", "__symbol", symbol, setSymbol)}
        {field("Bars (synthetic)", "__bars", bars, setBars)}
        {field("Seed", "__seed", seed, setSeed)}
        {field("Cash", "__cash", cash, setCash)}
        {field("Commission", "__commission", commission, setCommission)}
      </div>
      <ParamFields
        idPrefix="bt"
        specs={specs}
        values={values}
        errors={errors}
        onChange={(n, v) => setValues((s) => ({ ...s, [n]: v }))}
      />
      <ErrorBox error={serverError} />
      <button type="submit" disabled={busy || !strategy}>
        {busy ? "Running…" : "Run backtest"}
      </button>
    </form>
  );
}

export function Backtests() {
  const { session } = useAppState();
  const canRun = hasRole(session.role, "trader");
  const list = useApi<unknown>("/api/backtests");
  const strategies = useApi<StrategyInfo[]>(canRun ? "/api/strategies" : null);
  const [showForm, setShowForm] = useState(false);
  const [done, setDone] = useState<unknown>(null);

  return (
    <div className="page">
      <div className="row spread">
        <h1>Backtests</h1>
        {canRun && (
          <button
            type="button"
            onClick={() => setShowForm((s) => !s)}
            data-testid="toggle-run-backtest"
          >
            {showForm ? "Close" : "Run a backtest"}
          </button>
        )}
      </div>
      {done !== null && (
        <p className="notice" role="status" data-testid="backtest-done">
          Backtest <a href={`#/backtests/${String(done)}`}>#{String(done)}</a> finished.
        </p>
      )}
      {canRun && showForm && (
        <Card title="Run a backtest">
          <ErrorBox error={strategies.error} />
          {strategies.data && (
            <RunForm
              strategies={strategies.data}
              onDone={(id) => {
                setDone(id);
                setShowForm(false);
                list.reload();
              }}
            />
          )}
        </Card>
      )}
      <Card title="Runs" testId="backtests">
        <ErrorBox error={list.error} />
        <Table
          testId="backtests-table"
          rows={items<Row>(list.data)}
          empty="No backtests yet."
          rowKey={(r) => String(r.id)}
          columns={[
            {
              key: "id",
              label: "#",
              render: (r) => <a href={`#/backtests/${String(r.id)}`}>#{String(r.id)}</a>,
            },
            {
              key: "strategy",
              label: "Strategy",
              render: (r) => <a href={`#/backtests/${String(r.id)}`}>{String(r.strategy)}</a>,
            },
            { key: "symbol", label: "Symbol", render: (r) => String(r.symbol) },
            {
              key: "start",
              label: "From",
              render: (r) => <Ts value={firstStat(r, "start", "start_ts")} />,
            },
            {
              key: "end",
              label: "To",
              render: (r) => <Ts value={firstStat(r, "end", "end_ts")} />,
            },
            {
              key: "final",
              label: "Final equity",
              numeric: true,
              render: (r) => <Money value={firstStat(r, "final_equity", "equity_final")} />,
            },
            {
              key: "ret",
              label: "Return",
              numeric: true,
              render: (r) => pct(firstStat(r, "total_return_pct")),
            },
            {
              key: "sharpe",
              label: "Sharpe",
              numeric: true,
              render: (r) => formatStat(firstStat(r, "sharpe")),
            },
            {
              key: "dd",
              label: "Max DD",
              numeric: true,
              render: (r) => pct(firstStat(r, "max_drawdown_pct")),
            },
            {
              key: "n",
              label: "Trades",
              numeric: true,
              render: (r) => formatStat(firstStat(r, "n_trades")),
            },
            { key: "created_at", label: "Run at", render: (r) => <Ts value={r.created_at} /> },
          ]}
        />
      </Card>
    </div>
  );
}
