import { items } from "../api";
import { componentsOf, schedulerAlive, stateKind, type JobTimes } from "../status";
import { useApi, useEvery } from "../hooks";
import { Badge, Card, ErrorBox, Ts } from "./ui";

/** Is the scheduler alive, and the state of each supervised component (when /api/health
 * reports them): the operator's "is everything running" panel. */
export function StatusPanel() {
  const health = useApi<unknown>("/api/health");
  const jobs = useApi<unknown>("/api/jobs");
  useEvery(() => {
    health.reload();
    jobs.reload();
  }, 15_000);
  const components = componentsOf(health.data);
  const scheduler = schedulerAlive(items<JobTimes>(jobs.data), Date.now());
  return (
    <Card title="Status" testId="status-panel">
      <ErrorBox error={health.error} />
      <ul className="checks">
        <li data-testid="scheduler-alive" data-alive={String(scheduler.alive)}>
          <span>Scheduler</span>
          {jobs.status === 503 ? (
            <Badge>not in this process</Badge>
          ) : jobs.error ? (
            <Badge kind="warn">unknown</Badge>
          ) : scheduler.alive === null ? (
            <Badge kind="warn">no active jobs</Badge>
          ) : scheduler.alive ? (
            <Badge kind="good">alive</Badge>
          ) : (
            <Badge kind="error">stalled: {scheduler.overdue.join(", ")} overdue</Badge>
          )}
        </li>
        {components.map((c) => (
          <li key={c.name} data-testid={`component-${c.name}`} data-state={c.state}>
            <span>
              {c.name}
              {c.last_error ? (
                <span className="muted small" title={c.last_error}>
                  {" "}
                  — {c.last_error}
                </span>
              ) : null}
            </span>
            <span className="row">
              {c.restarts ? <span className="muted small">{c.restarts} restarts</span> : null}
              {c.since ? (
                <span className="muted small">
                  since <Ts value={c.since} />
                </span>
              ) : null}
              <Badge kind={stateKind(c.state)}>{c.state}</Badge>
            </span>
          </li>
        ))}
      </ul>
      {components.length === 0 && !health.error && (
        <p className="muted small">This API reports no supervised components.</p>
      )}
    </Card>
  );
}
