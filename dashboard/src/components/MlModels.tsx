import { Badge, Card, ErrorBox, Money, Table, timeColumn, Ts } from "./ui";
import { formatStat } from "../format";
import { useApi } from "../hooks";
import type { Schema } from "../schema";

type GateComparison = Schema<"GateComparison">;
type MlModel = Schema<"MLModelOut">;

const pct = (v: number) => `${formatStat(100 * v)}%`;

function perStrategy(gate: GateComparison): string {
  return Object.entries(gate.strategies)
    .map(
      ([name, r]) =>
        `${name}: ${formatStat(r.gated.return_pct)}% gated vs ${formatStat(r.ungated.return_pct)}%` +
        ` (${r.gated.trades} vs ${r.ungated.trades} trades, ${r.gated.vetoes} vetoed)`,
    )
    .join(" · ");
}

/** The ML entry gate's model versions per symbol with their out-of-sample comparison: a
 * version gates the bot's entries only when it beat both the naive baseline and the ungated
 * strategies on its test window. */
export function MlModels() {
  const models = useApi<MlModel[]>("/api/ml/models?limit=100");
  return (
    <Card title="ML entry gate: model versions" testId="ml-models">
      <ErrorBox error={models.error} />
      <Table
        testId="ml-models-table"
        rows={models.data ?? []}
        empty="No model yet (the ml_tune job trains one per symbol on the recorded bars)."
        rowKey={(m) => `${m.symbol}-${m.version}`}
        columns={[
          { key: "symbol", label: "Symbol" },
          { key: "version", label: "Version", numeric: true },
          timeColumn("created_at", "Trained"),
          {
            key: "active",
            label: "Gating",
            render: (m) =>
              m.active ? <Badge kind="good">in use</Badge> : <Badge kind="warn">not used</Badge>,
          },
          {
            key: "accuracy",
            label: "Accuracy vs baseline",
            render: (m) => `${pct(m.accuracy)} vs ${pct(m.baseline_accuracy)} (${m.n_test} bars)`,
          },
          {
            key: "window",
            label: "Test window",
            render: (m) =>
              m.gate ? (
                <>
                  <Ts value={m.gate.start} /> → <Ts value={m.gate.end} />
                </>
              ) : (
                "—"
              ),
          },
          {
            key: "gated",
            label: "Net gated",
            numeric: true,
            render: (m) => (m.gate ? <Money value={m.gate.gated_pnl} signed /> : "—"),
          },
          {
            key: "ungated",
            label: "Net ungated",
            numeric: true,
            render: (m) => (m.gate ? <Money value={m.gate.ungated_pnl} signed /> : "—"),
          },
          {
            key: "vetoes",
            label: "Vetoes",
            numeric: true,
            render: (m) => (m.gate ? String(m.gate.vetoes) : "—"),
          },
          {
            key: "strategies",
            label: "Per strategy",
            render: (m) => <span className="small">{m.gate ? perStrategy(m.gate) : "—"}</span>,
          },
        ]}
      />
    </Card>
  );
}
