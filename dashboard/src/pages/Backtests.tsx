import { useCallback, useEffect, useRef, useState, type FormEvent } from "react";
import { api, items } from "../api";
import { MlModels } from "../components/MlModels";
import { collectParams, initialValues, ParamFields } from "../components/ParamFields";
import { Badge, Card, ErrorBox, Money, Options, Table, timeColumn, Ts } from "../components/ui";
import { useAppState } from "../context";
import { formatStat, hasRole } from "../format";
import { useApi, useEvery } from "../hooks";
import type { Schema } from "../schema";
import { CompareStrategiesForm, ComparisonResult, type Comparison } from "./CompareStrategies";
import { FREQS, type BacktestDefaults, type Prefs } from "./Profile";
import type { StrategyInfo } from "./Strategies";

type BacktestSummary = Schema<"BacktestSummary">;

const pct = (v: unknown) => (v === undefined || v === null ? "—" : `${formatStat(v)}%`);

export type Job = Schema<"JobOut">;

const FINAL = new Set(["done", "failed", "cancelled"]);
const POLL_MS = 400;

/** Follows one background job until it ends; shows progress and a cancel button. */
function JobProgress({ job: initial, onEnd }: { job: Job; onEnd: (job: Job) => void }) {
  const [job, setJob] = useState(initial);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    if (FINAL.has(job.status)) {
      onEnd(job);
      return;
    }
    const timer = setTimeout(() => {
      api
        .get<Job>(`/api/backtests/jobs/${job.id}`)
        .then(setJob)
        .catch((e: Error) => setError(e.message));
    }, POLL_MS);
    return () => clearTimeout(timer);
  }, [job, onEnd]);
  const cancel = () =>
    api
      .delete<Job>(`/api/backtests/jobs/${job.id}`)
      .then(setJob)
      .catch((e: Error) => setError(e.message));
  const pctDone = Math.round(job.progress * 100);
  return (
    <div className="job" data-testid="backtest-job" data-status={job.status}>
      <div className="row spread">
        <span>
          {job.strategy} on {job.symbol}: <strong>{job.status}</strong>
        </span>
        {!FINAL.has(job.status) && (
          <button type="button" className="small secondary" onClick={() => void cancel()}>
            Cancel
          </button>
        )}
      </div>
      <progress max={100} value={pctDone} aria-label="Backtest progress">
        {pctDone}%
      </progress>
      {job.error && <p className="error">{job.error}</p>}
      <ErrorBox error={error} />
    </div>
  );
}

function RunForm({
  strategies,
  defaults,
  onStarted,
}: {
  strategies: StrategyInfo[];
  defaults: BacktestDefaults;
  onStarted: (job: Job) => void;
}) {
  const [strategy, setStrategy] = useState(strategies[0]?.name ?? "");
  const specs = strategies.find((s) => s.name === strategy)?.params ?? {};
  const [values, setValues] = useState(() => initialValues(specs));
  const [symbol, setSymbol] = useState(defaults.symbol ?? "BTC");
  const [bars, setBars] = useState(String(defaults.bars ?? 500));
  const [seed, setSeed] = useState("42");
  const [freq, setFreq] = useState(defaults.freq ?? "1h");
  const [cash, setCash] = useState(defaults.cash ?? "10000");
  const [commission, setCommission] = useState(defaults.commission ?? "0.001");
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
        freq,
      };
      if (seed.trim()) body.seed = Number(seed);
      onStarted(await api.post<Job>("/api/backtests/jobs", body));
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
            <Options values={strategies.map((s) => s.name)} />
          </select>
        </label>
        {field("Symbol", "__symbol", symbol, setSymbol)}
        {field("Bars (synthetic)", "__bars", bars, setBars)}
        {field("Seed", "__seed", seed, setSeed)}
        <label>
          Bar interval
          <select name="freq" value={freq} onChange={(e) => setFreq(e.target.value)}>
            <Options values={FREQS} />
          </select>
        </label>
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

/** Background backtests of this API process (any user); re-read while one is running. */
function JobsList({ refreshKey }: { refreshKey: unknown }) {
  const jobs = useApi<unknown>("/api/backtests/jobs");
  const rows = items<Job>(jobs.data).slice(0, 10);
  const running = rows.some((j) => !FINAL.has(j.status));
  const { reload } = jobs;
  const firstKey = useRef(refreshKey);
  useEffect(() => {
    if (refreshKey !== firstKey.current) reload(); // a job started or ended here
  }, [refreshKey, reload]);
  useEvery(() => {
    if (running) reload();
  }, 1000);
  if (rows.length === 0) return null;
  return (
    <Card title="Background jobs" testId="jobs">
      <Table
        testId="jobs-table"
        rows={rows}
        rowKey={(j) => j.id}
        columns={[
          timeColumn("created_at", "Started"),
          { key: "strategy", label: "Strategy" },
          { key: "symbol", label: "Symbol" },
          { key: "user", label: "By" },
          {
            key: "status",
            label: "Status",
            render: (j) => (
              <Badge kind={j.status === "failed" ? "error" : j.status === "done" ? "good" : "warn"}>
                {j.status}
              </Badge>
            ),
          },
          {
            key: "progress",
            label: "Progress",
            numeric: true,
            render: (j) => `${Math.round(j.progress * 100)}%`,
          },
          {
            key: "result",
            label: "Result",
            render: (j) =>
              j.backtest_id !== null ? (
                <a href={`#/backtests/${j.backtest_id}`}>#{j.backtest_id}</a>
              ) : (
                (j.error ?? "—")
              ),
          },
        ]}
      />
    </Card>
  );
}

export function Backtests() {
  const { session } = useAppState();
  const canRun = hasRole(session.role, "trader");
  const list = useApi<unknown>("/api/backtests");
  const strategies = useApi<StrategyInfo[]>(canRun ? "/api/strategies" : null);
  const prefs = useApi<Prefs>(canRun ? "/api/me/prefs" : null);
  const [showForm, setShowForm] = useState(false);
  const [showCompare, setShowCompare] = useState(false);
  const [comparison, setComparison] = useState<Comparison | null>(null);
  const [job, setJob] = useState<Job | null>(null);
  const [ended, setEnded] = useState<Job | null>(null);
  const [picked, setPicked] = useState<number[]>([]);
  const toggle = (id: number) =>
    setPicked((p) => (p.includes(id) ? p.filter((x) => x !== id) : [...p, id]));
  const { reload } = list;
  const onEnd = useCallback(
    (j: Job) => {
      setJob(null);
      setEnded(j);
      if (j.status === "done") reload();
    },
    [reload],
  );

  return (
    <div className="page">
      <div className="row spread">
        <h1>Backtests</h1>
        {canRun && (
          <div className="row">
            <button
              type="button"
              className="secondary"
              onClick={() => setShowCompare((s) => !s)}
              data-testid="toggle-compare-strategies"
            >
              {showCompare ? "Close comparison" : "Compare strategies"}
            </button>
            <button
              type="button"
              onClick={() => setShowForm((s) => !s)}
              data-testid="toggle-run-backtest"
            >
              {showForm ? "Close" : "Run a backtest"}
            </button>
          </div>
        )}
      </div>
      {job && (
        <Card title="Running backtest">
          <JobProgress key={job.id} job={job} onEnd={onEnd} />
        </Card>
      )}
      {ended?.status === "done" && (
        <p className="notice" role="status" data-testid="backtest-done">
          Backtest{" "}
          <a href={`#/backtests/${String(ended.backtest_id)}`}>#{String(ended.backtest_id)}</a>{" "}
          finished.
        </p>
      )}
      {ended && ended.status !== "done" && (
        <p className="error" role="alert" data-testid="backtest-failed">
          Backtest {ended.status}
          {ended.error ? `: ${ended.error}` : "."}
        </p>
      )}
      {canRun && showForm && (
        <Card title="Run a backtest">
          <ErrorBox error={strategies.error} />
          {strategies.data && (prefs.data || prefs.error) && (
            <RunForm
              strategies={strategies.data}
              defaults={prefs.data?.backtest_defaults ?? {}}
              onStarted={(j) => {
                setEnded(null);
                setJob(j);
                setShowForm(false);
              }}
            />
          )}
        </Card>
      )}
      {canRun && showCompare && (
        <Card title="Compare strategies on one market">
          <ErrorBox error={strategies.error} />
          {strategies.data && (prefs.data || prefs.error) && (
            <CompareStrategiesForm
              strategies={strategies.data}
              defaults={prefs.data?.backtest_defaults ?? {}}
              onDone={(c) => {
                setComparison(c);
                setShowCompare(false);
                reload();
              }}
            />
          )}
        </Card>
      )}
      {comparison && <ComparisonResult result={comparison} />}
      <JobsList refreshKey={`${job?.id ?? ""}/${ended?.id ?? ""}`} />
      <Card
        title="Runs"
        testId="backtests"
        actions={
          <a
            className={`button small${picked.length < 2 ? " disabled" : ""}`}
            href={picked.length >= 2 ? `#/backtests/compare/${picked.join(",")}` : undefined}
            aria-disabled={picked.length < 2}
            data-testid="compare-link"
          >
            Compare {picked.length > 0 ? `(${picked.length})` : ""}
          </a>
        }
      >
        <ErrorBox error={list.error} />
        <Table
          testId="backtests-table"
          rows={items<BacktestSummary>(list.data)}
          empty="No backtests yet."
          rowKey={(r) => String(r.id)}
          columns={[
            {
              key: "pick",
              label: "",
              render: (r) => (
                <input
                  type="checkbox"
                  aria-label={`Compare #${r.id}`}
                  checked={picked.includes(r.id)}
                  onChange={() => toggle(r.id)}
                />
              ),
            },
            {
              key: "id",
              label: "#",
              render: (r) => <a href={`#/backtests/${r.id}`}>#{r.id}</a>,
            },
            {
              key: "strategy",
              label: "Strategy",
              render: (r) => <a href={`#/backtests/${r.id}`}>{r.strategy}</a>,
            },
            { key: "symbol", label: "Symbol", render: (r) => r.symbol },
            {
              key: "start",
              label: "From",
              render: (r) => <Ts value={r.start} />,
            },
            {
              key: "end",
              label: "To",
              render: (r) => <Ts value={r.end} />,
            },
            {
              key: "final",
              label: "Final equity",
              numeric: true,
              render: (r) => <Money value={r.final_equity} />,
            },
            {
              key: "ret",
              label: "Return",
              numeric: true,
              render: (r) => pct(r.stats.total_return_pct),
            },
            {
              key: "sharpe",
              label: "Sharpe",
              numeric: true,
              render: (r) => formatStat(r.stats.sharpe),
            },
            {
              key: "dd",
              label: "Max DD",
              numeric: true,
              render: (r) => pct(r.stats.max_drawdown_pct),
            },
            {
              key: "n",
              label: "Trades",
              numeric: true,
              render: (r) => formatStat(r.stats.n_trades),
            },
            timeColumn("created_at", "Run at"),
          ]}
        />
      </Card>
      <MlModels />
    </div>
  );
}
