import {
  candleAt,
  candleShapes,
  linePath,
  priceRange,
  priceY,
  slotOf,
  volumeHeights,
  type Candle,
} from "../candles";
import { formatDecimal, formatTs } from "../format";
import type { Schema } from "../schema";

/** An indicator line, one value per candle (null while it warms up). */
export type ChartLine = Schema<"LineOut">;

/** A fill to mark at its candle and price. */
export type ChartMarker = Schema<"MarkerOut">;

const WIDTH = 900;
const PRICE_HEIGHT = 300;
const VOLUME_HEIGHT = 60;
const GAP = 8;

/** Candlestick chart (inline SVG) with the strategy's indicator lines, its fills as buy/sell
 * triangles and volume bars underneath. Each candle's and marker's tooltip shows exact prices.
 * `seconds` is the candle length (places a fill in its candle). */
export function CandleChart({
  candles,
  lines = [],
  markers = [],
  seconds = 60,
}: {
  candles: Candle[];
  lines?: ChartLine[];
  markers?: ChartMarker[];
  seconds?: number;
}) {
  if (candles.length === 0) return <p className="muted">No bars stored for this symbol yet.</p>;
  // Lines from the server cover the stored bars; live candles beyond them have no value yet.
  const aligned = lines.map((l) => ({
    ...l,
    values: candles.map((_, i) => l.values[i] ?? null),
  }));
  const range = priceRange(
    candles,
    aligned.map((l) => l.values),
  );
  const shapes = candleShapes(candles, WIDTH, PRICE_HEIGHT, 4, range);
  const volumes = volumeHeights(candles, VOLUME_HEIGHT);
  const volumeBase = PRICE_HEIGHT + GAP + VOLUME_HEIGHT;
  const last = candles[candles.length - 1];
  const placed = markers
    .map((m) => ({ m, i: candleAt(candles, m.ts, seconds) }))
    .filter(({ i }) => i >= 0);
  return (
    <figure className="chart candles" data-testid="candle-chart">
      <div className="plot">
        <svg
          viewBox={`0 0 ${WIDTH} ${volumeBase}`}
          preserveAspectRatio="none"
          role="img"
          aria-label={`${candles.length} candles, last close ${formatDecimal(last.close)}`}
        >
          {shapes.map((s, i) => (
            <rect
              key={`v${candles[i].ts}`}
              className={`volume ${s.up ? "up" : "down"}`}
              data-testid="volume-bar"
              x={s.x}
              width={s.width}
              y={volumeBase - volumes[i]}
              height={volumes[i]}
            />
          ))}
          {shapes.map((s, i) => {
            const c = candles[i];
            return (
              <g key={c.ts} className={`candle ${s.up ? "up" : "down"}`} data-testid="candle">
                <title>
                  {`${formatTs(c.ts)}  O ${formatDecimal(c.open)}  H ${formatDecimal(c.high)}  L ${formatDecimal(c.low)}  C ${formatDecimal(c.close)}  V ${formatDecimal(c.volume ?? "0")}`}
                </title>
                <line
                  x1={s.x + s.width / 2}
                  x2={s.x + s.width / 2}
                  y1={s.wickTop}
                  y2={s.wickBottom}
                />
                <rect x={s.x} y={s.bodyTop} width={s.width} height={s.bodyHeight} />
              </g>
            );
          })}
          {aligned.map((l, k) => (
            <path
              key={l.name}
              className={`line indicator s${k % 5}`}
              data-testid={`indicator-${l.name}`}
              d={linePath(l.values, WIDTH, PRICE_HEIGHT, range)}
            />
          ))}
          {placed.map(({ m, i }, k) => {
            const { x, slot } = slotOf(i, candles.length, WIDTH);
            const cx = x + slot / 2;
            const y = priceY(Number(m.price), range, PRICE_HEIGHT);
            const buy = m.side === "buy";
            // A buy points up from below its price, a sell down from above.
            const tip = buy ? y + 2 : y - 2;
            const base = buy ? tip + 10 : tip - 10;
            return (
              <polygon
                key={`${m.ts}-${k}`}
                className={`marker ${buy ? "buy" : "sell"}`}
                data-testid="trade-marker"
                data-side={m.side}
                points={`${cx},${tip} ${cx - 6},${base} ${cx + 6},${base}`}
              >
                <title>{`${m.strategy} ${m.side} ${formatDecimal(m.qty)} @ ${formatDecimal(m.price)}  ${formatTs(m.ts)}`}</title>
              </polygon>
            );
          })}
        </svg>
        {/* Price labels as HTML over the stretched SVG, so the text keeps its shape. */}
        <div className="price-axis" aria-hidden="true">
          {priceTicks(range).map((p) => (
            <span
              key={p}
              data-testid="price-tick"
              style={{ top: `${(priceY(p, range, PRICE_HEIGHT) / volumeBase) * 100}%` }}
            >
              {formatDecimal(String(p))}
            </span>
          ))}
        </div>
      </div>
      <figcaption data-testid="last-candle">
        <span>{formatTs(last.ts)}</span>
        <span>O {formatDecimal(last.open)}</span>
        <span>H {formatDecimal(last.high)}</span>
        <span>L {formatDecimal(last.low)}</span>
        <span>C {formatDecimal(last.close)}</span>
        <span>V {formatDecimal(last.volume ?? "0")}</span>
        {aligned.map((l, k) => (
          <span key={l.name} className="legend">
            <span className={`swatch s${k % 5}`} /> {l.name}{" "}
            {formatDecimal(roundLine(l.values[l.values.length - 1]))}
          </span>
        ))}
      </figcaption>
    </figure>
  );
}

/** Five round prices across `range` for the axis. */
function priceTicks(range: { min: number; max: number }): number[] {
  const step = (range.max - range.min) / 4;
  if (!(step > 0)) return [range.min];
  return [0, 1, 2, 3, 4].map((k) => Number((range.min + k * step).toPrecision(6)));
}

/** An indicator value for the legend: a float, shown to 6 significant digits. */
function roundLine(v: number | null): string | null {
  return v === null ? null : String(Number(v.toPrecision(6)));
}
