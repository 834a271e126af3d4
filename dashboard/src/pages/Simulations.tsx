import { useState, type FormEvent } from "react";
import { api, items } from "../api";
import {
  Card,
  ErrorBox,
  moneyColumn,
  numberColumn,
  Options,
  Table,
  timeColumn,
} from "../components/ui";
import { useAppState } from "../context";
import { formatStat, hasRole } from "../format";
import { useApi } from "../hooks";
import type { Schema } from "../schema";

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

type SimRun = Schema<"SimRunOut">;
type SimOrder = Schema<"SimOrderOut">;

function RatingForm({ run, onSaved }: { run: SimRun; onSaved: () => void }) {
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
        <Options values={[1, 2, 3, 4, 5]} />
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

function RunOrders({ runId }: { runId: string }) {
  const orders = useApi<unknown>(`/api/sim/runs/${runId}/orders?limit=1000`);
  return (
    <Card title={`Orders of run #${runId}`} testId={`sim-orders-${runId}`}>
      <ErrorBox error={orders.error} />
      <Table
        testId="sim-orders-table"
        rows={items<SimOrder>(orders.data)}
        empty="This run placed no orders."
        rowKey={(o) => String(o.id)}
        columns={[
          timeColumn("ts", "At"),
          { key: "symbol", label: "Symbol" },
          { key: "side", label: "Side" },
          { key: "type", label: "Type" },
          numberColumn("qty", "Qty"),
          moneyColumn("limit_price", "Limit"),
          { key: "status", label: "Status" },
          moneyColumn("fill_price", "Fill price"),
          moneyColumn("fee", "Fee"),
        ]}
      />
    </Card>
  );
}

export function Simulations() {
  const { session } = useAppState();
  const canRate = hasRole(session.role, "trader");
  const runs = useApi<unknown>("/api/sim/runs");
  const [open, setOpen] = useState<string | null>(null);
  return (
    <div className="page">
      <h1>Simulation runs</h1>
      <Card title="Paper runs" testId="sim-runs">
        <ErrorBox error={runs.error} />
        <Table
          testId="sim-table"
          rows={items<SimRun>(runs.data)}
          empty="No simulation runs."
          rowKey={(r) => String(r.id)}
          columns={[
            { key: "id", label: "#", render: (r) => `#${String(r.id)}` },
            { key: "strategy", label: "Strategy", render: (r) => String(r.strategy) },
            { key: "symbol", label: "Symbol", render: (r) => String(r.symbol) },
            { key: "status", label: "Status", render: (r) => String(r.status ?? "—") },
            timeColumn("started_at", "Started"),
            moneyColumn("initial_cash", "Initial"),
            moneyColumn("final_equity", "Final"),
            {
              key: "ret",
              label: "Return",
              numeric: true,
              render: (r) => {
                const v = r.stats.total_return_pct;
                return v == null ? "—" : `${formatStat(v)}%`;
              },
            },
            { key: "rating", label: "Rating", render: (r) => <Stars rating={r.rating} /> },
            { key: "comment", label: "Comment", render: (r) => String(r.comment || "—") },
            {
              key: "orders",
              label: "",
              render: (r) => (
                <button
                  type="button"
                  className="link"
                  data-testid={`sim-orders-toggle-${String(r.id)}`}
                  onClick={() => setOpen(open === String(r.id) ? null : String(r.id))}
                >
                  Orders
                </button>
              ),
            },
            ...(canRate
              ? [
                  {
                    key: "rate",
                    label: "Your rating",
                    render: (r: SimRun) => <RatingForm run={r} onSaved={runs.reload} />,
                  },
                ]
              : []),
          ]}
        />
      </Card>
      {open && <RunOrders key={open} runId={open} />}
    </div>
  );
}
