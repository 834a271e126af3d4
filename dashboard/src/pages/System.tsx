import { useState } from "react";
import { api, items } from "../api";
import { StatusPanel } from "../components/StatusPanel";
import { Badge, Card, ErrorBox, Table, timeColumn, Ts } from "../components/ui";
import { useAppState } from "../context";
import { formatLabels, formatLimit, formatStat, hasRole, humanize } from "../format";
import { useApi, useEvery } from "../hooks";
import type { Schema } from "../schema";

type ScheduledJob = Schema<"ScheduledJobOut">;
type JobRun = Schema<"JobRunOut">;
type ComponentStatus = Schema<"Component">;
type Health = Schema<"Health">;

const STATE_KIND: Record<ComponentStatus["state"], string> = {
  running: "good",
  restarting: "warn",
  down: "error",
};

/** The supervised components of the process serving the API (none under `sigma api`). */
function Components({ components }: { components: Record<string, ComponentStatus> }) {
  const rows = Object.entries(components).map(([name, c]) => ({ name, ...c }));
  if (rows.length === 0) return null;
  const scheduler = components.scheduler;
  return (
    <div data-testid="components">
      {scheduler && (
        <p className="row" data-testid="scheduler-alive">
          Scheduler{" "}
          <Badge kind={scheduler.state === "down" ? "error" : "good"}>
            {scheduler.state === "down" ? "not running" : "alive"}
          </Badge>
        </p>
      )}
      <Table
        testId="components-table"
        rows={rows}
        rowKey={(c) => c.name}
        columns={[
          { key: "name", label: "Component", render: (c) => <code>{c.name}</code> },
          {
            key: "state",
            label: "State",
            render: (c) => <Badge kind={STATE_KIND[c.state]}>{c.state}</Badge>,
          },
          timeColumn("since", "Since"),
          { key: "restarts", label: "Restarts", numeric: true },
          { key: "last_error", label: "Last error", render: (c) => c.last_error ?? "—" },
        ]}
      />
    </div>
  );
}

function outcomeKind(outcome: string | null): string | undefined {
  if (!outcome) return undefined;
  if (outcome === "ok" || outcome === "success" || outcome === "done") return "good";
  if (outcome === "running") return "warn";
  return "error";
}

function Runs({ jobId }: { jobId: string }) {
  const runs = useApi<unknown>(`/api/jobs/${encodeURIComponent(jobId)}/runs?limit=10`);
  return (
    <div className="history" data-testid={`runs-${jobId}`}>
      <ErrorBox error={runs.error} />
      <Table
        rows={items<JobRun>(runs.data)}
        empty="Not run yet."
        rowKey={(r) => r.id}
        columns={[
          timeColumn("started_at", "Started"),
          timeColumn("ended_at", "Ended"),
          {
            key: "outcome",
            label: "Outcome",
            render: (r) => <Badge kind={outcomeKind(r.outcome)}>{r.outcome}</Badge>,
          },
          { key: "error", label: "Error", render: (r) => r.error ?? "—" },
        ]}
      />
    </div>
  );
}

function ScheduledJobs() {
  const { session } = useAppState();
  const isAdmin = hasRole(session.role, "admin");
  const jobs = useApi<unknown>("/api/jobs");
  const [open, setOpen] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const rows = items<ScheduledJob>(jobs.data);
  useEvery(() => {
    if (rows.some((j) => j.running)) jobs.reload();
  }, 2000);

  const act = async (job: ScheduledJob, action: "pause" | "resume" | "trigger" | "cancel") => {
    setError(null);
    try {
      await api.post(`/api/jobs/${encodeURIComponent(job.id)}/${action}`);
      jobs.reload();
    } catch (err) {
      setError((err as Error).message);
    }
  };

  return (
    <Card title="Scheduled jobs" testId="scheduled-jobs">
      {jobs.status === 503 ? (
        <p className="muted" data-testid="scheduler-unavailable">
          The scheduler is not running here: {jobs.error}
        </p>
      ) : (
        <>
          <ErrorBox error={jobs.error ?? error} />
          <Table
            testId="jobs-schedule-table"
            rows={rows}
            empty="No scheduled jobs."
            rowKey={(j) => j.id}
            columns={[
              { key: "id", label: "Job", render: (j) => <code>{j.id}</code> },
              { key: "description", label: "What", wrap: true },
              {
                key: "trigger",
                label: "When",
                wrap: true,
                render: (j) => <code>{j.trigger}</code>,
              },
              {
                key: "next_run",
                label: "Next run",
                render: (j) =>
                  j.paused ? <Badge kind="warn">paused</Badge> : <Ts value={j.next_run} />,
              },
              {
                key: "last",
                label: "Last run",
                render: (j) =>
                  j.running ? (
                    <span>
                      running{" "}
                      {j.running.total ? Math.round((100 * j.running.done) / j.running.total) : 0}%
                    </span>
                  ) : j.last_outcome ? (
                    <span>
                      <Badge kind={outcomeKind(j.last_outcome)}>{j.last_outcome}</Badge>{" "}
                      <Ts value={j.last_started} />
                    </span>
                  ) : (
                    "—"
                  ),
              },
              {
                key: "actions",
                label: "",
                render: (j) => (
                  <div className="row" data-testid={`job-${j.id}`}>
                    <button
                      type="button"
                      className="link"
                      onClick={() => setOpen(open === j.id ? null : j.id)}
                    >
                      Runs
                    </button>
                    {isAdmin && (
                      <>
                        {j.paused ? (
                          <button
                            type="button"
                            className="small secondary"
                            onClick={() => void act(j, "resume")}
                          >
                            Resume
                          </button>
                        ) : (
                          <button
                            type="button"
                            className="small secondary"
                            onClick={() => void act(j, "pause")}
                          >
                            Pause
                          </button>
                        )}
                        <button
                          type="button"
                          className="small secondary"
                          onClick={() => void act(j, "trigger")}
                        >
                          Run now
                        </button>
                        {j.running && (
                          <button
                            type="button"
                            className="small danger"
                            onClick={() => void act(j, "cancel")}
                          >
                            Cancel
                          </button>
                        )}
                      </>
                    )}
                  </div>
                ),
              },
            ]}
          />
          {open && <Runs key={open} jobId={open} />}
        </>
      )}
    </Card>
  );
}

type RiskLimits = Schema<"RiskLimitsOut">;
type MetricSample = Schema<"MetricSample">;

function Limits() {
  const limits = useApi<RiskLimits>("/api/risk/limits");
  const l = limits.data;
  return (
    <Card title="Risk limits" testId="risk-limits">
      <ErrorBox error={limits.error} />
      {l && (
        <table className="compact kv">
          <tbody>
            <tr>
              <th>Order notional</th>
              <td data-testid="limit-max_order_notional">{formatLimit(l.max_order_notional)}</td>
            </tr>
            <tr>
              <th>Position notional</th>
              <td>{formatLimit(l.max_position_notional)}</td>
            </tr>
            <tr>
              <th>Open orders</th>
              <td>{formatLimit(l.max_open_orders)}</td>
            </tr>
            <tr>
              <th>Daily loss</th>
              <td>{formatLimit(l.max_daily_loss)}</td>
            </tr>
            <tr>
              <th>Drawdown</th>
              <td data-testid="limit-max_drawdown">{formatLimit(l.max_drawdown, true)}</td>
            </tr>
          </tbody>
        </table>
      )}
    </Card>
  );
}

function Metrics() {
  const metrics = useApi<unknown>("/api/metrics");
  useEvery(metrics.reload, 15_000);
  const [filter, setFilter] = useState("");
  const rows = items<MetricSample>(metrics.data).filter((m) => m.name.includes(filter.trim()));
  return (
    <Card
      title="Metrics"
      testId="metrics"
      actions={
        <input
          name="metric-filter"
          value={filter}
          placeholder="filter by name"
          aria-label="Filter metrics"
          onChange={(e) => setFilter(e.target.value)}
        />
      }
    >
      <ErrorBox error={metrics.error} />
      <Table
        testId="metrics-table"
        rows={rows}
        empty="No metrics recorded yet."
        rowKey={(m) => `${m.name}{${formatLabels(m.labels)}}`}
        columns={[
          { key: "name", label: "Metric", wrap: true, render: (m) => <code>{m.name}</code> },
          {
            key: "labels",
            label: "Labels",
            wrap: true,
            render: (m) => formatLabels(m.labels) || "—",
          },
          { key: "value", label: "Value", numeric: true, render: (m) => formatStat(m.value) },
        ]}
      />
    </Card>
  );
}

export function System() {
  const health = useApi<Health>("/api/health");
  useEvery(health.reload, 15_000);
  return (
    <div className="page">
      <h1>System</h1>
      <Card title="Health" testId="system-health">
        <ErrorBox error={health.error} />
        {health.data && (
          <p className="row">
            <Badge kind={health.data.status === "ok" ? "good" : "warn"}>{health.data.status}</Badge>
            {Object.entries(health.data.checks ?? {}).map(([k, v]) => (
              <span key={k}>
                {humanize(k)} <Badge kind={v === "ok" ? "good" : "warn"}>{v}</Badge>
              </span>
            ))}
            {health.data.version && <span className="muted">SIGMA v{health.data.version}</span>}
          </p>
        )}
        {health.data?.components && <Components components={health.data.components} />}
      </Card>
      <StatusPanel />
      <ScheduledJobs />
      <div className="grid">
        <Limits />
        <Metrics />
      </div>
    </div>
  );
}
