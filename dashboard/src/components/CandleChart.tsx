import { candleShapes, type Candle } from "../candles";
import { formatDecimal, formatTs } from "../format";

/** Candlestick chart (inline SVG). Each candle's tooltip shows its exact prices. */
export function CandleChart({ candles }: { candles: Candle[] }) {
  const width = 900;
  const height = 300;
  if (candles.length === 0) return <p className="muted">No bars stored for this symbol yet.</p>;
  const shapes = candleShapes(candles, width, height);
  const last = candles[candles.length - 1];
  return (
    <figure className="chart candles" data-testid="candle-chart">
      <svg
        viewBox={`0 0 ${width} ${height}`}
        preserveAspectRatio="none"
        role="img"
        aria-label={`${candles.length} candles, last close ${formatDecimal(last.close)}`}
      >
        {shapes.map((s, i) => {
          const c = candles[i];
          return (
            <g key={c.ts} className={`candle ${s.up ? "up" : "down"}`} data-testid="candle">
              <title>
                {`${formatTs(c.ts)}  O ${formatDecimal(c.open)}  H ${formatDecimal(c.high)}  L ${formatDecimal(c.low)}  C ${formatDecimal(c.close)}`}
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
      </svg>
      <figcaption data-testid="last-candle">
        <span>{formatTs(last.ts)}</span>
        <span>O {formatDecimal(last.open)}</span>
        <span>H {formatDecimal(last.high)}</span>
        <span>L {formatDecimal(last.low)}</span>
        <span>C {formatDecimal(last.close)}</span>
      </figcaption>
    </figure>
  );
}
