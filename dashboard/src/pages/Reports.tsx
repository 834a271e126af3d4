import { useState } from "react";
import { downloadAuthed, items, openAuthed, qs, reportPath, type ReportFormat } from "../api";
import { Card, ErrorBox, Loading, Options, Table, Ts } from "../components/ui";
import { formatStat, humanize } from "../format";
import { useApi } from "../hooks";
import { REPORT_KINDS, type Prefs, type ReportPrefs } from "./Profile";
import type { Schema } from "../schema";

type Report = Schema<"ReportOut">;

const HEADLINE = ["total_return_pct", "realized_pnl", "n_trades", "fees", "sharpe"];

function headline(stats: Report["stats"]): string {
  const keys = HEADLINE.filter((k) => k in stats);
  const shown = (keys.length ? keys : Object.keys(stats).slice(0, 4)).map(
    (k) => `${humanize(k)} ${formatStat(stats[k])}`,
  );
  return shown.join(" · ") || "—";
}

export function Reports() {
  const prefs = useApi<Prefs>("/api/me/prefs");
  if (!prefs.data && !prefs.error) return <Loading when />;
  // The preferences only choose where the page starts; without them it lists everything.
  return <ReportList prefs={prefs.data?.report_prefs ?? {}} />;
}

function ReportList({ prefs }: { prefs: ReportPrefs }) {
  const [kind, setKind] = useState(prefs.kind ?? "");
  const format: ReportFormat = prefs.format ?? "html";
  const reports = useApi<unknown>(`/api/reports${qs({ kind, limit: 200 })}`);
  const [error, setError] = useState<string | null>(null);
  const rows = items<Report>(reports.data);
  const kinds = [...new Set([...REPORT_KINDS, ...rows.map((r) => r.kind)])];
  return (
    <div className="page">
      <h1>Reports</h1>
      <Card
        title="Performance reports"
        testId="reports"
        actions={
          <select value={kind} onChange={(e) => setKind(e.target.value)} aria-label="Kind">
            <option value="">all kinds</option>
            <Options values={kinds} />
          </select>
        }
      >
        <ErrorBox error={reports.error ?? error} />
        <Table
          testId="reports-table"
          rows={rows}
          empty="No reports yet (the weekly report job writes them)."
          rowKey={(r) => r.id}
          columns={[
            { key: "kind", label: "Kind" },
            {
              key: "period",
              label: "Period",
              render: (r) => (
                <>
                  <Ts value={r.period_start} /> → <Ts value={r.period_end} />
                </>
              ),
            },
            { key: "strategy", label: "Strategy", render: (r) => r.strategy ?? "all" },
            { key: "mode", label: "Mode", render: (r) => r.mode ?? "all" },
            {
              key: "stats",
              label: "Figures",
              render: (r) => <span className="small">{headline(r.stats ?? {})}</span>,
            },
            {
              key: "file",
              label: "",
              render: (r) =>
                r.has_file ? (
                  <div className="row">
                    <button
                      type="button"
                      className="link"
                      onClick={() =>
                        void openAuthed(reportPath(r.id, format)).catch((e: Error) =>
                          setError(e.message),
                        )
                      }
                    >
                      View
                    </button>
                    <button
                      type="button"
                      className="link"
                      onClick={() =>
                        void downloadAuthed(
                          reportPath(r.id, format, true),
                          `sigma-${r.kind}-${r.id}.${format}`,
                        ).catch((e: Error) => setError(e.message))
                      }
                    >
                      Download
                    </button>
                  </div>
                ) : (
                  <span className="muted">no file</span>
                ),
            },
          ]}
        />
      </Card>
    </div>
  );
}
