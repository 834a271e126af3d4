import { describe, expect, it } from "vitest";
import { barShapes } from "./portfolio";
import { componentsOf, schedulerAlive, SCHEDULER_GRACE_MS, stateKind } from "./status";

describe("component status", () => {
  it("reads components as a list or keyed by name, and tolerates their absence", () => {
    const c = { name: "bot", state: "running", restarts: 0 };
    expect(componentsOf({ status: "ok", components: [c, null, 3] })).toEqual([c]);
    expect(componentsOf({ components: { bot: { state: "down" } } })).toEqual([
      { name: "bot", state: "down" },
    ]);
    expect(componentsOf({ status: "ok" })).toEqual([]);
    expect(componentsOf(null)).toEqual([]);
    expect([stateKind("running"), stateKind("restarting"), stateKind("down")]).toEqual([
      "good",
      "warn",
      "error",
    ]);
  });
  it("calls the scheduler alive while no active job is overdue", () => {
    const now = Date.parse("2026-12-07T03:00:00Z");
    const soon = { id: "a", next_run: "2026-12-07T03:00:30Z", paused: false };
    const late = {
      id: "b",
      next_run: new Date(now - SCHEDULER_GRACE_MS - 1000).toISOString(),
      paused: false,
    };
    expect(schedulerAlive([soon], now)).toEqual({ alive: true, overdue: [] });
    expect(schedulerAlive([soon, late], now)).toEqual({ alive: false, overdue: ["b"] });
    expect(schedulerAlive([{ ...late, paused: true }], now)).toEqual({
      alive: null,
      overdue: [],
    });
    expect(schedulerAlive([], now).alive).toBeNull();
  });
});

describe("daily profit bars", () => {
  it("draws gains above and losses below one zero line", () => {
    const [gain, loss] = barShapes([10, -5], 100, 100, 0);
    expect(gain).toMatchObject({ up: true, y: 0 });
    expect(gain.height).toBeCloseTo(100 * (10 / 15));
    expect(loss.up).toBe(false);
    expect(loss.y).toBeCloseTo(gain.y + gain.height);
    expect(barShapes([], 100, 100)).toEqual([]);
  });
});
