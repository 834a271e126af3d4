// What the status panel shows: the supervised components of /api/health (when the API reports
// them) and whether the scheduler is alive, judged from its jobs' next run times.
import type { Schema } from "./schema";

/** A supervised component of /api/health, with the name it is keyed by there. */
export type Component = Schema<"Component"> & { name: string };

/** What the scheduler check reads of a job of /api/jobs. */
export type JobTimes = Pick<Schema<"ScheduledJobOut">, "id" | "next_run" | "paused">;

/** `components` of a health answer as a list, whether sent as a list or keyed by name; []
 * when absent or malformed. */
export function componentsOf(health: unknown): Component[] {
  if (!health || typeof health !== "object") return [];
  const raw = (health as { components?: unknown }).components;
  if (Array.isArray(raw))
    return raw.filter((c): c is Component => !!c && typeof c === "object" && "name" in c);
  if (raw && typeof raw === "object")
    return Object.entries(raw as Record<string, Omit<Component, "name">>).map(([name, c]) => ({
      ...c,
      name,
    }));
  return [];
}

/** Badge kind of a component state. */
export function stateKind(state: string): string {
  if (state === "running" || state === "ok") return "good";
  if (state === "restarting" || state === "starting") return "warn";
  return "error";
}

/** How late a job may be before the scheduler counts as stalled (a run in progress, a slow
 * wake-up). */
export const SCHEDULER_GRACE_MS = 90_000;

/** The scheduler is alive when no active job's next run is overdue by more than the grace;
 * null when there is nothing to judge by (no jobs, or every job paused). Returns the overdue
 * jobs too. */
export function schedulerAlive(
  jobs: JobTimes[],
  now: number,
): { alive: boolean | null; overdue: string[] } {
  const active = jobs.filter((j) => !j.paused && j.next_run);
  if (active.length === 0) return { alive: null, overdue: [] };
  const overdue = active
    .filter((j) => new Date(j.next_run!).getTime() < now - SCHEDULER_GRACE_MS)
    .map((j) => j.id);
  return { alive: overdue.length === 0, overdue };
}
