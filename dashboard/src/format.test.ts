import { describe, expect, it } from "vitest";
import { addDecimal, equityFromTrades, mulDecimal, subDecimal } from "./backtest";
import { bestIndexes } from "./pages/BacktestCompare";
import { errorText, items, qs, reportPath } from "./api";
import {
  formatDecimal,
  formatLabels,
  formatLimit,
  formatMoney,
  formatPct,
  formatRatio,
  formatStat,
  formatTs,
  hasRole,
  humanize,
  parseDecimal,
  roundDecimal,
  drawdownPct,
  polylinePoints,
  sign,
  validateParam,
} from "./format";

describe("formatDecimal", () => {
  it("keeps every significant digit of an exact string", () => {
    expect(formatDecimal("12345.6789012345")).toBe("12,345.6789012345");
    expect(formatDecimal("0.1000000000")).toBe("0.1");
    expect(formatDecimal("123456789012345678901234.5")).toBe("123,456,789,012,345,678,901,234.5");
  });
  it("never rounds through a float", () => {
    // 0.1 + 0.2 style values stay as given
    expect(formatDecimal("0.30000000000000004")).toBe("0.30000000000000004");
    expect(formatMoney("9999999999999999.99")).toBe("9,999,999,999,999,999.99");
  });
  it("pads money to two places and trims only trailing zeros", () => {
    expect(formatMoney("10000.0000000000")).toBe("10,000.00");
    expect(formatMoney("-12.5")).toBe("-12.50");
    expect(formatMoney("1.23400")).toBe("1.234");
  });
  it("handles signs, zero, exponents and junk", () => {
    expect(formatDecimal("-0.000")).toBe("0");
    expect(formatDecimal("+5")).toBe("5");
    expect(formatDecimal("1.5E+3")).toBe("1,500");
    expect(formatDecimal("2.5e-4")).toBe("0.00025");
    expect(formatDecimal("n/a")).toBe("n/a");
    expect(formatDecimal(null)).toBe("—");
    expect(formatDecimal("")).toBe("—");
    expect(formatDecimal(42)).toBe("42");
  });
});

describe("parseDecimal and sign", () => {
  it("splits parts", () => {
    expect(parseDecimal("-001.50")).toEqual({ negative: true, int: "1", frac: "50" });
    expect(parseDecimal("abc")).toBeNull();
    expect(parseDecimal(".")).toBeNull();
  });
  it("gives the sign of a decimal string", () => {
    expect(sign("-0.01")).toBe(-1);
    expect(sign("0.000")).toBe(0);
    expect(sign("3")).toBe(1);
    expect(sign(null)).toBe(0);
    expect(sign("x")).toBe(0);
  });
});

describe("formatTs / formatStat / humanize", () => {
  it("shows UTC timestamps", () => {
    expect(formatTs("2024-01-02T03:04:05.123456+00:00")).toBe("2024-01-02 03:04:05 UTC");
    expect(formatTs(null)).toBe("—");
    expect(formatTs("soon")).toBe("soon");
  });
  it("formats statistics of any type", () => {
    expect(formatStat(1.23456789)).toBe("1.2346");
    expect(formatStat(12)).toBe("12");
    expect(formatStat(null)).toBe("—");
    expect(formatStat(true)).toBe("yes");
    expect(formatStat("10500.25000")).toBe("10,500.25");
    expect(formatStat("3 days, 0:00:00")).toBe("3 days, 0:00:00");
    expect(formatStat({ a: 1 })).toBe('{"a":1}');
  });
  it("prints a Decimal quotient (expectancy) with sensible precision", () => {
    expect(formatStat("12.345678901234567890123456789")).toBe("12.3457");
    expect(formatStat("-0.000012345678901234567890")).toBe("-0.00001235");
    expect(formatStat(0.1 + 0.2)).toBe("0.3");
    expect(formatStat(1e-7)).toBe("0.0000001");
    expect(formatRatio("2.5")).toBe("2.5");
    expect(formatRatio("n/a")).toBe("n/a");
  });
  it("rounds exactly, half away from zero", () => {
    expect(roundDecimal("1.23456", 4)).toBe("1.2346");
    expect(roundDecimal("9.99995", 4)).toBe("10.0000");
    expect(roundDecimal("-0.00004", 4)).toBe("0.0000");
    expect(roundDecimal("-2.5", 0)).toBe("-3");
    expect(roundDecimal("7.1", 4)).toBe("7.1");
    expect(roundDecimal("x", 2)).toBe("x");
  });
  it("shows percentages to two decimals", () => {
    expect(formatPct("12.3456")).toBe("12.35%");
    expect(formatPct("-0.1")).toBe("-0.10%");
    expect(formatPct("1234.5")).toBe("1,234.50%");
    expect(formatPct(null)).toBe("—");
  });
  it("humanizes keys", () => {
    expect(humanize("max_drawdown_pct")).toBe("Max drawdown pct");
  });
});

describe("roles", () => {
  it("ranks viewer < trader < admin", () => {
    expect(hasRole("admin", "trader")).toBe(true);
    expect(hasRole("trader", "trader")).toBe(true);
    expect(hasRole("viewer", "trader")).toBe(false);
    expect(hasRole("trader", "admin")).toBe(false);
    expect(hasRole("root", "viewer")).toBe(false);
    expect(hasRole(null, "viewer")).toBe(false);
  });
});

describe("validateParam", () => {
  const spec = { type: "int", default: 10, low: 2, high: 500 };
  it("accepts values within bounds", () => {
    expect(validateParam("fast", "12", spec)).toEqual({ value: 12 });
  });
  it("names the parameter in every error", () => {
    expect(validateParam("fast", "1", spec).error).toBe("fast: must be ≥ 2");
    expect(validateParam("fast", "501", spec).error).toBe("fast: must be ≤ 500");
    expect(validateParam("fast", "2.5", spec).error).toBe("fast: must be a whole number");
    expect(validateParam("fast", "abc", spec).error).toBe("fast: must be a number");
    expect(validateParam("fast", " ", spec).error).toBe("fast: a value is required");
  });
  it("handles floats, booleans and text", () => {
    expect(validateParam("k", "0.5", { type: "float", default: 1.0, low: 0 })).toEqual({
      value: 0.5,
    });
    expect(validateParam("b", "true", { type: "bool", default: false })).toEqual({ value: true });
    expect(validateParam("b", "yes", { type: "bool", default: false }).error).toMatch(
      /true or false/,
    );
    expect(validateParam("s", "abc", { type: "str", default: "x" })).toEqual({ value: "abc" });
    expect(validateParam("d", "0.10", { type: "Decimal", default: "0.1" })).toEqual({
      value: "0.10",
    });
  });
});

describe("api helpers", () => {
  it("reads FastAPI error bodies", () => {
    expect(errorText({ detail: "wrong username or password" }, 401)).toBe(
      "wrong username or password",
    );
    expect(
      errorText({ detail: [{ loc: ["body", "params", "fast"], msg: "too small" }] }, 422),
    ).toBe("params.fast: too small");
    expect(errorText(null, 500)).toBe("request failed (HTTP 500)");
  });
  it("builds query strings without empty values", () => {
    expect(qs({ a: "x", b: "", c: undefined, d: 3 })).toBe("?a=x&d=3");
    expect(qs({})).toBe("");
  });
  it("unwraps lists", () => {
    expect(items([1, 2])).toEqual([1, 2]);
    expect(items({ items: [3] })).toEqual([3]);
    expect(items(null)).toEqual([]);
  });
});

describe("backtest helpers", () => {
  it("adds exact decimals", () => {
    expect(addDecimal("10000", "12.34")).toBe("10012.34");
    expect(addDecimal("0.1", "0.2")).toBe("0.3");
    expect(addDecimal("5.5", "-10.75")).toBe("-5.25");
    expect(addDecimal("-0.5", "0.25")).toBe("-0.25");
  });
  it("subtracts and multiplies exact decimals", () => {
    expect(subDecimal("43199.5", "30123.45")).toBe("13076.05");
    expect(subDecimal("1", "-2.5")).toBe("3.5");
    expect(mulDecimal("13076.05", "0.125")).toBe("1634.50625");
    expect(mulDecimal("-0.1", "0.2")).toBe("-0.02");
    expect(mulDecimal("0.1", "3")).toBe("0.3");
    expect(mulDecimal("2.50", "4")).toBe("10");
    expect(mulDecimal("123456789.123456789", "987654321.987654321")).toBe(
      "121932631356500531.347203169112635269",
    );
  });
  it("derives an equity curve from trades", () => {
    const curve = equityFromTrades("1000", "2024-01-01T00:00:00Z", [
      { entry_ts: "a", exit_ts: "t1", pnl: "10.5" },
      { entry_ts: "b", exit_ts: "t2", pnl: "-0.5" },
    ]);
    expect(curve.map((p) => p.equity)).toEqual(["1000", "1010.5", "1010.0"]);
    expect(curve[2].ts).toBe("t2");
  });
  it("marks the best runs, none on a tie", () => {
    expect([...bestIndexes([1.5, "2.5", null])]).toEqual([1]);
    expect([...bestIndexes([-1.4, -2.5])]).toEqual([0]);
    expect([...bestIndexes([40, 40])]).toEqual([]);
    expect([...bestIndexes([3, 1, 3])]).toEqual([0, 2]);
    expect([...bestIndexes([null, 2])]).toEqual([]);
  });
  it("computes drawdown below the running peak", () => {
    const dd = drawdownPct([100, 110, 99, 121]);
    expect(dd[0]).toBe(0);
    expect(dd[1]).toBe(0);
    expect(dd[2]).toBeCloseTo(-10, 9);
    expect(dd[3]).toBe(0);
  });
  it("scales a polyline into the box", () => {
    expect(polylinePoints([0, 10], 100, 50, 0)).toBe("0.0,50.0 100.0,0.0");
    expect(polylinePoints([], 100, 50)).toBe("");
    expect(polylinePoints([5, 5, 5], 100, 50, 0)).toBe("0.0,50.0 50.0,50.0 100.0,50.0");
    expect(polylinePoints([5], 100, 50, 0, { min: 0, max: 10 })).toBe("0.0,25.0");
  });
});

describe("formatLabels", () => {
  it("lists labels in name order", () => {
    expect(formatLabels({ symbol: "BTC", side: "buy" })).toBe("side=buy, symbol=BTC");
    expect(formatLabels({})).toBe("");
  });
});

describe("formatLimit", () => {
  it("says when a limit is off and shows fractions as percentages", () => {
    expect(formatLimit(null)).toBe("no limit");
    expect(formatLimit("2500.5")).toBe("2,500.5");
    expect(formatLimit(5)).toBe("5");
    expect(formatLimit("0.25", true)).toBe("25%");
    expect(formatLimit("0.07", true)).toBe("7%");
  });
});

describe("reportPath", () => {
  it("asks for the PDF and the attachment only when wanted", () => {
    expect(reportPath(7, "html")).toBe("/api/reports/7/file");
    expect(reportPath(7, "pdf")).toBe("/api/reports/7/file?format=pdf");
    expect(reportPath(7, "pdf", true)).toBe("/api/reports/7/file?format=pdf&download=true");
  });
});
