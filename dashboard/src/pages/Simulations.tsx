import { useState, type FormEvent } from "react";
import { api, items } from "../api";
import { firstStat, type Row } from "../backtest";
import { Card, ErrorBox, Money, Table, Ts } from "../components/ui";
import { useAppState } from "../context";
import { formatStat, hasRole } from "../format";
import { useApi } from "../hooks";

function Stars({ rating }: { rating: unknown }) {
  const n = typeof rating === "number" ? rating : Number(rating);
  if (!n) return <span className="muted">unrated</span>;
  return (
    <span className="stars" aria-label={`${n} of 5`} title={`${n} of 5`}>
      {"★".repeat(n)}
      <span className="muted">{"☆".repeat(5 - n)}</span>
    </span>
  );
}

function RatingForm({ run, onSaved }: { run: Row; onSaved: () => void }) {
  const [rating, setRating] = useState(String(run.rating ?? ""));
  const [comment, setComment] = useState(String(run.comment ?? ""));
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    const n = Number(rating);
    if (!Number.isInteger(n) || n < 1 || n > 5) {
      setError("rating: choose 1 to 5");
      return;
    }
    setBusy(true);
    setError(null);
    try {
      await api.post(`/api/sim/runs/${String(run.id)}/rating`, { rating: n, comment });
      onSaved();
    } catch (err) {
      setError((err as Error).message);
    } finally {
      setBusy(false);
    }
  };
  return (
    <form className="inline-form" onSubmit={submit} data-testid={`rate-${String(run.id)}`}>
      <select
        name="rating"
        value={rating}
        onChange={(e) => setRating(e.target.value)}
        aria-label="Rating"
      >
        <option value="">rate…</option>
        {[1, 2, 3, 4, 5].map((n) => (
          <option key={n} value={n}>
            {n}
          </option>
        ))}
      </select>
      <input
        name="comment"
        value={comment}
        placeholder="comment"
        aria-label="Comment"
        onChange={(e) => setComment(e.target.value)}
      />
      <button type="submit" className="small" disabled={busy}>
        Save
      </button>
      {error && <small className="field-error">{error}</small>}
    </form>
  );
}

export function Simulations() {
  const { session } = useAppState();
  const canRate = hasRole(session.role, "trader");
  const runs = useApi<unknown>("/api/sim/runs");
  return (
    <div className="page">
      <h1>Simulation runs</h1>
      <Card title="Paper runs" testId="sim-runs">
        <ErrorBox error={runs.error} />
        <Table
          testId="sim-table"
          rows={items<Row>(runs.data)}
          empty="No simulation runs."
          rowKey={(r) => String(r.id)}
          columns={[
            { key: "id", label: "#", render: (r) => `#${String(r.id)}` },
            { key: "strategy", label: "Strategy", render: (r) => String(r.strategy) },
            { key: "symbol", label: "Symbol", render: (r) => String(r.symbol) },
            { key: "status", label: "Status", render: (r) => String(r.status ?? "—") },
            { key: "started_at", label: "Started", render: (r) => <Ts value={r.started_at} /> },
            {
              key: "initial_cash",
              label: "Initial",
              numeric: true,
              render: (r) => <Money value={r.initial_cash} />,
            },
            {
              key: "final_equity",
              label: "Final",
              numeric: true,
              render: (r) => <Money value={r.final_equity} />,
            },
            {
              key: "ret",
              label: "Return",
              numeric: true,
              render: (r) => {
                const v = firstStat(r, "total_return_pct");
                return v == null ? "—" : `${formatStat(v)}%`;
              },
            },
            { key: "rating", label: "Rating", render: (r) => <Stars rating={r.rating} /> },
            { key: "comment", label: "Comment", render: (r) => String(r.comment || "—") },
            ...(canRate
              ? [
                  {
                    key: "rate",
                    label: "Your rating",
                    render: (r: Row) => <RatingForm run={r} onSaved={runs.reload} />,
                  },
                ]
              : []),
          ]}
        />
      </Card>
    </div>
  );
}
