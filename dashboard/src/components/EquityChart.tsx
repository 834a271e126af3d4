import { drawdownPct, formatMoney, polylinePoints } from "../format";
import type { Schema } from "../schema";

/** A float sample of a backtest's curve (null where it has none), or an exact string derived
 * from its trades (`equityFromTrades`). */
export type EquityPoint = Schema<"EquityPoint"> | { ts: string; equity: string };

/** Caption text: exact strings as they are; float samples to cents. */
function label(v: string | number | null): string {
  if (typeof v === "number") return formatMoney(v.toFixed(2));
  return formatMoney(v);
}

/** Equity curve as an inline SVG line (display only: floats are used for the drawing). */
export function EquityChart({ points: raw }: { points: EquityPoint[] }) {
  const points = raw.filter((p) => p.equity !== null && Number.isFinite(Number(p.equity)));
  const width = 800;
  const height = 220;
  if (points.length < 2) return <p className="muted">Not enough points for an equity curve.</p>;
  const values = points.map((p) => Number(p.equity));
  const line = polylinePoints(values, width, height);
  const first = points[0];
  const last = points[points.length - 1];
  const min = points.reduce((a, p) => (Number(p.equity) < Number(a.equity) ? p : a), first);
  const max = points.reduce((a, p) => (Number(p.equity) > Number(a.equity) ? p : a), first);
  const up = Number(last.equity) >= Number(first.equity);
  return (
    <figure className="chart" data-testid="equity-chart">
      <svg
        viewBox={`0 0 ${width} ${height}`}
        preserveAspectRatio="none"
        role="img"
        aria-label={`Equity from ${label(first.equity)} to ${label(last.equity)}`}
      >
        <polyline
          points={`4,${height - 4} ${line} ${width - 4},${height - 4}`}
          className={up ? "area up" : "area down"}
        />
        <polyline points={line} className={up ? "line up" : "line down"} fill="none" />
      </svg>
      <figcaption>
        <span>start {label(first.equity)}</span>
        <span>low {label(min.equity)}</span>
        <span>high {label(max.equity)}</span>
        <span>end {label(last.equity)}</span>
      </figcaption>
      <DrawdownStrip values={values} />
    </figure>
  );
}

/** The drawdown under the equity curve (percent below the running peak). */
function DrawdownStrip({ values }: { values: number[] }) {
  const dd = drawdownPct(values);
  const worst = Math.min(...dd);
  if (!(worst < 0)) return null;
  const width = 800;
  const height = 70;
  const line = polylinePoints(dd, width, height, 2, { min: worst, max: 0 });
  return (
    <div className="drawdown" data-testid="drawdown-chart">
      <svg
        viewBox={`0 0 ${width} ${height}`}
        preserveAspectRatio="none"
        role="img"
        aria-label={`Maximum drawdown ${worst.toFixed(2)}%`}
      >
        <polyline points={`2,2 ${line} ${width - 2},2`} className="dd-area" />
      </svg>
      <span className="muted small">drawdown, worst {worst.toFixed(2)}%</span>
    </div>
  );
}

const PALETTE = 5;

/** Several equity curves on one scale (backtest comparison); display only. */
export function MultiEquityChart({
  series,
}: {
  series: { label: string; points: EquityPoint[] }[];
}) {
  const width = 800;
  const height = 260;
  const numeric = series.map((s) => ({
    label: s.label,
    values: s.points
      .filter((p) => p.equity !== null && Number.isFinite(Number(p.equity)))
      .map((p) => Number(p.equity)),
  }));
  const all = numeric.flatMap((s) => s.values);
  if (all.length < 2) return <p className="muted">No equity curves to compare.</p>;
  const scale = { min: Math.min(...all), max: Math.max(...all) };
  return (
    <figure className="chart" data-testid="compare-chart">
      <svg
        viewBox={`0 0 ${width} ${height}`}
        preserveAspectRatio="none"
        role="img"
        aria-label="Equity curves"
      >
        {numeric.map((s, i) => (
          <polyline
            key={s.label}
            points={polylinePoints(s.values, width, height, 4, scale)}
            className={`line s${i % PALETTE}`}
            fill="none"
          />
        ))}
      </svg>
      <figcaption>
        {numeric.map((s, i) => (
          <span key={s.label} className="legend">
            <i className={`swatch s${i % PALETTE}`} /> {s.label}
          </span>
        ))}
      </figcaption>
    </figure>
  );
}
