import { useEffect, useRef, useState, type FormEvent } from "react";
import { api, items } from "../api";
import {
  collectParams,
  initialValues,
  ParamFields,
  type ParamSpecs,
} from "../components/ParamFields";
import { LiveControls } from "../components/LiveControls";
import { Card, ErrorBox, Table, timeColumn, Ts } from "../components/ui";
import { useAppState } from "../context";
import { formatStat, hasRole } from "../format";
import { useApi } from "../hooks";
import type { Schema } from "../schema";

export type StrategyInfo = Schema<"StrategyOut">;
type ActiveParams = Schema<"ActiveParams">;
type ParamChange = Schema<"ParamChangeOut">;

function paramsText(p: Record<string, unknown> | null | undefined): string {
  if (!p) return "—";
  return Object.entries(p)
    .map(([k, v]) => `${k}=${formatStat(v)}`)
    .join(", ");
}

function ParamEditor({
  strategy,
  symbol: initialSymbol,
  specs,
  current,
  onSaved,
  onCancel,
}: {
  strategy: string;
  symbol?: string;
  specs: ParamSpecs;
  current?: Record<string, unknown>;
  onSaved: () => void;
  onCancel: () => void;
}) {
  const [symbol, setSymbol] = useState(initialSymbol ?? "");
  const [values, setValues] = useState(() => initialValues(specs, current));
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [reason, setReason] = useState("");
  const [serverError, setServerError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const formRef = useRef<HTMLFormElement>(null);
  useEffect(() => {
    // Newer browsers return a promise here; an effect must return nothing or a cleanup.
    void formRef.current?.scrollIntoView?.({ block: "nearest" });
  }, []);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    const { params, errors: errs } = collectParams(specs, values);
    if (!symbol.trim()) errs.__symbol = "symbol: required";
    setErrors(errs);
    setServerError(null);
    if (Object.keys(errs).length > 0) return;
    setBusy(true);
    try {
      await api.put(
        `/api/params/${encodeURIComponent(strategy)}/${encodeURIComponent(symbol.trim())}`,
        { params, reason },
      );
      onSaved();
    } catch (err) {
      setServerError((err as Error).message);
    } finally {
      setBusy(false);
    }
  };

  return (
    <form
      ref={formRef}
      className="editor"
      onSubmit={submit}
      data-testid={`param-editor-${strategy}`}
      noValidate
    >
      <h3>
        {strategy} parameters{initialSymbol ? ` on ${initialSymbol}` : ""}
      </h3>
      {!initialSymbol && (
        <label className={errors.__symbol ? "invalid" : undefined}>
          Symbol
          <input name="symbol" value={symbol} onChange={(e) => setSymbol(e.target.value)} />
          {errors.__symbol && <small className="field-error">{errors.__symbol}</small>}
        </label>
      )}
      <ParamFields
        idPrefix={`p-${strategy}`}
        specs={specs}
        values={values}
        errors={errors}
        onChange={(n, v) => setValues((s) => ({ ...s, [n]: v }))}
      />
      <label>
        Reason
        <input
          name="reason"
          value={reason}
          placeholder="why this change"
          onChange={(e) => setReason(e.target.value)}
        />
      </label>
      <ErrorBox error={serverError} />
      <div className="row">
        <button type="submit" disabled={busy}>
          {busy ? "Saving…" : "Save parameters"}
        </button>
        <button type="button" className="secondary" onClick={onCancel}>
          Cancel
        </button>
      </div>
    </form>
  );
}

function History({ strategy, symbol }: { strategy: string; symbol: string }) {
  const h = useApi<unknown>(
    `/api/params/${encodeURIComponent(strategy)}/${encodeURIComponent(symbol)}/history`,
  );
  return (
    <div className="history">
      <ErrorBox error={h.error} />
      <Table
        rows={items<ParamChange>(h.data)}
        empty="No changes recorded."
        columns={[
          { key: "ts", label: "When", render: (r) => <Ts value={r.ts} /> },
          { key: "version", label: "Version", render: (r) => String(r.version) },
          { key: "old", label: "From", render: (r) => paramsText(r.old) },
          { key: "new", label: "To", render: (r) => paramsText(r.new) },
          { key: "changed_by", label: "By", render: (r) => r.changed_by },
          { key: "reason", label: "Reason", render: (r) => r.reason || "—" },
        ]}
      />
    </div>
  );
}

export function Strategies() {
  const { session } = useAppState();
  const canEdit = hasRole(session.role, "trader");
  const strategies = useApi<StrategyInfo[]>("/api/strategies");
  const active = useApi<unknown>("/api/params");
  const [editing, setEditing] = useState<{ strategy: string; symbol?: string } | null>(null);
  const [showHistory, setShowHistory] = useState<string | null>(null);
  const [saved, setSaved] = useState<string | null>(null);
  const specsOf = (name: string): ParamSpecs =>
    strategies.data?.find((s) => s.name === name)?.params ?? {};
  const rows = items<ActiveParams>(active.data);

  const editor = editing && (
    <ParamEditor
      key={`${editing.strategy}/${editing.symbol ?? ""}`}
      strategy={editing.strategy}
      symbol={editing.symbol}
      specs={specsOf(editing.strategy)}
      current={
        rows.find((r) => r.strategy === editing.strategy && r.symbol === editing.symbol)?.params
      }
      onCancel={() => setEditing(null)}
      onSaved={() => {
        setSaved(`Saved ${editing.strategy} parameters.`);
        setEditing(null);
        active.reload();
      }}
    />
  );

  return (
    <div className="page">
      <h1>Strategies</h1>
      {saved && (
        <p className="notice" role="status">
          {saved}
        </p>
      )}
      {editor}
      <LiveControls canAct={canEdit} onParams={active.reload} />
      <Card title="Active parameters" testId="active-params">
        <ErrorBox error={active.error} />
        <Table
          testId="params-table"
          rows={rows}
          empty="No parameters set yet."
          rowKey={(r) => `${r.strategy}/${r.symbol}`}
          columns={[
            { key: "strategy", label: "Strategy" },
            { key: "symbol", label: "Symbol" },
            {
              key: "params",
              label: "Parameters",
              render: (r) => <code>{paramsText(r.params)}</code>,
            },
            { key: "changed_by", label: "Changed by", render: (r) => r.changed_by },
            { key: "reason", label: "Reason", render: (r) => r.reason || "—" },
            timeColumn("updated_at", "Updated"),
            {
              key: "actions",
              label: "",
              render: (r) => (
                <div className="row">
                  <button
                    type="button"
                    className="link"
                    onClick={() =>
                      setShowHistory(
                        showHistory === `${r.strategy}/${r.symbol}`
                          ? null
                          : `${r.strategy}/${r.symbol}`,
                      )
                    }
                  >
                    History
                  </button>
                  {canEdit && (
                    <button
                      type="button"
                      className="small"
                      data-testid={`edit-${r.strategy}-${r.symbol}`}
                      onClick={() => {
                        setSaved(null);
                        setEditing({ strategy: r.strategy, symbol: r.symbol });
                      }}
                    >
                      Edit
                    </button>
                  )}
                </div>
              ),
            },
          ]}
        />
        {showHistory && (
          <History
            strategy={showHistory.split("/")[0]}
            symbol={showHistory.split("/").slice(1).join("/")}
          />
        )}
      </Card>
      <Card title="Available strategies" testId="strategies">
        <ErrorBox error={strategies.error} />
        <div className="strategy-list">
          {(strategies.data ?? []).map((s) => (
            <article key={s.name} className="strategy" data-testid={`strategy-${s.name}`}>
              <header className="row spread">
                <h3>{s.name}</h3>
                {canEdit && (
                  <button
                    type="button"
                    className="small secondary"
                    onClick={() => {
                      setSaved(null);
                      setEditing({ strategy: s.name });
                    }}
                  >
                    Set parameters
                  </button>
                )}
              </header>
              {s.description && <p className="muted">{s.description}</p>}
              <table className="compact">
                <thead>
                  <tr>
                    <th>Param</th>
                    <th className="num">Default</th>
                    <th className="num">Low</th>
                    <th className="num">High</th>
                  </tr>
                </thead>
                <tbody>
                  {Object.entries(s.params ?? {}).map(([p, spec]) => (
                    <tr key={p} title={spec.doc}>
                      <td>{p}</td>
                      <td className="num">{formatStat(spec.default)}</td>
                      <td className="num">{formatStat(spec.low)}</td>
                      <td className="num">{formatStat(spec.high)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </article>
          ))}
        </div>
      </Card>
    </div>
  );
}
