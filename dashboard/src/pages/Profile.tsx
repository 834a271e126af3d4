import { useState, type FormEvent } from "react";
import { api, type ReportFormat } from "../api";
import { Card, ErrorBox, Options, Ts } from "../components/ui";
import { useAppState } from "../context";
import { hasRole } from "../format";
import { useApi } from "../hooks";
import type { Schema } from "../schema";

export const FREQS = ["1min", "5min", "15min", "1h", "4h", "1d"];

/** Starting values of the "run a backtest" form. */
export type BacktestDefaults = Schema<"BacktestDefaults">;

/** How the reports page starts: which kind it lists and which file it opens. */
export type ReportPrefs = Schema<"ReportPrefs">;

export const REPORT_KINDS = ["daily", "weekly"];

/** The preferences the dashboard keeps under /api/me/prefs. */
export type Prefs = Schema<"Prefs">;

function ReportPrefsForm({ prefs, onSaved }: { prefs: Prefs; onSaved: () => void }) {
  const [kind, setKind] = useState(prefs.report_prefs?.kind ?? "");
  const [format, setFormat] = useState<ReportFormat>(prefs.report_prefs?.format ?? "html");
  const [error, setError] = useState<string | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setNotice(null);
    setError(null);
    try {
      await api.put("/api/me/prefs", { report_prefs: { kind, format } });
      setNotice("Report preferences saved.");
      onSaved();
    } catch (err) {
      setError((err as Error).message);
    }
  };
  return (
    <form className="editor" onSubmit={submit} data-testid="report-prefs-form">
      <div className="form-grid">
        <label>
          Reports listed
          <select name="report-kind" value={kind} onChange={(e) => setKind(e.target.value)}>
            <option value="">all kinds</option>
            <Options values={REPORT_KINDS} />
          </select>
        </label>
        <label>
          Open and download as
          <select
            name="report-format"
            value={format}
            onChange={(e) => setFormat(e.target.value as ReportFormat)}
          >
            <option value="html">HTML</option>
            <option value="pdf">PDF</option>
          </select>
        </label>
      </div>
      <ErrorBox error={error} />
      {notice && (
        <p className="notice" role="status">
          {notice}
        </p>
      )}
      <button type="submit">Save report preferences</button>
    </form>
  );
}

function BacktestDefaultsForm({ prefs, onSaved }: { prefs: Prefs; onSaved: () => void }) {
  const d = prefs.backtest_defaults ?? {};
  const [symbol, setSymbol] = useState(d.symbol ?? "BTC");
  const [bars, setBars] = useState(String(d.bars ?? 500));
  const [freq, setFreq] = useState(d.freq ?? "1h");
  const [cash, setCash] = useState(d.cash ?? "10000");
  const [commission, setCommission] = useState(d.commission ?? "0.001");
  const [error, setError] = useState<string | null>(null);
  const [notice, setNotice] = useState<string | null>(null);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setNotice(null);
    const n = Number(bars);
    if (!/^[A-Za-z0-9._:/-]{1,32}$/.test(symbol.trim()))
      return setError("symbol: 1-32 letters, digits or ._:/-");
    if (!Number.isInteger(n) || n < 50 || n > 200000)
      return setError("bars: a whole number from 50 to 200000");
    if (!/^\d+(\.\d+)?$/.test(cash.trim()) || Number(cash) <= 0)
      return setError("cash: a positive amount");
    if (!/^\d+(\.\d+)?$/.test(commission.trim()) || Number(commission) >= 0.1)
      return setError("commission: a fraction from 0 to below 0.1");
    setError(null);
    try {
      await api.put("/api/me/prefs", {
        backtest_defaults: {
          symbol: symbol.trim(),
          bars: n,
          freq,
          cash: cash.trim(),
          commission: commission.trim(),
        },
      });
      setNotice("Preferences saved.");
      onSaved();
    } catch (err) {
      setError((err as Error).message);
    }
  };

  return (
    <form className="editor" onSubmit={submit} data-testid="prefs-form" noValidate>
      <div className="form-grid">
        <label>
          Symbol
          <input name="symbol" value={symbol} onChange={(e) => setSymbol(e.target.value)} />
        </label>
        <label>
          Bars
          <input name="bars" value={bars} onChange={(e) => setBars(e.target.value)} />
        </label>
        <label>
          Bar interval
          <select name="freq" value={freq} onChange={(e) => setFreq(e.target.value)}>
            <Options values={FREQS} />
          </select>
        </label>
        <label>
          Cash
          <input name="cash" value={cash} onChange={(e) => setCash(e.target.value)} />
        </label>
        <label>
          Commission
          <input
            name="commission"
            value={commission}
            onChange={(e) => setCommission(e.target.value)}
          />
        </label>
      </div>
      <ErrorBox error={error} />
      {notice && (
        <p className="notice" role="status">
          {notice}
        </p>
      )}
      <button type="submit">Save preferences</button>
    </form>
  );
}

export function Profile() {
  const { session } = useAppState();
  const prefs = useApi<Prefs>("/api/me/prefs");
  return (
    <div className="page">
      <h1>Profile</h1>
      <Card title="You" testId="profile">
        <table className="compact kv">
          <tbody>
            <tr>
              <th>User</th>
              <td>{session.username}</td>
            </tr>
            <tr>
              <th>Role</th>
              <td>
                <span className={`badge role-${session.role}`}>{session.role}</span>{" "}
                <span className="muted">
                  {session.role === "admin"
                    ? "everything, including users and the kill switch"
                    : session.role === "trader"
                      ? "read, run backtests, change parameters, rate simulations"
                      : "read only"}
                </span>
              </td>
            </tr>
            <tr>
              <th>Session until</th>
              <td>
                <Ts value={session.refreshExpiresAt ?? session.expiresAt} />
              </td>
            </tr>
          </tbody>
        </table>
      </Card>
      <Card title="Report preferences" testId="report-prefs">
        <ErrorBox error={prefs.error} />
        {prefs.data && <ReportPrefsForm prefs={prefs.data} onSaved={prefs.reload} />}
      </Card>
      {hasRole(session.role, "trader") && (
        <Card title="Backtest defaults">
          <ErrorBox error={prefs.error} />
          {prefs.data && <BacktestDefaultsForm prefs={prefs.data} onSaved={prefs.reload} />}
        </Card>
      )}
    </div>
  );
}
