import { useEffect, useState } from "react";
import { items, qs } from "../api";
import { Badge, Card, ErrorBox, Table, timeColumn } from "../components/ui";
import { useAppState } from "../context";
import { formatStat } from "../format";
import { useApi } from "../hooks";
import type { Schema } from "../schema";

function detailsText(d: unknown): string {
  if (!d || typeof d !== "object") return d == null ? "—" : String(d);
  const entries = Object.entries(d);
  if (entries.length === 0) return "—";
  return entries.map(([k, v]) => `${k}=${formatStat(v)}`).join(", ");
}

type News = Schema<"NewsOut">;
type Alert = Schema<"AlertOut">;
type Action = Schema<"ActionOut">;

export function Alerts() {
  const { events } = useAppState();
  const [severity, setSeverity] = useState("");
  const alerts = useApi<unknown>(`/api/alerts${qs({ severity, limit: 200 })}`);
  const actions = useApi<unknown>(`/api/actions${qs({ limit: 200 })}`);
  const news = useApi<unknown>(`/api/news${qs({ limit: 50 })}`);
  // New alerts arrive on /ws: re-read the log when one does.
  const latest = events[0];
  const { reload } = alerts;
  useEffect(() => {
    if (latest?.channel === "alerts") reload();
  }, [latest, reload]);
  return (
    <div className="page">
      <h1>Alerts &amp; bot actions</h1>
      {events.length > 0 && (
        <Card title="Live events" testId="live-events">
          <ul className="events">
            {events.slice(0, 10).map((e, i) => (
              <li key={i}>
                <Badge>{e.channel}</Badge> <code>{detailsText(e.data)}</code>
              </li>
            ))}
          </ul>
        </Card>
      )}
      <Card
        title="Alerts"
        testId="alerts"
        actions={
          <select
            value={severity}
            onChange={(e) => setSeverity(e.target.value)}
            aria-label="Severity"
          >
            <option value="">all severities</option>
            <option value="info">info</option>
            <option value="warning">warning</option>
            <option value="error">error</option>
            <option value="critical">critical</option>
          </select>
        }
      >
        <ErrorBox error={alerts.error} />
        <Table
          testId="alerts-table"
          rows={items<Alert>(alerts.data)}
          empty="No alerts."
          rowKey={(r) => Number(r.id)}
          columns={[
            timeColumn("last_seen", "Last seen"),
            {
              key: "severity",
              label: "Severity",
              render: (r) => <Badge kind={String(r.severity)}>{String(r.severity)}</Badge>,
            },
            { key: "source", label: "Source", render: (r) => String(r.source ?? "—") },
            {
              key: "message",
              label: "Message",
              wrap: true,
              render: (r) => String(r.message ?? ""),
            },
            {
              key: "count",
              label: "Count",
              numeric: true,
              render: (r) =>
                Number(r.count ?? 1) > 1 ? (
                  <Badge kind="warn">
                    <span data-testid="alert-count">×{Number(r.count)}</span>
                  </Badge>
                ) : (
                  "1"
                ),
            },
            timeColumn("ts", "First seen"),
          ]}
        />
      </Card>
      <Card title="Bot actions" testId="actions">
        <ErrorBox error={actions.error} />
        <Table
          testId="actions-table"
          rows={items<Action>(actions.data)}
          empty="No actions logged."
          columns={[
            timeColumn("ts", "Time"),
            { key: "action", label: "Action", render: (r) => <Badge>{String(r.action)}</Badge> },
            { key: "source", label: "Source", render: (r) => String(r.source ?? "—") },
            { key: "mode", label: "Mode", render: (r) => String(r.mode ?? "—") },
            { key: "strategy", label: "Strategy", render: (r) => String(r.strategy ?? "—") },
            { key: "symbol", label: "Symbol", render: (r) => String(r.symbol ?? "—") },
            {
              key: "details",
              label: "Details",
              render: (r) => <code>{detailsText(r.details)}</code>,
            },
          ]}
        />
      </Card>
      <Card title="News" testId="news">
        {news.status === 503 ? (
          <p className="muted" data-testid="news-unavailable">
            News scoring is not running here: {news.error}
          </p>
        ) : (
          <ErrorBox error={news.error} />
        )}
        {news.status !== 503 && (
          <Table
            testId="news-table"
            rows={items<News>(news.data)}
            empty="No news received."
            columns={[
              timeColumn("ts", "Time"),
              { key: "headline", label: "Headline" },
              {
                key: "symbols",
                label: "Symbols",
                render: (r) => (r.symbols ?? []).join(", ") || "—",
              },
              {
                key: "sentiment",
                label: "Sentiment",
                numeric: true,
                render: (r) => formatStat(r.sentiment),
              },
              {
                key: "risk",
                label: "Risk",
                render: (r) =>
                  r.halt_entries ? (
                    <Badge kind="error">entries halted</Badge>
                  ) : r.high_risk ? (
                    <Badge kind="warn">high risk</Badge>
                  ) : (
                    "—"
                  ),
              },
            ]}
          />
        )}
      </Card>
    </div>
  );
}
