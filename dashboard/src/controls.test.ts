import { describe, expect, it } from "vitest";
import { outcomeText } from "./components/LiveControls";

describe("outcomeText", () => {
  it("shows the bot's answer, a refusal, or that the change waits for the bot", () => {
    expect(outcomeText("Stop", { delivered: true, ok: true, detail: "stopped" })).toBe(
      "Stop: stopped",
    );
    expect(outcomeText("Pin", { delivered: true, ok: false, detail: "no loop" })).toBe(
      "Pin: refused: no loop",
    );
    expect(outcomeText("Stop", { delivered: false, ok: true, detail: "stored" })).toBe(
      "Stop: stored",
    );
  });
});
