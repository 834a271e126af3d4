import { describe, expect, it } from "vitest";
import {
  applyTick,
  bucketStart,
  candleAt,
  candleShapes,
  linePath,
  priceRange,
  priceY,
  slotOf,
  volumeHeights,
  type Candle,
} from "./candles";

const bar = (ts: string, o: string, h: string, l: string, c: string): Candle => ({
  ts,
  open: o,
  high: h,
  low: l,
  close: c,
});

describe("applyTick", () => {
  const stored = [bar("2024-01-01T00:00:00Z", "100", "105", "99", "104")];

  it("moves the last candle when the tick is in its bucket, keeping exact strings", () => {
    const next = applyTick(stored, { ts: "2024-01-01T00:00:30Z", price: "105.25" }, 60);
    expect(next).toHaveLength(1);
    expect(next[0]).toEqual(bar("2024-01-01T00:00:00Z", "100", "105.25", "99", "105.25"));
    const lower = applyTick(next, { ts: "2024-01-01T00:00:59Z", price: "98.5" }, 60);
    expect(lower[0]).toEqual(bar("2024-01-01T00:00:00Z", "100", "105.25", "98.5", "98.5"));
  });

  it("opens a new candle for a later bucket", () => {
    const next = applyTick(stored, { ts: "2024-01-01T00:02:10Z", price: "101" }, 60);
    expect(next).toHaveLength(2);
    expect(next[1]).toEqual(bar("2024-01-01T00:02:00.000Z", "101", "101", "101", "101"));
  });

  it("ignores ticks older than the last candle and unparseable times", () => {
    expect(applyTick(stored, { ts: "2023-12-31T23:59:00Z", price: "1" }, 60)).toBe(stored);
    expect(applyTick(stored, { ts: "soon", price: "1" }, 60)).toBe(stored);
  });

  it("starts from nothing", () => {
    expect(applyTick([], { ts: "2024-01-01T01:30:00Z", price: "7" }, 3600)).toEqual([
      bar("2024-01-01T01:00:00.000Z", "7", "7", "7", "7"),
    ]);
  });
});

describe("candles", () => {
  it("aligns buckets to the epoch", () => {
    expect(bucketStart("2024-01-01T00:07:30Z", 300)).toBe(Date.parse("2024-01-01T00:05:00Z"));
  });
  it("lays candles out in the box", () => {
    const shapes = candleShapes(
      [bar("a", "1", "2", "0", "2"), bar("b", "2", "2", "1", "1")],
      100,
      100,
      0,
    );
    expect(shapes[0]).toMatchObject({ up: true, wickTop: 0, wickBottom: 100, bodyTop: 0 });
    expect(shapes[0].bodyHeight).toBeCloseTo(50);
    expect(shapes[1]).toMatchObject({ up: false, wickTop: 0, wickBottom: 50 });
    expect(shapes[1].x).toBeGreaterThan(shapes[0].x);
    expect(candleShapes([], 100, 100)).toEqual([]);
  });
});

describe("chart overlays", () => {
  const candles = [
    { ...bar("2024-01-01T00:00:00Z", "10", "12", "9", "11"), volume: "5" },
    { ...bar("2024-01-01T00:01:00Z", "11", "13", "10", "12"), volume: "10" },
    bar("2024-01-01T00:02:00Z", "12", "12", "11", "11"),
  ];
  it("spans the candles and the lines' finite values", () => {
    expect(priceRange(candles)).toEqual({ min: 9, max: 13 });
    expect(priceRange(candles, [[null, 20, NaN]])).toEqual({ min: 9, max: 20 });
  });
  it("lifts the pen over a line's gaps", () => {
    const range = { min: 0, max: 100 };
    expect(linePath([null, 50, 50], 300, 100, range, 0)).toBe("M150.0,50.0 L250.0,50.0");
    expect(linePath([10, null, 10], 300, 100, range, 0)).toBe("M50.0,90.0 M250.0,90.0");
    expect(priceY(100, range, 100, 0)).toBe(0);
  });
  it("finds the candle of a fill's time", () => {
    expect(candleAt(candles, "2024-01-01T00:01:59Z", 60)).toBe(1);
    expect(candleAt(candles, "2024-01-01T00:02:00Z", 60)).toBe(2);
    expect(candleAt(candles, "2024-01-01T00:03:00Z", 60)).toBe(-1);
    expect(candleAt(candles, "2023-12-31T23:59:00Z", 60)).toBe(-1);
    expect(slotOf(1, 3, 300, 0)).toEqual({ x: 100, slot: 100 });
  });
  it("scales volume to the band, nothing without volume", () => {
    expect(volumeHeights(candles, 60)).toEqual([30, 60, 0]);
    expect(volumeHeights([bar("a", "1", "1", "1", "1")], 60)).toEqual([0]);
  });
});
