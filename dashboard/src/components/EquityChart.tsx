import { formatMoney, polylinePoints } from "../format";

export interface EquityPoint {
  ts: string;
  /** Exact string (derived from trades) or a float sample of the curve (may be null). */
  equity: string | number | null;
}

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
    </figure>
  );
}
